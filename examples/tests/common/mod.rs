//! What the integration tests of `modelforge-server` share: the real SmolLM2 model, loaded once
//! per test binary, and the app served in-process on `127.0.0.1:0` over a fresh SQLite store.
//!
//! Each test binary uses part of this module, so what one leaves unused is allowed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use modelforge_core::{CachedModel, LoadOptions, LoadedModel, ModelFormat, SessionStore};
use modelforge_examples::server::{AppState, ModelPool, Registration, app};
use modelforge_examples::setup::{self, WebArgs};
use modelforge_hub::HfHubOptions;
use modelforge_memory::{ChatOptions, Conversation, MemoryBank};
use modelforge_store::{SqliteStore, StoreOptions};

/// The signing key of every server here (and of server processes' `MODELFORGE_JWT_SECRET`).
pub const SECRET: &str = "server-api-tests-secret-0123456789abcdef";
/// What the in-process servers call the model.
pub const MODEL: &str = "smollm2";
/// The servers' system prompt, unless a test asks for none.
pub const SYSTEM_PROMPT: &str = "You are a helpful assistant. Be brief.";

/// SmolLM2 with a 2048-token context, loaded on first use and shared by the binary's tests.
pub fn model() -> Arc<dyn LoadedModel> {
    static MODEL: OnceLock<Arc<dyn LoadedModel>> = OnceLock::new();
    MODEL.get_or_init(|| load_smollm2(None)).clone()
}

/// SmolLM2 with a 2048-token context on `threads` threads (`None`: the default,
/// `MODELFORGE_THREADS`), a copy of its own. Greedy replies depend on the thread count in their
/// last bits, so a test that follows a conversation written against one count pins it.
pub fn load_smollm2(threads: Option<u32>) -> Arc<dyn LoadedModel> {
    let path = modelforge_testkit::smollm2_gguf();
    let options = LoadOptions { context_length: Some(2048), threads, ..LoadOptions::default() };
    setup::load_model(Path::new("."), path.to_str().unwrap(), &options, Default::default()).unwrap()
}

/// The store options of every server here: signed with [`SECRET`].
pub fn options() -> StoreOptions {
    StoreOptions::with_secret(SECRET.as_bytes().to_vec())
}

/// How to set up a server; [`Setup::default`] is open registration, [`SYSTEM_PROMPT`], a fresh
/// SQLite store, an empty Hub cache of its own (offline) and no web search.
pub struct Setup {
    /// The store to serve; a fresh SQLite one in the server's directory when `None`.
    pub store: Option<Arc<dyn SessionStore>>,
    /// Whether registration is closed by the command line.
    pub registration: Registration,
    /// The server's system prompt.
    pub system_prompt: Option<&'static str>,
    /// The Hub endpoint models are pulled from, into a cache in the server's directory;
    /// `None`: offline.
    pub hub: Option<String>,
    /// The SearXNG-style search service web search uses (private addresses allowed);
    /// `None`: no web search.
    pub search_url: Option<String>,
    /// The model served as [`MODEL`]; SmolLM2 ([`model`]) when `None`.
    pub model: Option<Arc<dyn LoadedModel>>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            store: None,
            registration: Registration::Open,
            system_prompt: Some(SYSTEM_PROMPT),
            hub: None,
            search_url: None,
            model: None,
        }
    }
}

/// A server running in this process, until the test ends.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub store: Arc<dyn SessionStore>,
    /// The SQLite file (when the server made its own store).
    pub db: PathBuf,
    /// The server's directory: its database, `models/` and Hub cache.
    pub dir: tempfile::TempDir,
}

/// The app on `127.0.0.1:0` with [`Setup::default`].
pub async fn serve() -> Server {
    serve_with(Setup::default()).await
}

