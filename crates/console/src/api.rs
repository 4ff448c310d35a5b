//! `/api/v1`: JSON over HTTP for everything the CLI does. One table, [`endpoints`], declares each
//! endpoint's method, path, permission, summary and body; the router and the OpenAPI document
//! ([`crate::openapi`]) are both built from it, and a guard in front of each endpoint enforces the
//! declared permission (and CSRF for cookie-authenticated writes).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Json, Router};
use bawaba_policy::{check_allowlist, Action, Category, OrderId, OrderStatus, RuleId, Selector};
use bawaba_store::{AppealStatus, NewAppeal, NewOrder, Role};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{self, Guard, Identity, Perm};
use crate::error::ApiError;
use crate::openapi::{api_body, Schema};
use crate::{now, App};

/// HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
}

impl Method {
    /// Upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A request body: its content type and a function that gives its JSON Schema.
pub type BodySpec = (&'static str, fn() -> Value);

/// One API endpoint's declaration.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Method.
    pub method: Method,
    /// Path below `/api/v1`, with `{name}` parameters.
    pub path: &'static str,
    /// Who may call it.
    pub perm: Perm,
    /// OpenAPI tag.
    pub tag: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Content type and schema of the request body.
    pub body: Option<BodySpec>,
    /// Query parameters and what they mean.
    pub query: &'static [(&'static str, &'static str)],
}

impl Endpoint {
    /// A stable operation id: the method and the path's words, camel-cased.
    pub fn operation_id(&self) -> String {
        let mut id = self.method.as_str().to_ascii_lowercase();
        for word in self.path.split(['/', '-', '_']).filter(|w| !w.is_empty()) {
            let word = word.trim_matches(|c| c == '{' || c == '}');
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                id.push(first.to_ascii_uppercase());
                id.extend(chars);
            }
        }
        id
    }
}

struct E(Endpoint, MethodRouter<App>);

impl E {
    fn at(method: Method, path: &'static str, perm: Perm, tag: &'static str, summary: &'static str) -> EB {
        EB(Endpoint { method, path, perm, tag, summary, body: None, query: &[] })
    }
}

struct EB(Endpoint);

impl EB {
    fn json<T: Schema>(mut self) -> EB {
        self.0.body = Some(("application/json", T::schema));
        self
    }
    fn text(mut self) -> EB {
        fn s() -> Value {
            json!({ "type": "string" })
        }
        self.0.body = Some(("text/plain", s));
        self
    }
    fn bytes(mut self) -> EB {
        fn s() -> Value {
            json!({ "type": "string", "format": "binary" })
        }
        self.0.body = Some(("application/octet-stream", s));
        self
    }
    fn query(mut self, q: &'static [(&'static str, &'static str)]) -> EB {
        self.0.query = q;
        self
    }
    fn to(self, handler: MethodRouter<App>) -> E {
        E(self.0, handler)
    }
}

