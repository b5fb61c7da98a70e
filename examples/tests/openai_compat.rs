//! The OpenAI-compatible API through the official `openai` Python client, unchanged: the real
//! `modelforge-server` binary on loopback with SmolLM2 and the MiniLM embedder, driven by
//! `tests/openai_client.py` with the virtual environment `.ci/run` keeps under
//! `~/.cache/modelforge/venv` (`MODELFORGE_VENV` to use another).
//!
//! A missing virtual environment is a failure that says how to make it, never a skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;

/// The context window the server runs with (the script overflows it on purpose).
const CONTEXT: u32 = 2048;
/// The longest the server may take to become healthy.
const PATIENCE: Duration = Duration::from_secs(120);

/// The venv's python, or a failure that says how to make it.
fn python() -> PathBuf {
    let venv = std::env::var_os("MODELFORGE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs::home_dir().expect("a home directory").join(".cache/modelforge/venv"));
    let python = venv.join("bin/python");
    let make_it = format!(
        "create it with `python3 -m venv {0} && {0}/bin/pip install openai` (or run .ci/run, which does)",
        venv.display()
    );
    assert!(python.exists(), "no Python virtual environment at {}: {make_it}", venv.display());
    let import = Command::new(&python).args(["-c", "import openai"]).output().unwrap();
    assert!(
        import.status.success(),
        "the `openai` package is missing from {}: {make_it}\n{}",
        venv.display(),
        String::from_utf8_lossy(&import.stderr)
    );
    python
}

/// A `modelforge-server` process on a loopback port the system picks, killed on drop.
struct Server {
    inner: common::ServerProcess,
    base: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let model = modelforge_testkit::smollm2_gguf();
        let embedder = modelforge_testkit::minilm_dir();
        let mut command = common::ServerProcess::command();
        command
            .args(["--data-dir", dir.path().to_str().unwrap()])
            .args(["--model", model.to_str().unwrap(), "--embedder", embedder.to_str().unwrap()])
            .args(["--ctx-size", &CONTEXT.to_string()])
            .args(extra);
        let inner = common::ServerProcess::start(command, dir.path().join("server.log"), PATIENCE);
        Server { base: inner.base.clone(), inner, _dir: dir }
    }

    fn log_text(&self) -> String {
        self.inner.log_text()
    }

    /// A new user's API key.
    fn api_key(&self) -> String {
        let user = r#"{"username":"client","password":"a long enough password"}"#;
        let (_, login) = http("POST", &format!("{}/api/auth/register", self.base), Some(user), None).unwrap();
        let token = login["access_token"].as_str().expect("registered").to_owned();
        let (status, key) =
            http("POST", &format!("{}/api/keys", self.base), Some(r#"{"name":"openai"}"#), Some(&token))
                .unwrap();
        assert_eq!(status, 201, "{key}");
        key["key"].as_str().unwrap().to_owned()
    }

    /// Runs the client script against this server; fails with its output and the server's log.
    fn run_client(&self, python: &Path, key: &str, args: &[&str]) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai_client.py");
        // The model named on the command line is listed first.
        let (_, models) = http("GET", &format!("{}/v1/models", self.base), None, Some(key)).unwrap();
        let model = models["data"][0]["id"].as_str().unwrap_or_default().to_owned();
        let output = Command::new(python)
            .arg(&script)
            .args(args)
            .env("MF_BASE_URL", &self.base)
            .env("MF_API_KEY", key)
            .env("MF_MODEL", model)
            .env("MF_EMBEDDER", "all-minilm-l6-v2")
            .env("MF_CONTEXT", CONTEXT.to_string())
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        println!("{stdout}");
        assert!(
            output.status.success(),
            "the openai client failed:\n{stdout}\n{}\n--- server log ---\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log_text()
        );
    }
}

/// A blocking HTTP request with an optional JSON body and bearer token: status and JSON.
fn http(
    method: &str,
    url: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> Result<(u16, serde_json::Value), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut request = client.request(method.parse().unwrap(), url);
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_owned());
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let json = response.json().await.unwrap_or(serde_json::Value::Null);
        Ok((status, json))
    })
}

/// A request from a browser page at `origin`: the status and the response's headers.
fn from_origin(
    method: &str,
    url: &str,
    origin: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut request =
            reqwest::Client::new().request(method.parse().unwrap(), url).header("origin", origin);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.headers().clone())
    })
}

fn allowed_origin(headers: &reqwest::header::HeaderMap) -> Option<&str> {
    headers.get("access-control-allow-origin").map(|v| v.to_str().unwrap())
}

#[test]
fn the_official_openai_client_works_unchanged() {
    let python = python();
    let server = Server::start(&[]);
    let key = server.api_key();
    server.run_client(&python, &key, &[]);
    // Without --cors-origin no other page may read an answer.
    let (_, headers) =
        from_origin("GET", &format!("{}/v1/models", server.base), "http://localhost:5173", &[]);
    assert_eq!(allowed_origin(&headers), None, "{headers:?}");
}

#[test]
fn no_auth_accepts_any_key_on_v1_and_is_refused_off_loopback() {
    // The server refuses to start with these arguments: its error output.
    let refused = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_modelforge-server"))
            .args(args)
            .args(["--model", "/nonexistent.gguf"])
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{stderr}");
        stderr
    };
    let stderr = refused(&["--no-auth", "--addr", "0.0.0.0:0"]);
    assert!(stderr.contains("--no-auth") && stderr.contains("loopback"), "{stderr}");
    let any_page = refused(&["--no-auth", "--cors-origin", "*"]);
    assert!(any_page.contains("--cors-origin") && any_page.contains("every web page"), "{any_page}");
    let not_origin = refused(&["--cors-origin", "localhost:5173/app"]);
    assert!(not_origin.contains("not an origin"), "{not_origin}");

    let python = python();
    let page = "http://localhost:5173";
    // Named as a person might type it; browsers send origins in lower case, without a `/`.
    let server = Server::start(&["--no-auth", "--cors-origin", "http://LocalHost:5173/"]);
    server.run_client(&python, "", &["--no-auth"]);

    // A browser page on an allowed origin: the preflight passes, answers and errors are readable.
    let url = format!("{}/v1/chat/completions", server.base);
    let asks = [
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "authorization,content-type"),
    ];
    let (status, headers) = from_origin("OPTIONS", &url, page, &asks);
    assert!((200..300).contains(&status), "preflight: {status} {headers:?}");
    assert_eq!(allowed_origin(&headers), Some(page), "{headers:?}");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");
    let (status, headers) = from_origin("GET", &format!("{}/v1/models", server.base), page, &[]);
    assert_eq!((status, allowed_origin(&headers)), (200, Some(page)), "{headers:?}");
    let (status, headers) = from_origin("GET", &format!("{}/api/sessions", server.base), page, &[]);
    assert_eq!((status, allowed_origin(&headers)), (401, Some(page)), "{headers:?}");
    // Without authentication only requests addressed to loopback are answered: a page whose
    // name is re-pointed at 127.0.0.1 (DNS rebinding) still sends its own name as Host.
    let (status, _) = from_origin(
        "GET",
        &format!("{}/v1/models", server.base),
        "http://evil.test:8080",
        &[("host", "evil.test:8080")],
    );
    assert_eq!(status, 403);
    // Any other page gets no permission.
    let (_, headers) = from_origin("GET", &format!("{}/v1/models", server.base), "http://evil.test", &[]);
    assert_eq!(allowed_origin(&headers), None, "{headers:?}");
}
