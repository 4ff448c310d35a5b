//! Who is asking, and may they: sessions (cookie), API tokens (bearer), roles, CSRF, and the
//! login rate limiter.
//!
//! A browser logs in with a name and password and gets an HttpOnly, SameSite=Strict session
//! cookie (Secure under TLS) and a CSRF token bound to that session. Every write made with the
//! cookie must carry the token, as the `X-CSRF-Token` header (API) or the `csrf` form field
//! (pages). Automation uses API tokens, which are not sent by browsers on their own, so they
//! need no CSRF token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bawaba_store::{Role, User};
use serde::Serialize;

use crate::error::ApiError;
use crate::App;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "bawaba_session";

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Perm {
    /// Anyone, without logging in.
    Public,
    /// Any logged-in identity (its own account and tokens).
    Own,
    /// Read orders, rules, the allowlist, checks, enforcement points.
    Read,
    /// Record orders and their rules (legal officers).
    Propose,
    /// Approve and revoke orders (never one's own proposal).
    Approve,
    /// Allowlist, publishing bundles (gateway engineers).
    Operate,
    /// Read the whole audit log and verify it.
    Audit,
    /// Read the appeals queue.
    AppealsRead,
    /// Answer appeals.
    AppealsAnswer,
    /// Manage users.
    Admin,
}

impl Perm {
    /// Every permission, for the role matrix.
    pub const ALL: [Perm; 10] = [
        Perm::Public,
        Perm::Own,
        Perm::Read,
        Perm::Propose,
        Perm::Approve,
        Perm::Operate,
        Perm::Audit,
        Perm::AppealsRead,
        Perm::AppealsAnswer,
        Perm::Admin,
    ];

    /// Whether `role` holds this permission.
    pub fn allows(self, role: Role) -> bool {
        use Perm::*;
        match role {
            Role::Admin => true,
            Role::Legal => matches!(self, Public | Own | Read | Propose | AppealsRead | AppealsAnswer),
            Role::Approver => matches!(self, Public | Own | Read | Approve | AppealsRead | AppealsAnswer),
            Role::Operator => matches!(self, Public | Own | Read | Operate),
            Role::Auditor => matches!(self, Public | Own | Read | Audit | AppealsRead),
            Role::Viewer => matches!(self, Public | Own | Read),
        }
    }

    /// The roles that hold it.
    pub fn roles(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| self.allows(*r)).collect()
    }
}

/// How the identity was established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A session cookie, with the session's CSRF token.
    Session {
        /// The secret cookie value.
        token: String,
        /// The CSRF token bound to the session.
        csrf: String,
    },
    /// An API token.
    Token,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The user.
    pub user: User,
    /// Session or token.
    pub via: Via,
}

impl Identity {
    /// The CSRF token to embed in forms (empty for token callers, who post no forms).
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token => "",
        }
    }

    /// Refuses unless the role holds `perm`.
    pub fn require(&self, perm: Perm) -> Result<(), ApiError> {
        if perm.allows(self.user.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{} is {}; this needs one of: {}",
                self.user.name,
                self.user.role,
                perm.roles().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            )))
        }
    }
}

/// Reads a cookie from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Finds the caller from the bearer token or the session cookie; `Ok(None)` when neither is sent.
pub async fn identify(app: &App, headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
    let now = crate::now();
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let Some(secret) = auth.strip_prefix("Bearer ") else {
            return Err(ApiError::Unauthenticated);
        };
        let secret = secret.trim().to_string();
        let user = app.db(move |s| s.token_user(&secret, now)).await?;
        return match user {
            Some(user) => Ok(Some(Identity { user, via: Via::Token })),
            None => Err(ApiError::Unauthenticated),
        };
    }
    let Some(token) = cookie(headers, SESSION_COOKIE).map(str::to_string) else { return Ok(None) };
    let lookup = token.clone();
    let session = app.db(move |s| s.session(&lookup, now)).await?;
    Ok(session.map(|s| Identity { user: s.user, via: Via::Session { token, csrf: s.csrf } }))
}