/// Every endpoint with its handler.
pub fn endpoints() -> Vec<(Endpoint, MethodRouter<App>)> {
    use Method::{Get as G, Post as P};
    use Perm::*;
    let list = vec![
        E::at(P, "/login", Public, "session", "Log in; sets the session cookie and returns the CSRF token")
            .json::<LoginBody>()
            .to(post(login)),
        E::at(P, "/logout", Own, "session", "End the session").to(post(logout)),
        E::at(G, "/me", Own, "session", "Who am I: name, role and permissions").to(get(me)),
        E::at(P, "/me/password", Own, "session", "Change one's own password (ends one's sessions)")
            .json::<PasswordBody>()
            .to(post(change_password)),
        E::at(G, "/orders", Read, "orders", "List orders")
            .query(&[
                ("status", "draft, approved, active, expired or revoked (as of now)"),
                ("category", "a category"),
                ("authority", "substring of the issuing authority"),
                ("expiring_days", "only orders in force that expire within this many days"),
            ])
            .to(get(list_orders)),
        E::at(P, "/orders", Propose, "orders", "Record a new order as a draft").json::<OrderBody>().to(post(add_order)),
        E::at(G, "/orders/{id}", Read, "orders", "One order, its rules and its history").to(get(show_order)),
        E::at(P, "/orders/{id}/approve", Approve, "orders", "Approve a draft order (not by its proposer)")
            .to(post(approve_order)),
        E::at(P, "/orders/{id}/revoke", Approve, "orders", "Revoke an order")
            .json::<ReasonBody>()
            .to(post(revoke_order)),
        E::at(P, "/orders/{id}/rules", Propose, "rules", "Add rules to a draft order (all or none)")
            .json::<RulesBody>()
            .to(post(add_rules)),
        E::at(
            P,
            "/orders/{id}/import",
            Propose,
            "rules",
            "Import a list file (RPZ, hosts, domains, CIDR) into a draft order",
        )
        .text()
        .query(&[
            ("format", "rpz, hosts, domains or cidr (default: guessed)"),
            ("action", "action for entries that carry none (default block-page)"),
            ("origin", "RPZ origin when the file has no $ORIGIN"),
        ])
        .to(post(import_rules)),
        E::at(G, "/rules", Read, "rules", "List rules")
            .query(&[("order", "only this order's rules")])
            .to(get(list_rules)),
        E::at(P, "/rules/{id}/remove", Propose, "rules", "Remove a rule from a draft order")
            .json::<ReasonBody>()
            .to(post(remove_rule)),
        E::at(G, "/allowlist", Read, "allowlist", "List the allowlist").to(get(list_allow)),
        E::at(P, "/allowlist", Operate, "allowlist", "Add an allowlist entry").json::<AllowBody>().to(post(add_allow)),
        E::at(P, "/allowlist/{id}/remove", Operate, "allowlist", "Remove an allowlist entry")
            .json::<ReasonBody>()
            .to(post(remove_allow)),
        E::at(P, "/publish", Operate, "bundles", "Sign and publish a bundle of the policy in force").to(post(publish)),
        E::at(
            G,
            "/policy/compile",
            Read,
            "bundles",
            "Compile the store's policy in force and report its size and time",
        )
        .to(get(compile)),
        E::at(G, "/policy/export", Read, "bundles", "The policy in force as an RPZ zone file (text/dns)")
            .to(get(export)),
        E::at(G, "/publications/latest", Read, "bundles", "The latest publication").to(get(latest_publication)),
        E::at(P, "/bundles/verify", Read, "bundles", "Verify a bundle's signature and integrity")
            .bytes()
            .to(post(verify_bundle)),
        E::at(G, "/check", Read, "check", "Is it blocked? Verdict at DNS and packet level, and the order")
            .query(&[("q", "a name, URL or IP address")])
            .to(get(check)),
        E::at(G, "/points", Read, "enforcement", "Enforcement points: bundle version, last load, counters")
            .to(get(points)),
        E::at(
            P,
            "/points/report",
            Operate,
            "enforcement",
            "A site reports its enforcement points (bawaba serve's [serve] report_to)",
        )
        .json::<ReportBody>()
        .to(post(report_points)),
        E::at(G, "/audit", Audit, "audit", "Audit log entries, oldest first")
            .query(&[
                ("after", "only entries after this sequence number"),
                ("limit", "at most this many (default 100, at most 1000)"),
                ("actor", "only this actor"),
                ("action", "only actions starting with this (order., rule., user., appeal.)"),
                ("object", "only this object (order:12)"),
            ])
            .to(get(audit)),
        E::at(G, "/audit/verify", Audit, "audit", "Verify the audit log's hash chain").to(get(audit_verify)),
        E::at(P, "/appeals", Public, "appeals", "File an appeal against a block (rate limited per client prefix)")
            .json::<AppealBody>()
            .to(post(file_appeal)),
        E::at(G, "/appeals/status/{reference}", Public, "appeals", "An appeal's status by its reference")
            .to(get(appeal_status)),
        E::at(G, "/appeals", AppealsRead, "appeals", "The appeals queue")
            .query(&[("status", "open, upheld, granted or rejected")])
            .to(get(list_appeals)),
        E::at(P, "/appeals/{id}/answer", AppealsAnswer, "appeals", "Answer an open appeal")
            .json::<AnswerBody>()
            .to(post(answer_appeal)),
        E::at(G, "/users", Admin, "users", "List users").to(get(list_users)),
        E::at(P, "/users", Admin, "users", "Create a user (a one-time password is returned if none is given)")
            .json::<UserBody>()
            .to(post(add_user)),
        E::at(P, "/users/{name}/role", Admin, "users", "Change a user's role").json::<RoleBody>().to(post(set_role)),
        E::at(P, "/users/{name}/disable", Admin, "users", "Disable a user (ends its sessions and tokens)")
            .to(post(disable_user)),
        E::at(G, "/tokens", Own, "tokens", "API tokens (one's own; an admin sees all)").to(get(list_tokens)),
        E::at(P, "/tokens", Own, "tokens", "Create an API token; its secret is shown once")
            .json::<TokenBody>()
            .to(post(add_token)),
        E::at(P, "/tokens/{id}/revoke", Own, "tokens", "Revoke an API token").to(post(revoke_token)),
        E::at(
            G,
            "/defense",
            Read,
            "defense",
            "Attack defense: attacks, mitigations in force, flow exporters, BGP sessions",
        )
        .to(get(defense)),
        E::at(G, "/attacks", Read, "defense", "Attacks recorded in the store, newest first (kept across restarts)")
            .query(&[("limit", "at most this many (default 100, at most 10000)")])
            .to(get(attacks)),
        E::at(
            P,
            "/mitigations",
            Operate,
            "defense",
            "Announce a manual mitigation (blackhole or FlowSpec), within the rails",
        )
        .json::<MitigationBody>()
        .to(post(announce)),
        E::at(P, "/mitigations/withdraw", Operate, "defense", "Withdraw a manual mitigation")
            .json::<MitigationBody>()
            .to(post(withdraw)),
        E::at(G, "/transparency", Public, "public", "The transparency report").to(get(transparency)),
        E::at(G, "/openapi.json", Public, "public", "This document").to(get(openapi)),
    ];
    list.into_iter().map(|E(e, r)| (e, r)).collect()
}

/// The API router: each endpoint behind its permission guard.
pub fn router(app: App) -> Router<App> {
    let mut router = Router::new();
    for (e, handler) in endpoints() {
        let guard = Guard { app: app.clone(), perm: e.perm };
        router = router.route(e.path, handler.route_layer(axum::middleware::from_fn_with_state(guard, auth::guard)));
    }
    router.fallback(|| async { ApiError::NotFound("no such API endpoint; see /api/v1/openapi.json".into()) })
}

// ---- bodies ------------------------------------------------------------------------------------

api_body! {
    /// Log in.
    LoginBody {
        /// User name.
        name: String,
        /// Password.
        password: String,
    }
}

api_body! {
    /// A password change.
    PasswordBody {
        /// The password now.
        current: String,
        /// The new password (at least 12 characters).
        new: String,
    }
}

api_body! {
    /// A new order.
    OrderBody {
        /// Issuing authority (court, regulator).
        authority: String,
        /// The instrument's own reference.
        reference: String,
        /// Date of issue: YYYY-MM-DD, RFC 3339, now or +Nd (default now).
        issued: Option<String>,
        /// Enforcement start (default now).
        effective_from: Option<String>,
        /// Enforcement end (required: every order expires).
        expires: String,
        /// terrorism, child-abuse, malware, phishing, court-order or other.
        category: String,
        /// Summary shown to the public and on the block page.
        summary: String,
        /// Listed in the transparency report (default true).
        publishable: Option<bool>,
        /// Where an affected person appeals.
        appeal_contact: String,
    }
}

