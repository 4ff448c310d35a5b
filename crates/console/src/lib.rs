//! bawaba's web face: the JSON API (`/api/v1`), the console that legal officers, approvers,
//! auditors and engineers use, and the public pages a citizen meets: the block page (HTTP 451,
//! RFC 7725), the transparency report and appeals. Arabic and English throughout; Arabic pages
//! are right-to-left.
//!
//! The pages are rendered on the server ([`maud`]) and work without JavaScript; a small script
//! only adds upload progress to imports. Everything reads and writes through the policy
//! [`Store`], so every change lands in the tamper-evident audit log with the acting identity.
//! The running gateway (policy in force, publishing, enforcement points, counters) is reached
//! through the [`Gateway`] hooks that the `bawaba` binary implements.
//!
//! ```no_run
//! # async fn run(store: bawaba_store::Store, gateway: std::sync::Arc<dyn bawaba_console::Gateway>) -> std::io::Result<()> {
//! use bawaba_console::{App, ConsoleConfig};
//! let config = ConsoleConfig::default();
//! let app = App::new(store, gateway, config.clone());
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! bawaba_console::serve(app, listener, None, std::future::pending()).await
//! # }
//! ```

pub mod api;
pub mod auth;
mod charts;
pub mod check;
pub mod client;
pub mod config;
pub mod error;
pub mod gateway;
pub mod i18n;
mod layout;
pub mod openapi;
mod pages;
mod public;
pub mod tls;
pub mod transparency;
pub mod util;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use bawaba_store::{Store, StoreError};

pub use auth::{Identity, Perm};
pub use config::ConsoleConfig;
pub use error::ApiError;
pub use gateway::{Decided, EnforcementPoint, Gateway, HookError, MitigationRequest, Published};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    store: Mutex<Store>,
    gateway: Arc<dyn Gateway>,
    config: ConsoleConfig,
    logins: auth::RateLimiter,
    appeals: auth::RateLimiter,
    history: charts::History,
    /// What other sites last reported of their enforcement points, by site.
    remote: Mutex<std::collections::BTreeMap<String, Vec<EnforcementPoint>>>,
}

impl App {
    /// The console over `store`, reaching the running gateway through `gateway`.
    pub fn new(store: Store, gateway: Arc<dyn Gateway>, config: ConsoleConfig) -> App {
        let window = Duration::from_secs(config.login_window_secs.max(1));
        let logins = auth::RateLimiter::new(config.login_attempts.max(1), window);
        let appeals = auth::RateLimiter::new(config.appeals_per_hour.max(1), Duration::from_secs(3600));
        App(Arc::new(Inner {
            store: Mutex::new(store),
            gateway,
            config,
            logins,
            appeals,
            history: charts::History::default(),
            remote: Mutex::new(std::collections::BTreeMap::new()),
        }))
    }

    /// The settings.
    pub fn config(&self) -> &ConsoleConfig {
        &self.0.config
    }

    /// The gateway hooks.
    pub fn gateway(&self) -> &Arc<dyn Gateway> {
        &self.0.gateway
    }

    /// Runs `f` on the store on a blocking thread (SQLite and password hashing block).
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        self.with_store(move |s| f(s).map_err(ApiError::from)).await
    }

    /// Runs `f` with the store on a blocking thread, for work that fails with [`ApiError`].
    pub async fn with_store<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
    {
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = app.0.store.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut store)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("store task: {e}")))?
    }

    /// Takes one sample of the enforcement points' counters for the dashboard charts.
    pub fn sample_counters(&self) {
        self.0.history.sample(now(), &self.points());
    }

    /// Every enforcement point: this process's own, then what each other site last reported.
    pub fn points(&self) -> Vec<EnforcementPoint> {
        let mut points = self.0.gateway.points();
        let remote = self.0.remote.lock().unwrap_or_else(|e| e.into_inner());
        points.extend(remote.values().flatten().cloned());
        points
    }

    /// Replaces what `site` reported of its enforcement points.
    pub fn report_points(&self, site: &str, mut points: Vec<EnforcementPoint>, at: i64) {
        for p in &mut points {
            p.site = Some(site.to_string());
            p.reported_at = Some(at);
        }
        let mut remote = self.0.remote.lock().unwrap_or_else(|e| e.into_inner());
        if remote.len() < 1000 || remote.contains_key(site) {
            remote.insert(site.to_string(), points);
        }
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The whole site: API, console, public pages, `/metrics` and `/healthz`.
pub fn router(app: App) -> Router {
    Router::new()
        .nest("/api/v1", api::router(app.clone()))
        .merge(pages::router())
        .merge(public::router())
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .fallback(public::not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(app)
}

/// The block-page listener: every request gets the block page for the name it asked for.
pub fn block_page_router(app: App) -> Router {
    public::block_page_router().layer(axum::middleware::from_fn(security_headers)).with_state(app)
}

async fn metrics(State(app): State<App>) -> Response {
    let body = app.gateway().prometheus();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// Headers every answer carries: no sniffing, no framing, no referrer, and a content security
/// policy that allows only this site's own style sheet and script.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    response
}

/// Serves `router(app)` on `listener` (with TLS when `tls` is given) until `shutdown` resolves,
/// sampling the dashboard counters once a minute.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sampler = app.clone();
    let sampling = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            sampler.sample_counters();
        }
    });
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    let result = match tls {
        Some(acceptor) => {
            axum::serve(tls::TlsListener::new(listener, acceptor).tap_io(|_| {}), service)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => axum::serve(listener, service).with_graceful_shutdown(shutdown).await,
    };
    sampling.abort();
    result
}

/// Serves the block page on `listener` until `shutdown` resolves.
pub async fn serve_block_page(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = block_page_router(app).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown).await
}
