//! The console: server-rendered pages for legal officers, approvers, operators and auditors.
//! Forms post back to the server (no script needed); every form carries the session's CSRF
//! token; bad input re-renders the page with one clear message and changes nothing.
//!
//! Page helpers return a finished error page as their `Err` (a redirect to the login, a 403
//! page), hence `Result<_, Response>` throughout.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use bawaba_policy::{Action, Category, Order, OrderId, OrderStatus};
use bawaba_store::AppealStatus;
use maud::{html, Markup};

use crate::api::{self, AuditQuery, ImportQuery, OrderBody, OrderFilter, RulesBody};
use crate::auth::{self, Perm};
use crate::error::ApiError;
use crate::i18n::{self, Lang, T};
use crate::layout::{csrf_field, trusted, Ctx, CSS, JS};
use crate::util::{constant_time_eq, datetime};
use crate::{now, App};

/// The console's routes.
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route(
            "/static/console.css",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], CSS)
            }),
        )
        .route(
            "/static/console.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")],
                    JS,
                )
            }),
        )
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/console", get(dashboard))
        .route("/console/publish", post(publish))
        .route("/console/orders", get(orders).post(create_order))
        .route("/console/orders/new", get(new_order_form))
        .route("/console/orders/{id}", get(order_page))
        .route("/console/orders/{id}/rules", post(add_rule))
        .route("/console/orders/{id}/import", post(import))
        .route("/console/orders/{id}/approve", post(approve))
        .route("/console/orders/{id}/revoke", post(revoke))
        .route("/console/check", get(check))
        .route("/console/audit", get(audit))
        .route("/console/appeals", get(appeals))
        .route("/console/appeals/{id}/answer", post(answer))
        .route("/console/defense", get(defense))
        .route("/console/password", get(password_form).post(change_password))
        .route("/console/users", get(users).post(user_action))
        .route("/console/tokens", get(tokens).post(token_action))
        .route("/console/allowlist", get(allowlist).post(allow_action))
        .route("/console/mitigations", post(mitigate))
}

type Page = Result<Response, Response>;

/// Checks a posted form's CSRF token against the session's.
fn csrf_ok(ctx: &Ctx, form: &HashMap<String, String>) -> Result<(), Response> {
    let sent = form.get("csrf").map(String::as_str).unwrap_or("");
    match &ctx.who {
        Some(who) if !who.csrf().is_empty() && constant_time_eq(sent.as_bytes(), who.csrf().as_bytes()) => Ok(()),
        _ => Err(ctx.error_page(StatusCode::FORBIDDEN, &ApiError::Csrf.to_string())),
    }
}

fn api_error_page(ctx: &Ctx, e: ApiError) -> Response {
    ctx.error_page(e.status(), &e.to_string())
}

fn badge(lang: Lang, s: OrderStatus) -> Markup {
    html! { span class={"badge " (s.as_str())} { (i18n::status(lang, s)) } }
}

// ---- login -------------------------------------------------------------------------------------

/// The pre-login CSRF cookie (double submit: the login form must echo it).
const PRE_COOKIE: &str = "bawaba_pre";

async fn login_form(ctx: Ctx, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    login_page(&ctx, &headers, q.get("next").map(String::as_str).unwrap_or("/console"), None)
}

fn login_page(ctx: &Ctx, headers: &HeaderMap, next: &str, error: Option<&str>) -> Response {
    let pre = crate::layout::form_token(headers, PRE_COOKIE);
    let status = if error.is_some() { StatusCode::FORBIDDEN } else { StatusCode::OK };
    let mut response = ctx.page_status(
        status,
        ctx.t(T::Login),
        html! {
            div.card style="max-width:26rem" {
                h1 { (ctx.t(T::Login)) }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                form method="post" action="/login" {
                    input type="hidden" name="pre" value=(pre);
                    input type="hidden" name="next" value=(next);
                    label for="name" { (ctx.t(T::UserName)) }
                    input #name type="text" name="name" autocomplete="username" required autofocus;
                    label for="password" { (ctx.t(T::Password)) }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button type="submit" { (ctx.t(T::Login)) }
                }
            }
        },
    );
    crate::layout::set_form_token(&mut response, PRE_COOKIE, &pre, "/login");
    response
}

async fn login(
    State(app): State<App>,
    ctx: Ctx,
    headers: HeaderMap,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let next = get("next");
    let next = if next.starts_with("/console") { next } else { "/console" };
    let pre_ok = crate::layout::form_token_ok(&headers, PRE_COOKIE, get("pre"));
    if !pre_ok {
        return login_page(&ctx, &headers, next, Some(&ApiError::Csrf.to_string()));
    }
    match api::do_login(&app, client, get("name"), get("password")).await {
        Ok((token, _)) => {
            let cookie = auth::session_cookie(&token, app.config().session_ttl_secs, app.config().tls());
            ([(header::SET_COOKIE, cookie)], Redirect::to(next)).into_response()
        }
        Err(e @ ApiError::RateLimited(_)) => {
            let mut r = login_page(&ctx, &headers, next, Some(&e.to_string()));
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            r
        }
        Err(e) => login_page(&ctx, &headers, next, Some(&e.to_string())),
    }
}

async fn logout(State(app): State<App>, ctx: Ctx, Form(f): Form<HashMap<String, String>>) -> Page {
    csrf_ok(&ctx, &f)?;
    if let Some(auth::Identity { via: auth::Via::Session { token, .. }, .. }) = ctx.who.clone() {
        app.db(move |s| s.delete_session(&token)).await.map_err(|e| api_error_page(&ctx, e))?;
    }
    Ok(([(header::SET_COOKIE, auth::clear_session_cookie(app.config().tls()))], Redirect::to("/")).into_response())
}

// ---- dashboard ---------------------------------------------------------------------------------