api_body! {
    /// Rules for a draft order.
    RulesBody {
        /// Selectors: example.test (and below), exact:example.test, *.example.test, 198.18.7.0/24, 2001:db8:7::/48.
        selectors: Vec<String>,
        /// block-page, nxdomain, nodata, drop or reset.
        action: String,
        /// Override the prefix guard or an allowlist overlap (needs reason).
        force: Option<bool>,
        /// Why the override is intended (audited).
        reason: Option<String>,
    }
}

api_body! {
    /// A reason, for the audit log.
    ReasonBody {
        /// Why.
        reason: String,
    }
}

api_body! {
    /// An allowlist entry.
    AllowBody {
        /// The selector to protect.
        selector: String,
        /// Why.
        reason: String,
    }
}

api_body! {
    /// An appeal.
    AppealBody {
        /// The blocked site (name or URL).
        site: String,
        /// Why the block is wrong (10 to 4000 characters).
        reason: String,
        /// How to reach the appellant (optional).
        contact: Option<String>,
        /// The order reference from the block page (optional: found from the site).
        order: Option<String>,
    }
}

api_body! {
    /// An answer to an appeal.
    AnswerBody {
        /// upheld (the block stays), granted (the block is to be lifted) or rejected (invalid).
        status: String,
        /// The answer the appellant reads.
        answer: String,
    }
}

api_body! {
    /// A new user.
    UserBody {
        /// Name: a-z, 0-9, dot, dash, underscore.
        name: String,
        /// admin, legal, approver, operator, auditor or viewer.
        role: String,
        /// Password (at least 12 characters); omitted, a one-time password is generated and returned.
        password: Option<String>,
    }
}

api_body! {
    /// A role change.
    RoleBody {
        /// The new role.
        role: String,
    }
}

api_body! {
    /// A new API token.
    TokenBody {
        /// What it is for.
        label: String,
        /// For another user (admin only; default oneself).
        user: Option<String>,
    }
}

/// A JSON value, as a schema: any.
impl Schema for Value {
    fn schema() -> Value {
        json!({})
    }
}

api_body! {
    /// A site's report of its enforcement points.
    ReportBody {
        /// The site's name, such as baghdad-1.
        site: String,
        /// Its enforcement points, as GET /points gives them.
        points: Vec<Value>,
    }
}

api_body! {
    /// A manual mitigation.
    MitigationBody {
        /// The attacked address (a /32 or /128) or prefix, inside the protected networks.
        prefix: String,
        /// blackhole (RFC 7999) or flowspec (RFC 8955/8956).
        kind: String,
        /// FlowSpec only: udp, tcp, icmp or a protocol number (default: all).
        protocol: Option<String>,
        /// FlowSpec only: a source port, such as 53 or 123 for reflection (default: all).
        source_port: Option<i64>,
        /// Why (kept with the mitigation and in the audit log).
        reason: String,
    }
}

// ---- helpers ----------------------------------------------------------------------------------

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::Invalid(e.to_string())
}

fn parse_id(s: &str, what: &str) -> Result<i64, ApiError> {
    s.parse().map_err(|_| ApiError::Invalid(format!("{what} {s:?} is not a number")))
}

/// A fresh random secret: `bytes` random bytes, hex.
pub(crate) fn random_hex(bytes: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(buf))
}

/// Checks an order body and turns it into the store's input.
pub(crate) fn new_order(b: &OrderBody, t: i64) -> Result<NewOrder, ApiError> {
    let field = |name: &str, v: &str| -> Result<String, ApiError> {
        let v = v.trim();
        if v.is_empty() {
            return Err(ApiError::Invalid(format!("{name} is required")));
        }
        if v.chars().count() > 2000 || v.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
            return Err(ApiError::Invalid(format!("{name} is too long or holds control characters")));
        }
        Ok(v.to_string())
    };
    let date = |name: &str, v: Option<&str>| {
        crate::util::parse_date(v.unwrap_or("now"), t).map_err(|e| invalid(format!("{name}: {e}")))
    };
    if b.expires.trim().is_empty() {
        return Err(ApiError::Invalid("expires is required: every order expires".into()));
    }
    Ok(NewOrder {
        authority: field("authority", &b.authority)?,
        reference: field("reference", &b.reference)?,
        issued_at: date("issued", b.issued.as_deref())?,
        effective_from: date("effective_from", b.effective_from.as_deref())?,
        expires_at: date("expires", Some(&b.expires))?,
        category: b.category.parse::<Category>().map_err(invalid)?,
        summary: field("summary", &b.summary)?,
        publishable: b.publishable.unwrap_or(true),
        appeal_contact: field("appeal_contact", &b.appeal_contact)?,
    })
}

/// Adds rules all-or-none: every selector is parsed and checked against the guard and the
/// allowlist before the first one is stored.
pub(crate) async fn add_rules_checked(
    app: &App,
    actor: String,
    order: OrderId,
    b: RulesBody,
) -> Result<Vec<bawaba_policy::Rule>, ApiError> {
    let action: Action = b.action.parse().map_err(invalid)?;
    if b.selectors.is_empty() {
        return Err(ApiError::Invalid("give at least one selector".into()));
    }
    let mut selectors = Vec::with_capacity(b.selectors.len());
    for s in &b.selectors {
        selectors.push(s.trim().parse::<Selector>().map_err(|e| invalid(format!("{s:?}: {e}")))?);
    }
    let force = match (b.force.unwrap_or(false), b.reason.as_deref().map(str::trim)) {
        (true, Some(r)) if !r.is_empty() => Some(r.to_string()),
        (true, _) => return Err(ApiError::Invalid("force needs a reason (it is recorded in the audit log)".into())),
        (false, _) => None,
    };
    app.with_store(move |s| {
        let o = s.order(order)?;
        if o.status != OrderStatus::Draft {
            return Err(ApiError::Conflict(format!(
                "order {order} is {}: rules can only be added to a draft order",
                o.status
            )));
        }
        let allow = s.allowlist()?;
        for sel in &selectors {
            if force.is_none() {
                s.config().guard.check(sel).map_err(|e| invalid(format!("{sel}: {e}")))?;
            }
            check_allowlist(sel, &allow, force.is_some()).map_err(|e| invalid(format!("{sel}: {e}")))?;
        }
        let existing = s.rules(Some(order))?;
        if let Some(dup) = selectors.iter().find(|sel| existing.iter().any(|r| &r.selector == *sel)) {
            return Err(ApiError::Conflict(format!("{dup} is already in order {order}")));
        }
        let t = now();
        let mut added = Vec::new();
        for sel in &selectors {
            added.push(s.add_rule(&actor, order, sel, action, force.as_deref(), t)?);
        }
        Ok(added)
    })
    .await
}

