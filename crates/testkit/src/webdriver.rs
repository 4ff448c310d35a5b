//! A minimal W3C WebDriver client (<https://www.w3.org/TR/webdriver2/>) for chromedriver and
//! headless Chromium, built on [`crate::http`]: the console's browser tests load pages, type,
//! click, read text and take screenshots with it.
//!
//! [`Browser::start`] applies the crate's CI rule ([`crate::require_tools`]): without
//! `chromedriver` or `chromium` it panics under `CI=true` and otherwise prints a SKIPPED banner
//! and returns `None`. Every command returns `Result<_, String>` whose error carries the
//! WebDriver error code and message (`no such element: ...`), so `.unwrap()` in a test prints
//! something readable.
//!
//! ```no_run
//! use bawaba_testkit::webdriver::Browser;
//!
//! let Some(browser) = Browser::start(1280, 800) else { return };
//! browser.goto("http://127.0.0.1:8080/login").unwrap();
//! browser.find("input[name=user]").unwrap().send_keys("alice").unwrap();
//! browser.find("button[type=submit]").unwrap().click().unwrap();
//! assert_eq!(browser.find("h1").unwrap().text().unwrap(), "الأوامر");
//! ```

use crate::http::Client;
use crate::{free_port, require_tools, ChildGuard};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long [`Browser::find`] and [`Browser::wait_until`] poll before giving up, unless
/// [`Browser::set_wait_timeout`] says otherwise.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The key of a web element reference in WebDriver JSON (§12.1).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The HTTP deadline for one WebDriver command: longer than the page-load and script timeouts
/// the session is given (10 s), so those report first, with their own message.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A headless Chromium session driven through a chromedriver child process. Dropping it deletes
/// the session and waits for Chromium's processes to exit, kills those that do not (Chromium
/// outlives a killed chromedriver; they are found through `/proc`, so this is Linux only), kills
/// chromedriver and removes the temporary profile.
#[derive(Debug)]
pub struct Browser {
    driver: Client,
    session: String,
    wait: Duration,
    chromedriver: ChildGuard,
    /// The temporary directory with chromedriver's log and Chromium's profile (`user-data`).
    profile: PathBuf,
}

