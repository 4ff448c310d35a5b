//! The page shell shared by the console and the public pages: language and direction, the
//! navigation a role may use, the style sheet, and the language switch.
//!
//! Page helpers return a finished error page as their `Err` (a redirect to the login, a 403
//! page), hence `Result<_, Response>` throughout.
#![allow(clippy::result_large_err)]

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::auth::{self, Identity, Perm};
use crate::i18n::{Lang, T};
use crate::App;

/// Who is looking at a page, in which language.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Page language.
    pub lang: Lang,
    /// The logged-in user, if any.
    pub who: Option<Identity>,
    /// Path and query of the request (for the language switch).
    pub uri: String,
    /// Whether `?lang=` was given (the choice is then remembered in a cookie).
    pub chose_lang: bool,
}

impl FromRequestParts<App> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let uri = parts.extensions.get::<OriginalUri>().map_or_else(|| parts.uri.clone(), |u| u.0.clone());
        let query_lang =
            uri.query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("lang="))).map(str::to_string);
        let lang = Lang::pick(query_lang.as_deref(), &parts.headers);
        let who = auth::identify(app, &parts.headers).await.ok().flatten();
        Ok(Ctx {
            lang,
            who,
            uri: uri.path_and_query().map_or("/".into(), |p| p.to_string()),
            chose_lang: query_lang.as_deref().and_then(Lang::parse).is_some(),
        })
    }
}

impl Ctx {
    /// Shorthand for the text of `key`.
    pub fn t(&self, key: T) -> &'static str {
        self.lang.t(key)
    }

    /// The logged-in identity, or a redirect to the login page.
    pub fn user(&self) -> Result<&Identity, Response> {
        self.who.as_ref().ok_or_else(|| {
            let next = percent(&self.uri);
            Redirect::to(&format!("/login?next={next}")).into_response()
        })
    }

    /// The identity if it holds `perm`; otherwise the login redirect or a 403 page.
    pub fn need(&self, perm: Perm) -> Result<&Identity, Response> {
        let who = self.user()?;
        match who.require(perm) {
            Ok(()) => Ok(who),
            Err(e) => Err(self.error_page(StatusCode::FORBIDDEN, &e.to_string())),
        }
    }

    /// The same page in the other language.
    fn switch_href(&self) -> String {
        let other = self.lang.other().code();
        let (path, query) = self.uri.split_once('?').unwrap_or((&self.uri, ""));
        let mut kept: Vec<&str> = query.split('&').filter(|kv| !kv.is_empty() && !kv.starts_with("lang=")).collect();
        let lang = format!("lang={other}");
        kept.push(&lang);
        format!("{path}?{}", kept.join("&"))
    }

    /// Wraps `body` in the shell and sets the language cookie when the language was chosen.
    pub fn page(&self, title: &str, body: Markup) -> Response {
        self.page_status(StatusCode::OK, title, body)
    }

    /// Same as [`Ctx::page`] with a status.
    pub fn page_status(&self, status: StatusCode, title: &str, body: Markup) -> Response {
        let markup = html! {
            (DOCTYPE)
            html lang=(self.lang.code()) dir=(self.lang.dir()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · " (self.t(T::Brand)) }
                    link rel="stylesheet" href="/static/console.css";
                    script src="/static/console.js" defer {}
                }
                body {
                    header.top {
                        a.brand href="/" { (self.t(T::Brand)) }
                        nav {
                            @if let Some(who) = &self.who {
                                a href="/console" { (self.t(T::Dashboard)) }
                                a href="/console/orders" { (self.t(T::Orders)) }
                                a href="/console/check" { (self.t(T::Check)) }
                                a href="/console/defense" { (self.t(T::Defense)) }
                                a href="/console/allowlist" { (self.t(T::Allowlist)) }
                                @if Perm::AppealsRead.allows(who.user.role) {
                                    a href="/console/appeals" { (self.t(T::Appeals)) }
                                }
                                @if Perm::Audit.allows(who.user.role) {
                                    a href="/console/audit" { (self.t(T::Audit)) }
                                }
                                @if Perm::Admin.allows(who.user.role) {
                                    a href="/console/users" { (self.t(T::Users)) }
                                }
                                a href="/console/tokens" { (self.t(T::Tokens)) }
                            }
                            a href="/transparency" { (self.t(T::Transparency)) }
                        }
                        div.session {
                            a.lang href=(self.switch_href()) lang=(self.lang.other().code()) { (self.t(T::Language)) }
                            @if let Some(who) = &self.who {
                                span.who { (self.t(T::LoggedInAs)) " " bdi { (who.user.name) } " (" (who.user.role) ")" }
                                a href="/console/password" { (self.t(T::ChangePassword)) }
                                form.inline method="post" action="/logout" {
                                    input type="hidden" name="csrf" value=(who.csrf());
                                    button type="submit" { (self.t(T::Logout)) }
                                }
                            } @else {
                                a href="/login" { (self.t(T::Login)) }
                            }
                        }
                    }
                    main { (body) }
                }
            }
        };
        let mut response = (status, axum::response::Html(markup.into_string())).into_response();
        if self.chose_lang {
            let cookie = format!("lang={}; Path=/; SameSite=Lax; Max-Age=31536000", self.lang.code());
            if let Ok(v) = cookie.parse() {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }

    /// An error page: what went wrong, in one line, and a way back.
    pub fn error_page(&self, status: StatusCode, message: &str) -> Response {
        self.page_status(
            status,
            self.t(T::Error),
            html! {
                h1 { (self.t(T::Error)) }
                p.error role="alert" { (message) }
                p { a href="javascript:history.back()" { (self.t(T::Back)) } }
            },
        )
    }
}