/// Whether a cookie-authenticated write carries the session's CSRF token in the header.
fn csrf_header_ok(identity: &Identity, headers: &HeaderMap) -> bool {
    match &identity.via {
        Via::Token => true,
        Via::Session { csrf, .. } => headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|sent| crate::util::constant_time_eq(sent.as_bytes(), csrf.as_bytes())),
    }
}

/// State of the per-endpoint guard.
#[derive(Clone)]
pub(crate) struct Guard {
    pub(crate) app: App,
    pub(crate) perm: Perm,
}

/// Middleware in front of every API endpoint: authenticates, checks the endpoint's permission
/// and, for cookie-authenticated writes, the CSRF header; then hands the [`Identity`] to the
/// handler as a request extension.
pub(crate) async fn guard(State(g): State<Guard>, mut req: Request, next: Next) -> Response {
    if g.perm == Perm::Public {
        return next.run(req).await;
    }
    let identity = match identify(&g.app, req.headers()).await {
        Ok(Some(identity)) => identity,
        Ok(None) => return ApiError::Unauthenticated.into_response(),
        Err(e) => return e.into_response(),
    };
    if let Err(e) = identity.require(g.perm) {
        return e.into_response();
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !csrf_header_ok(&identity, req.headers()) {
        return ApiError::Csrf.into_response();
    }
    req.extensions_mut().insert(identity);
    next.run(req).await
}

/// Counts failures per key in a sliding window; used for logins (per client and per user name)
/// and for public forms (per client prefix).
#[derive(Debug)]
pub struct RateLimiter {
    window: Duration,
    limit: u32,
    hits: Mutex<HashMap<String, Vec<Instant>>>,
}

impl RateLimiter {
    /// At most `limit` events per key within `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        RateLimiter { window, limit, hits: Mutex::new(HashMap::new()) }
    }

    /// `Err(seconds to wait)` when `key` is over the limit.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = hits.get_mut(key) else { return Ok(()) };
        list.retain(|t| now.duration_since(*t) < self.window);
        if list.len() >= self.limit as usize {
            let oldest = list.first().copied().unwrap_or(now);
            let wait = self.window.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        Ok(())
    }

    /// Records one event for `key`.
    pub fn hit(&self, key: &str) {
        let now = Instant::now();
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        if hits.len() > 100_000 {
            // Bounded memory under a flood of distinct keys: forget the expired ones.
            let window = self.window;
            hits.retain(|_, list| list.last().is_some_and(|t| now.duration_since(*t) < window));
        }
        hits.entry(key.to_string()).or_default().push(now);
    }

    /// Forgets `key` (after a successful login).
    pub fn clear(&self, key: &str) {
        self.hits.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// The prefix a client is counted under: its IPv4 /24 or IPv6 /56.
pub fn client_prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[7..].fill(0);
            format!("{}/56", std::net::Ipv6Addr::from(o))
        }
    }
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(token: &str, ttl_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ttl_secs}{secure}")
}

/// The `Set-Cookie` value that ends a session.
pub fn clear_session_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_group_neighbours() {
        assert_eq!(client_prefix("198.18.7.9".parse().unwrap()), "198.18.7.0/24");
        assert_eq!(client_prefix("2001:db8:1:2ff:1::9".parse().unwrap()), "2001:db8:1:200::/56");
    }

    #[test]
    fn limiter_counts_within_the_window() {
        let l = RateLimiter::new(2, Duration::from_secs(60));
        assert!(l.check("a").is_ok());
        l.hit("a");
        l.hit("a");
        assert!(l.check("a").is_err());
        assert!(l.check("b").is_ok());
        l.clear("a");
        assert!(l.check("a").is_ok());
    }

    #[test]
    fn admin_holds_everything_viewer_only_reads() {
        for p in Perm::ALL {
            assert!(p.allows(Role::Admin));
        }
        assert!(Perm::Read.allows(Role::Viewer));
        assert!(!Perm::Propose.allows(Role::Viewer));
        assert!(!Perm::Approve.allows(Role::Legal));
        assert!(!Perm::Propose.allows(Role::Approver));
    }
}
