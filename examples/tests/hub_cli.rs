//! The `modelforge` CLI against the local stand-in for the Hugging Face Hub: `pull`, `models
//! search|files|list|rm`, and `chat --model org/repo` from the cache. The binary gets the server
//! through `HF_ENDPOINT` and a temporary `HF_HUB_CACHE`, as a user would configure it.

use std::path::Path;
use std::process::{Command, Output};

use modelforge_testkit::hub_server::{GATED_REPO, HubServer, QUANTS_REPO, SMOL_FILE, SMOL_REPO};
use serde_json::Value;

const PASSWORD: &str = "correct-horse-9";

/// A data directory, a Hub cache and the server they talk to.
struct Env {
    server: HubServer,
    data: tempfile::TempDir,
    hf_home: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let env = Env {
            server: HubServer::start(),
            data: tempfile::tempdir().unwrap(),
            hf_home: tempfile::tempdir().unwrap(),
        };
        ok(env.run(&["user", "add", "lina"]));
        env
    }

    fn cache(&self) -> std::path::PathBuf {
        self.hf_home.path().join("hub-cache")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_modelforge"));
        command
            .arg("--data-dir")
            .arg(self.data.path())
            .args(args)
            .env("MODELFORGE_PASSWORD", PASSWORD)
            .env("HF_ENDPOINT", self.server.url())
            .env("HF_HUB_CACHE", self.cache())
            .env("HF_HOME", self.hf_home.path())
            .env_remove("HF_TOKEN")
            .env_remove("HF_TOKEN_PATH")
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("MODELFORGE_DATA_DIR");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the binary runs")
    }

    fn offline(&self, args: &[&str]) -> Output {
        self.command(args).env("HF_HUB_OFFLINE", "1").output().expect("the binary runs")
    }

    fn chat(&self, model: &str) -> Output {
        let args = ["chat", "--user", "lina", "--model", model, "--temperature", "0", "--max-tokens", "8"];
        self.run(&[&args[..], &["--message", "Hi", "--json"]].concat())
    }
}