/// The effective status of an order now, and a JSON view with it.
fn order_json(o: &bawaba_policy::Order, rules: Option<i64>, t: i64) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
    v["status_now"] = json!(o.status_at(t));
    if let Some(n) = rules {
        v["rules"] = json!(n);
    }
    v
}

/// Query of `GET /orders`.
#[derive(Debug, Default, Deserialize)]
pub struct OrderFilter {
    /// Status as of now.
    pub status: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Substring of the authority.
    pub authority: Option<String>,
    /// In force and expiring within so many days.
    pub expiring_days: Option<String>,
}

/// Orders matching a filter, newest first, with their rule counts.
pub(crate) async fn filtered_orders(app: &App, f: &OrderFilter) -> Result<Vec<(bawaba_policy::Order, i64)>, ApiError> {
    let status = match f.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<OrderStatus>().map_err(invalid)?),
        None => None,
    };
    let category = match f.category.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<Category>().map_err(invalid)?),
        None => None,
    };
    let expiring = match f.expiring_days.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<i64>().map_err(|_| invalid(format!("expiring_days {s:?} is not a number")))?),
        None => None,
    };
    let authority = f.authority.clone().unwrap_or_default().to_lowercase();
    let (orders, counts) = app.db(|s| Ok((s.orders()?, s.rule_counts()?))).await?;
    let t = now();
    let mut out: Vec<_> = orders
        .into_iter()
        .filter(|o| status.is_none_or(|st| o.status_at(t) == st))
        .filter(|o| category.is_none_or(|c| o.category == c))
        .filter(|o| authority.is_empty() || o.authority.to_lowercase().contains(&authority))
        .filter(|o| expiring.is_none_or(|d| o.is_in_force(t) && o.expires_at <= t + d * 86_400))
        .map(|o| {
            let n = counts.get(&o.id).copied().unwrap_or(0);
            (o, n)
        })
        .collect();
    out.reverse();
    Ok(out)
}

/// The audit entries about one order: the order itself, its rules, and rules removed from it.
pub(crate) async fn order_history(app: &App, id: OrderId) -> Result<Vec<bawaba_store::AuditEntry>, ApiError> {
    app.db(move |s| s.order_audit(id)).await
}

// ---- handlers: session ------------------------------------------------------------------------

/// Checks a password: the stored hash is read under the store's lock, the slow argon2id check
/// runs on a blocking thread without it, so logins do not hold up other requests.
async fn check_password(app: &App, name: &str, password: &str) -> Result<Option<bawaba_store::User>, ApiError> {
    let n = name.to_string();
    let check = app.db(move |s| s.login_check(&n)).await?;
    let p = password.to_string();
    tokio::task::spawn_blocking(move || check.verify(&p))
        .await
        .map_err(|e| ApiError::Internal(format!("password check: {e}")))?
        .map_err(ApiError::from)
}

/// Logs in: shared by the API and the login page. Rate limited per client address and per name.
pub(crate) async fn do_login(
    app: &App,
    client: SocketAddr,
    name: &str,
    password: &str,
) -> Result<(String, bawaba_store::Session), ApiError> {
    let keys = [format!("ip:{}", client.ip()), format!("user:{}", name.to_lowercase())];
    for key in &keys {
        app.0.logins.check(key).map_err(ApiError::RateLimited)?;
    }
    let user = check_password(app, name, password).await?;
    let Some(user) = user else {
        for key in &keys {
            app.0.logins.hit(key);
        }
        tracing::info!(client = %client.ip(), "failed login");
        return Err(ApiError::Forbidden("wrong name or password".into()));
    };
    for key in &keys {
        app.0.logins.clear(key);
    }
    let ttl = app.config().session_ttl_secs;
    let t = now();
    app.db(move |s| s.create_session(user.id, t, ttl as i64)).await
}