/// The app on `127.0.0.1:0` serving [`MODEL`], set up as `setup` says.
pub async fn serve_with(setup: Setup) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("modelforge.db");
    let store = match setup.store {
        Some(store) => store,
        None => Arc::new(SqliteStore::open(&db, options()).unwrap()) as Arc<dyn SessionStore>,
    };
    let model = setup.model.unwrap_or_else(|| tokio::task::block_in_place(model));
    let path = modelforge_testkit::smollm2_gguf();
    let served = CachedModel {
        name: MODEL.into(),
        size_bytes: std::fs::metadata(&path).unwrap().len(),
        path,
        format: ModelFormat::Gguf,
        quantization: Some("Q4_1".into()),
    };
    // The Hub is the test's, never the machine's cache or the environment's endpoint.
    let hub = HfHubOptions {
        endpoint: setup.hub.clone().unwrap_or_else(|| "http://127.0.0.1:9".into()),
        token: None,
        cache_dir: dir.path().join("hub-cache"),
        offline: setup.hub.is_none(),
        ..HfHubOptions::default()
    };
    let pool = ModelPool::new(
        dir.path().to_owned(),
        vec![served],
        MODEL.into(),
        LoadOptions::default(),
        Default::default(),
        1,
    )
    .with_hub(hub);
    pool.insert(MODEL, Arc::clone(&model));
    let memory = Arc::new(MemoryBank::new(store.clone(), None));
    let mut chat = Conversation::new(model, store.clone(), store.clone(), Arc::clone(&memory));
    if let Some(prompt) = setup.system_prompt {
        chat = chat.with_options(ChatOptions::default().with_system_prompt(prompt));
    }
    let web = WebArgs {
        search_url: setup.search_url,
        web_allow_private: true,
        web_deadline: 20,
        ..WebArgs::default()
    };
    if let Some(web) = setup::open_web(&web, None).unwrap() {
        chat = chat.with_web(web);
    }
    let mut state = AppState::new(Arc::clone(&store), Arc::new(pool), memory, chat);
    state.registration = setup.registration;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(state)).await.unwrap() });
    Server { base: format!("http://{addr}"), store, db, dir }
}

/// The address in the line `modelforge-server` prints once it serves ("… at
/// http://127.0.0.1:PORT/ …"), read from its log: a server started with `--addr 127.0.0.1:0`
/// binds a port the system picks, where a port found free beforehand could be taken by another
/// test before the server binds it.
pub fn served_address(log: &str) -> Option<String> {
    let (_, rest) = log.split_once(" at http://")?;
    let (addr, _) = rest.split_once("/ ")?;
    Some(format!("http://{addr}"))
}

/// A `modelforge-server` process on a loopback port the system picks, killed on drop.
pub struct ServerProcess {
    pub child: std::process::Child,
    /// Where it serves: `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its standard error.
    pub log: PathBuf,
}

impl ServerProcess {
    /// The `modelforge-server` binary without the settings a developer's shell may hold
    /// (database, data directory, embedder, signing key), offline for the Hub, logging warnings.
    pub fn command() -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_modelforge-server"));
        for var in [
            "MODELFORGE_DATABASE_URL",
            "MODELFORGE_DATA_DIR",
            "MODELFORGE_EMBEDDER",
            "MODELFORGE_JWT_SECRET",
            "MODELFORGE_JWT_SECRET_FILE",
        ] {
            command.env_remove(var);
        }
        command.env("HF_HUB_OFFLINE", "1").env("MODELFORGE_LOG", "warn");
        command
    }

    /// Starts `command` on `127.0.0.1:0` with its standard error in `log`, reads the address
    /// from the line it prints once serving, and waits until `/health` answers 200. Panics with
    /// the log if the process exits or takes longer than `patience`. It blocks: from async code,
    /// call it in `tokio::task::spawn_blocking`.
    pub fn start(mut command: std::process::Command, log: PathBuf, patience: std::time::Duration) -> Self {
        use std::process::Stdio;
        let file = std::fs::File::create(&log).unwrap();
        command.args(["--addr", "127.0.0.1:0"]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(file);
        let child = command.spawn().unwrap();
        let mut server = ServerProcess { child, base: String::new(), log };
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("modelforge-server exited with {status}:\n{}", server.log_text());
            }
            if server.base.is_empty() {
                server.base = served_address(&server.log_text()).unwrap_or_default();
            }
            if !server.base.is_empty() && health_is_ok(&server.base) {
                return server;
            }
            assert!(
                started.elapsed() < patience,
                "modelforge-server not healthy in time:\n{}",
                server.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET {base}/health` answers 200, over a plain blocking connection.
fn health_is_ok(base: &str) -> bool {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else { return false };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut head = [0u8; 12];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut head).is_ok()
        && head.ends_with(b" 200")
}
