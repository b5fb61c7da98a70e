//! The web page at `/` in a real browser: headless Chromium driven through WebDriver
//! (`chromedriver`, started here on a free port) against the real server on `127.0.0.1:0`
//! with SmolLM2. Two tests, each one server and one browser whose scenarios run as steps:
//! a person chatting (streaming, reloads, memory, editing, XSS, other users), and an admin
//! running the server (users, registration, models pulled from the loopback Hub of
//! `modelforge_testkit::hub_server`) beside people's own accounts (API keys, pins and
//! archives, memory switched off, temporary chats, web search over the loopback search
//! engine of `modelforge_testkit::web_server`, the model picker, per-account settings).
//! The file takes a few minutes on two cores.
//!
//! Elements are found by their `data-testid` (the page's stable hooks), and every wait polls a
//! condition with a bound; nothing sleeps a fixed time. What the page did is checked both on
//! screen and through the API. Screenshots of the chat (light, dark, phone width), the memory
//! panel, the settings with a new key and the admin panel (desktop and phone width) land in
//! `$CARGO_TARGET_DIR/screenshots`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); without them
//! the test fails and says so.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, Setup, serve, serve_with};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use modelforge_testkit::hub_server::{HubServer, SMOL_REPO};
use modelforge_testkit::web_server::{self as web, WebServer};
use serde_json::{Value, json};

/// The longest any one wait may take before a test fails (a reply with web search on a
/// busy machine takes a while).
const PATIENCE: Duration = Duration::from_secs(150);
/// The browser tests take turns: two servers answering with SmolLM2 at once on two cores
/// slow each other's replies past any sensible wait.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// A prompt SmolLM2 answers at length, for replies still running when the test acts.
const COUNTING: &str = "Count from 1 to 1000, separated by commas.";
/// Messages that would run script if the page put them into the DOM as HTML.
const XSS: &str = "<img src=x onerror=\"window.__xss = 1\"> and <script>window.__xss = 2</script>";
/// The rename button of the highlighted chat.
const CURRENT_RENAME: &str = "[data-testid=session-item][aria-current=true] [data-testid=session-rename]";

// ---------------------------------------------------------------------------------------------
// The browser

const MISSING: &str = "the web page tests need Chromium and its WebDriver: \
                       `apt-get install -y chromium chromium-driver` (Debian), or set CHROME_BIN and CHROMEDRIVER";

/// The first of `candidates` that exists, or the path of `name` on PATH.
fn find_program(env: &str, candidates: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    for candidate in candidates {
        let candidate = Path::new(candidate);
        if candidate.is_absolute() && candidate.is_file() {
            return candidate.to_owned();
        }
        if let Some(found) = on_path.iter().map(|dir| dir.join(candidate)).find(|p| p.is_file()) {
            return found;
        }
    }
    panic!("no {} found: {MISSING}", candidates[0]);
}