async fn login(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Json(b): Json<LoginBody>,
) -> Response {
    match do_login(&app, client, &b.name, &b.password).await {
        Ok((token, session)) => {
            let cookie = auth::session_cookie(&token, app.config().session_ttl_secs, app.config().tls());
            let body = json!({ "name": session.user.name, "role": session.user.role, "csrf": session.csrf, "expires_at": session.expires_at });
            ([(header::SET_COOKIE, cookie)], Json(body)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn logout(State(app): State<App>, Extension(id): Extension<Identity>) -> Result<Response, ApiError> {
    if let auth::Via::Session { token, .. } = id.via {
        app.db(move |s| s.delete_session(&token)).await?;
    }
    Ok(([(header::SET_COOKIE, auth::clear_session_cookie(app.config().tls()))], Json(json!({ "ok": true })))
        .into_response())
}

/// Changes the caller's password after checking the current one (failures count against the
/// login rate limit of the name); shared by the API and the console page.
pub(crate) async fn do_change_password(app: &App, who: &Identity, current: &str, new: &str) -> Result<(), ApiError> {
    let key = format!("user:{}", who.user.name.to_lowercase());
    app.0.logins.check(&key).map_err(ApiError::RateLimited)?;
    if check_password(app, &who.user.name, current).await?.is_none() {
        app.0.logins.hit(&key);
        return Err(ApiError::Invalid("current: the current password is wrong".into()));
    }
    let (name, new) = (who.user.name.clone(), new.to_string());
    app.db(move |s| s.set_password(&name, &name, &new, now())).await
}

async fn change_password(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Json(b): Json<PasswordBody>,
) -> Result<Response, ApiError> {
    do_change_password(&app, &who, &b.current, &b.new).await?;
    let body = Json(json!({ "ok": true, "note": "your sessions ended: log in again with the new password" }));
    Ok(([(header::SET_COOKIE, auth::clear_session_cookie(app.config().tls()))], body).into_response())
}

async fn me(Extension(id): Extension<Identity>) -> Json<Value> {
    let perms: Vec<Perm> = Perm::ALL.into_iter().filter(|p| p.allows(id.user.role)).collect();
    Json(json!({ "name": id.user.name, "role": id.user.role, "permissions": perms, "csrf": id.csrf() }))
}

// ---- handlers: orders and rules ---------------------------------------------------------------

async fn list_orders(State(app): State<App>, Query(f): Query<OrderFilter>) -> Result<Json<Value>, ApiError> {
    let t = now();
    let orders = filtered_orders(&app, &f).await?;
    Ok(Json(Value::Array(orders.iter().map(|(o, n)| order_json(o, Some(*n), t)).collect())))
}

async fn add_order(
    State(app): State<App>,
    Extension(id): Extension<Identity>,
    Json(b): Json<OrderBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let t = now();
    let new = new_order(&b, t)?;
    let order = app.db(move |s| s.add_order(&id.user.name, new, t)).await?;
    Ok((StatusCode::CREATED, Json(order_json(&order, Some(0), t))))
}

async fn show_order(State(app): State<App>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = OrderId(parse_id(&id, "order")?);
    let (order, rules) = app.db(move |s| Ok((s.order(id)?, s.rules(Some(id))?))).await?;
    let history = order_history(&app, id).await?;
    let mut v = order_json(&order, Some(rules.len() as i64), now());
    v["rule_list"] = json!(rules);
    v["history"] = json!(history);
    Ok(Json(v))
}

async fn approve_order(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = OrderId(parse_id(&id, "order")?);
    let t = now();
    let order = app.db(move |s| s.approve_order(&who.user.name, id, t)).await?;
    Ok(Json(order_json(&order, None, t)))
}

async fn revoke_order(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    Json(b): Json<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    let id = OrderId(parse_id(&id, "order")?);
    if b.reason.trim().is_empty() {
        return Err(ApiError::Invalid("a revocation needs a reason".into()));
    }
    let t = now();
    let order = app.db(move |s| s.revoke_order(&who.user.name, id, b.reason.trim(), t)).await?;
    Ok(Json(order_json(&order, None, t)))
}

async fn add_rules(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    Json(b): Json<RulesBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = OrderId(parse_id(&id, "order")?);
    let added = add_rules_checked(&app, who.user.name, id, b).await?;
    Ok((StatusCode::CREATED, Json(json!(added))))
}

/// Query of an import.
#[derive(Debug, Default, Deserialize)]
pub struct ImportQuery {
    /// rpz, hosts, domains or cidr.
    pub format: Option<String>,
    /// Default action.
    pub action: Option<String>,
    /// RPZ origin.
    pub origin: Option<String>,
}

/// Imports a list file into a draft order; shared by the API and the console's upload.
pub(crate) async fn do_import(
    app: &App,
    actor: String,
    order: OrderId,
    q: ImportQuery,
    source: String,
    body: Bytes,
) -> Result<Value, ApiError> {
    let format = match q.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => f.parse::<bawaba_formats::Format>().map_err(invalid)?,
        None => bawaba_formats::Format::guess(None, &body[..body.len().min(4096)]),
    };
    let action: Action =
        q.action.as_deref().filter(|a| !a.is_empty()).unwrap_or("block-page").parse().map_err(invalid)?;
    let mut options = bawaba_formats::ImportOptions::new(format);
    if let Some(origin) = q.origin.as_deref().filter(|o| !o.is_empty()) {
        options = options.with_origin(origin.parse().map_err(|e| invalid(format!("origin: {e}")))?);
    }
    app.with_store(move |s| {
        let o = s.order(order)?;
        if o.status != OrderStatus::Draft {
            return Err(ApiError::Conflict(format!(
                "order {order} is {}: rules can only be imported into a draft order",
                o.status
            )));
        }
        let parsed = bawaba_formats::import_with(&options, std::io::Cursor::new(&body[..]), |_| {}).map_err(invalid)?;
        let entries = parsed.entries.into_iter().map(|e| (e.line, e.selector, e.action.unwrap_or(action)));
        let stored = s.import_rules(&actor, order, &source, entries, now(), |_| {})?;
        let mut rejected: Vec<Value> = parsed
            .report
            .rejected
            .iter()
            .map(|r| json!({ "line": r.line, "text": r.text, "reason": r.reason.to_string() }))
            .collect();
        rejected.extend(stored.refused.iter().map(|(line, reason)| json!({ "line": line, "reason": reason })));
        Ok(json!({
            "format": format.to_string(),
            "added": stored.added,
            "duplicates": stored.duplicates,
            "rejected": rejected,
            "digest": stored.digest,
        }))
    })
    .await
}

async fn import_rules(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    Query(q): Query<ImportQuery>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = OrderId(parse_id(&id, "order")?);
    Ok(Json(do_import(&app, who.user.name, id, q, "api upload".into(), body).await?))
}

#[derive(Debug, Deserialize)]
struct RuleFilter {
    order: Option<String>,
}

async fn list_rules(State(app): State<App>, Query(f): Query<RuleFilter>) -> Result<Json<Value>, ApiError> {
    let order = match f.order.as_deref().filter(|o| !o.is_empty()) {
        Some(o) => Some(OrderId(parse_id(o, "order")?)),
        None => None,
    };
    Ok(Json(json!(app.db(move |s| s.rules(order)).await?)))
}

async fn remove_rule(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    Json(b): Json<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    let id = RuleId(parse_id(&id, "rule")?);
    if b.reason.trim().is_empty() {
        return Err(ApiError::Invalid("removing a rule needs a reason".into()));
    }
    let rule = app.db(move |s| s.remove_rule(&who.user.name, id, b.reason.trim(), now())).await?;
    Ok(Json(json!(rule)))
}

// ---- handlers: allowlist, bundles, check, points -----------------------------------------------

async fn list_allow(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(app.db(|s| s.allowlist()).await?)))
}

async fn add_allow(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Json(b): Json<AllowBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let selector: Selector = b.selector.trim().parse().map_err(|e| invalid(format!("{:?}: {e}", b.selector)))?;
    if b.reason.trim().is_empty() {
        return Err(ApiError::Invalid("an allowlist entry needs a reason".into()));
    }
    let entry = app.db(move |s| s.add_allow(&who.user.name, &selector, b.reason.trim(), now())).await?;
    Ok((StatusCode::CREATED, Json(json!(entry))))
}

async fn remove_allow(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    Json(b): Json<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    let id = bawaba_policy::AllowId(parse_id(&id, "allowlist entry")?);
    if b.reason.trim().is_empty() {
        return Err(ApiError::Invalid("removing an allowlist entry needs a reason".into()));
    }
    Ok(Json(json!(app.db(move |s| s.remove_allow(&who.user.name, id, b.reason.trim(), now())).await?)))
}

/// Publishes through the gateway hook on a blocking thread.
pub(crate) async fn do_publish(app: &App, actor: String) -> Result<crate::Published, ApiError> {
    let gateway = std::sync::Arc::clone(app.gateway());
    tokio::task::spawn_blocking(move || gateway.publish(&actor))
        .await
        .map_err(|e| ApiError::Internal(format!("publish task: {e}")))?
        .map_err(|e| ApiError::Conflict(format!("publishing failed: {e}")))
}

async fn publish(State(app): State<App>, Extension(who): Extension<Identity>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(do_publish(&app, who.user.name).await?)))
}