async fn dashboard(State(app): State<App>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Page {
    let who = ctx.need(Perm::Read)?.clone();
    let points = app.points();
    let t = now();
    let filter = OrderFilter { expiring_days: Some("30".into()), ..OrderFilter::default() };
    let expiring = api::filtered_orders(&app, &filter).await.map_err(|e| api_error_page(&ctx, e))?;
    let latest = app.db(|s| s.latest_publication()).await.map_err(|e| api_error_page(&ctx, e))?;
    let by_category = crate::charts::blocked_by_category(&points);
    let mut by_order: std::collections::BTreeMap<i64, u64> = std::collections::BTreeMap::new();
    for p in &points {
        for (o, n) in &p.blocked_by_order {
            *by_order.entry(*o).or_default() += n;
        }
    }
    let ruleset = app.gateway().ruleset();
    let order_ref = |id: i64| {
        ruleset.orders().iter().find(|o| o.id.0 == id).map_or_else(|| format!("#{id}"), |o| o.reference.clone())
    };
    let hour = crate::charts::bars(&app.0.history.series(t, 3600, 60, &by_category), ctx.t(T::LastHour));
    let day = crate::charts::bars(&app.0.history.series(t, 86_400, 900, &by_category), ctx.t(T::LastDay));
    let body = html! {
        h1 { (ctx.t(T::Dashboard)) }
        @if let Some(v) = q.get("published") {
            p.ok role="status" { (ctx.t(T::Published)) " " (v) }
        }
        div.grid {
            div.card {
                h2 { (ctx.t(T::PolicyInForce)) }
                @if let Some(p) = &latest {
                    p { (ctx.t(T::Version)) " " strong { (p.version) } " · " (p.rules) " " (ctx.t(T::Rules)) " · " (crate::layout::stamp(p.at)) }
                } @else {
                    p.muted { (ctx.t(T::NoData)) }
                }
                @if Perm::Operate.allows(who.user.role) {
                    form method="post" action="/console/publish" {
                        (csrf_field(&who))
                        button type="submit" { (ctx.t(T::Publish)) }
                    }
                }
            }
            div.card {
                h2 { (ctx.t(T::BlockedByCategory)) }
                @if by_category.is_empty() { p.muted { (ctx.t(T::NoData)) } }
                table { @for (c, n) in &by_category { tr { td { (i18n::category_name(ctx.lang, c)) } td.mono { (n) } } } }
            }
            div.card {
                h2 { (ctx.t(T::BlockedByOrder)) }
                @if by_order.is_empty() { p.muted { (ctx.t(T::NoData)) } }
                table { @for (o, n) in &by_order { tr { td { a href={"/console/orders/" (o)} { bdi { (order_ref(*o)) } } } td.mono { (n) } } } }
            }
        }
        div.grid {
            div.card { h2 { (ctx.t(T::LastHour)) } p.muted { (ctx.t(T::PerMinute)) } (trusted(hour)) }
            div.card { h2 { (ctx.t(T::LastDay)) } p.muted { (ctx.t(T::PerQuarterHour)) } (trusted(day)) }
        }
        h2 { (ctx.t(T::Points)) }
        div.scroll { table {
            tr { th { (ctx.t(T::Site)) } th { (ctx.t(T::Points)) } th { (ctx.t(T::Version)) } th { (ctx.t(T::LastLoaded)) } th { "" } }
            @for p in &points {
                tr {
                    td {
                        (p.site.clone().unwrap_or_else(|| "-".into()))
                        @if let Some(at) = p.reported_at {
                            @if t - at > api::STALE_SECS { " " span.badge.revoked { (ctx.t(T::Stale)) } }
                        }
                    }
                    td.mono { (p.name) }
                    td { (p.bundle_version.map(|v| v.to_string()).unwrap_or_else(|| "-".into())) }
                    td { (p.loaded_at.map(datetime).unwrap_or_else(|| "-".into())) }
                    td.mono.muted { @for (k, v) in &p.counters { (k) "=" (v) " " } }
                }
            }
        } }
        h2 { (ctx.t(T::ExpiringOrders)) }
        (orders_table(&ctx, &expiring, t))
    };
    Ok(ctx.page(ctx.t(T::Dashboard), body))
}

async fn publish(State(app): State<App>, ctx: Ctx, Form(f): Form<HashMap<String, String>>) -> Page {
    let who = ctx.need(Perm::Operate)?.clone();
    csrf_ok(&ctx, &f)?;
    let published = api::do_publish(&app, who.user.name).await.map_err(|e| api_error_page(&ctx, e))?;
    Ok(Redirect::to(&format!("/console?published={}", published.version)).into_response())
}

// ---- orders ------------------------------------------------------------------------------------

fn orders_table(ctx: &Ctx, orders: &[(Order, i64)], t: i64) -> Markup {
    html! {
        @if orders.is_empty() { p.muted { (ctx.t(T::NoOrders)) } } @else {
            div.scroll { table #orders {
                tr { th { "#" } th { (ctx.t(T::Reference)) } th { (ctx.t(T::Authority)) } th { (ctx.t(T::Category)) } th { (ctx.t(T::Status)) } th { (ctx.t(T::Expires)) } th { (ctx.t(T::Rules)) } }
                @for (o, n) in orders {
                    tr {
                        td { a href={"/console/orders/" (o.id.0)} { (o.id.0) } }
                        td { a href={"/console/orders/" (o.id.0)} { bdi { (o.reference) } } }
                        td { bdi { (o.authority) } }
                        td { (i18n::category(ctx.lang, o.category)) }
                        td { (badge(ctx.lang, o.status_at(t))) }
                        td { (crate::layout::day(o.expires_at)) }
                        td { (n) }
                    }
                }
            } }
        }
    }
}

async fn orders(State(app): State<App>, ctx: Ctx, Query(f): Query<OrderFilter>) -> Page {
    let who = ctx.need(Perm::Read)?.clone();
    let t = now();
    let list = api::filtered_orders(&app, &f).await.map_err(|e| api_error_page(&ctx, e))?;
    let sel = |v: &Option<String>, x: &str| v.as_deref() == Some(x);
    let body = html! {
        h1 { (ctx.t(T::Orders)) }
        @if Perm::Propose.allows(who.user.role) {
            p { a.button href="/console/orders/new" { (ctx.t(T::NewOrder)) } }
        }
        form.filters.card method="get" action="/console/orders" {
            div { label for="f-status" { (ctx.t(T::Status)) }
                select #f-status name="status" {
                    option value="" { (ctx.t(T::All)) }
                    @for s in OrderStatus::ALL { option value=(s.as_str()) selected[sel(&f.status, s.as_str())] { (i18n::status(ctx.lang, *s)) } }
                } }
            div { label for="f-category" { (ctx.t(T::Category)) }
                select #f-category name="category" {
                    option value="" { (ctx.t(T::All)) }
                    @for c in Category::ALL { option value=(c.as_str()) selected[sel(&f.category, c.as_str())] { (i18n::category(ctx.lang, *c)) } }
                } }
            div { label for="f-authority" { (ctx.t(T::Authority)) }
                input #f-authority type="text" name="authority" value=(f.authority.clone().unwrap_or_default()); }
            div.check-row { input #f-expiring type="checkbox" name="expiring_days" value="30" checked[f.expiring_days.is_some()];
                label for="f-expiring" { (ctx.t(T::ExpiringSoon)) } }
            div { button type="submit" { (ctx.t(T::Filter)) } }
        }
        (orders_table(&ctx, &list, t))
    };
    Ok(ctx.page(ctx.t(T::Orders), body))
}