/// Percent-encodes a query value.
pub fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The double-submit token of a form shown before login (the login and appeal forms): the value
/// already in the browser's `cookie`, or a fresh one; the page sets it as an HttpOnly,
/// SameSite=Strict cookie scoped to `path` and puts it in a hidden field, and the post must carry
/// both.
pub fn form_token(headers: &axum::http::HeaderMap, cookie: &str) -> String {
    match crate::auth::cookie(headers, cookie) {
        Some(v) if v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) => v.to_string(),
        _ => crate::api::random_hex(16).unwrap_or_default(),
    }
}

/// Sets the cookie of [`form_token`] on `response`.
pub fn set_form_token(response: &mut Response, cookie: &str, token: &str, path: &str) {
    if let Ok(v) = format!("{cookie}={token}; Path={path}; HttpOnly; SameSite=Strict").parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Whether a posted form's `sent` token matches its cookie.
pub fn form_token_ok(headers: &axum::http::HeaderMap, cookie: &str, sent: &str) -> bool {
    crate::auth::cookie(headers, cookie).is_some_and(|c| crate::util::constant_time_eq(c.as_bytes(), sent.as_bytes()))
}

/// A date (`YYYY-MM-DD`, UTC) as markup that keeps its left-to-right order and stays on one
/// line inside Arabic text.
pub fn day(secs: i64) -> Markup {
    let d = crate::util::date(secs);
    html! { time.date datetime=(d) { (d) } }
}

/// A date and time (UTC), likewise.
pub fn stamp(secs: i64) -> Markup {
    html! { time.date { (crate::util::datetime(secs)) } }
}

/// A hidden CSRF field for a form.
pub fn csrf_field(who: &Identity) -> Markup {
    html! { input type="hidden" name="csrf" value=(who.csrf()); }
}

/// The style sheet: one for both directions (logical properties only).
pub const CSS: &str = r#"
:root { --ink:#1d2433; --muted:#5b6475; --line:#d9dee8; --bg:#f6f7fb; --card:#fff; --accent:#0b5cad; --bad:#b42318; --good:#067647; --warn:#b54708; }
* { box-sizing: border-box; }
body { margin:0; font-family: system-ui, "Noto Sans Arabic", "Noto Sans", "DejaVu Sans", sans-serif; color:var(--ink); background:var(--bg); line-height:1.5; }
header.top { display:flex; flex-wrap:wrap; gap:.75rem 1.5rem; align-items:center; padding:.75rem 1.25rem; background:#10243e; color:#fff; }
header.top a { color:#fff; text-decoration:none; }
header.top nav { display:flex; flex-wrap:wrap; gap:.25rem 1rem; flex:1; }
header.top .brand { font-weight:700; font-size:1.2rem; }
header.top .session { display:flex; gap:.75rem; align-items:center; flex-wrap:wrap; }
header.top .who { color:#c9d6ea; font-size:.9rem; }
form.inline { display:inline; margin:0; }
header.top button { background:transparent; color:#fff; border:1px solid #6d84a3; border-radius:4px; padding:.2rem .6rem; cursor:pointer; }
main { max-width:72rem; margin:0 auto; padding:1.25rem; }
h1 { font-size:1.5rem; margin:.5rem 0 1rem; }
h2 { font-size:1.15rem; margin:1.5rem 0 .5rem; }
.card > h2:first-child, .card > h1:first-child { margin-block-start:0; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:1rem 1.25rem; margin-block-end:1rem; }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(16rem, 1fr)); gap:1rem; }
table { width:100%; border-collapse:collapse; background:var(--card); }
th, td { text-align:start; padding:.45rem .6rem; border-block-end:1px solid var(--line); vertical-align:top; }
th { font-weight:600; color:var(--muted); font-size:.85rem; }
.scroll { overflow-x:auto; }
label { display:block; font-weight:600; margin-block:.6rem .2rem; }
input[type=text], input[type=password], input[type=date], input:not([type]), select, textarea { width:100%; max-width:36rem; padding:.45rem .55rem; border:1px solid #b8c0cc; border-radius:6px; font:inherit; background:#fff; }
textarea { min-height:6rem; }
.check-row { display:flex; gap:.5rem; align-items:center; }
.check-row label { margin:0; font-weight:400; }
button, .button { background:var(--accent); color:#fff; border:0; border-radius:6px; padding:.5rem 1rem; font:inherit; cursor:pointer; margin-block-start:.75rem; text-decoration:none; display:inline-block; }
button.danger { background:var(--bad); }
.filters { display:flex; flex-wrap:wrap; gap:.5rem 1rem; align-items:flex-end; }
.filters label { margin:0; font-size:.85rem; }
.filters select, .filters input { width:auto; }
.badge { display:inline-block; padding:.05rem .5rem; border-radius:999px; font-size:.8rem; background:#eef2f7; }
.badge.active, .badge.granted { background:#dcfae6; color:var(--good); }
.badge.draft, .badge.open { background:#fef0c7; color:var(--warn); }
.badge.revoked, .badge.expired, .badge.rejected { background:#fee4e2; color:var(--bad); }
.verdict { font-size:1.3rem; font-weight:700; }
.verdict.blocked { color:var(--bad); }
.verdict.not-blocked, .verdict.allowed { color:var(--good); }
.error { color:var(--bad); font-weight:600; }
.ok { color:var(--good); font-weight:600; }
.muted { color:var(--muted); font-size:.9rem; }
.mono, code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; direction:ltr; unicode-bidi:isolate; }
.date, td.mono, bdi.mono, strong.mono { white-space:nowrap; direction:ltr; unicode-bidi:isolate; }
.blockpage { max-width:42rem; margin:2rem auto; }
.blockpage h1 { font-size:1.8rem; }
.blockpage dl { display:grid; grid-template-columns:max-content 1fr; gap:.4rem 1rem; }
.blockpage dt { font-weight:600; color:var(--muted); }
.blockpage dd { margin:0; }
.reference { font-size:1.6rem; font-weight:700; letter-spacing:.05em; }
progress { width:100%; max-width:36rem; height:1rem; }
svg.chart { width:100%; height:auto; max-width:36rem; background:#fff; }
@media (max-width: 40rem) {
  main { padding:.75rem; }
  th, td { padding:.35rem .4rem; font-size:.9rem; }
  .blockpage dl { grid-template-columns:1fr; }
}
"#;

/// The only script: upload progress for imports (the form works without it).
pub const JS: &str = r#"
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('form[data-progress]').forEach(function (form) {
    form.addEventListener('submit', function (ev) {
      if (!window.XMLHttpRequest || !window.FormData) return;
      ev.preventDefault();
      var bar = document.getElementById(form.getAttribute('data-progress'));
      bar.hidden = false;
      var xhr = new XMLHttpRequest();
      // getAttribute: a field named "action" shadows form.action.
      xhr.open('POST', form.getAttribute('action'));
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; } };
      xhr.onload = function () { document.open(); document.write(xhr.responseText); document.close(); };
      xhr.send(new FormData(form));
    });
  });
});
"#;

/// A raw SVG or HTML fragment built by this crate (never user input).
pub fn trusted(s: String) -> PreEscaped<String> {
    PreEscaped(s)
}