async fn compile(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let t = now();
    let snapshot = app.db(move |s| s.snapshot(t)).await?;
    let (stats, ms) = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let ruleset = snapshot.compile();
        (ruleset.stats(), started.elapsed().as_secs_f64() * 1000.0)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("compile task: {e}")))?;
    Ok(Json(json!({ "stats": stats, "compile_ms": ms })))
}

async fn export(State(app): State<App>) -> Result<Response, ApiError> {
    let gateway = std::sync::Arc::clone(app.gateway());
    let zone = tokio::task::spawn_blocking(move || gateway.export_rpz())
        .await
        .map_err(|e| ApiError::Internal(format!("export task: {e}")))?
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "text/dns; charset=utf-8")], zone).into_response())
}

async fn latest_publication(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(app.db(|s| s.latest_publication()).await?)))
}

async fn verify_bundle(State(app): State<App>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let gateway = std::sync::Arc::clone(app.gateway());
    let report = tokio::task::spawn_blocking(move || gateway.verify_bundle(&body))
        .await
        .map_err(|e| ApiError::Internal(format!("verify task: {e}")))?
        .map_err(|e| ApiError::Invalid(format!("the bundle does not verify: {e}")))?;
    Ok(Json(report))
}

#[derive(Debug, Deserialize)]
struct CheckQuery {
    q: Option<String>,
}

async fn check(State(app): State<App>, Query(q): Query<CheckQuery>) -> Result<Json<Value>, ApiError> {
    let ruleset = app.gateway().ruleset();
    let result = crate::check::check(&ruleset, q.q.as_deref().unwrap_or("")).map_err(ApiError::Invalid)?;
    Ok(Json(json!(result)))
}

async fn points(State(app): State<App>) -> Json<Value> {
    Json(json!(app.points()))
}

/// A report older than this marks its points stale on the dashboard.
pub const STALE_SECS: i64 = 180;

async fn report_points(
    Extension(who): Extension<Identity>,
    State(app): State<App>,
    Json(b): Json<ReportBody>,
) -> Result<Json<Value>, ApiError> {
    let site = b.site.trim();
    if site.is_empty() || site.len() > 64 || !site.bytes().all(|c| c.is_ascii_alphanumeric() || b".-_".contains(&c)) {
        return Err(ApiError::Invalid("site: 1 to 64 characters of a-z, 0-9, dot, dash, underscore".into()));
    }
    let points: Vec<crate::EnforcementPoint> =
        serde_json::from_value(Value::Array(b.points)).map_err(|e| invalid(format!("points: {e}")))?;
    if points.len() > 32
        || points.iter().any(|p| p.name.len() > 200 || p.counters.len() > 64 || p.blocked_by_order.len() > 10_000)
    {
        return Err(ApiError::Invalid("points: at most 32, names up to 200 characters, 64 counters each".into()));
    }
    tracing::debug!(site, by = %who.user.name, points = points.len(), "enforcement points reported");
    app.report_points(site, points, now());
    Ok(Json(json!({ "ok": true })))
}

// ---- handlers: audit ---------------------------------------------------------------------------

/// Query of `GET /audit`.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    /// After this sequence number.
    pub after: Option<String>,
    /// At most this many.
    pub limit: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Actions starting with this.
    pub action: Option<String>,
    /// Only this object.
    pub object: Option<String>,
}

/// Audit entries matching a query.
pub(crate) async fn audit_entries(app: &App, q: &AuditQuery) -> Result<Vec<bawaba_store::AuditEntry>, ApiError> {
    let num = |v: &Option<String>, what: &str, default: i64| -> Result<i64, ApiError> {
        match v.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => s.parse().map_err(|_| invalid(format!("{what} {s:?} is not a number"))),
            None => Ok(default),
        }
    };
    let after = num(&q.after, "after", 0)?;
    let limit = num(&q.limit, "limit", 100)?.clamp(1, 1000) as usize;
    let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let (actor, action, object) = (given(&q.actor), given(&q.action), given(&q.object));
    app.db(move |s| {
        let objects = object.map(|o| vec![o]);
        s.audit_query(after, limit, actor.as_deref(), action.as_deref(), objects.as_deref())
    })
    .await
}