/// An element found on the current page, valid until the page changes (then commands on it
/// fail with `stale element reference`).
#[derive(Debug, Clone)]
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium session with a fresh
    /// profile and a `width` x `height` viewport (see [`Browser::set_viewport_size`]): `None`
    /// (after a SKIPPED banner naming the current test) when either tool is missing outside CI.
    ///
    /// # Panics
    /// When a tool is missing under `CI=true`, or chromedriver or Chromium fails to start (the
    /// message includes the end of chromedriver's log).
    pub fn start(width: u32, height: u32) -> Option<Browser> {
        let test = std::thread::current().name().unwrap_or("a browser test").to_string();
        let tools = require_tools(&test, &["chromedriver", "chromium"])?;
        match Browser::launch(&tools[0], &tools[1], width, height) {
            Ok(browser) => Some(browser),
            Err(e) => panic!("{test}: {e}"),
        }
    }

    fn launch(chromedriver: &Path, chromium: &Path, width: u32, height: u32) -> Result<Browser, String> {
        let profile = tempfile::Builder::new()
            .prefix("bawaba-chromium-")
            .tempdir()
            .map_err(|e| format!("creating a temporary profile directory: {e}"))?;
        let log = profile.path().join("chromedriver.log");
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", chromedriver.display()))?;
        let mut chromedriver_child = ChildGuard(child);
        let driver = Client::new(SocketAddr::from(([127, 0, 0, 1], port))).with_timeout(COMMAND_TIMEOUT);
        let failed = |what: String| format!("{what}\n--- end of {} ---\n{}", log.display(), log_tail(&log));

        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = chromedriver_child.0.try_wait() {
                return Err(failed(format!("chromedriver exited at start ({status})")));
            }
            match driver.get("/status") {
                Ok(r) if r.status == 200 && r.try_json().is_ok_and(|v| v["value"]["ready"] == true) => break,
                _ if started.elapsed() > Duration::from_secs(10) => {
                    return Err(failed(format!("chromedriver not ready on 127.0.0.1:{port} after 10 s")))
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }

        let user_data = profile.path().join("user-data");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                    "--lang=en-US",
                    format!("--user-data-dir={}", user_data.display()),
                ],
            },
            "timeouts": {"pageLoad": 10_000, "script": 10_000, "implicit": 0},
        }}});
        let response = driver.post_json("/session", &capabilities).map_err(|e| failed(format!("new session: {e}")))?;
        let value = unwrap_value("POST", "/session", response.status, response.try_json())
            .map_err(|e| failed(format!("new session: {e}")))?;
        let session =
            value["sessionId"].as_str().ok_or_else(|| failed(format!("new session: no sessionId in {value}")))?;
        let browser = Browser {
            driver,
            session: session.to_string(),
            wait: WAIT_TIMEOUT,
            chromedriver: chromedriver_child,
            profile: profile.keep(),
        };
        browser.set_viewport_size(width, height)?;
        Ok(browser)
    }

    /// Sets how long [`Browser::find`] and [`Browser::wait_until`] poll (default
    /// [`WAIT_TIMEOUT`]); a short one keeps a test that expects absence fast.
    pub fn set_wait_timeout(&mut self, wait: Duration) {
        self.wait = wait;
    }

    /// Navigates to `url` and waits for the page to load.
    ///
    /// # Errors
    /// The WebDriver error (a page that does not load in 10 s is `timeout`).
    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.command("POST", "/url", json!({"url": url})).map(drop)
    }

    /// The current page's URL.
    ///
    /// # Errors
    /// The WebDriver error.
    pub fn url(&self) -> Result<String, String> {
        self.command_string("GET", "/url")
    }

    /// The current page's title.
    ///
    /// # Errors
    /// The WebDriver error.
    pub fn title(&self) -> Result<String, String> {
        self.command_string("GET", "/title")
    }

    /// Goes back one page in history.
    ///
    /// # Errors
    /// The WebDriver error.
    pub fn back(&self) -> Result<(), String> {
        self.command("POST", "/back", json!({})).map(drop)
    }

    /// Reloads the current page.
    ///
    /// # Errors
    /// The WebDriver error.
    pub fn refresh(&self) -> Result<(), String> {
        self.command("POST", "/refresh", json!({})).map(drop)
    }

    /// The current page's DOM serialized as HTML.
    ///
    /// # Errors
    /// The WebDriver error.
    pub fn page_source(&self) -> Result<String, String> {
        self.command_string("GET", "/source")
    }

    /// The first element matching the CSS selector `css`, polling until one appears or the wait
    /// timeout ([`WAIT_TIMEOUT`]) passes.
    ///
    /// # Errors
    /// No match within the wait timeout (the message names the selector), or another
    /// WebDriver error (an invalid selector fails at once).
    pub fn find(&self, css: &str) -> Result<Element<'_>, String> {
        let started = Instant::now();
        loop {
            if let Some(first) = self.find_all(css)?.into_iter().next() {
                return Ok(first);
            }
            if started.elapsed() >= self.wait {
                let url = self.url().unwrap_or_else(|e| format!("(url unknown: {e})"));
                return Err(format!("no element matches {css:?} after {:?} on {url}", self.wait));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Every element matching the CSS selector `css` now, without waiting (possibly none).
    ///
    /// # Errors
    /// The WebDriver error (`invalid selector`).
    pub fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>, String> {
        let found = self.command("POST", "/elements", json!({"using": "css selector", "value": css}))?;
        let references = found.as_array().ok_or_else(|| format!("find {css:?}: not an array: {found}"))?;
        references
            .iter()
            .map(|r| match r[ELEMENT_KEY].as_str() {
                Some(id) => Ok(Element { browser: self, id: id.to_string() }),
                None => Err(format!("find {css:?}: not an element reference: {r}")),
            })
            .collect()
    }

    /// Polls `condition` until it returns `Ok(true)`, for up to the wait timeout; errors from it
    /// (a stale element while the page changes) count as "not yet".
    ///
    /// # Errors
    /// `waiting for {what}` with the last error, when the time runs out.
    pub fn wait_until(
        &self,
        what: &str,
        mut condition: impl FnMut(&Browser) -> Result<bool, String>,
    ) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let last = match condition(self) {
                Ok(true) => return Ok(()),
                Ok(false) => String::from("condition false"),
                Err(e) => e,
            };
            if started.elapsed() >= self.wait {
                return Err(format!("waiting for {what} for {:?}: {last}", self.wait));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Runs `script` as the body of a function in the page with `args` (an [`Element`] goes in as
    /// [`Element::to_json`]) and returns what it returns (`return ...;`).
    ///
    /// # Errors
    /// The WebDriver error (`javascript error: ...` for an exception in the script).
    pub fn execute(&self, script: &str, args: &[Value]) -> Result<Value, String> {
        self.command("POST", "/execute/sync", json!({"script": script, "args": args}))
    }

    /// Sets the window's outer size to `width` x `height` (the viewport is smaller: see
    /// [`Browser::set_viewport_size`]).
    ///
    /// # Errors
    /// The WebDriver error.
    pub fn set_window_size(&self, width: u32, height: u32) -> Result<(), String> {
        self.command("POST", "/window/rect", json!({"width": width, "height": height})).map(drop)
    }

    /// Resizes the window so that the viewport (the page's `innerWidth` x `innerHeight`, what a
    /// screenshot shows) is `width` x `height`. Headless Chromium's window is taller than its
    /// viewport, by an amount that is not constant for small windows, so this corrects the window
    /// by the viewport's error until it fits (a few rounds).
    ///
    /// # Errors
    /// The WebDriver error, or a viewport that does not reach the size.
    pub fn set_viewport_size(&self, width: u32, height: u32) -> Result<(), String> {
        let target = [i64::from(width), i64::from(height)];
        let mut window = [target[0], target[1]];
        let mut viewport = Value::Null;
        for _ in 0..5 {
            self.command("POST", "/window/rect", json!({"width": window[0], "height": window[1]}))?;
            viewport = self.execute("return [window.innerWidth, window.innerHeight];", &[])?;
            let inner = [0, 1].map(|i| viewport[i].as_i64().unwrap_or(0));
            if inner == target {
                return Ok(());
            }
            window = [0, 1].map(|i| (window[i] + target[i] - inner[i]).max(1));
        }
        Err(format!("viewport is {viewport} after asking for [{width},{height}]"))
    }

    /// A PNG screenshot of the viewport.
    ///
    /// # Errors
    /// The WebDriver error, or a reply that is not base64.
    pub fn screenshot_png(&self) -> Result<Vec<u8>, String> {
        base64_decode(&self.command_string("GET", "/screenshot")?)
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    ///
    /// # Errors
    /// As [`Browser::screenshot_png`], or failing to write the file.
    pub fn screenshot(&self, path: impl AsRef<Path>) -> Result<(), String> {
        let path = path.as_ref();
        std::fs::write(path, self.screenshot_png()?).map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// Selects the option with value `value` in the `<select>` matching `css` and fires `input`
    /// and `change`, as a user's choice would.
    ///
    /// # Errors
    /// No such select (after waiting as [`Browser::find`]), or no option with that value.
    pub fn select_option(&self, css: &str, value: &str) -> Result<(), String> {
        let select = self.find(css)?;
        let script = "const [select, value] = arguments;
            const option = Array.from(select.options).find(o => o.value === value);
            if (!option) return Array.from(select.options).map(o => o.value);
            select.value = value;
            select.dispatchEvent(new Event('input', {bubbles: true}));
            select.dispatchEvent(new Event('change', {bubbles: true}));
            return null;";
        match self.execute(script, &[select.to_json(), json!(value)])? {
            Value::Null => Ok(()),
            options => Err(format!("select {css:?} has no option {value:?} (options: {options})")),
        }
    }

    /// Submits the form matching `css` as its first submit button would (`requestSubmit`:
    /// validation and `submit` handlers run; no submitter, so no button name/value is sent).
    /// Click the button instead when the server reads which one was pressed.
    ///
    /// # Errors
    /// No such form (after waiting as [`Browser::find`]), or the WebDriver error.
    pub fn submit_form(&self, css: &str) -> Result<(), String> {
        let form = self.find(css)?;
        self.execute("arguments[0].requestSubmit();", &[form.to_json()]).map(drop)
    }

    /// The browser's cookies for the current page as WebDriver cookie objects (`name`,
    /// `value`, `httpOnly`, `sameSite`, ...): how a test checks the session cookie's flags.
    ///
    /// # Errors
    /// The WebDriver error.
    pub fn cookies(&self) -> Result<Vec<Value>, String> {
        match self.command("GET", "/cookie", Value::Null)? {
            Value::Array(cookies) => Ok(cookies),
            other => Err(format!("cookies: not an array: {other}")),
        }
    }

    /// Sends one command of this session (`path` after `/session/{id}`); a `POST` sends `body`.
    fn command(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let full = format!("/session/{}{path}", self.session);
        let response = if method == "POST" {
            self.driver.post_json(&full, &body)
        } else {
            self.driver.request(method, &full, &[], b"")
        };
        let response = response.map_err(|e| format!("WebDriver {method} {path}: {e}"))?;
        unwrap_value(method, path, response.status, response.try_json())
    }

    fn command_string(&self, method: &str, path: &str) -> Result<String, String> {
        match self.command(method, path, Value::Null)? {
            Value::String(s) => Ok(s),
            other => Err(format!("WebDriver {method} {path}: expected a string, got {other}")),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium's processes, found while they run: Chromium outlives a killed chromedriver.
        let chromium = chromium_processes(self.chromedriver.0.id(), &self.profile.join("user-data"));
        let path = format!("/session/{}", self.session);
        let deleted = self.driver.request("DELETE", &path, &[], b"").is_ok_and(|r| r.status == 200);
        if !(deleted && all_exit(&chromium, Duration::from_secs(5))) {
            let pids: Vec<String> = chromium.iter().filter(|&&pid| running(pid)).map(u32::to_string).collect();
            if !pids.is_empty() {
                let _ = Command::new("kill").arg("-KILL").args(&pids).stderr(Stdio::null()).status();
                all_exit(&chromium, Duration::from_secs(2));
            }
        }
        let _ = self.chromedriver.0.kill();
        let _ = self.chromedriver.0.wait();
        for _ in 0..20 {
            match std::fs::remove_dir_all(&self.profile) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => std::thread::sleep(Duration::from_millis(50)),
                _ => break,
            }
        }
    }
}

impl Element<'_> {
    /// The WebDriver element id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The element as a script argument for [`Browser::execute`] (`arguments[i]` is the DOM node).
    pub fn to_json(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    /// Clicks the element's center, after scrolling it into view.
    ///
    /// # Errors
    /// The WebDriver error (`element click intercepted`, `element not interactable`, ...).
    pub fn click(&self) -> Result<(), String> {
        self.command("POST", "/click", json!({})).map(drop)
    }

    /// Types `text` into the element (focusing it first), appending to what is there.
    ///
    /// # Errors
    /// The WebDriver error (`element not interactable` for a hidden input).
    pub fn send_keys(&self, text: &str) -> Result<(), String> {
        self.command("POST", "/value", json!({"text": text})).map(drop)
    }

    /// Empties an input or textarea.
    ///
    /// # Errors
    /// The WebDriver error.
    pub fn clear(&self) -> Result<(), String> {
        self.command("POST", "/clear", json!({})).map(drop)
    }

    /// The rendered text (`innerText` as the user sees it; hidden text excluded).
    ///
    /// # Errors
    /// The WebDriver error.
    pub fn text(&self) -> Result<String, String> {
        match self.command("GET", "/text", Value::Null)? {
            Value::String(s) => Ok(s),
            other => Err(format!("element text: expected a string, got {other}")),
        }
    }

    /// The attribute `name` as written in the HTML, or `None` when absent.
    ///
    /// # Errors
    /// The WebDriver error.
    pub fn attr(&self, name: &str) -> Result<Option<String>, String> {
        match self.command("GET", &format!("/attribute/{name}"), Value::Null)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Ok(Some(other.to_string())),
        }
    }

    /// The DOM property `name` (`value` of an input is what the user typed; `checked` a bool).
    ///
    /// # Errors
    /// The WebDriver error.
    pub fn property(&self, name: &str) -> Result<Value, String> {
        self.command("GET", &format!("/property/{name}"), Value::Null)
    }

    /// The current value of an input, select or textarea (its `value` property).
    ///
    /// # Errors
    /// The WebDriver error, or an element without a string `value`.
    pub fn value(&self) -> Result<String, String> {
        match self.property("value")? {
            Value::String(s) => Ok(s),
            other => Err(format!("element value: expected a string, got {other}")),
        }
    }

    fn command(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        self.browser.command(method, &format!("/element/{}{path}", self.id), body)
    }
}

/// The `value` of a WebDriver reply (§6.3), or its error as `{error}: {message}`, where the
/// message keeps only its first line (chromedriver appends session info and a stack).
fn unwrap_value(
    method: &str,
    path: &str,
    status: u16,
    body: Result<Value, serde_json::Error>,
) -> Result<Value, String> {
    let mut body = body.map_err(|e| format!("WebDriver {method} {path}: HTTP {status}, not JSON: {e}"))?;
    let value = body["value"].take();
    if status == 200 {
        return Ok(value);
    }
    let error = value["error"].as_str().unwrap_or("unknown error");
    let message = value["message"].as_str().unwrap_or_default().lines().next().unwrap_or_default();
    Err(format!("WebDriver {method} {path}: {error}: {message}"))
}

/// The last 40 lines of a log file, or why it cannot be read.
fn log_tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        }
        Err(e) => format!("(cannot read: {e})"),
    }
}

/// Chromium's processes: those under `chromedriver` and those whose command line names the
/// profile `user_data` (the browser, once chromedriver died), with all their descendants.
/// Crashpad handlers detach and exit with the browser on their own.
fn chromium_processes(chromedriver: u32, user_data: &Path) -> Vec<u32> {
    let flag = format!("--user-data-dir={}", user_data.display());
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let table: Vec<(u32, u32, bool)> = entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            Some((pid, ppid, cmdline.split(|&b| b == 0).any(|arg| arg == flag.as_bytes())))
        })
        .collect();
    let mut found: Vec<u32> =
        table.iter().filter(|(_, ppid, profile)| *profile || *ppid == chromedriver).map(|p| p.0).collect();
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            table
                .iter()
                .filter(|(pid, ppid, _)| *ppid == parent && !found.contains(pid))
                .map(|p| p.0)
                .collect::<Vec<_>>(),
        );
        i += 1;
    }
    found
}