fn ok(output: Output) -> String {
    assert!(output.status.success(), "command failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn json(output: Output) -> Value {
    serde_json::from_str(&ok(output)).expect("valid JSON")
}

/// The one-line error of a failed command.
fn failure(output: Output) -> String {
    assert!(!output.status.success(), "expected a failure: {}", String::from_utf8_lossy(&output.stdout));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn a_pulled_model_chats_from_the_cache_without_another_transfer() {
    let env = Env::new();
    let pulled = json(env.run(&["pull", SMOL_REPO, "--json"]));
    assert_eq!(pulled["format"], "gguf");
    assert_eq!(pulled["quantization"], "Q4_1");
    let path = pulled["path"].as_str().unwrap();
    assert!(Path::new(path).starts_with(env.cache()), "{path}");

    let listed = json(env.run(&["models", "list", "--json"]));
    let names: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|m| m["name"].as_str()).collect();
    assert_eq!(names, [format!("{SMOL_REPO}:Q4_1")]);

    env.server.reset_counters();
    let reply = json(env.chat(SMOL_REPO));
    assert!(!reply["reply"].as_str().unwrap().is_empty(), "{reply}");
    assert_eq!(env.server.bytes_sent(), 0, "the cached file was used");

    // Offline, an exact reference works from the cache without a single request.
    env.server.reset_counters();
    let reply = json(
        env.command(&[
            "chat",
            "--user",
            "lina",
            "--model",
            &format!("{SMOL_REPO}:Q4_1"),
            "--max-tokens",
            "4",
            "--message",
            "Hi",
            "--json",
        ])
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap(),
    );
    assert!(!reply["reply"].as_str().unwrap().is_empty());
    assert_eq!(env.server.requests(), Vec::<String>::new());
}

#[test]
fn ctrl_c_stops_a_pull_and_the_next_pull_resumes() {
    let env = Env::new();
    let size = env.server.file(SMOL_REPO, SMOL_FILE).len() as u64;
    let stall = 20 << 20;
    env.server.stall_next_body_after(stall);
    let child = env
        .command(&["pull", &format!("{SMOL_REPO}:Q4_1")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until everything before the stall is on disk.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while partial_sizes(&env.cache()) != [stall] {
        assert!(std::time::Instant::now() < deadline, "the pull did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = failure(output);
    assert!(stderr.contains("interrupted") && stderr.contains("resumes it"), "{stderr}");
    assert_eq!(partial_sizes(&env.cache()), [stall], "the bytes received before Ctrl-C are kept");

    env.server.reset_counters();
    let pulled = json(env.run(&["pull", SMOL_REPO, "--json"]));
    assert_eq!(pulled["size_bytes"].as_u64(), Some(size), "{pulled}");
    assert_eq!(env.server.bytes_sent(), size - stall, "only the rest was fetched");
}

/// The sizes of the partial downloads under `dir`.
fn partial_sizes(dir: &Path) -> Vec<u64> {
    walk(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "incomplete"))
        .filter_map(|p| Some(p.metadata().ok()?.len()))
        .collect()
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

#[test]
fn chat_pulls_a_hub_model_it_does_not_have_yet() {
    let env = Env::new();
    let output = env.chat(&format!("{SMOL_REPO}:Q4_1"));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let reply = json(output);
    assert!(!reply["reply"].as_str().unwrap().is_empty());
    assert!(stderr.contains("downloading") && stderr.contains(SMOL_REPO), "{stderr}");
    assert_eq!(
        env.server.bytes_sent(),
        env.server.file(SMOL_REPO, modelforge_testkit::hub_server::SMOL_FILE).len() as u64
    );
}

#[test]
fn search_and_files_show_repositories_and_their_models() {
    let env = Env::new();
    let found = json(env.run(&["models", "search", "tiny", "--gguf", "--json"]));
    let ids: Vec<&str> = found.as_array().unwrap().iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, [QUANTS_REPO]);
    let text = ok(env.run(&["models", "search", "modelforge-test", "--limit", "2"]));
    assert_eq!(text.lines().count(), 2, "{text}");

    let files = json(env.run(&["models", "files", QUANTS_REPO, "--json"]));
    let default: Vec<&Value> =
        files["models"].as_array().unwrap().iter().filter(|m| m["default"] == true).collect();
    assert_eq!(default.len(), 1);
    assert_eq!(default[0]["reference"], format!("{QUANTS_REPO}:Q4_K_M"));
    assert!(files["files"].as_array().unwrap().iter().any(|f| f["path"] == "mmproj-tiny-F16.gguf"));
    let text = ok(env.run(&["models", "files", QUANTS_REPO]));
    assert!(text.contains("(default)") && text.contains("tiny-Q8_0.gguf"), "{text}");
}

#[test]
fn models_rm_removes_from_the_cache_only() {
    let env = Env::new();
    ok(env.run(&["pull", &format!("{QUANTS_REPO}:Q8_0")]));
    let out = ok(env.run(&["models", "rm", &format!("{QUANTS_REPO}:Q8_0")]));
    assert!(out.contains("removed"), "{out}");
    assert_eq!(json(env.run(&["models", "list", "--json"])), Value::Array(vec![]));
    let stderr = failure(env.run(&["models", "rm", "smollm2"]));
    assert!(stderr.contains("delete them yourself"), "{stderr}");
    let stderr = failure(env.run(&["models", "rm", &format!("{QUANTS_REPO}:Q8_0")]));
    assert!(stderr.contains("not found"), "{stderr}");
}

#[test]
fn errors_are_one_clear_line() {
    let env = Env::new();
    let stderr = failure(env.run(&["pull", GATED_REPO]));
    assert!(stderr.contains("gated") && stderr.contains("HF_TOKEN"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let stderr = failure(env.offline(&["pull", QUANTS_REPO]));
    assert!(stderr.contains("HF_HUB_OFFLINE") && stderr.contains("not in the cache"), "{stderr}");

    let stderr = failure(env.chat("modelforge-test/no-such-model"));
    assert!(stderr.contains("repository not found") && stderr.contains("no-such-model"), "{stderr}");
}