async fn audit(State(app): State<App>, Query(q): Query<AuditQuery>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(audit_entries(&app, &q).await?)))
}

async fn audit_verify(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let report = app.db(|s| s.verify_audit(None)).await?;
    Ok(Json(json!({ "intact": report.is_intact(), "report": report })))
}

// ---- handlers: appeals -------------------------------------------------------------------------

/// Files an appeal: finds the order (by reference, or by what blocks the site), applies the
/// per-prefix rate limit, validates and stores. Shared by the API and the public form.
pub(crate) async fn do_file_appeal(
    app: &App,
    client: SocketAddr,
    b: AppealBody,
) -> Result<bawaba_store::Appeal, ApiError> {
    let prefix = auth::client_prefix(client.ip());
    app.0.appeals.check(&prefix).map_err(ApiError::RateLimited)?;
    let site = crate::check::target_of(&b.site).map_err(|e| ApiError::Invalid(format!("site: {e}")))?;
    let order_ref = b.order.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
    let order = match order_ref {
        Some(r) => {
            let lookup = r.clone();
            app.db(move |s| s.order_by_reference(&lookup))
                .await?
                .ok_or_else(|| ApiError::Invalid(format!("order: no order with reference {r:?}")))?
                .id
        }
        None => {
            let ruleset = app.gateway().ruleset();
            let result = crate::check::check(&ruleset, &site).map_err(|e| ApiError::Invalid(format!("site: {e}")))?;
            match result.order {
                Some(o) => o.id,
                None => {
                    return Err(ApiError::Invalid(format!(
                        "site: {site} is not blocked by any order in force; nothing to appeal"
                    )))
                }
            }
        }
    };
    let new = NewAppeal {
        site,
        reason: b.reason.trim().to_string(),
        contact: b.contact.map(|c| c.trim().to_string()).filter(|c| !c.is_empty()),
        order,
    };
    let client_key = prefix.clone();
    let appeal = app.db(move |s| s.file_appeal(new, &client_key, now())).await?;
    app.0.appeals.hit(&prefix);
    Ok(appeal)
}

async fn file_appeal(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Json(b): Json<AppealBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let appeal = do_file_appeal(&app, client, b).await?;
    Ok((StatusCode::CREATED, Json(json!({ "reference": appeal.reference, "status": appeal.status }))))
}

/// What the appellant may see of an appeal: no contact, no client.
pub(crate) fn public_appeal(a: &bawaba_store::Appeal) -> Value {
    json!({
        "reference": a.reference,
        "order": a.order_reference,
        "site": a.site,
        "status": a.status,
        "answer": a.answer,
        "filed_at": a.filed_at,
        "answered_at": a.answered_at,
    })
}

async fn appeal_status(State(app): State<App>, Path(reference): Path<String>) -> Result<Json<Value>, ApiError> {
    let r = reference.trim().to_ascii_uppercase();
    let appeal = app.db(move |s| s.appeal_by_reference(&r)).await?;
    match appeal {
        Some(a) => Ok(Json(public_appeal(&a))),
        None => Err(ApiError::NotFound(format!("no appeal with reference {reference:?}"))),
    }
}

#[derive(Debug, Deserialize)]
struct AppealFilter {
    status: Option<String>,
}

async fn list_appeals(State(app): State<App>, Query(f): Query<AppealFilter>) -> Result<Json<Value>, ApiError> {
    let status = match f.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<AppealStatus>().map_err(invalid)?),
        None => None,
    };
    Ok(Json(json!(app.db(move |s| s.appeals(status)).await?)))
}

/// Answers an appeal; shared by the API and the queue page.
pub(crate) async fn do_answer(
    app: &App,
    actor: String,
    id: i64,
    b: AnswerBody,
) -> Result<bawaba_store::Appeal, ApiError> {
    let status: AppealStatus = b.status.parse().map_err(invalid)?;
    if status == AppealStatus::Open {
        return Err(ApiError::Invalid("an answer is upheld, granted or rejected".into()));
    }
    app.db(move |s| s.answer_appeal(&actor, bawaba_store::AppealId(id), status, b.answer.trim(), now())).await
}

async fn answer_appeal(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    Json(b): Json<AnswerBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "appeal")?;
    Ok(Json(json!(do_answer(&app, who.user.name, id, b).await?)))
}

// ---- handlers: users and tokens ----------------------------------------------------------------

async fn list_users(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(app.db(|s| s.users()).await?)))
}

async fn add_user(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Json(b): Json<UserBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let role: Role = b.role.parse().map_err(|e| invalid(format!("role: {e}")))?;
    let (password, generated) = match b.password {
        Some(p) => (p, false),
        None => (random_hex(12)?, true),
    };
    let pw = password.clone();
    let user = app.db(move |s| s.create_user(&who.user.name, &b.name, role, &pw, now())).await?;
    let mut v = json!(user);
    if generated {
        v["one_time_password"] = json!(password);
    }
    Ok((StatusCode::CREATED, Json(v)))
}

async fn set_role(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
    Json(b): Json<RoleBody>,
) -> Result<Json<Value>, ApiError> {
    let role: Role = b.role.parse().map_err(|e| invalid(format!("role: {e}")))?;
    Ok(Json(json!(app.db(move |s| s.set_role(&who.user.name, &name, role, now())).await?)))
}

async fn disable_user(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if name == who.user.name {
        return Err(ApiError::Conflict("you cannot disable yourself".into()));
    }
    Ok(Json(json!(app.db(move |s| s.disable_user(&who.user.name, &name, now())).await?)))
}