fn order_form(ctx: &Ctx, who: &auth::Identity, values: &HashMap<String, String>, error: Option<&str>) -> Markup {
    let v = |k: &str| values.get(k).cloned().unwrap_or_default();
    html! {
        h1 { (ctx.t(T::NewOrder)) }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.card method="post" action="/console/orders" {
            (csrf_field(who))
            label for="authority" { (ctx.t(T::Authority)) } input #authority type="text" name="authority" required value=(v("authority"));
            label for="reference" { (ctx.t(T::Reference)) } input #reference type="text" name="reference" required value=(v("reference"));
            label for="category" { (ctx.t(T::Category)) }
            select #category name="category" { @for c in Category::ALL { option value=(c.as_str()) selected[v("category") == c.as_str()] { (i18n::category(ctx.lang, *c)) } } }
            label for="issued" { (ctx.t(T::Issued)) } input #issued type="date" name="issued" value=(v("issued"));
            label for="effective_from" { (ctx.t(T::EffectiveFrom)) } input #effective_from type="date" name="effective_from" value=(v("effective_from"));
            label for="expires" { (ctx.t(T::Expires)) } input #expires type="date" name="expires" required value=(v("expires"));
            label for="summary" { (ctx.t(T::Summary)) } textarea #summary name="summary" required { (v("summary")) }
            label for="appeal_contact" { (ctx.t(T::AppealContact)) } input #appeal_contact type="text" name="appeal_contact" required value=(v("appeal_contact"));
            div.check-row { input #publishable type="checkbox" name="publishable" value="yes" checked[values.is_empty() || values.contains_key("publishable")];
                label for="publishable" { (ctx.t(T::Publishable)) } }
            button type="submit" { (ctx.t(T::Create)) }
        }
    }
}

async fn new_order_form(ctx: Ctx) -> Page {
    let who = ctx.need(Perm::Propose)?.clone();
    Ok(ctx.page(ctx.t(T::NewOrder), order_form(&ctx, &who, &HashMap::new(), None)))
}

async fn create_order(State(app): State<App>, ctx: Ctx, Form(f): Form<HashMap<String, String>>) -> Page {
    let who = ctx.need(Perm::Propose)?.clone();
    csrf_ok(&ctx, &f)?;
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let opt = |k: &str| f.get(k).filter(|v| !v.trim().is_empty()).cloned();
    let body = OrderBody {
        authority: get("authority"),
        reference: get("reference"),
        issued: opt("issued"),
        effective_from: opt("effective_from"),
        expires: get("expires"),
        category: get("category"),
        summary: get("summary"),
        publishable: Some(f.contains_key("publishable")),
        appeal_contact: get("appeal_contact"),
    };
    let t = now();
    let result = match api::new_order(&body, t) {
        Ok(new) => {
            let actor = who.user.name.clone();
            app.db(move |s| s.add_order(&actor, new, t)).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(order) => Ok(Redirect::to(&format!("/console/orders/{}", order.id.0)).into_response()),
        Err(e) => {
            let mut r = ctx.page(ctx.t(T::NewOrder), order_form(&ctx, &who, &f, Some(&e.to_string())));
            *r.status_mut() = e.status();
            Ok(r)
        }
    }
}

fn parse_order_id(ctx: &Ctx, id: &str) -> Result<OrderId, Response> {
    id.parse::<i64>().map(OrderId).map_err(|_| ctx.error_page(StatusCode::NOT_FOUND, &format!("no order {id:?}")))
}

async fn order_page(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> Page {
    let id = parse_order_id(&ctx, &id)?;
    render_order(&app, &ctx, id, None, StatusCode::OK).await
}

/// The order page, with an optional message (`Ok` a success, `Err` an error) from a form.
async fn render_order(
    app: &App,
    ctx: &Ctx,
    id: OrderId,
    flash: Option<Result<Markup, String>>,
    status: StatusCode,
) -> Page {
    let who = ctx.need(Perm::Read)?.clone();
    let (order, rules) =
        app.db(move |s| Ok((s.order(id)?, s.rules(Some(id))?))).await.map_err(|e| api_error_page(ctx, e))?;
    let history = api::order_history(app, id).await.map_err(|e| api_error_page(ctx, e))?;
    let t = now();
    let st = order.status_at(t);
    let draft = order.status == OrderStatus::Draft;
    let role = who.user.role;
    let own = order.proposed_by == who.user.name;
    let body = html! {
        h1 { (ctx.t(T::Order)) " " bdi { (order.reference) } " " (badge(ctx.lang, st)) }
        @match &flash {
            Some(Ok(m)) => p.ok role="status" { (m) },
            Some(Err(e)) => p.error role="alert" { (e) },
            None => {},
        }
        div.card { table.facts {
            tr { th { (ctx.t(T::Authority)) } td { bdi { (order.authority) } } }
            tr { th { (ctx.t(T::Category)) } td { (i18n::category(ctx.lang, order.category)) } }
            tr { th { (ctx.t(T::Issued)) } td { (crate::layout::day(order.issued_at)) } }
            tr { th { (ctx.t(T::EffectiveFrom)) } td { (crate::layout::day(order.effective_from)) } }
            tr { th { (ctx.t(T::Expires)) } td { (crate::layout::day(order.expires_at)) } }
            tr { th { (ctx.t(T::Summary)) } td { (order.summary) } }
            tr { th { (ctx.t(T::AppealContact)) } td { bdi { (order.appeal_contact) } } }
            tr { th { (ctx.t(T::ProposedBy)) } td.mono { (order.proposed_by) } }
            @if let Some(a) = &order.approved_by { tr { th { (ctx.t(T::ApprovedBy)) } td.mono { (a) } } }
            @if let Some(r) = &order.revoked { tr { th { (ctx.t(T::RevokedBy)) } td { span.mono { (r.by) } " · " (crate::layout::stamp(r.at)) " · " (r.reason) } } }
        } }
        @if draft && Perm::Approve.allows(role) {
            div.card #approval {
                p.muted { (ctx.t(T::FourEyes)) }
                @if own { p.error { (ctx.t(T::YouProposed)) } } @else {
                    form method="post" action={"/console/orders/" (id.0) "/approve"} {
                        (csrf_field(&who))
                        button #approve type="submit" { (ctx.t(T::Approve)) }
                    }
                }
            }
        }
        @if matches!(st, OrderStatus::Approved | OrderStatus::Active) && Perm::Approve.allows(role) {
            form.card method="post" action={"/console/orders/" (id.0) "/revoke"} {
                (csrf_field(&who))
                label for="revoke-reason" { (ctx.t(T::Reason)) }
                input #revoke-reason type="text" name="reason" required;
                button.danger type="submit" { (ctx.t(T::Revoke)) }
            }
        }
        h2 { (ctx.t(T::Rules)) " (" (rules.len()) ")" }
        @if !rules.is_empty() {
            div.scroll { table #rules {
                tr { th { "#" } th { (ctx.t(T::Selector)) } th { (ctx.t(T::Action)) } }
                @for r in &rules { tr { td { (r.id.0) } td.mono { (r.selector) } td { (r.action) } } }
            } }
        }
        @if draft && Perm::Propose.allows(role) {
            div.grid {
                form.card method="post" action={"/console/orders/" (id.0) "/rules"} {
                    h2 { (ctx.t(T::AddRule)) }
                    (csrf_field(&who))
                    label for="selector" { (ctx.t(T::Selector)) }
                    input #selector type="text" name="selector" required dir="ltr";
                    p.muted { (ctx.t(T::SelectorHelp)) }
                    label for="action" { (ctx.t(T::Action)) }
                    select #action name="action" { @for a in Action::ALL { option value=(a.as_str()) { (a.as_str()) } } }
                    button #add-rule type="submit" { (ctx.t(T::AddRule)) }
                }
                form.card method="post" action={"/console/orders/" (id.0) "/import"} enctype="multipart/form-data" data-progress="import-progress" {
                    h2 { (ctx.t(T::Import)) }
                    (csrf_field(&who))
                    p.muted { (ctx.t(T::ImportHelp)) }
                    input #file type="file" name="file" required;
                    label for="format" { (ctx.t(T::Format)) }
                    select #format name="format" {
                        option value="" { (ctx.t(T::Guess)) }
                        @for f in ["rpz", "hosts", "domains", "cidr"] { option value=(f) { (f) } }
                    }
                    label for="import-action" { (ctx.t(T::Action)) }
                    select #import-action name="action" { @for a in Action::ALL { option value=(a.as_str()) { (a.as_str()) } } }
                    progress #import-progress hidden value="0" max="1" {}
                    button type="submit" { (ctx.t(T::Upload)) }
                }
            }
        }
        h2 { (ctx.t(T::History)) }
        (audit_table(ctx, &history))
    };
    let mut r = ctx.page(&order.reference, body);
    *r.status_mut() = status;
    Ok(r)
}