/// Whether process `pid` has a thread still running: a process whose main thread has exited
/// shows as a zombie while its other threads may still run.
fn running(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, None | Some("Z" | "X"))
        })
    })
}

/// Whether every process in `pids` has exited within `wait`.
fn all_exit(pids: &[u32], wait: Duration) -> bool {
    let started = Instant::now();
    loop {
        if !pids.iter().any(|&pid| running(pid)) {
            return true;
        }
        if started.elapsed() >= wait {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Decodes standard base64 (RFC 4648 §4) with optional padding, ignoring ASCII whitespace.
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut count) = (0u32, 0u32);
    for (i, byte) in text.bytes().enumerate().filter(|(_, b)| !b.is_ascii_whitespace()) {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return Err(format!("not base64: byte {byte:#04x} at offset {i}")),
        };
        bits = bits << 6 | u32::from(sextet);
        count += 1;
        if count == 4 {
            out.extend_from_slice(&bits.to_be_bytes()[1..]);
            (bits, count) = (0, 0);
        }
    }
    match count {
        0 => {}
        2 => out.push((bits >> 4) as u8),
        3 => out.extend_from_slice(&((bits >> 2) as u16).to_be_bytes()),
        _ => return Err("not base64: truncated final quantum".into()),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_rfc4648_vectors() -> Result<(), String> {
        let vectors =
            [("", ""), ("Zg==", "f"), ("Zm8=", "fo"), ("Zm9v", "foo"), ("Zm9vYg==", "foob"), ("Zm9vYmE=", "fooba")];
        for (encoded, decoded) in vectors {
            assert_eq!(base64_decode(encoded)?, decoded.as_bytes(), "{encoded}");
        }
        assert_eq!(base64_decode("Zm9v\nYmFy")?, b"foobar");
        assert_eq!(base64_decode("iVBORw0KGgo=")?, b"\x89PNG\r\n\x1a\n");
        assert_eq!(base64_decode("/+8=")?, [0xff, 0xef]);
        assert!(base64_decode("Zm9v!").is_err());
        assert!(base64_decode("Z").is_err());
        Ok(())
    }

    /// Chromium outlives a killed chromedriver; dropping the browser must still stop it, and
    /// remove the profile (for good: no helper process writes it again).
    #[test]
    fn drop_stops_chromium_when_chromedriver_died() {
        let Some(mut browser) = Browser::start(360, 200) else { return };
        let profile = browser.profile.clone();
        let chromium = chromium_processes(browser.chromedriver.0.id(), &profile.join("user-data"));
        assert!(chromium.len() > 3, "the browser and its helpers: {chromium:?}");
        browser.chromedriver.0.kill().expect("kill chromedriver");
        browser.chromedriver.0.wait().expect("reap chromedriver");
        assert!(chromium.iter().any(|&pid| running(pid)), "chromium runs on after chromedriver was killed");
        drop(browser);
        let left: Vec<u32> = chromium.into_iter().filter(|&pid| running(pid)).collect();
        assert_eq!(left, Vec::<u32>::new(), "chromium still runs after the browser was dropped");
        std::thread::sleep(Duration::from_millis(200));
        assert!(!profile.exists(), "{} is left behind", profile.display());
    }

    #[test]
    fn webdriver_errors_read_as_one_line() {
        let reply = json!({"value": {"error": "no such element", "message": "no such element: Unable to locate element\n  (Session info: chrome=156)", "stacktrace": "#0 ..."}});
        assert_eq!(
            unwrap_value("POST", "/element", 404, Ok(reply)),
            Err("WebDriver POST /element: no such element: no such element: Unable to locate element".to_string())
        );
        assert_eq!(unwrap_value("GET", "/title", 200, Ok(json!({"value": "t"}))), Ok(json!("t")));
    }
}