async fn list_tokens(State(app): State<App>, Extension(who): Extension<Identity>) -> Result<Json<Value>, ApiError> {
    let only = (who.user.role != Role::Admin).then(|| who.user.name.clone());
    Ok(Json(json!(app.db(move |s| s.tokens(only.as_deref())).await?)))
}

async fn add_token(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Json(b): Json<TokenBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = b.user.clone().unwrap_or_else(|| who.user.name.clone());
    if user != who.user.name {
        who.require(Perm::Admin)?;
    }
    if b.label.trim().is_empty() || b.label.chars().count() > 100 {
        return Err(ApiError::Invalid("label: 1 to 100 characters saying what the token is for".into()));
    }
    let (secret, token) = app.db(move |s| s.create_token(&who.user.name, &user, b.label.trim(), now())).await?;
    let mut v = json!(token);
    v["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(v)))
}

async fn revoke_token(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "token")?;
    let mine = app.db(move |s| s.tokens(None)).await?.into_iter().find(|t| t.id.0 == id);
    match mine {
        None => return Err(ApiError::NotFound(format!("no token with id {id}"))),
        Some(t) if t.user != who.user.name => who.require(Perm::Admin)?,
        Some(_) => {}
    }
    app.db(move |s| s.revoke_token(&who.user.name, bawaba_store::TokenId(id), now())).await?;
    Ok(Json(json!({ "revoked": id })))
}

// ---- handlers: attack defense -----------------------------------------------------------------

async fn defense(State(app): State<App>) -> Json<Value> {
    Json(app.gateway().defense().unwrap_or_else(|| json!({ "enabled": false })))
}

#[derive(Debug, Deserialize)]
struct LimitQuery {
    limit: Option<String>,
}

async fn attacks(State(app): State<App>, Query(q): Query<LimitQuery>) -> Result<Json<Value>, ApiError> {
    let limit = match q.limit.as_deref().filter(|l| !l.is_empty()) {
        Some(l) => l.parse::<usize>().map_err(|_| invalid(format!("limit {l:?} is not a number")))?.clamp(1, 10_000),
        None => 100,
    };
    Ok(Json(json!(app.db(move |s| s.attacks(limit)).await?)))
}

/// Checks a mitigation body and turns it into the hook's request.
pub(crate) fn mitigation_request(b: &MitigationBody, withdraw: bool) -> Result<crate::MitigationRequest, ApiError> {
    let prefix = b.prefix.trim();
    let parsed = match prefix.split_once('/') {
        Some((addr, len)) => addr.parse::<std::net::IpAddr>().is_ok() && len.parse::<u8>().is_ok(),
        None => prefix.parse::<std::net::IpAddr>().is_ok(),
    };
    if !parsed {
        return Err(ApiError::Invalid(format!("prefix {prefix:?}: give an address or address/length")));
    }
    let kind = b.kind.trim().to_ascii_lowercase();
    if kind != "blackhole" && kind != "flowspec" {
        return Err(ApiError::Invalid(format!("kind {:?}: blackhole or flowspec", b.kind)));
    }
    let protocols = match b.protocol.as_deref().map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()) {
        None => Vec::new(),
        Some(p) => vec![match p.as_str() {
            "udp" => 17,
            "tcp" => 6,
            "icmp" => {
                if prefix.contains(':') {
                    58
                } else {
                    1
                }
            }
            n => n.parse::<u8>().map_err(|_| invalid(format!("protocol {p:?}: udp, tcp, icmp or a number")))?,
        }],
    };
    let source_ports = match b.source_port {
        None => Vec::new(),
        Some(p) => vec![u16::try_from(p).map_err(|_| invalid(format!("source_port {p}: 0 to 65535")))?],
    };
    if kind == "blackhole" && (!protocols.is_empty() || !source_ports.is_empty()) {
        return Err(ApiError::Invalid("protocol and source_port apply to flowspec only".into()));
    }
    if !withdraw && b.reason.trim().is_empty() {
        return Err(ApiError::Invalid("reason is required: it is kept with the mitigation and audited".into()));
    }
    Ok(crate::MitigationRequest {
        prefix: prefix.to_string(),
        kind,
        protocols,
        source_ports,
        withdraw,
        reason: b.reason.trim().to_string(),
    })
}

/// Submits a mitigation and audits what the planner decided (refusals too).
pub(crate) async fn do_mitigate(
    app: &App,
    actor: String,
    request: crate::MitigationRequest,
) -> Result<crate::Decided, ApiError> {
    let gateway = std::sync::Arc::clone(app.gateway());
    let req = request.clone();
    let decided = tokio::task::spawn_blocking(move || gateway.mitigate(&req))
        .await
        .map_err(|e| ApiError::Internal(format!("mitigation task: {e}")))?
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    let action = format!("mitigation.{}", if request.withdraw { "withdraw" } else { "announce" });
    let object = format!("mitigation:{}", request.prefix);
    let after = json!({ "request": request, "decision": decided });
    let reason = (!request.reason.is_empty()).then(|| request.reason.clone());
    app.db(move |s| s.record_action(&actor, &action, &object, &after, reason.as_deref(), now())).await?;
    if decided.outcome == "refused" {
        return Err(ApiError::Conflict(format!("refused: {}", decided.text)));
    }
    Ok(decided)
}

async fn announce(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Json(b): Json<MitigationBody>,
) -> Result<Json<Value>, ApiError> {
    let request = mitigation_request(&b, false)?;
    Ok(Json(json!(do_mitigate(&app, who.user.name, request).await?)))
}

async fn withdraw(
    State(app): State<App>,
    Extension(who): Extension<Identity>,
    Json(b): Json<MitigationBody>,
) -> Result<Json<Value>, ApiError> {
    let request = mitigation_request(&b, true)?;
    Ok(Json(json!(do_mitigate(&app, who.user.name, request).await?)))
}

// ---- public ------------------------------------------------------------------------------------

async fn transparency(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(crate::transparency::report(&app).await?)))
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
