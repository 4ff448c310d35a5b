//! The pages anyone may see: the block page (HTTP 451, RFC 7725), the transparency report (HTML,
//! JSON, CSV) and appeals (file one, look one up). They need no login and no script.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use bawaba_policy::Order;
use maud::html;

use crate::api::{self, AppealBody};
use crate::error::ApiError;
use crate::i18n::{self, T};
use crate::layout::Ctx;
use crate::App;

/// The public routes.
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/", get(home))
        .route("/blocked", get(blocked))
        .route("/transparency", get(transparency))
        .route("/transparency.json", get(transparency_json))
        .route("/transparency.csv", get(transparency_csv))
        .route("/appeal", get(appeal_form).post(appeal))
        .route("/appeal/status", get(appeal_status))
}

/// The block-page listener's routes: every path is the block page for the Host asked for.
pub(crate) fn block_page_router() -> Router<App> {
    Router::new()
        .route(
            "/static/console.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], crate::layout::CSS) }),
        )
        .route("/appeal", get(appeal_form).post(appeal))
        .route("/appeal/status", get(appeal_status))
        .fallback(blocked_by_host)
}

/// 404 for everything else.
pub(crate) async fn not_found(ctx: Ctx) -> Response {
    ctx.error_page(StatusCode::NOT_FOUND, ctx.t(T::NotFound))
}

async fn home(ctx: Ctx) -> Response {
    ctx.page(
        ctx.t(T::Brand),
        html! {
            h1 { (ctx.t(T::Brand)) }
            p { (ctx.t(T::Welcome)) }
            div.grid {
                a.card href="/transparency" { (ctx.t(T::Transparency)) }
                a.card href="/appeal" { (ctx.t(T::FileAppeal)) }
                a.card href="/appeal/status" { (ctx.t(T::AppealLookup)) }
                a.card href="/console" { (ctx.t(T::Console)) }
            }
        },
    )
}

// ---- block page --------------------------------------------------------------------------------

/// `/blocked?order=REF&host=NAME`: where the packet engine's redirect leads.
async fn blocked(State(app): State<App>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    let host = q.get("host").map(|h| h.trim().to_string()).filter(|h| !h.is_empty());
    let reference = q.get("order").map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    block_page(&app, &ctx, host, reference)
}

/// Any request on the block-page listener: the name asked for is the Host header.
async fn blocked_by_host(State(app): State<App>, ctx: Ctx, headers: HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).and_then(|h| crate::check::target_of(h).ok());
    block_page(&app, &ctx, host, None)
}