async fn add_rule(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Page {
    let id = parse_order_id(&ctx, &id)?;
    let who = ctx.need(Perm::Propose)?.clone();
    csrf_ok(&ctx, &f)?;
    let body = RulesBody {
        selectors: vec![f.get("selector").cloned().unwrap_or_default()],
        action: f.get("action").cloned().unwrap_or_default(),
        force: None,
        reason: None,
    };
    match api::add_rules_checked(&app, who.user.name, id, body).await {
        Ok(rules) => {
            let m = html! { (ctx.t(T::AddRule)) ": " span.mono { @for r in &rules { (r.selector) " " } } };
            render_order(&app, &ctx, id, Some(Ok(m)), StatusCode::OK).await
        }
        Err(e) => render_order(&app, &ctx, id, Some(Err(e.to_string())), e.status()).await,
    }
}

async fn import(State(app): State<App>, ctx: Ctx, Path(id): Path<String>, mut form: Multipart) -> Page {
    let id = parse_order_id(&ctx, &id)?;
    let who = ctx.need(Perm::Propose)?.clone();
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut file: Option<(String, axum::body::Bytes)> = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                if name == "file" {
                    let fname = field.file_name().unwrap_or("upload").to_string();
                    match field.bytes().await {
                        Ok(b) => file = Some((fname, b)),
                        Err(e) => return Err(ctx.error_page(StatusCode::BAD_REQUEST, &format!("upload: {e}"))),
                    }
                } else {
                    let text = field.text().await.unwrap_or_default();
                    fields.insert(name, text);
                }
            }
            Ok(None) => break,
            Err(e) => return Err(ctx.error_page(StatusCode::BAD_REQUEST, &format!("upload: {e}"))),
        }
    }
    csrf_ok(&ctx, &fields)?;
    let Some((name, bytes)) = file else {
        return render_order(
            &app,
            &ctx,
            id,
            Some(Err("choose a file to import".into())),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let q = ImportQuery { format: fields.get("format").cloned(), action: fields.get("action").cloned(), origin: None };
    match api::do_import(&app, who.user.name, id, q, format!("console upload {name}"), bytes).await {
        Ok(v) => {
            let m = html! {
                (ctx.t(T::Imported)) ": " strong { (v["added"]) } " · " (v["duplicates"]) " " (ctx.t(T::Duplicates))
                " · " (v["rejected"].as_array().map_or(0, Vec::len)) " " (ctx.t(T::RejectedLines))
                @if let Some(rej) = v["rejected"].as_array() {
                    @for r in rej.iter().take(20) { br; span.mono.muted { (r["line"]) ": " (r["reason"].as_str().unwrap_or("")) } }
                }
            };
            render_order(&app, &ctx, id, Some(Ok(m)), StatusCode::OK).await
        }
        Err(e) => render_order(&app, &ctx, id, Some(Err(e.to_string())), e.status()).await,
    }
}

async fn approve(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Page {
    let id = parse_order_id(&ctx, &id)?;
    let who = ctx.need(Perm::Approve)?.clone();
    csrf_ok(&ctx, &f)?;
    let t = now();
    match app.db(move |s| s.approve_order(&who.user.name, id, t)).await {
        Ok(_) => Ok(Redirect::to(&format!("/console/orders/{}", id.0)).into_response()),
        Err(e) => render_order(&app, &ctx, id, Some(Err(e.to_string())), e.status()).await,
    }
}

async fn revoke(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Page {
    let id = parse_order_id(&ctx, &id)?;
    let who = ctx.need(Perm::Approve)?.clone();
    csrf_ok(&ctx, &f)?;
    let reason = f.get("reason").map(|r| r.trim().to_string()).unwrap_or_default();
    if reason.is_empty() {
        return render_order(
            &app,
            &ctx,
            id,
            Some(Err("a revocation needs a reason".into())),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let t = now();
    match app.db(move |s| s.revoke_order(&who.user.name, id, &reason, t)).await {
        Ok(_) => Ok(Redirect::to(&format!("/console/orders/{}", id.0)).into_response()),
        Err(e) => render_order(&app, &ctx, id, Some(Err(e.to_string())), e.status()).await,
    }
}

// ---- check -------------------------------------------------------------------------------------

async fn check(State(app): State<App>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Page {
    ctx.need(Perm::Read)?;
    let asked = q.get("q").cloned().unwrap_or_default();
    let ruleset = app.gateway().ruleset();
    let result = (!asked.trim().is_empty()).then(|| crate::check::check(&ruleset, &asked));
    let body = html! {
        h1 { (ctx.t(T::Check)) }
        form.card method="get" action="/console/check" {
            label for="q" { (ctx.t(T::CheckHelp)) }
            input #q type="text" name="q" value=(asked) dir="ltr" required;
            button type="submit" { (ctx.t(T::Search)) }
        }
        @match &result {
            Some(Err(e)) => p.error role="alert" { (e) },
            Some(Ok(r)) => div.card #verdict {
                p class={"verdict " (r.verdict)} {
                    bdi.mono { (r.target) } ": "
                    @match r.verdict { "blocked" => (ctx.t(T::Blocked)), "allowed" => (ctx.t(T::Allowed)), _ => (ctx.t(T::NotBlocked)) }
                }
                table {
                    @if let Some(s) = &r.selector { tr { th { (ctx.t(T::Rule)) } td.mono { (s) @if let Some(a) = r.action { " → " (a) } } } }
                    @if let Some(o) = &r.order {
                        tr { th { (ctx.t(T::Order)) } td { a href={"/console/orders/" (o.id.0)} { bdi { (o.reference) } } " · " bdi { (o.authority) } " · " (i18n::category(ctx.lang, o.category)) " · " (ctx.t(T::Until)) " " (crate::layout::day(o.expires_at)) } }
                    }
                    tr { th { (ctx.t(T::AtDns)) } td { (r.dns) } }
                    tr { th { (ctx.t(T::AtPacket)) } td { @for (proto, what) in &r.packet { span.mono { (proto) } ": " (what) br; } } }
                }
            },
            None => {},
        }
    };
    Ok(ctx.page(ctx.t(T::Check), body))
}

// ---- audit -------------------------------------------------------------------------------------

fn audit_table(ctx: &Ctx, entries: &[bawaba_store::AuditEntry]) -> Markup {
    html! {
        @if entries.is_empty() { p.muted { (ctx.t(T::NoData)) } } @else {
            div.scroll { table #audit {
                tr { th { "#" } th { (ctx.t(T::When)) } th { (ctx.t(T::Actor)) } th { (ctx.t(T::Action)) } th { (ctx.t(T::Object)) } th { (ctx.t(T::Reason)) } }
                @for e in entries {
                    tr { td { (e.seq) } td { (crate::layout::stamp(e.at)) } td.mono { (e.actor) } td.mono { (e.action) } td.mono { (e.object) } td { (e.reason.clone().unwrap_or_default()) } }
                }
            } }
        }
    }
}

async fn audit(State(app): State<App>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Page {
    ctx.need(Perm::Audit)?;
    let get = |k: &str| q.get(k).cloned().filter(|v| !v.is_empty());
    let query = AuditQuery {
        after: get("after"),
        limit: get("limit"),
        actor: get("actor"),
        action: get("action"),
        object: get("object"),
    };
    let entries = api::audit_entries(&app, &query).await;
    let verify = if q.contains_key("verify") { Some(app.db(|s| s.verify_audit(None)).await) } else { None };
    let v = |k: &str| q.get(k).cloned().unwrap_or_default();
    let body = html! {
        h1 { (ctx.t(T::Audit)) }
        form.card method="get" action="/console/audit" {
            input type="hidden" name="verify" value="1";
            button #verify type="submit" { (ctx.t(T::Verify)) }
        }
        @match &verify {
            Some(Ok(report)) if report.is_intact() => p.ok #verify-result role="status" { (ctx.t(T::AuditIntact)) " (" (report.entries) " " (ctx.t(T::Entries)) ")" },
            Some(Ok(report)) => div.card #verify-result { p.error role="alert" { (ctx.t(T::AuditBroken)) } @if let Some(p) = &report.problem { p.error { (p) } } },
            Some(Err(e)) => p.error role="alert" { (e) },
            None => {},
        }
        form.filters.card method="get" action="/console/audit" {
            div { label for="a-actor" { (ctx.t(T::Actor)) } input #a-actor type="text" name="actor" value=(v("actor")); }
            div { label for="a-action" { (ctx.t(T::Action)) } input #a-action type="text" name="action" value=(v("action")) placeholder="order."; }
            div { label for="a-object" { (ctx.t(T::Object)) } input #a-object type="text" name="object" value=(v("object")) placeholder="order:1"; }
            div { label for="a-after" { "after #" } input #a-after type="text" name="after" value=(v("after")); }
            div { button type="submit" { (ctx.t(T::Filter)) } }
        }
        @match &entries {
            Ok(list) => (audit_table(&ctx, list)),
            Err(e) => p.error role="alert" { (e) },
        }
    };
    Ok(ctx.page(ctx.t(T::Audit), body))
}

// ---- appeals -----------------------------------------------------------------------------------

async fn appeals(State(app): State<App>, ctx: Ctx, Query(q): Query<HashMap<String, String>>) -> Page {
    let who = ctx.need(Perm::AppealsRead)?.clone();
    render_appeals(&app, &ctx, &who, q.get("status").cloned().unwrap_or_else(|| "open".into()), None).await
}

async fn render_appeals(
    app: &App,
    ctx: &Ctx,
    who: &auth::Identity,
    status: String,
    flash: Option<Result<String, String>>,
) -> Page {
    let filter = if status == "all" { None } else { status.parse::<AppealStatus>().ok() };
    let list = app.db(move |s| s.appeals(filter)).await.map_err(|e| api_error_page(ctx, e))?;
    let can_answer = Perm::AppealsAnswer.allows(who.user.role);
    let body = html! {
        h1 { (ctx.t(T::Appeals)) }
        @match &flash { Some(Ok(m)) => p.ok role="status" { (m) }, Some(Err(e)) => p.error role="alert" { (e) }, None => {} }
        form.filters.card method="get" action="/console/appeals" {
            div { label for="ap-status" { (ctx.t(T::Status)) }
                select #ap-status name="status" {
                    option value="all" selected[status == "all"] { (ctx.t(T::All)) }
                    @for s in AppealStatus::ALL { option value=(s.as_str()) selected[status == s.as_str()] { (i18n::appeal_status(ctx.lang, s)) } }
                } }
            div { button type="submit" { (ctx.t(T::Filter)) } }
        }
        @if list.is_empty() { p.muted { (ctx.t(T::NoAppeals)) } }
        @for a in &list {
            div.card.appeal {
                p { strong.mono { (a.reference) } " · " span class={"badge " (a.status.as_str())} { (i18n::appeal_status(ctx.lang, a.status)) } " · " (crate::layout::stamp(a.filed_at)) }
                p { (ctx.t(T::Site)) ": " bdi.mono { (a.site) } " · " (ctx.t(T::Order)) " " a href={"/console/orders/" (a.order.0)} { bdi { (a.order_reference) } } }
                p { (a.reason) }
                @if let Some(c) = &a.contact { p.muted { (ctx.t(T::Contact)) ": " bdi { (c) } } }
                @if let Some(ans) = &a.answer { p { strong { (ctx.t(T::Answer)) ": " } (ans) " " span.muted { "(" (a.answered_by.clone().unwrap_or_default()) ")" } } }
                @if a.status == AppealStatus::Open && can_answer {
                    form method="post" action={"/console/appeals/" (a.id.0) "/answer"} {
                        (csrf_field(who))
                        label for={"answer-" (a.id.0)} { (ctx.t(T::Answer)) }
                        textarea id={"answer-" (a.id.0)} name="answer" required {}
                        label for={"decision-" (a.id.0)} { (ctx.t(T::Status)) }
                        select id={"decision-" (a.id.0)} name="status" {
                            @for s in [AppealStatus::Upheld, AppealStatus::Granted, AppealStatus::Rejected] { option value=(s.as_str()) { (i18n::appeal_status(ctx.lang, s)) } }
                        }
                        button type="submit" { (ctx.t(T::Submit)) }
                    }
                }
            }
        }
    };
    Ok(ctx.page(ctx.t(T::Appeals), body))
}

async fn answer(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Page {
    let who = ctx.need(Perm::AppealsAnswer)?.clone();
    csrf_ok(&ctx, &f)?;
    let id: i64 = id.parse().map_err(|_| ctx.error_page(StatusCode::NOT_FOUND, "no such appeal"))?;
    let body = api::AnswerBody {
        status: f.get("status").cloned().unwrap_or_default(),
        answer: f.get("answer").cloned().unwrap_or_default(),
    };
    let flash = match api::do_answer(&app, who.user.name.clone(), id, body).await {
        Ok(a) => Ok(format!("{} {}", a.reference, a.status)),
        Err(e) => Err(e.to_string()),
    };
    render_appeals(&app, &ctx, &who, "all".into(), Some(flash)).await
}

// ---- attack defense ----------------------------------------------------------------------------

fn ms_time(v: &serde_json::Value) -> String {
    v.as_u64().map(|ms| datetime((ms / 1000) as i64)).unwrap_or_else(|| "-".into())
}

async fn defense(State(app): State<App>, ctx: Ctx) -> Page {
    let who = ctx.need(Perm::Read)?.clone();
    render_defense(&app, &ctx, &who, None).await
}

async fn render_defense(app: &App, ctx: &Ctx, who: &auth::Identity, flash: Option<Result<String, String>>) -> Page {
    let state = app.gateway().defense();
    let empty = Vec::new();
    let list = |v: &Option<serde_json::Value>, k: &str| -> Vec<serde_json::Value> {
        v.as_ref().and_then(|s| s[k].as_array().cloned()).unwrap_or_default()
    };
    let mut attacks = list(&state, "attacks");
    attacks.reverse();
    let (mitigations, exporters, bgp) = (list(&state, "mitigations"), list(&state, "exporters"), list(&state, "bgp"));
    let dry_run = state.as_ref().is_some_and(|s| s["dry_run"] == true);
    let body = html! {
        h1 { (ctx.t(T::Defense)) }
        @match &flash { Some(Ok(m)) => p.ok role="status" { (m) }, Some(Err(e)) => p.error role="alert" { (e) }, None => {} }
        @if state.is_none() { p.muted { (ctx.t(T::DefenseOff)) } } @else {
            @if dry_run { p.error { (ctx.t(T::DryRunNote)) } }
            h2 { (ctx.t(T::Mitigations)) " (" (mitigations.len()) ")" }
            @if mitigations.is_empty() { p.muted { (ctx.t(T::NoData)) } } @else {
                div.scroll { table #mitigations {
                    tr { th { (ctx.t(T::Routes)) } th { (ctx.t(T::Reason)) } th { (ctx.t(T::Since)) } }
                    @for m in &mitigations {
                        tr { td.mono { @for r in m["routes"].as_array().unwrap_or(&empty) { (r.as_str().unwrap_or("")) br; } }
                             td { (m["reason"].as_str().unwrap_or("")) " " span.muted { "(" (m["origin"]["kind"].as_str().unwrap_or("")) ")" } }
                             td { (ms_time(&m["since_ms"])) } }
                    }
                } }
            }
            @if Perm::Operate.allows(who.user.role) {
                form.card #manual method="post" action="/console/mitigations" {
                    h2 { (ctx.t(T::ManualMitigation)) }
                    (csrf_field(who))
                    div.filters {
                        div { label for="m-prefix" { (ctx.t(T::Prefix)) } input #m-prefix type="text" name="prefix" required dir="ltr" placeholder="198.18.5.5"; }
                        div { label for="m-kind" { (ctx.t(T::Kind)) } select #m-kind name="kind" { option value="blackhole" { "blackhole" } option value="flowspec" { "flowspec" } } }
                        div { label for="m-protocol" { (ctx.t(T::Protocol)) } select #m-protocol name="protocol" { option value="" { (ctx.t(T::All)) } option value="udp" { "udp" } option value="tcp" { "tcp" } option value="icmp" { "icmp" } } }
                        div { label for="m-port" { (ctx.t(T::SourcePort)) } input #m-port type="text" name="source_port" dir="ltr" placeholder="53"; }
                    }
                    label for="m-reason" { (ctx.t(T::Reason)) } input #m-reason type="text" name="reason";
                    button #announce type="submit" name="op" value="announce" { (ctx.t(T::Announce)) } " "
                    button.danger #withdraw type="submit" name="op" value="withdraw" { (ctx.t(T::Withdraw)) }
                }
            }
            h2 { (ctx.t(T::Attacks)) " (" (attacks.len()) ")" }
            @if attacks.is_empty() { p.muted { (ctx.t(T::NoData)) } } @else {
                div.scroll { table #attacks {
                    tr { th { "#" } th { (ctx.t(T::Target)) } th { (ctx.t(T::Vector)) } th { (ctx.t(T::Started)) } th { (ctx.t(T::Ended)) } th { (ctx.t(T::PeakPps)) } th { (ctx.t(T::PeakBps)) } }
                    @for a in attacks.iter().take(200) {
                        tr { td { (a["id"]) } td.mono { (a["target"].as_str().unwrap_or("")) "/" (a["prefix_len"]) " " span.muted { (a["group"].as_str().unwrap_or("")) } }
                             td.mono { (a["vector"]["kind"].as_str().unwrap_or("")) @if let Some(p) = a["vector"]["port"].as_u64() { " :" (p) } }
                             td { (ms_time(&a["started_ms"])) }
                             td { @if a["ended_ms"].is_null() { span.badge.open { (ctx.t(T::Ongoing)) } } @else { (ms_time(&a["ended_ms"])) } }
                             td.mono { (a["peak_pps"]) } td.mono { (a["peak_bps"]) } }
                    }
                } }
            }
            div.grid {
                div.card { h2 { (ctx.t(T::Exporters)) }
                    table #exporters { @for e in &exporters { tr { td.mono { (e["address"].as_str().unwrap_or("")) } td { (e["protocol"].as_str().unwrap_or("")) } td.mono { (e["records"]) } td { (ms_time(&e["last_seen_ms"])) } } } } }
                div.card { h2 { (ctx.t(T::BgpSessions)) }
                    table #bgp { @for b in &bgp { tr { td.mono { (b["address"].as_str().unwrap_or("")) } td { (b["state"].as_str().unwrap_or("")) } td.mono { (b["announced"]) } } } } }
            }
        }
    };
    Ok(ctx.page(ctx.t(T::Defense), body))
}

async fn mitigate(State(app): State<App>, ctx: Ctx, Form(f): Form<HashMap<String, String>>) -> Page {
    let who = ctx.need(Perm::Operate)?.clone();
    csrf_ok(&ctx, &f)?;
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let port = get("source_port");
    let body = api::MitigationBody {
        prefix: get("prefix"),
        kind: get("kind"),
        protocol: f.get("protocol").cloned(),
        source_port: if port.trim().is_empty() { None } else { port.trim().parse().ok().or(Some(-1)) },
        reason: get("reason"),
    };
    let withdraw = get("op") == "withdraw";
    let flash = match api::mitigation_request(&body, withdraw) {
        Ok(request) => match api::do_mitigate(&app, who.user.name.clone(), request).await {
            Ok(d) => Ok(format!("{}: {}", d.outcome, d.text)),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    render_defense(&app, &ctx, &who, Some(flash)).await
}

// ---- users, tokens, allowlist ------------------------------------------------------------------

fn flash_markup(flash: &Option<Result<Markup, String>>) -> Markup {
    html! {
        @match flash { Some(Ok(m)) => div.ok role="status" { (m) }, Some(Err(e)) => p.error role="alert" { (e) }, None => {} }
    }
}

async fn users(State(app): State<App>, ctx: Ctx) -> Page {
    let who = ctx.need(Perm::Admin)?.clone();
    render_users(&app, &ctx, &who, None).await
}

async fn render_users(app: &App, ctx: &Ctx, who: &auth::Identity, flash: Option<Result<Markup, String>>) -> Page {
    let list = app.db(|s| s.users()).await.map_err(|e| api_error_page(ctx, e))?;
    let body = html! {
        h1 { (ctx.t(T::Users)) }
        (flash_markup(&flash))
        div.scroll { table #users {
            tr { th { (ctx.t(T::UserName)) } th { (ctx.t(T::Role)) } th { (ctx.t(T::Status)) } th { "" } }
            @for u in &list {
                tr {
                    td.mono { (u.name) }
                    td {
                        form.inline method="post" action="/console/users" {
                            (csrf_field(who))
                            input type="hidden" name="op" value="role";
                            input type="hidden" name="name" value=(u.name);
                            select name="role" aria-label=(ctx.t(T::Role)) {
                                @for r in bawaba_store::Role::ALL { option value=(r.as_str()) selected[r == u.role] { (r.as_str()) } }
                            }
                            " " button type="submit" { (ctx.t(T::Save)) }
                        }
                    }
                    td { @if u.disabled { span.badge.revoked { (ctx.t(T::Disabled)) } } @else { span.badge.active { (ctx.t(T::Enabled)) } } }
                    td { @if !u.disabled && u.name != who.user.name {
                        form.inline method="post" action="/console/users" {
                            (csrf_field(who))
                            input type="hidden" name="op" value="disable";
                            input type="hidden" name="name" value=(u.name);
                            button.danger type="submit" { (ctx.t(T::Disable)) }
                        }
                    } }
                }
            }
        } }
        form.card method="post" action="/console/users" {
            h2 { (ctx.t(T::NewUser)) }
            (csrf_field(who))
            input type="hidden" name="op" value="create";
            label for="u-name" { (ctx.t(T::UserName)) } input #u-name type="text" name="name" required dir="ltr";
            label for="u-role" { (ctx.t(T::Role)) }
            select #u-role name="role" { @for r in bawaba_store::Role::ALL { option value=(r.as_str()) selected[r == bawaba_store::Role::Viewer] { (r.as_str()) } } }
            button type="submit" { (ctx.t(T::Create)) }
        }
    };
    Ok(ctx.page(ctx.t(T::Users), body))
}

async fn user_action(State(app): State<App>, ctx: Ctx, Form(f): Form<HashMap<String, String>>) -> Page {
    let who = ctx.need(Perm::Admin)?.clone();
    csrf_ok(&ctx, &f)?;
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let (name, actor, t) = (get("name"), who.user.name.clone(), now());
    let role = get("role").parse::<bawaba_store::Role>();
    let flash = match get("op").as_str() {
        "create" => match (role, api::random_hex(12)) {
            (Ok(role), Ok(password)) => {
                let pw = password.clone();
                match app.db(move |s| s.create_user(&actor, &name, role, &pw, t)).await {
                    Ok(u) => Ok(
                        html! { (u.name) " (" (u.role) "). " (ctx.t(T::OneTimePassword)) " " code #one-time-password { (password) } },
                    ),
                    Err(e) => Err(e.to_string()),
                }
            }
            (Err(e), _) => Err(e.to_string()),
            (_, Err(e)) => Err(e.to_string()),
        },
        "role" => match role {
            Ok(role) => app
                .db(move |s| s.set_role(&actor, &name, role, t))
                .await
                .map(|u| html! { (u.name) ": " (u.role) })
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        "disable" if name == who.user.name => Err("you cannot disable yourself".into()),
        "disable" => app
            .db(move |s| s.disable_user(&actor, &name, t))
            .await
            .map(|u| html! { (u.name) ": " (ctx.t(T::Disabled)) })
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown operation {other:?}")),
    };
    render_users(&app, &ctx, &who, Some(flash)).await
}

async fn tokens(State(app): State<App>, ctx: Ctx) -> Page {
    let who = ctx.need(Perm::Own)?.clone();
    render_tokens(&app, &ctx, &who, None).await
}

async fn render_tokens(app: &App, ctx: &Ctx, who: &auth::Identity, flash: Option<Result<Markup, String>>) -> Page {
    let mine = who.user.name.clone();
    let list = app.db(move |s| s.tokens(Some(&mine))).await.map_err(|e| api_error_page(ctx, e))?;
    let body = html! {
        h1 { (ctx.t(T::Tokens)) }
        (flash_markup(&flash))
        @if list.is_empty() { p.muted { (ctx.t(T::NoData)) } } @else {
            div.scroll { table #tokens {
                tr { th { "#" } th { (ctx.t(T::Label)) } th { (ctx.t(T::Create)) } th { (ctx.t(T::LastUsed)) } th { "" } }
                @for tk in &list {
                    tr { td { (tk.id.0) } td { (tk.label) } td { (crate::layout::stamp(tk.created_at)) } td { (tk.last_used_at.map(datetime).unwrap_or_else(|| "-".into())) }
                         td { @if let Some(r) = tk.revoked_at { span.badge.revoked { (ctx.t(T::Revoked)) " " (crate::layout::day(r)) } } @else {
                            form.inline method="post" action="/console/tokens" {
                                (csrf_field(who))
                                input type="hidden" name="op" value="revoke";
                                input type="hidden" name="id" value=(tk.id.0);
                                button.danger type="submit" { (ctx.t(T::Revoke)) }
                            }
                         } } }
                }
            } }
        }
        form.card method="post" action="/console/tokens" {
            h2 { (ctx.t(T::NewToken)) }
            (csrf_field(who))
            input type="hidden" name="op" value="create";
            label for="t-label" { (ctx.t(T::Label)) } input #t-label type="text" name="label" required;
            button type="submit" { (ctx.t(T::Create)) }
        }
    };
    Ok(ctx.page(ctx.t(T::Tokens), body))
}

async fn token_action(State(app): State<App>, ctx: Ctx, Form(f): Form<HashMap<String, String>>) -> Page {
    let who = ctx.need(Perm::Own)?.clone();
    csrf_ok(&ctx, &f)?;
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let (actor, t) = (who.user.name.clone(), now());
    let flash = match get("op").as_str() {
        "create" => {
            let label = get("label").trim().to_string();
            if label.is_empty() || label.chars().count() > 100 {
                Err("label: 1 to 100 characters saying what the token is for".to_string())
            } else {
                let user = actor.clone();
                match app.db(move |s| s.create_token(&actor, &user, &label, t)).await {
                    Ok((secret, _)) => Ok(html! { (ctx.t(T::TokenSecret)) " " code #token-secret { (secret) } }),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
        "revoke" => match get("id").parse::<i64>() {
            Ok(id) => {
                let mine = who.user.name.clone();
                let owned = app
                    .db(move |s| s.tokens(Some(&mine)))
                    .await
                    .map(|l| l.iter().any(|tk| tk.id.0 == id))
                    .unwrap_or(false);
                if owned {
                    app.db(move |s| s.revoke_token(&actor, bawaba_store::TokenId(id), t))
                        .await
                        .map(|_| html! { (ctx.t(T::Revoked)) " #" (id) })
                        .map_err(|e| e.to_string())
                } else {
                    Err(format!("no token {id} of yours"))
                }
            }
            Err(_) => Err("no such token".into()),
        },
        other => Err(format!("unknown operation {other:?}")),
    };
    render_tokens(&app, &ctx, &who, Some(flash)).await
}

async fn allowlist(State(app): State<App>, ctx: Ctx) -> Page {
    let who = ctx.need(Perm::Read)?.clone();
    render_allowlist(&app, &ctx, &who, None).await
}

async fn render_allowlist(app: &App, ctx: &Ctx, who: &auth::Identity, flash: Option<Result<Markup, String>>) -> Page {
    let list = app.db(|s| s.allowlist()).await.map_err(|e| api_error_page(ctx, e))?;
    let operate = Perm::Operate.allows(who.user.role);
    let body = html! {
        h1 { (ctx.t(T::Allowlist)) }
        p.muted { (ctx.t(T::AllowHelp)) }
        (flash_markup(&flash))
        @if list.is_empty() { p.muted { (ctx.t(T::NoData)) } } @else {
            div.scroll { table #allowlist {
                tr { th { "#" } th { (ctx.t(T::Selector)) } th { (ctx.t(T::Reason)) } th { "" } }
                @for a in &list {
                    tr { td { (a.id.0) } td.mono { (a.selector) } td { (a.reason) }
                         td { @if operate {
                            form.inline method="post" action="/console/allowlist" {
                                (csrf_field(who))
                                input type="hidden" name="op" value="remove";
                                input type="hidden" name="id" value=(a.id.0);
                                input type="text" name="reason" required aria-label=(ctx.t(T::Reason)) placeholder=(ctx.t(T::Reason));
                                " " button.danger type="submit" { (ctx.t(T::Remove)) }
                            }
                         } } }
                }
            } }
        }
        @if operate {
            form.card method="post" action="/console/allowlist" {
                (csrf_field(who))
                input type="hidden" name="op" value="add";
                label for="a-selector" { (ctx.t(T::Selector)) } input #a-selector type="text" name="selector" required dir="ltr";
                p.muted { (ctx.t(T::SelectorHelp)) }
                label for="a-reason" { (ctx.t(T::Reason)) } input #a-reason type="text" name="reason" required;
                button type="submit" { (ctx.t(T::Add)) }
            }
        }
    };
    Ok(ctx.page(ctx.t(T::Allowlist), body))
}

async fn allow_action(State(app): State<App>, ctx: Ctx, Form(f): Form<HashMap<String, String>>) -> Page {
    let who = ctx.need(Perm::Operate)?.clone();
    csrf_ok(&ctx, &f)?;
    let get = |k: &str| f.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let (actor, t, reason) = (who.user.name.clone(), now(), get("reason"));
    let flash = if reason.is_empty() {
        Err("a reason is required (it is audited)".to_string())
    } else {
        match get("op").as_str() {
            "add" => match get("selector").parse::<bawaba_policy::Selector>() {
                Ok(sel) => app
                    .db(move |s| s.add_allow(&actor, &sel, &reason, t))
                    .await
                    .map(|a| html! { (ctx.t(T::Add)) ": " span.mono { (a.selector) } })
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("{:?}: {e}", get("selector"))),
            },
            "remove" => match get("id").parse::<i64>() {
                Ok(id) => app
                    .db(move |s| s.remove_allow(&actor, bawaba_policy::AllowId(id), &reason, t))
                    .await
                    .map(|a| html! { (ctx.t(T::Remove)) ": " span.mono { (a.selector) } })
                    .map_err(|e| e.to_string()),
                Err(_) => Err("no such entry".into()),
            },
            other => Err(format!("unknown operation {other:?}")),
        }
    };
    render_allowlist(&app, &ctx, &who, Some(flash)).await
}

// ---- own password ------------------------------------------------------------------------------

fn password_page(ctx: &Ctx, who: &auth::Identity, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        div.card style="max-width:26rem" {
            h1 { (ctx.t(T::ChangePassword)) }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/console/password" {
                (csrf_field(who))
                label for="current" { (ctx.t(T::CurrentPassword)) }
                input #current type="password" name="current" autocomplete="current-password" required;
                label for="new" { (ctx.t(T::NewPassword)) }
                input #new type="password" name="new" autocomplete="new-password" required minlength="12";
                label for="again" { (ctx.t(T::RepeatPassword)) }
                input #again type="password" name="again" autocomplete="new-password" required minlength="12";
                button type="submit" { (ctx.t(T::Save)) }
            }
        }
    };
    ctx.page_status(status, ctx.t(T::ChangePassword), body)
}

async fn password_form(ctx: Ctx) -> Page {
    let who = ctx.need(Perm::Own)?.clone();
    Ok(password_page(&ctx, &who, None, StatusCode::OK))
}

async fn change_password(State(app): State<App>, ctx: Ctx, Form(f): Form<HashMap<String, String>>) -> Page {
    let who = ctx.need(Perm::Own)?.clone();
    csrf_ok(&ctx, &f)?;
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if get("new") != get("again") {
        return Ok(password_page(&ctx, &who, Some(ctx.t(T::PasswordsDiffer)), StatusCode::UNPROCESSABLE_ENTITY));
    }
    match api::do_change_password(&app, &who, get("current"), get("new")).await {
        // Every session of the user ended with the change: log in again.
        Ok(()) => Ok((
            [(header::SET_COOKIE, auth::clear_session_cookie(app.config().tls()))],
            Redirect::to("/login?next=/console"),
        )
            .into_response()),
        Err(e) => Ok(password_page(&ctx, &who, Some(&e.to_string()), e.status())),
    }
}
