//! The web page at `/` in a real browser: headless Chromium driven through WebDriver
//! (`chromedriver`, started here on a free port) against the real server on `127.0.0.1:0`
//! with SmolLM2. One server and one browser serve every scenario, run as steps of one test,
//! so the file takes a couple of minutes on two cores.
//!
//! Elements are found by their `data-testid` (the page's stable hooks), and every wait polls a
//! condition with a bound; nothing sleeps a fixed time. Screenshots of the chat (light, dark,
//! phone width) and of the memory panel land in `$CARGO_TARGET_DIR/screenshots`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); without them
//! the test fails and says so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use modelforge_core::{CachedModel, LoadOptions, LoadedModel, ModelFormat, SessionStore};
use modelforge_examples::server::{AppState, ModelPool, app};
use modelforge_examples::setup;
use modelforge_memory::{ChatOptions, Conversation, MemoryBank};
use modelforge_store::{SqliteStore, StoreOptions};
use serde_json::{Value, json};

/// The longest any one wait may take before a test fails.
const PATIENCE: Duration = Duration::from_secs(90);
/// A prompt SmolLM2 answers at length, for replies still running when the test acts.
const COUNTING: &str = "Count from 1 to 300, separated by commas.";
/// Messages that would run script if the page put them into the DOM as HTML.
const XSS: &str = "<img src=x onerror=\"window.__xss = 1\"> and <script>window.__xss = 2</script>";
/// The rename button of the highlighted chat.
const CURRENT_RENAME: &str = "[data-testid=session-item][aria-current=true] [data-testid=session-rename]";

// ---------------------------------------------------------------------------------------------
// The server

fn model() -> Arc<dyn LoadedModel> {
    static MODEL: OnceLock<Arc<dyn LoadedModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = modelforge_testkit::smollm2_gguf();
            let options = LoadOptions { context_length: Some(2048), ..LoadOptions::default() };
            setup::load_model(Path::new("."), path.to_str().unwrap(), &options, Default::default()).unwrap()
        })
        .clone()
}

/// The app on `127.0.0.1:0` over a fresh SQLite store; its base URL and the directory to keep.
async fn serve() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::with_secret(b"web-ui-tests-secret-0123456789abcdef".to_vec());
    let store: Arc<dyn SessionStore> =
        Arc::new(SqliteStore::open(&dir.path().join("modelforge.db"), options).unwrap());
    let model = tokio::task::block_in_place(model);
    let path = modelforge_testkit::smollm2_gguf();
    let served = CachedModel {
        name: "smollm2".into(),
        size_bytes: std::fs::metadata(&path).unwrap().len(),
        path,
        format: ModelFormat::Gguf,
        quantization: Some("Q4_1".into()),
    };
    let pool = ModelPool::new(
        dir.path().to_owned(),
        vec![served],
        "smollm2".into(),
        LoadOptions::default(),
        Default::default(),
        1,
    );
    pool.insert("smollm2", Arc::clone(&model));
    let memory = Arc::new(MemoryBank::new(store.clone(), None));
    let chat = Conversation::new(model, store.clone(), store.clone(), Arc::clone(&memory))
        .with_options(ChatOptions::default().with_system_prompt("You are a helpful assistant. Be brief."));
    let state = AppState::new(store, Arc::new(pool), memory, chat);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(state)).await.unwrap() });
    (format!("http://{addr}"), dir)
}

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
                panic!("{what}: not in time. The page says:\n{}", state.as_str().unwrap_or_default());
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
        self.find(id, extra).await.click().await.unwrap();
    }

    /// Clicks the element `css` selects, once it is shown.
    async fn click_css(&self, css: &str) {
        let script =
            format!("const e = document.querySelector({css:?}); return !!e && e.getClientRects().length > 0");
        self.until(&format!("{css} is shown"), &script).await;
        self.client.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
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

    async fn wait_for_app(&self) {
        self.until("the chat page", "return !document.querySelector('#app').hidden").await;
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

fn texts_of<'a>(messages: &'a [(String, String, String)], role: &str) -> Vec<&'a str> {
    messages.iter().filter(|(r, _, _)| r == role).map(|(_, _, t)| t.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// The scenarios

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_chats_remembers_and_stays_safe_in_the_web_page() {
    let (base, dir) = serve().await;
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
    page.settings(300, "light").await;
    let session = page.current_session().await;
    page.send(COUNTING).await;
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
    page.until(
        "the answer grows piece by piece",
        &format!(
            "return document.querySelector('[data-testid=message][data-streaming=true] .content')?.innerText.trim().length > {}",
            followed.len()
        ),
    )
    .await;
    page.click("stop").await;
    let messages = page.wait_for_reply().await;
    let (_, _, stopped) = messages.last().unwrap();
    assert!(stopped.len() > followed.len(), "{followed} then {stopped}");
    assert_eq!(texts_of(&messages, "user").last(), Some(&COUNTING));
    assert_eq!(messages.len(), 4);
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
    let after = page.wait_for_reply_after(&before[3].1).await;
    assert_eq!(after.len(), before.len());
    assert_eq!(after[..3], before[..3], "only the last reply changes");
    assert_ne!(after[3].1, before[3].1, "a new reply");

    page.click_in("message-edit", "").await; // the first question
    let input = page.find("message-edit-input", "").await;
    page.type_over(&input, "What should I cook for lunch?").await;
    page.click("message-edit-save").await;
    let edited = page.wait_for_reply_after(&after[3].1).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_embedded_compressed_cached_and_locked_down() {
    let (base, _dir) = serve().await;
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