/// `chromedriver` on a free port in its own process group, killed with its browsers on drop.
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Driver {
    async fn start(dir: &Path) -> Driver {
        use std::os::unix::process::CommandExt as _;
        let program = find_program("CHROMEDRIVER", &["chromedriver", "/usr/lib/chromium/chromedriver"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join("chromedriver.log");
        let child = Command::new(&program)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}; {MISSING}", program.display()));
        let mut driver = Driver { child, url: format!("http://127.0.0.1:{port}"), log };
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Some(status) = driver.child.try_wait().unwrap() {
                panic!("chromedriver exited with {status}:\n{}", driver.log_text());
            }
            let ready = http.get(format!("{}/status", driver.url)).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return driver;
            }
            assert!(started.elapsed() < PATIENCE, "chromedriver not ready in time:\n{}", driver.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browsers it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A browser session on the page.
struct Page {
    client: Client,
    base: String,
    shots: PathBuf,
}

impl Page {
    async fn open(driver: &Driver, profile: &Path, base: &str) -> Page {
        let chromium = find_program("CHROME_BIN", &["chromium", "chromium-browser", "google-chrome"]);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--window-size=1280,860",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|err| panic!("no browser session ({err}):\n{}", driver.log_text()));
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Page { client, base: base.to_owned(), shots }
    }

    async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    /// Runs `script` (a function body) until it returns something other than `null`,
    /// `false` or `""`; that value.
    async fn until(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.client.execute(script, vec![]).await.unwrap_or(Value::Null);
            if !matches!(&value, Value::Null | Value::Bool(false)) && value != json!("") {
                return value;
            }
            if started.elapsed() > PATIENCE {
                let state = self.js("return document.body.innerText.slice(0, 2000)").await;
                // The banner hides itself after a while; its last text stays in the page.
                let last_error = self
                    .js("return document.querySelector('[data-testid=error-banner] .banner-text')?.textContent ?? ''")
                    .await;
                let search = self
                    .js("return document.querySelector('[data-testid=session-search]')?.value ?? ''")
                    .await;
                panic!(
                    "{what}: not in time. The page says:\n{}\nlast error: {last_error}; chat search box: {search}",
                    state.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// The element with `data-testid` `id` (and `extra`, a CSS suffix), once it is shown.
    async fn find(&self, id: &str, extra: &str) -> Element {
        let css = format!("[data-testid=\"{id}\"]{extra}");
        let script = format!(
            "const e = document.querySelector({css:?}); return !!e && e.getClientRects().length > 0",
            css = css
        );
        self.until(&format!("{css} is shown"), &script).await;
        self.client.find(Locator::Css(&css)).await.unwrap()
    }

    async fn click(&self, id: &str) {
        self.click_in(id, "").await;
    }

    async fn click_in(&self, id: &str, extra: &str) {
        self.click_css(&format!("[data-testid=\"{id}\"]{extra}")).await;
    }

    /// Clicks the element `css` selects, once it is shown.
    async fn click_css(&self, css: &str) {
        let script =
            format!("const e = document.querySelector({css:?}); return !!e && e.getClientRects().length > 0");
        let started = Instant::now();
        loop {
            self.until(&format!("{css} is shown"), &script).await;
            let element = self.client.find(Locator::Css(css)).await.unwrap();
            match element.click().await {
                Ok(()) => return,
                // Drawn again between finding and clicking (a list reloaded): find it anew.
                Err(err) if err.is_stale_element_reference() && started.elapsed() < PATIENCE => {}
                Err(err) => panic!("clicking {css}: {err}"),
            }
        }
    }

    /// Selects all of the focused `input`'s text and types `text` over it (clearing through
    /// WebDriver would blur it, which saves a rename).
    async fn type_over(&self, input: &Element, text: &str) {
        let ctrl = char::from(fantoccini::key::Key::Control);
        input.send_keys(&format!("{ctrl}a{ctrl}{text}")).await.unwrap();
    }

    /// Replaces the text of the input `id` with `text`.
    async fn fill(&self, id: &str, text: &str) {
        let input = self.find(id, "").await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(name), png).unwrap();
    }

    /// Registers or logs in `name` through the form.
    async fn log_in(&self, name: &str, password: &str, register: bool) {
        self.until("the login form", "return !document.querySelector('#login').hidden").await;
        if register {
            self.click("register-toggle").await;
            self.until(
                "the form registers",
                "return document.querySelector('#login-title').textContent.includes('Create')",
            )
            .await;
        }
        self.fill("login-username", name).await;
        self.fill("login-password", password).await;
        self.click("login-submit").await;
    }

    /// Waits until the chat page has loaded the account's chats and opened one (or a new one):
    /// until then the page may still move the focus to the message box.
    async fn wait_for_app(&self) {
        self.until("the chat page", "return !document.querySelector('#app').hidden && document.querySelector('#app').dataset.ready === 'true'")
            .await;
    }

    /// The messages shown: role, id and text.
    async fn messages(&self) -> Vec<(String, String, String)> {
        let value = self
            .js("return [...document.querySelectorAll('[data-testid=message]')].map(m => \
                 [m.dataset.role, m.dataset.messageId, m.querySelector('.content')?.innerText ?? ''])")
            .await;
        serde_json::from_value(value).unwrap()
    }

    /// Types `text` into the chat and sends it.
    async fn send(&self, text: &str) {
        self.fill("chat-input", text).await;
        self.click("send").await;
    }

    /// Waits until no reply streams and the last message is a stored assistant reply; the
    /// messages then.
    async fn wait_for_reply(&self) -> Vec<(String, String, String)> {
        self.wait_for_reply_after("").await
    }

    /// [`Page::wait_for_reply`] for a reply other than the one with id `old`.
    async fn wait_for_reply_after(&self, old: &str) -> Vec<(String, String, String)> {
        let script = format!(
            "const all = [...document.querySelectorAll('[data-testid=message]')]; const last = all[all.length - 1]; \
             return !document.querySelector('[data-streaming=true]') && !!last && last.dataset.role === 'assistant' \
             && last.dataset.messageId !== '' && last.dataset.messageId !== {old:?}"
        );
        self.until("the reply is finished and stored", &script).await;
        self.messages().await
    }

    /// Sets the chat settings through the settings dialog.
    async fn settings(&self, max_tokens: u32, theme: &str) {
        self.click("settings-open").await;
        self.fill("settings-max-tokens", &max_tokens.to_string()).await;
        // A range input takes no keys: set it as a person dragging it would leave it.
        self.js("const r = document.querySelector('[data-testid=settings-temperature]'); r.value = 0; \
                 r.dispatchEvent(new Event('input'))")
            .await;
        self.client
            .find(Locator::Css(&format!("label:has([data-testid=\"theme-{theme}\"])")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.click("settings-save").await;
        self.until("the settings are closed", "return !document.querySelector('#settings-dialog').open")
            .await;
    }

    /// Sets the system prompt in the settings dialog and saves.
    async fn system_prompt(&self, text: &str) {
        self.click("settings-open").await;
        self.fill("settings-system", text).await;
        self.click("settings-save").await;
        self.until("the settings are closed", "return !document.querySelector('#settings-dialog').open")
            .await;
    }

    /// Flips the switch or chip whose (visually hidden) checkbox is `id`, as a person does: by
    /// its label; whether it is on then.
    async fn toggle(&self, id: &str) -> bool {
        let before = self.checked(id).await;
        self.click_css(&format!("label:has([data-testid=\"{id}\"])")).await;
        self.until(
            &format!("{id} flips"),
            &format!("return document.querySelector('[data-testid=\"{id}\"]').checked === {}", !before),
        )
        .await;
        !before
    }

    async fn checked(&self, id: &str) -> bool {
        self.js(&format!("return document.querySelector('[data-testid=\"{id}\"]').checked"))
            .await
            .as_bool()
            .unwrap()
    }

    /// Closes the dialog `id` with its close button.
    async fn close_dialog(&self, id: &str) {
        self.click_css(&format!("#{id} [data-close]")).await;
        self.until(&format!("#{id} is closed"), &format!("return !document.querySelector('#{id}').open"))
            .await;
    }

    /// The visible text of the first element `css` selects, once there is some.
    async fn text_of(&self, css: &str) -> String {
        let script = format!("return document.querySelector({css:?})?.innerText.trim()");
        self.until(&format!("{css} has text"), &script).await.as_str().unwrap().to_owned()
    }

    /// Starts a new chat and sends `text`; the chat's id once the reply is stored.
    async fn chat(&self, text: &str) -> String {
        self.click("new-chat").await;
        self.until("an empty chat", "return document.querySelectorAll('[data-testid=message]').length === 0")
            .await;
        self.send(text).await;
        self.wait_for_reply().await;
        self.current_session().await
    }

    /// The context report under the last reply.
    async fn last_report(&self) -> String {
        let script = "return [...document.querySelectorAll('[data-testid=message][data-role=assistant]')].pop()\
                      ?.querySelector('[data-testid=context-report]')?.innerText.trim()";
        self.until("the last reply's context report", script).await.as_str().unwrap().to_owned()
    }

    /// Logs out and waits for the login form.
    async fn log_out(&self) {
        self.click("logout").await;
        self.until("the login form", "return !document.querySelector('#login').hidden").await;
    }

    /// Screenshots at desktop and phone width, `name.png` and `name-phone.png`, with the
    /// element `css` scrolled into view.
    async fn screenshots(&self, name: &str, css: &str) {
        let show = format!("document.querySelector({css:?}).scrollIntoView({{ block: 'center' }})");
        self.js(&show).await;
        self.screenshot(&format!("{name}.png")).await;
        self.client.set_window_size(390, 844).await.unwrap();
        self.until("the phone layout", "return window.innerWidth < 500").await;
        self.js(&show).await;
        self.screenshot(&format!("{name}-phone.png")).await;
        self.client.set_window_size(1280, 860).await.unwrap();
        self.until("the desktop layout", "return window.innerWidth > 1000").await;
    }

    /// The id of the chat highlighted in the sidebar.
    async fn current_session(&self) -> String {
        let id = self
            .until(
                "a chat is highlighted",
                "return document.querySelector('[data-testid=session-item][aria-current=true]')?.dataset.sessionId",
            )
            .await;
        id.as_str().unwrap().to_owned()
    }

    async fn session_ids(&self) -> Vec<String> {
        let value =
            self.js("return [...document.querySelectorAll('[data-testid=session-item]')].map(s => s.dataset.sessionId)").await;
        serde_json::from_value(value).unwrap()
    }
}

/// The server's API as a program sees it, to check what the page did.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(base: &str) -> Self {
        Self { http: reqwest::Client::new(), base: base.to_owned() }
    }

    /// An access token of `username`.
    async fn log_in(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/auth/login",
                "",
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, token, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Polls `GET path` until `pick` finds `expected` in the answer (the page saves in the
    /// background).
    async fn wait_for(&self, path: &str, token: &str, pick: impl Fn(&Value) -> Value, expected: Value) {
        let started = Instant::now();
        loop {
            let got = pick(&self.get(path, token).await);
            if got == expected {
                return;
            }
            assert!(started.elapsed() < PATIENCE, "GET {path}: {got}, not {expected}, in time");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn status(&self, path: &str, token: &str) -> u16 {
        self.call(reqwest::Method::GET, path, token, None).await.0
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }
}

fn texts_of<'a>(messages: &'a [(String, String, String)], role: &str) -> Vec<&'a str> {
    messages.iter().filter(|(r, _, _)| r == role).map(|(_, _, t)| t.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// The scenarios

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_chats_remembers_and_stays_safe_in_the_web_page() {
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    // Two threads, as the conversation below was written against: greedy output depends on the
    // thread count in its last bits. The steps check what the page does with an answer, not
    // what the answer says; the counting request gets a chat of its own so that SmolLM2 has no
    // earlier short reply to copy.
    let Server { base, dir, .. } =
        serve_with(Setup { model: Some(common::load_smollm2(Some(2))), ..Setup::default() }).await;
    let driver = Driver::start(dir.path()).await;
    let profile = tempfile::tempdir().unwrap();
    let page = Page::open(&driver, profile.path(), &base).await;

    let started = Instant::now();
    let step = |name: &str| eprintln!("{:>6.1}s {name}", started.elapsed().as_secs_f32());
    first_load_is_small(&page).await;
    step("first load");
    let first = register_chat_and_reload(&page).await;
    step("register, chat, reload");
    let second = rename_second_chat_and_switch_back(&page, &first).await;
    step("rename, second chat, switch back");
    memory_panel_and_injection(&page).await;
    step("memory panel and injection");
    reload_mid_answer_then_stop(&page).await;
    step("reload mid-answer, stop");
    regenerate_and_edit(&page).await;
    step("regenerate, edit");
    delete_a_memory(&page).await;
    step("delete a memory");
    xss_runs_nothing(&page).await;
    step("XSS");
    looks(&page, &first).await;
    step("dark mode, phone width");
    wrong_password_and_other_users(&page, &[first, second]).await;
    step("wrong password, second user, logout");

    page.client.close().await.unwrap();
    drop(driver);
}

/// The first load, compressed, stays under 300 KB.
async fn first_load_is_small(page: &Page) {
    page.goto("/").await;
    page.until("the login form", "return !document.querySelector('#login').hidden").await;
    let bytes = page
        .js("return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')) \
             .reduce((sum, e) => sum + e.encodedBodySize, 0)")
        .await
        .as_u64()
        .unwrap();
    eprintln!("first load: {bytes} bytes over the wire");
    assert!(bytes > 10_000 && bytes < 300_000, "first load is {bytes} bytes");
}

/// Registers the first user (the admin), sends a message and sees it stream, reloads and
/// finds the chat with both messages; the chat's id.
async fn register_chat_and_reload(page: &Page) -> String {
    page.log_in("alice", "alice's password", true).await;
    page.wait_for_app().await;
    page.find("admin-open", "").await;
    page.settings(16, "light").await;

    // Short replies keep the test quick; a long one is watched growing in
    // `reload_mid_answer_then_stop`.
    page.send("Hello! Who are you?").await;
    let messages = page.wait_for_reply().await;
    let replies = texts_of(&messages, "assistant");
    assert_eq!(texts_of(&messages, "user"), ["Hello! Who are you?"]);
    assert!(!replies[0].trim().is_empty(), "{replies:?}");
    let report = page.find("context-report", "").await.text().await.unwrap();
    assert!(report.contains("used ·") && report.contains("summarized"), "{report}");
    let session = page.current_session().await;
    assert_eq!(page.session_ids().await, std::slice::from_ref(&session));

    page.client.refresh().await.unwrap();
    page.wait_for_app().await;
    page.until("the chat is back", "return document.querySelectorAll('[data-testid=message]').length === 2")
        .await;
    let reloaded = page.messages().await;
    assert_eq!(reloaded, messages, "the same messages after a reload");
    assert!(reloaded.iter().all(|(_, id, _)| !id.is_empty()));
    assert_eq!(page.current_session().await, session);
    session
}

/// Renames the chat, starts a second one, and switches back; the second chat's id.
async fn rename_second_chat_and_switch_back(page: &Page, first: &str) -> String {
    let item = format!("[data-session-id=\"{first}\"]");
    page.click_css(CURRENT_RENAME).await;
    let input = page.find("session-rename-input", "").await;
    page.type_over(&input, "Greetings\n").await;
    page.until(
        "the new title",
        &format!(
            "return document.querySelector('[data-testid=session-item]{item}').innerText.trim() === 'Greetings' \
             && document.querySelector('#chat-title').textContent === 'Greetings'"
        ),
    )
    .await;

    page.click("new-chat").await;
    page.until("an empty chat", "return document.querySelectorAll('[data-testid=message]').length === 0")
        .await;
    page.send("I'm allergic to peanuts.").await;
    let messages = page.wait_for_reply().await;
    assert_eq!(texts_of(&messages, "user"), ["I'm allergic to peanuts."]);
    let second = page.current_session().await;
    assert_ne!(second, first);
    assert_eq!(page.session_ids().await, [second.clone(), first.to_owned()], "newest first");

    page.click_in("session-item", &item).await;
    page.until(
        "the first chat again",
        "return [...document.querySelectorAll('[data-testid=message][data-role=user] .content')].map(m => m.innerText).join() \
         === 'Hello! Who are you?'",
    )
    .await;
    assert_eq!(page.current_session().await, first);
    second
}

/// The fact told in the second chat is in the memory panel, and a new chat uses it.
async fn memory_panel_and_injection(page: &Page) {
    page.click("memories-open").await;
    page.until(
        "the allergy in the memory panel",
        "return [...document.querySelectorAll('[data-testid=memory-item]')].some(m => m.innerText.includes('peanuts'))",
    )
    .await;
    page.fill("memory-new", "I live in Oslo.").await;
    page.click("memory-add").await;
    page.until(
        "the added memory",
        "return [...document.querySelectorAll('[data-testid=memory-item]')].some(m => m.innerText.includes('Oslo'))",
    )
    .await;
    page.screenshot("memory-panel.png").await;
    page.fill("memory-search", "peanut").await;
    page.until(
        "the search keeps only the allergy",
        "return document.querySelectorAll('[data-testid=memory-item]').length === 1",
    )
    .await;
    page.client.find(Locator::Css("#memories-dialog [data-close]")).await.unwrap().click().await.unwrap();

    page.click("new-chat").await;
    page.send("What should I cook tonight?").await;
    page.wait_for_reply().await;
    let report = page.find("context-report", "").await;
    let line = report.text().await.unwrap();
    assert!(!line.starts_with("0 memories"), "a memory is used: {line}");
    report.click().await.unwrap();
    let shown = page.find("context-memory", "").await;
    let used = page
        .js("return [...document.querySelectorAll('[data-testid=context-memory]')].map(m => m.innerText).join('\\n')")
        .await;
    assert!(used.as_str().unwrap().contains("peanuts"), "the report names the allergy: {used}");
    drop(shown);
    page.screenshot("chat.png").await;
}

/// A long answer goes on across a reload, shows up again streaming, and stops on request.
async fn reload_mid_answer_then_stop(page: &Page) {
    // Long enough that the stop lands mid-answer on a quiet machine too (~90 tokens/s).
    page.settings(1500, "light").await;
    // A chat of its own: with an earlier short reply in the context, SmolLM2 sometimes answers
    // by copying that reply and stopping, and there is nothing left to follow after the reload.
    page.click("new-chat").await;
    page.until("an empty chat", "return document.querySelectorAll('[data-testid=message]').length === 0")
        .await;
    page.send(COUNTING).await;
    let session = page.current_session().await;
    page.until(
        "the count starts",
        "return document.querySelector('[data-streaming=true] .content')?.innerText.trim().length > 0",
    )
    .await;
    page.client.refresh().await.unwrap();
    page.wait_for_app().await;
    let followed = page
        .until(
            "the answer continues after the reload",
            "return document.querySelector('[data-testid=message][data-streaming=true] .content')?.innerText.trim()",
        )
        .await;
    assert_eq!(page.current_session().await, session);
    let followed = followed.as_str().unwrap();
    // The rendered text changes, not always grows: a Markdown list renders "1. 1\n2. 2\n3" as
    // three items and "1. 1\n2. 2\n3." as two and an empty one.
    page.until(
        "the answer goes on piece by piece",
        &format!(
            "const now = document.querySelector('[data-testid=message][data-streaming=true] .content')?.innerText.trim(); \
             return now !== undefined && now !== {followed:?}"
        ),
    )
    .await;
    page.click("stop").await;
    let messages = page.wait_for_reply().await;
    let (_, _, stopped) = messages.last().unwrap();
    assert!(!stopped.trim().is_empty(), "what was written before the stop is kept: {messages:?}");
    assert_eq!(texts_of(&messages, "user"), [COUNTING]);
    assert_eq!(messages.len(), 2);
    let note = page
        .js("return [...document.querySelectorAll('[data-role=assistant]')].pop() \
             .querySelector('[data-testid=finish-note]')?.innerText")
        .await;
    assert_eq!(note, "Stopped");
    page.settings(12, "light").await;
}

/// Regenerate replaces the last reply; editing a question answers it again.
async fn regenerate_and_edit(page: &Page) {
    let before = page.messages().await;
    page.click("regenerate").await;
    let (last, kept) = before.split_last().unwrap();
    let after = page.wait_for_reply_after(&last.1).await;
    assert_eq!(after.len(), before.len());
    assert_eq!(after[..kept.len()], *kept, "only the last reply changes");
    assert_ne!(after.last().unwrap().1, last.1, "a new reply");

    page.click_in("message-edit", "").await; // the first question
    let input = page.find("message-edit-input", "").await;
    page.type_over(&input, "What should I cook for lunch?").await;
    page.click("message-edit-save").await;
    let edited = page.wait_for_reply_after(&after.last().unwrap().1).await;
    assert_eq!(texts_of(&edited, "user"), ["What should I cook for lunch?"], "what followed is replaced");
    assert_eq!(edited.len(), 2);
}

async fn delete_a_memory(page: &Page) {
    page.click("memories-open").await;
    let allergy = page
        .until(
            "the allergy in the memory panel",
            "return [...document.querySelectorAll('[data-testid=memory-item]')] \
             .find(m => m.innerText.includes('peanuts'))?.dataset.memoryId",
        )
        .await;
    let allergy = allergy.as_str().unwrap();
    page.click_css(&format!("[data-memory-id=\"{allergy}\"] [data-testid=memory-delete]")).await;
    page.until(
        "the allergy is gone",
        "return ![...document.querySelectorAll('[data-testid=memory-item]')].some(m => m.innerText.includes('peanuts'))",
    )
    .await;
    page.client.find(Locator::Css("#memories-dialog [data-close]")).await.unwrap().click().await.unwrap();
}

/// Messages, titles and Markdown holding script show as text and run nothing.
async fn xss_runs_nothing(page: &Page) {
    page.click("new-chat").await;
    page.send(XSS).await;
    let messages = page.wait_for_reply().await;
    assert_eq!(texts_of(&messages, "user"), [XSS], "the message shows as the text it is");

    page.click_css(CURRENT_RENAME).await;
    let input = page.find("session-rename-input", "").await;
    page.type_over(&input, &format!("{XSS}\n")).await;
    page.until(
        "the title shows as text",
        "return document.querySelector('#chat-title').textContent.includes('<script>')",
    )
    .await;

    // The renderer the replies go through, on Markdown that tries everything.
    page.js(
        "const probe = document.createElement('div'); probe.id = 'xss-probe'; \
         probe.innerHTML = window.modelforge.renderMarkdown(\
           '<img src=x onerror=\"window.__xss = 3\">\\n\\n[a](javascript:window.__xss=4) ![b](x\" onerror=\"window.__xss=5)\\n\\n<script>window.__xss = 6</script>'); \
         document.body.append(probe); \
         const control = new Image(); control.onerror = () => { window.__control = true; }; control.src = '/no-such-image';",
    )
    .await;
    // The control image fails the way an injected one would: by then any handler has run.
    page.until("the control image fails", "return window.__control === true").await;
    let verdict = page
        .js("return { flag: window.__xss ?? null, \
                      handlers: document.querySelectorAll('[onerror], script:not([src])').length, \
                      js_links: document.querySelectorAll('a[href^=\"javascript\"]').length, \
                      probe_text: document.querySelector('#xss-probe').innerText }")
        .await;
    assert_eq!(verdict["flag"], Value::Null, "{verdict}");
    assert_eq!((&verdict["handlers"], &verdict["js_links"]), (&json!(0), &json!(0)), "{verdict}");
    assert!(
        verdict["probe_text"].as_str().unwrap().contains("<script>"),
        "raw HTML shows as text: {verdict}"
    );
    page.js("document.querySelector('#xss-probe').remove()").await;

    // Deleting asks first.
    let doomed = page.current_session().await;
    page.click_css("[data-testid=session-item][aria-current=true] [data-testid=session-delete]").await;
    page.click("confirm-ok").await;
    page.until(
        "the chat is deleted",
        &format!("return !document.querySelector('[data-session-id=\"{doomed}\"]')"),
    )
    .await;
}

/// Screenshots in dark mode and at phone width.
async fn looks(page: &Page, first: &str) {
    page.settings(12, "dark").await;
    page.click_in("session-item", &format!("[data-session-id=\"{first}\"]")).await;
    page.until("the first chat", "return document.querySelectorAll('[data-testid=message]').length === 2")
        .await;
    let background = page.js("return getComputedStyle(document.body).backgroundColor").await;
    assert_eq!(background, "rgb(22, 22, 27)", "dark mode is dark");
    page.screenshot("chat-dark.png").await;
    page.client.set_window_size(390, 844).await.unwrap();
    page.until(
        "the phone layout with the sidebar tucked away",
        "return getComputedStyle(document.querySelector('#sidebar-open')).display !== 'none' \
         && document.querySelector('#sidebar').getBoundingClientRect().right <= 0",
    )
    .await;
    page.screenshot("chat-phone.png").await;
    page.client.set_window_size(1280, 860).await.unwrap();
    page.settings(12, "light").await;
}

/// Logging out, a wrong password, and a second user who sees none of the first one's chats.
async fn wrong_password_and_other_users(page: &Page, alices: &[String]) {
    assert_eq!(alices.len(), 2);
    page.click("logout").await;
    page.log_in("alice", "not alice's password", false).await;
    let banner = page.find("error-banner", "").await.text().await.unwrap();
    assert!(banner.contains("Wrong username or password"), "{banner}");
    assert!(page.js("return document.querySelector('#app').hidden").await.as_bool().unwrap());

    page.log_in("bob", "bob's password", true).await;
    page.wait_for_app().await;
    page.until("bob's empty sidebar", "return !!document.querySelector('#session-list .empty-list')").await;
    assert!(page.session_ids().await.is_empty(), "bob sees none of alice's chats");
    assert!(
        page.js("return document.querySelector('[data-testid=admin-open]').hidden").await.as_bool().unwrap()
    );
    page.fill("session-search", "peanuts").await;
    page.until(
        "bob's search finds nothing",
        "return document.querySelector('#session-list .empty-list')?.innerText === 'No chats match.'",
    )
    .await;
    for id in alices {
        assert!(
            page.js(&format!("return !document.querySelector('[data-session-id=\"{id}\"]')"))
                .await
                .as_bool()
                .unwrap()
        );
    }
    page.click("logout").await;
    page.until("the login form", "return !document.querySelector('#login').hidden").await;
    assert!(
        page.js("return localStorage.getItem('modelforge.refresh')").await.is_null(),
        "logged out for good"
    );
}

// ---------------------------------------------------------------------------------------------
// An admin and their accounts

const ADA: (&str, &str) = ("ada", "ada's long password");
const BOB: (&str, &str) = ("bob", "bob's long password");
const ADA_PROMPT: &str = "You are Ada's assistant. Answer in one short sentence.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_runs_the_server_and_people_their_accounts_in_the_web_page() {
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let hub = HubServer::start();
    let search = WebServer::start();
    search.set_results(&[web::TIDES, web::CHINESE]);
    let setup = Setup { hub: Some(hub.url()), search_url: Some(search.url()), ..Setup::default() };
    let server = serve_with(setup).await;
    let driver = Driver::start(server.dir.path()).await;
    let profile = tempfile::tempdir().unwrap();
    let page = Page::open(&driver, profile.path(), &server.base).await;
    let api = Api::new(&server.base);

    let started = Instant::now();
    let step = |name: &str| eprintln!("{:>6.1}s {name}", started.elapsed().as_secs_f32());
    page.goto("/").await;
    page.log_in(ADA.0, ADA.1, true).await;
    page.wait_for_app().await;
    page.settings(16, "light").await;
    page.system_prompt(ADA_PROMPT).await;
    let ada = api.log_in(ADA.0, ADA.1).await;
    step("ada registers");
    api_keys_are_shown_once_and_revoked(&page, &api).await;
    step("API keys");
    pin_and_archive(&page, &api, &ada).await;
    step("pin, archive");
    edit_a_memory_and_switch_memory_off(&page, &api, &ada).await;
    step("edit a memory, memory off");
    a_temporary_chat_learns_nothing(&page, &api, &ada).await;
    step("temporary chat");
    web_search_cites_its_sources(&page, &search).await;
    step("web search sources");
    pull_pick_and_delete_a_model(&page, &api, &ada, &server).await;
    step("pull, pick, delete a model");
    settings_belong_to_each_account(&page).await;
    step("settings per account");
    admin_disables_users_and_closes_registration(&page, &api, &ada).await;
    step("users, roles, registration");

    page.client.close().await.unwrap();
    drop(driver);
    drop(hub);
}

/// A key is shown once, works on `/v1`, and stops working when revoked in the page.
async fn api_keys_are_shown_once_and_revoked(page: &Page, api: &Api) {
    page.click("settings-open").await;
    page.until("no keys yet", "return document.querySelector('#key-list').innerText.includes('No API keys')")
        .await;
    page.fill("key-name", "laptop").await;
    page.click("key-create").await;
    let secret = page.text_of("[data-testid=key-secret]").await;
    page.until(
        "the new key in the list",
        "return [...document.querySelectorAll('[data-testid=key-item]')].some(k => k.innerText.includes('laptop'))",
    )
    .await;
    let listed = page.js("return document.querySelector('[data-testid=key-item]').innerText").await;
    let listed = listed.as_str().unwrap();
    assert!(!listed.contains(&secret), "the list never shows the whole key: {listed}");
    page.click("key-copy").await;
    page.until(
        "the key is copied",
        "return document.querySelector('[data-testid=key-copy]').innerText === 'Copied'",
    )
    .await;
    page.screenshots("settings-key", "#new-key").await;

    let models = api.get("/v1/models", &secret).await;
    assert_eq!(models["data"][0]["id"], "smollm2", "the key works: {models}");

    page.close_dialog("settings-dialog").await;
    page.click("settings-open").await;
    page.until("the key list again", "return !!document.querySelector('[data-testid=key-item]')").await;
    let shown = page
        .js("return { hidden: document.querySelector('#new-key').hidden, \
                      text: document.querySelector('[data-testid=key-secret]').textContent, \
                      html: document.documentElement.outerHTML }")
        .await;
    assert_eq!(shown["hidden"], true, "the key is shown once");
    assert_eq!(shown["text"], "", "the key is shown once");
    assert!(!shown["html"].as_str().unwrap().contains(&secret), "the key is nowhere in the page");

    page.click("key-revoke").await;
    page.click("confirm-ok").await;
    page.until(
        "the key is revoked",
        "return document.querySelector('#key-list').innerText.includes('No API keys')",
    )
    .await;
    assert_eq!(api.status("/v1/models", &secret).await, 401, "a revoked key is refused");
    page.close_dialog("settings-dialog").await;
}

/// A pinned chat sorts first; an archived one leaves the list, shows among the archived and
/// comes back.
async fn pin_and_archive(page: &Page, api: &Api, token: &str) {
    let first = page.chat("Hello there!").await;
    let second = page.chat("Tell me a joke.").await;
    assert_eq!(page.session_ids().await, [second.clone(), first.clone()], "newest first");

    page.click_in("session-item", &format!("[data-session-id=\"{first}\"]")).await;
    page.until(
        "the first chat is open",
        &format!("return document.querySelector('[aria-current=true]')?.dataset.sessionId === {first:?}"),
    )
    .await;
    page.click_css(&format!("[data-session-id=\"{first}\"] [data-testid=session-pin]")).await;
    page.until(
        "the pinned chat first",
        &format!(
            "return document.querySelector('[data-testid=session-item]')?.dataset.sessionId === {first:?}"
        ),
    )
    .await;
    assert_eq!(page.session_ids().await, [first.clone(), second.clone()]);
    let groups =
        page.js("return [...document.querySelectorAll('.session-group')].map(g => g.innerText)").await;
    assert_eq!(groups, json!(["PINNED", "RECENT"]), "{groups}");
    assert_eq!(api.get(&format!("/api/sessions/{first}"), token).await["pinned"], true);

    page.click_in("session-item", &format!("[data-session-id=\"{second}\"]")).await;
    page.until(
        "the second chat is open",
        &format!("return document.querySelector('[aria-current=true]')?.dataset.sessionId === {second:?}"),
    )
    .await;
    page.click_css(&format!("[data-session-id=\"{second}\"] [data-testid=session-archive]")).await;
    page.until(
        "the archived chat leaves the list",
        &format!("return !document.querySelector('[data-session-id=\"{second}\"]')"),
    )
    .await;
    assert_eq!(page.session_ids().await, std::slice::from_ref(&first));
    assert_eq!(api.get(&format!("/api/sessions/{second}"), token).await["archived"], true);

    page.click("archived-toggle").await;
    page.until(
        "the archived chats",
        &format!(
            "return document.querySelector('[data-testid=archived-toggle]').innerText === 'Back to chats' \
         && !!document.querySelector('[data-session-id=\"{second}\"]')"
        ),
    )
    .await;
    assert_eq!(page.session_ids().await, std::slice::from_ref(&second), "only the archived chat");
    page.click_in("session-item", &format!("[data-session-id=\"{second}\"]")).await;
    page.click_css(&format!("[data-session-id=\"{second}\"] [data-testid=session-archive][title=Unarchive]"))
        .await;
    page.until(
        "no archived chats left",
        "return document.querySelector('#session-list .empty-list')?.innerText === 'No archived chats.'",
    )
    .await;
    page.click("archived-toggle").await;
    page.until(
        "both chats again",
        "return document.querySelectorAll('[data-testid=session-item]').length === 2",
    )
    .await;
    assert_eq!(page.session_ids().await, [first.clone(), second.clone()], "the pinned one still first");
    assert_eq!(api.get(&format!("/api/sessions/{second}"), token).await["archived"], false);

    // Unpinned, the newest is first again.
    page.click_in("session-item", &format!("[data-session-id=\"{first}\"]")).await;
    page.click_css(&format!("[data-session-id=\"{first}\"] [data-testid=session-pin][title=Unpin]")).await;
    page.until(
        "the pin is gone",
        &format!(
            "return document.querySelector('[data-testid=session-item]')?.dataset.sessionId === {second:?}"
        ),
    )
    .await;
}

/// A memory edited in the panel changes on the server; with memory off a new chat uses none.
async fn edit_a_memory_and_switch_memory_off(page: &Page, api: &Api, token: &str) {
    page.click("memories-open").await;
    page.fill("memory-new", "I live in Oslo.").await;
    page.click("memory-add").await;
    let id = page
        .until(
            "the added memory",
            "return [...document.querySelectorAll('[data-testid=memory-item]')] \
             .find(m => m.innerText.includes('Oslo'))?.dataset.memoryId",
        )
        .await;
    let id = id.as_str().unwrap().to_owned();
    page.click_css(&format!("[data-memory-id=\"{id}\"] [data-testid=memory-edit]")).await;
    let input = page.find("memory-edit-input", "").await;
    page.type_over(&input, "I live in Bergen.").await;
    page.click("memory-save").await;
    page.until(
        "the edited memory",
        &format!("return document.querySelector('[data-memory-id=\"{id}\"]')?.innerText.includes('Bergen')"),
    )
    .await;
    let memories = api.get("/api/memories", token).await;
    let edited = memories["data"].as_array().unwrap().iter().find(|m| m["id"] == id.as_str()).unwrap();
    assert_eq!(edited["content"], "I live in Bergen.", "{memories}");

    assert!(page.checked("memory-enabled").await, "memory is on for a new account");
    assert!(!page.toggle("memory-enabled").await);
    api.wait_for("/api/memories/settings", token, |s| s["enabled"].clone(), json!(false)).await;
    page.close_dialog("memories-dialog").await;

    page.chat("Where do I live?").await;
    let report = page.last_report().await;
    assert!(report.starts_with("0 memories used"), "memory is off: {report}");
    assert!(!api.get("/api/memories", token).await["data"].as_array().unwrap().is_empty(), "memories exist");

    page.click("memories-open").await;
    page.until(
        "the switch shows memory off",
        "return document.querySelector('[data-testid=memory-enabled]').checked === false",
    )
    .await;
    assert!(page.toggle("memory-enabled").await);
    page.until("memory is on again", "return document.querySelector('[data-testid=memory-enabled]').checked")
        .await;
    page.close_dialog("memories-dialog").await;
    api.wait_for("/api/memories/settings", token, |s| s["enabled"].clone(), json!(true)).await;
}

/// A temporary chat is kept with its messages, but neither uses nor learns memories.
async fn a_temporary_chat_learns_nothing(page: &Page, api: &Api, token: &str) {
    page.click("new-chat").await;
    assert!(page.toggle("temporary-toggle").await);
    page.until("the temporary note", "return !document.querySelector('#temporary-note').hidden").await;
    page.send("Where do I live? I'm allergic to shellfish.").await;
    page.wait_for_reply().await;
    let session = page.current_session().await;
    let report = page.last_report().await;
    assert!(report.starts_with("0 memories used"), "a temporary chat uses no memory: {report}");
    assert!(
        page.js("return !document.querySelector('[data-testid=memory-learned]')").await.as_bool().unwrap(),
        "nothing is remembered"
    );
    assert!(page.checked("temporary-toggle").await);
    let stored = api.get(&format!("/api/sessions/{session}"), token).await;
    assert_eq!(
        (stored["temporary"].clone(), stored["message_count"].clone()),
        (json!(true), json!(2)),
        "{stored}"
    );
    let memories = api.get("/api/memories", token).await.to_string();
    assert!(!memories.contains("shellfish"), "nothing learned: {memories}");

    // A new chat is an ordinary one again, and it does use the memories.
    page.chat("Where do I live?").await;
    assert!(!page.checked("temporary-toggle").await);
    let report = page.last_report().await;
    assert!(!report.starts_with("0 memories"), "an ordinary chat uses them: {report}");
}

/// With web search on, the sources are listed under the answer: numbered, titled links to
/// the pages, still there after a reload.
async fn web_search_cites_its_sources(page: &Page, search: &WebServer) {
    page.click("new-chat").await;
    assert!(page.toggle("web-toggle").await);
    page.send("What causes tides?").await;
    page.wait_for_reply().await;
    let script = "const last = [...document.querySelectorAll('[data-testid=message][data-role=assistant]')].pop(); \
                  const list = last?.querySelector('[data-testid=sources]'); \
                  return list && [...list.querySelectorAll('li')].map(li => ({ n: li.value, title: li.innerText.trim(), \
                    href: li.querySelector('a').href, target: li.querySelector('a').target, rel: li.querySelector('a').rel }))";
    let sources = page.until("the sources under the answer", script).await;
    let sources = sources.as_array().unwrap();
    for (i, source) in sources.iter().enumerate() {
        assert_eq!(source["n"], i + 1, "numbered: {sources:?}");
        let href = source["href"].as_str().unwrap();
        assert!(
            href.starts_with(&format!("{}/pages/", search.url())),
            "a link to the page read: {sources:?}"
        );
        assert_eq!((&source["target"], &source["rel"]), (&json!("_blank"), &json!("noopener noreferrer")));
    }
    let tides = json!({"n": sources.iter().position(|s| s["href"] == search.page_url(web::TIDES)).map(|i| i + 1),
                       "title": "What causes tides? | Ocean Facts", "href": search.page_url(web::TIDES),
                       "target": "_blank", "rel": "noopener noreferrer"});
    assert!(sources.contains(&tides), "the tides page, titled: {sources:?}");
    assert!(search.requests().iter().any(|r| r.starts_with("GET /search?q=")));
    page.screenshot("chat-sources.png").await;

    page.client.refresh().await.unwrap();
    page.wait_for_app().await;
    page.until("the sources after a reload", script).await;
    if page.checked("web-toggle").await {
        page.toggle("web-toggle").await;
    }
}

/// An admin pulls a model from the Hub watching the progress bar; it is in the model picker,
/// a chat switched to it answers with it; deleted, it is gone.
async fn pull_pick_and_delete_a_model(page: &Page, api: &Api, token: &str, server: &Server) {
    let pulled = format!("{SMOL_REPO}:Q4_1");
    page.click("admin-open").await;
    page.find("admin-model", "[data-model=smollm2]").await;
    assert!(
        page.js("return !document.querySelector('[data-model=smollm2] [data-testid=model-delete]')")
            .await
            .as_bool()
            .unwrap(),
        "a model given to the server is not the page's to delete"
    );
    // Every width the bar takes, however quickly the next one follows.
    page.js("const bar = document.querySelector('[data-testid=pull-progress]'); window.__widths = []; \
             new MutationObserver((records) => { for (const r of records) window.__widths.push(r.oldValue ?? ''); }) \
               .observe(bar, { attributes: true, attributeFilter: ['style'], attributeOldValue: true })")
        .await;
    page.fill("model-ref", SMOL_REPO).await;
    page.click("model-pull").await;
    let status = page
        .until(
            "the pull is done",
            "const s = document.querySelector('#pull-status').innerText; return s.startsWith('Pulled') && s",
        )
        .await;
    assert!(status.as_str().unwrap().contains(&pulled), "{status}");
    let widths = page.js("return window.__widths.concat([document.querySelector('[data-testid=pull-progress]').style.width])").await;
    let widths: Vec<String> = serde_json::from_value(widths).unwrap();
    // Old values are style attributes ("width: 37.5%;"), the last one a width ("100%").
    let shares: Vec<f64> = widths
        .iter()
        .filter_map(|w| {
            w.trim_start_matches("width:").trim().trim_end_matches(';').trim_end_matches('%').parse().ok()
        })
        .collect();
    assert_eq!(shares.last(), Some(&100.0), "{widths:?}");
    assert!(shares.iter().any(|&s| s > 0.0 && s < 100.0), "the bar moves through the download: {widths:?}");
    assert!(shares.windows(2).all(|w| w[0] <= w[1]), "and only forward: {widths:?}");
    page.find("admin-model", &format!("[data-model=\"{pulled}\"]")).await;
    assert!(page.js("return document.querySelector('[data-testid=model-ref]').value").await == "");
    let models = api.get("/api/models", token).await.to_string();
    assert!(models.contains(&pulled), "{models}");
    page.screenshots("admin-models", "#pull-form").await;
    page.close_dialog("admin-dialog").await;

    // The picker offers it; picking it moves the open chat to it.
    let session = page.chat("Hi!").await;
    let options = page
        .js("return [...document.querySelector('[data-testid=model-picker]').options].map(o => o.value)")
        .await;
    assert_eq!(options, json!(["smollm2", pulled]), "{options}");
    page.find("model-picker", "").await.select_by_value(&pulled).await.unwrap();
    let path = format!("/api/sessions/{session}");
    api.wait_for(&path, token, |s| s["model"].clone(), json!(pulled)).await;
    let before = page.messages().await;
    page.send("Say hello.").await;
    page.until(
        "the reply streams",
        "return document.querySelector('[data-streaming=true] .content')?.innerText.trim().length > 0",
    )
    .await;
    let after = page.wait_for_reply_after(&before.last().unwrap().1).await;
    assert_eq!(after.len(), 4);
    assert!(!after[3].2.trim().is_empty());
    let models = api.get("/api/models", token).await;
    let entry = models["data"].as_array().unwrap().iter().find(|m| m["name"] == pulled.as_str()).unwrap();
    assert_eq!(entry["loaded"], true, "the pulled model answered: {models}");
    page.client.refresh().await.unwrap();
    page.wait_for_app().await;
    page.until(
        "the picker shows the chat's model after a reload",
        &format!("return document.querySelector('[data-testid=model-picker]').value === {pulled:?}"),
    )
    .await;

    // Deleted, it leaves the server, the list and the picker.
    page.click("admin-open").await;
    page.click_css(&format!("[data-model=\"{pulled}\"] [data-testid=model-delete]")).await;
    page.click("confirm-ok").await;
    page.until(
        "the model is deleted",
        &format!("return !document.querySelector('[data-model=\"{pulled}\"]')"),
    )
    .await;
    let models = api.get("/api/models", token).await.to_string();
    assert!(!models.contains(&pulled), "{models}");
    let cached = walk(&server.dir.path().join("hub-cache"));
    let big: Vec<_> =
        cached.iter().filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 1 << 20)).collect();
    assert!(big.is_empty(), "the file is deleted: {big:?}");
    page.close_dialog("admin-dialog").await;
    let picker = page
        .js("return [...document.querySelector('[data-testid=model-picker]').options] \
                          .map(o => [o.value, o.disabled, o.selected])")
        .await;
    assert_eq!(
        picker,
        json!([["smollm2", false, false], [pulled, true, true]]),
        "the chat's model is gone: {picker}"
    );
    page.find("model-picker", "").await.select_by_value("smollm2").await.unwrap();
    api.wait_for(&path, token, |s| s["model"].clone(), Value::Null).await; // the server's default
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { found.extend(walk(&path)) } else { found.push(path) }
    }
    found
}

/// Someone else logging in on the same browser gets their own settings, not the last person's.
async fn settings_belong_to_each_account(page: &Page) {
    page.log_out().await;
    page.log_in(BOB.0, BOB.1, true).await;
    page.wait_for_app().await;
    page.click("settings-open").await;
    let shown = page
        .js("return { system: document.querySelector('[data-testid=settings-system]').value, \
                      max: document.querySelector('[data-testid=settings-max-tokens]').value, \
                      theme: document.querySelector('input[name=theme]:checked').value }")
        .await;
    assert_eq!(
        shown,
        json!({"system": "", "max": "1024", "theme": "system"}),
        "bob starts with the defaults"
    );
    page.close_dialog("settings-dialog").await;
    page.system_prompt("You are Bob's assistant.").await;
    let kept = page
        .js("return Object.keys(localStorage).filter(k => k.startsWith('modelforge.settings')).sort()")
        .await;
    assert_eq!(kept.as_array().unwrap().len(), 2, "one set per account: {kept}");

    page.log_out().await;
    page.log_in(ADA.0, ADA.1, false).await;
    page.wait_for_app().await;
    page.click("settings-open").await;
    let shown = page
        .js("return { system: document.querySelector('[data-testid=settings-system]').value, \
                      max: document.querySelector('[data-testid=settings-max-tokens]').value }")
        .await;
    assert_eq!(shown, json!({"system": ADA_PROMPT, "max": "16"}), "ada's own settings");
    page.close_dialog("settings-dialog").await;
}

/// Roles, disabling and registration in the admin panel, and what people see at login.
async fn admin_disables_users_and_closes_registration(page: &Page, api: &Api, token: &str) {
    let users = api.get("/api/admin/users", token).await;
    let bob =
        users["data"].as_array().unwrap().iter().find(|u| u["username"] == BOB.0).unwrap()["id"].clone();
    let bob = bob.as_str().unwrap().to_owned();
    let bob_field = |field: &'static str| {
        let bob = bob.clone();
        move |users: &Value| {
            users["data"].as_array().unwrap().iter().find(|u| u["id"] == bob.as_str()).unwrap()[field].clone()
        }
    };
    let item = format!("[data-testid=user-item][data-user-id=\"{bob}\"]");

    page.click("admin-open").await;
    for role in ["admin", "user"] {
        // The list is drawn again once the change is saved: the old row is marked to tell.
        page.find("user-role", &format!("[aria-label='Role of {}']", BOB.0)).await;
        page.js(&format!("document.querySelector('{item}').dataset.old = 'yes'")).await;
        let select =
            page.client.find(Locator::Css(&format!("{item} [data-testid=user-role]"))).await.unwrap();
        select.select_by_value(role).await.unwrap();
        api.wait_for("/api/admin/users", token, bob_field("role"), json!(role)).await;
        page.until(
            "the list drawn again",
            &format!("const i = document.querySelector('{item}'); return !!i && !i.dataset.old && i.querySelector('select').value === '{role}'"),
        )
        .await;
    }

    page.click_css(&format!("{item} [data-testid=user-disable]")).await;
    page.until(
        "bob is disabled",
        &format!("return document.querySelector('{item}')?.innerText.includes('disabled')"),
    )
    .await;
    api.wait_for("/api/admin/users", token, bob_field("disabled"), json!(true)).await;
    assert!(page.checked("registration-open").await);
    assert!(!page.toggle("registration-open").await);
    api.wait_for("/api/admin/settings", token, |s| s["registration_open"].clone(), json!(false)).await;
    page.screenshots("admin", "#user-list").await;
    page.close_dialog("admin-dialog").await;

    page.log_out().await;
    page.log_in(BOB.0, BOB.1, false).await;
    let banner = page.text_of("[data-testid=error-banner]:not([hidden]) .banner-text").await;
    assert_eq!(banner, "This account is disabled: ask an admin.");
    assert!(page.js("return document.querySelector('#app').hidden").await.as_bool().unwrap());
    page.log_in("carol", "carol's long password", true).await;
    page.until("the closed registration", "return document.querySelector('[data-testid=error-banner] .banner-text').innerText.includes('Registration is closed')").await;
    let banner = page.text_of("[data-testid=error-banner] .banner-text").await;
    assert_eq!(banner, "Registration is closed on this server: ask an admin for an account.");
    page.screenshot("login-closed.png").await;

    // Enabled again, bob is back in.
    page.click("register-toggle").await;
    page.log_in(ADA.0, ADA.1, false).await;
    page.wait_for_app().await;
    page.click("admin-open").await;
    page.click_css(&format!("{item} [data-testid=user-disable]")).await;
    page.until(
        "bob is enabled",
        &format!("return !document.querySelector('{item}')?.innerText.includes('disabled')"),
    )
    .await;
    assert!(page.toggle("registration-open").await);
    page.close_dialog("admin-dialog").await;
    page.log_out().await;
    page.log_in(BOB.0, BOB.1, false).await;
    page.wait_for_app().await;
    page.log_out().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_embedded_compressed_cached_and_locked_down() {
    let Server { base, dir: _dir, .. } = serve().await;
    let http = reqwest::Client::new();
    let page = http.get(format!("{base}/")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(headers["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    let etag = headers["etag"].clone();
    let again = http.get(format!("{base}/")).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(again.status(), 304, "a reload revalidates");

    let script = http.get(format!("{base}/assets/app.js")).send().await.unwrap();
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.text().await.unwrap().contains("data-testid"));
    let missing = http.get(format!("{base}/assets/nothing.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "the one error shape: {body}");
}
