//! A newcomer's first start: `modelforge-server` with no `--model` and no local model pulls the
//! default model from the Hub (here the loopback stand-in, through `HF_ENDPOINT`), serves it,
//! and finds it in the cache on the next start without downloading again.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use modelforge_testkit::hub_server::{HubServer, SMOL_FILE, SMOL_REPO};
use serde_json::{Value, json};

/// The longest a start (pull included) may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(180);

/// A server process, killed on drop, with its stderr in a file.
struct Server {
    child: Child,
    base: String,
    log: std::path::PathBuf,
    /// What `/health` answered before it said 200.
    before_ready: Vec<(u16, Value)>,
}

impl Server {
    /// Starts the binary on a free port with an empty DATA_DIR and the Hub at `hub`.
    fn start(hub: &HubServer, home: &Path, name: &str) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = home.join(format!("{name}.log"));
        let empty = home.join("no-test-models");
        std::fs::create_dir_all(&empty).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_modelforge-server"));
        command
            .args(["--data-dir", home.join("data").to_str().unwrap(), "--embedder", "none"])
            .args(["--addr", &format!("127.0.0.1:{port}")]);
        for var in ["MODELFORGE_DATABASE_URL", "MODELFORGE_DATA_DIR", "MODELFORGE_EMBEDDER", "HF_TOKEN"] {
            command.env_remove(var);
        }
        let child = command
            .env("HF_ENDPOINT", hub.url())
            .env("HF_HUB_OFFLINE", "0")
            .env("HF_HOME", home.join("hf-home"))
            .env("HF_HUB_CACHE", home.join("hf-cache"))
            .env("MODELFORGE_TEST_MODELS", &empty)
            .env("MODELFORGE_DEFAULT_MODEL", format!("{SMOL_REPO}:Q4_1"))
            .env("MODELFORGE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let mut server = Server { child, base, log, before_ready: Vec::new() };
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("modelforge-server exited with {status}:\n{}", server.log_text());
            }
            match get(&format!("{}/health", server.base), None) {
                Some((200, _)) => return server,
                Some(answer) => server.before_ready.push(answer),
                None => {}
            }
            assert!(started.elapsed() < PATIENCE, "not healthy in time:\n{}", server.log_text());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking JSON request; `None` when the server does not answer at all.
fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> Option<(u16, Value)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut request = client.request(method.parse().unwrap(), url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        Some((status, body))
    })
}

fn get(url: &str, token: Option<&str>) -> Option<(u16, Value)> {
    call("GET", url, token, None)
}

/// Registers (the first user is admin) or logs in, and returns an access token.
fn token(server: &Server, register: bool) -> String {
    let credentials = json!({"username": "newcomer", "password": "first start pass"});
    if register {
        let (status, body) =
            call("POST", &format!("{}/api/auth/register", server.base), None, Some(credentials.clone()))
                .unwrap();
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) =
        call("POST", &format!("{}/api/auth/login", server.base), None, Some(credentials)).unwrap();
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// The names of the models `/api/models` lists.
fn model_names(server: &Server, token: &str) -> Vec<String> {
    let (status, body) = get(&format!("{}/api/models", server.base), Some(token)).unwrap();
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_first_start_with_no_model_pulls_the_default_one_and_the_next_start_reuses_it() {
    let hub = HubServer::start();
    let home = tempfile::tempdir().unwrap();

    let first = Server::start(&hub, home.path(), "first");
    let log = first.log_text();
    assert!(log.contains(&format!("pulling {SMOL_REPO}:Q4_1")), "says what it pulls:\n{log}");
    // The socket answered while the model was pulled: a JSON 503 saying why.
    assert!(!first.before_ready.is_empty(), "/health answered during the pull");
    for (status, body) in &first.before_ready {
        assert_eq!((*status, &body["error"]["code"]), (503, &json!("model_loading")), "{body}");
    }
    let downloaded = hub.bytes_sent();
    let size = hub.file(SMOL_REPO, SMOL_FILE).len() as u64;
    assert!(downloaded >= size, "the model came from the Hub: {downloaded} bytes sent, the file is {size}");
    let access = token(&first, true);
    let names = model_names(&first, &access);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].contains("SmolLM2"), "the pulled model is served: {names:?}");

    // It answers with the pulled model.
    let url = format!("{}/v1/chat/completions", first.base);
    let request = json!({"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8});
    let (status, body) = call("POST", &url, Some(&access), Some(request)).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body["usage"]["completion_tokens"].as_u64().unwrap() > 0, "{body}");
    drop(first);

    // The next start finds it in the Hugging Face cache and downloads nothing.
    hub.reset_counters();
    let second = Server::start(&hub, home.path(), "second");
    assert!(!second.log_text().contains("pulling"), "no second pull:\n{}", second.log_text());
    assert_eq!(hub.bytes_sent(), 0, "nothing downloaded again");
    assert_eq!(model_names(&second, &token(&second, false)), names);
}