/// The block page: which authority restricted the site, under which order, until when, and how
/// to appeal; status 451 with `Link: <operator>; rel="blocked-by"` (RFC 7725 section 4).
fn block_page(app: &App, ctx: &Ctx, host: Option<String>, reference: Option<String>) -> Response {
    let ruleset = app.gateway().ruleset();
    let by_host = host.as_deref().and_then(|h| crate::check::check(&ruleset, h).ok()).and_then(|r| r.order);
    let order: Option<Order> = match (&reference, by_host) {
        (Some(r), _) => ruleset.orders().iter().find(|o| &o.reference == r).cloned(),
        (None, found) => found,
    };
    let config = app.config();
    let Some(order) = order else {
        let body = html! {
            div.blockpage.card {
                h1 { (ctx.t(T::NotBlocked)) }
                @if let Some(h) = &host { p { bdi.mono { (h) } } }
                p #not-restricted { (ctx.t(T::NotRestricted)) }
            }
        };
        let mut response = ctx.page(ctx.t(T::NotBlocked), body);
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    };
    let appeal_href = {
        let mut q = vec![format!("lang={}", ctx.lang.code())];
        q.push(format!("order={}", crate::layout::percent(&order.reference)));
        if let Some(h) = &host {
            q.push(format!("site={}", crate::layout::percent(h)));
        }
        format!("/appeal?{}", q.join("&"))
    };
    let body = html! {
        div.blockpage.card {
            h1 { (ctx.t(T::Restricted)) }
            p { (ctx.t(T::RestrictedBody)) }
            dl {
                @if let Some(h) = &host { dt { (ctx.t(T::Site)) } dd { bdi.mono { (h) } } }
                dt { (ctx.t(T::Authority)) } dd #authority { bdi { (order.authority) } }
                dt { (ctx.t(T::Reference)) } dd #reference { bdi.mono { (order.reference) } }
                dt { (ctx.t(T::Issued)) } dd { (crate::layout::day(order.issued_at)) }
                dt { (ctx.t(T::Category)) } dd { (i18n::category(ctx.lang, order.category)) }
                dt { (ctx.t(T::Until)) } dd { (crate::layout::day(order.expires_at)) }
                dt { (ctx.t(T::Summary)) } dd { (order.summary) }
                dt { (ctx.t(T::HowToAppeal)) } dd { bdi { (order.appeal_contact) } }
                dt { (ctx.t(T::Operator)) } dd { bdi { (config.operator_name) } }
            }
            p { (ctx.t(T::AppealIntro)) }
            p { a.button #appeal href=(appeal_href) { (ctx.t(T::FileAppeal)) } }
        }
    };
    let mut response = ctx.page_status(StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS, ctx.t(T::Restricted), body);
    let link = format!("<{}>; rel=\"blocked-by\"", config.operator_url);
    if let Ok(v) = HeaderValue::from_str(&link) {
        response.headers_mut().insert(header::LINK, v);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// ---- transparency ------------------------------------------------------------------------------

async fn transparency(State(app): State<App>, ctx: Ctx) -> Response {
    let report = match crate::transparency::report(&app).await {
        Ok(r) => r,
        Err(e) => return ctx.error_page(e.status(), &e.to_string()),
    };
    let body = html! {
        h1 { (ctx.t(T::Transparency)) }
        p.muted { (crate::layout::stamp(report.generated_at)) " · " (ctx.t(T::Downloads)) ": "
            a href="/transparency.json" { bdi { "JSON" } } " · "
            a href="/transparency.csv?table=orders" { bdi { "CSV (" (ctx.t(T::PublishedOrders)) ")" } } " · "
            a href="/transparency.csv?table=months" { bdi { "CSV (" (ctx.t(T::PerMonth)) ")" } } }
        div.grid {
            div.card { h2 { (ctx.t(T::ActiveOrders)) } p.verdict { (report.active_orders) } }
            div.card { h2 { (ctx.t(T::ActiveRules)) } p.verdict { (report.active_rules) } }
        }
        div.grid {
            div.card { h2 { (ctx.t(T::ByAuthority)) }
                table { @for (a, n) in &report.active_by_authority { tr { td { bdi { (a) } } td { (n) } } } } }
            div.card { h2 { (ctx.t(T::ByCategory)) }
                table { @for (c, n) in &report.active_by_category { tr { td { (i18n::category_name(ctx.lang, c)) } td { (n) } } } } }
        }
        h2 { (ctx.t(T::PerMonth)) }
        div.scroll { table #months {
            tr { th { (ctx.t(T::Month)) } th { (ctx.t(T::Added)) } th { (ctx.t(T::Expired)) } th { (ctx.t(T::Revoked)) } }
            @for m in &report.months { tr { td { time.date { (m.month) } } td { (m.added) } td { (m.expired) } td { (m.revoked) } } }
        } }
        h2 { (ctx.t(T::PublishedOrders)) }
        div.scroll { table #published {
            tr { th { (ctx.t(T::Reference)) } th { (ctx.t(T::Authority)) } th { (ctx.t(T::Category)) } th { (ctx.t(T::Status)) } th { (ctx.t(T::EffectiveFrom)) } th { (ctx.t(T::Expires)) } th { (ctx.t(T::Rules)) } th { (ctx.t(T::Summary)) } }
            @for o in &report.orders {
                tr { td { bdi.mono { (o.reference) } } td { bdi { (o.authority) } } td { (i18n::category_name(ctx.lang, &o.category)) }
                     td { (o.status.parse().map(|s| i18n::status(ctx.lang, s)).unwrap_or("")) } td { time.date { (o.effective_from) } } td { time.date { (o.expires) } } td { (o.rules) } td { (o.summary) } }
            }
        } }
    };
    ctx.page(ctx.t(T::Transparency), body)
}

async fn transparency_json(State(app): State<App>) -> Result<Json<crate::transparency::Report>, ApiError> {
    Ok(Json(crate::transparency::report(&app).await?))
}

async fn transparency_csv(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let report = crate::transparency::report(&app).await?;
    let table = q.get("table").map_or("orders", String::as_str);
    let body = crate::transparency::csv(&report, table)?;
    let disposition = format!("attachment; filename=\"bawaba-transparency-{table}.csv\"");
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, disposition)],
        body,
    )
        .into_response())
}

// ---- appeals -----------------------------------------------------------------------------------

/// The double-submit cookie of the public forms.
const FORM_COOKIE: &str = "bawaba_form";

fn appeal_page(
    ctx: &Ctx,
    headers: &HeaderMap,
    values: &HashMap<String, String>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let token = crate::layout::form_token(headers, FORM_COOKIE);
    let v = |k: &str| values.get(k).cloned().unwrap_or_default();
    let body = html! {
        h1 { (ctx.t(T::FileAppeal)) }
        p { (ctx.t(T::AppealIntro)) }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.card method="post" action="/appeal" {
            input type="hidden" name="form" value=(token);
            input type="hidden" name="lang" value=(ctx.lang.code());
            label for="site" { (ctx.t(T::Site)) } input #site type="text" name="site" required dir="ltr" value=(v("site"));
            label for="order" { (ctx.t(T::Reference)) } input #order type="text" name="order" dir="ltr" value=(v("order"));
            label for="reason" { (ctx.t(T::AppealReason)) } textarea #reason name="reason" required minlength="10" maxlength="4000" { (v("reason")) }
            label for="contact" { (ctx.t(T::Contact)) } input #contact type="text" name="contact" value=(v("contact"));
            button #submit-appeal type="submit" { (ctx.t(T::Submit)) }
        }
        p { a href="/appeal/status" { (ctx.t(T::AppealLookup)) } }
    };
    let mut response = ctx.page_status(status, ctx.t(T::FileAppeal), body);
    crate::layout::set_form_token(&mut response, FORM_COOKIE, &token, "/appeal");
    response
}

async fn appeal_form(ctx: Ctx, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    appeal_page(&ctx, &headers, &q, None, StatusCode::OK)
}

async fn appeal(
    State(app): State<App>,
    ctx: Ctx,
    headers: HeaderMap,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let sent = f.get("form").map(String::as_str).unwrap_or("");
    let token_ok = crate::layout::form_token_ok(&headers, FORM_COOKIE, sent);
    if !token_ok {
        return appeal_page(
            &ctx,
            &headers,
            &f,
            Some(&i18n::appeal_error(ctx.lang, &ApiError::Csrf)),
            StatusCode::FORBIDDEN,
        );
    }
    let opt = |k: &str| f.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let body = AppealBody {
        site: f.get("site").cloned().unwrap_or_default(),
        reason: f.get("reason").cloned().unwrap_or_default(),
        contact: opt("contact"),
        order: opt("order"),
    };
    match api::do_file_appeal(&app, client, body).await {
        Ok(a) => ctx.page_status(
            StatusCode::CREATED,
            ctx.t(T::FileAppeal),
            html! {
                h1 { (ctx.t(T::FileAppeal)) }
                div.card {
                    p.ok role="status" { (ctx.t(T::AppealFiled)) }
                    p.reference.mono #appeal-reference { (a.reference) }
                    p { a href={"/appeal/status?ref=" (a.reference)} { (ctx.t(T::AppealLookup)) } }
                }
            },
        ),
        Err(e) => appeal_page(&ctx, &headers, &f, Some(&i18n::appeal_error(ctx.lang, &e)), e.status()),
    }
}

async fn appeal_status(State(app): State<App>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Response {
    let reference = q.get("ref").map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    let found = match &reference {
        Some(r) => {
            let r = r.clone();
            match app.db(move |s| s.appeal_by_reference(&r)).await {
                Ok(a) => Some(a),
                Err(e) => return ctx.error_page(e.status(), &e.to_string()),
            }
        }
        None => None,
    };
    let status = if matches!(found, Some(None)) { StatusCode::NOT_FOUND } else { StatusCode::OK };
    let body = html! {
        h1 { (ctx.t(T::AppealLookup)) }
        form.card method="get" action="/appeal/status" {
            label for="ref" { (ctx.t(T::Reference)) }
            input #ref type="text" name="ref" dir="ltr" required value=(reference.clone().unwrap_or_default());
            button type="submit" { (ctx.t(T::Search)) }
        }
        @match &found {
            Some(Some(a)) => div.card #appeal-status {
                p { strong.mono { (a.reference) } " · " span class={"badge " (a.status.as_str())} { (i18n::appeal_status(ctx.lang, a.status)) } }
                p { (ctx.t(T::Site)) ": " bdi.mono { (a.site) } " · " (ctx.t(T::Order)) " " bdi { (a.order_reference) } }
                p { (ctx.t(T::Filed)) " " (crate::layout::stamp(a.filed_at)) }
                @if let Some(ans) = &a.answer { p { strong { (ctx.t(T::Answer)) ": " } (ans) } }
            },
            Some(None) => p.error role="alert" { (ctx.t(T::AppealNotFound)) },
            None => {},
        }
    };
    ctx.page_status(status, ctx.t(T::AppealLookup), body)
}
