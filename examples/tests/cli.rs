//! The `modelforge` CLI end to end: real binary, real SQLite file, real SmolLM2 model. Each
//! command is a separate process, so everything checked here survived a restart.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const PASSWORD: &str = "correct-horse-9";

fn modelforge(data_dir: &Path, password: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelforge"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("MODELFORGE_PASSWORD", password)
        .env_remove("MODELFORGE_DATA_DIR")
        .output()
        .expect("the binary runs")
}

fn ok(output: Output) -> String {
    assert!(output.status.success(), "command failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn json(output: Output) -> Value {
    serde_json::from_str(&ok(output)).expect("valid JSON")
}

fn model() -> String {
    modelforge_testkit::smollm2_gguf().display().to_string()
}

/// One greedy `chat --json` run of at most `max_tokens` tokens, with `extra` arguments.
fn chat_json(dir: &Path, max_tokens: &str, extra: &[&str]) -> Value {
    let model = model();
    let mut args = vec![
        "chat",
        "--user",
        "lina",
        "--model",
        &model,
        "--temperature",
        "0",
        "--max-tokens",
        max_tokens,
        "--json",
    ];
    args.extend_from_slice(extra);
    json(modelforge(dir, PASSWORD, &args))
}

/// One greedy turn as JSON.
fn turn(dir: &Path, session: Option<&str>, message: &str) -> Value {
    let mut args = match session {
        Some(id) => vec!["--session", id],
        None => vec!["--new-session"],
    };
    args.extend(["--message", message]);
    chat_json(dir, "48", &args)
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(modelforge(dir.path(), PASSWORD, &["user", "add", "lina"]));
    assert!(out.contains("admin"), "the first user is an admin: {out}");
    dir
}

#[test]
fn a_session_survives_restarts_and_the_second_turn_sees_the_first() {
    let dir = setup();
    let first = turn(dir.path(), None, "Hello! Please remember the word pineapple.");
    let session = first["session_id"].as_str().unwrap().to_owned();
    assert!(!first["reply"].as_str().unwrap().is_empty());
    assert!(["stop", "length"].contains(&first["finish_reason"].as_str().unwrap()));
    assert!(first["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let second = turn(dir.path(), Some(&session), "Which word did I ask you to remember?");
    assert_eq!(second["session_id"], first["session_id"]);
    // The prompt of turn two holds turn one's question and answer plus the new question.
    assert_eq!(second["context"]["history_used"], 3);
    assert_eq!(second["context"]["history_left_out"], 0);
    assert!(second["usage"]["prompt_tokens"].as_u64() > first["usage"]["prompt_tokens"].as_u64());
    // The first run saved the session's KV state; the second process restored it and skipped
    // the shared prefix (the system prompt and turn one).
    let cached = second["usage"]["cached_tokens"].as_u64().unwrap();
    assert!(cached >= first["usage"]["prompt_tokens"].as_u64().unwrap(), "only {cached} tokens restored");
    assert!(dir.path().join("state").join(format!("{session}.kv")).exists());

    let sessions = json(modelforge(dir.path(), PASSWORD, &["sessions", "--user", "lina", "--json"]));
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], session.as_str());
    assert_eq!(sessions[0]["message_count"], 4);
    assert_eq!(sessions[0]["title"], "Hello! Please remember the word pineapple.");
}

fn memories_reach_a_new_session(statement: &str, expected: &[&str]) {
    let dir = setup();
    let first = turn(dir.path(), None, statement);
    let learned: Vec<String> = first["memories_learned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    for value in expected {
        assert!(
            learned.iter().any(|m| m.contains(value)),
            "{value} not learned from {statement:?}: {learned:?}"
        );
    }
    let listed = json(modelforge(dir.path(), PASSWORD, &["memories", "--user", "lina", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), learned.len());

    let second = turn(dir.path(), None, "What do you know about me?");
    assert_ne!(second["session_id"], first["session_id"], "a new session");
    let injected: Vec<&str> =
        second["memories_injected"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for memory in first["memories_learned"].as_array().unwrap() {
        assert!(injected.contains(&memory["id"].as_str().unwrap()), "memory {memory} was not injected");
    }
}

#[test]
fn english_memories_reach_a_new_session() {
    memories_reach_a_new_session("My name is Lina and I live in Lyon.", &["Lina", "Lyon"]);
}

#[test]
fn with_memory_own_words_what_no_rule_reads_is_kept_in_the_users_words() {
    let dir = setup();
    let statement = "we finally got the keys to our apartment in leith";
    let plain = turn(dir.path(), None, statement);
    assert_eq!(plain["memories_learned"], serde_json::json!([]), "off by default");
    let own_words =
        chat_json(dir.path(), "8", &["--new-session", "--memory-own-words", "--message", statement]);
    let learned = own_words["memories_learned"].as_array().unwrap();
    assert_eq!(learned.len(), 1, "{learned:?}");
    assert_eq!(learned[0]["content"], format!("The user said: \"{statement}\"."));
}

#[test]
fn chinese_memories_reach_a_new_session() {
    memories_reach_a_new_session("我叫李娜，我住在上海。", &["李娜", "上海"]);
}

#[test]
fn a_wrong_password_or_unknown_user_is_one_clear_line() {
    let dir = setup();
    for (user, password) in [("lina", "wrong-password"), ("nobody", PASSWORD)] {
        let out = modelforge(dir.path(), password, &["sessions", "--user", user]);
        assert!(!out.status.success());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("invalid username or password"), "{stderr}");
    }
    // A wrong password fails before the model is even loaded.
    let model = model();
    let out = modelforge(
        dir.path(),
        "nope-nope",
        &["chat", "--user", "lina", "--model", &model, "--message", "hi"],
    );
    assert!(!out.status.success());
}

#[test]
fn only_an_existing_admin_can_grant_the_admin_role() {
    let dir = setup();
    let denied = modelforge(dir.path(), "bob-password-1", &["user", "add", "bob", "--role", "admin"]);
    assert!(!denied.status.success());
    let stderr = String::from_utf8(denied.stderr).unwrap();
    assert!(stderr.contains("--admin"), "{stderr}");
    let wrong = Command::new(env!("CARGO_BIN_EXE_modelforge"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["user", "add", "carol", "--role", "admin", "--admin", "lina"])
        .env("MODELFORGE_PASSWORD", "carol-password-1")
        .env("MODELFORGE_ADMIN_PASSWORD", "wrong-password")
        .output()
        .unwrap();
    assert!(!wrong.status.success(), "a wrong admin password grants nothing");
    let out = ok(Command::new(env!("CARGO_BIN_EXE_modelforge"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["user", "add", "bob", "--role", "admin", "--admin", "lina"])
        .env("MODELFORGE_PASSWORD", "bob-password-1")
        .env("MODELFORGE_ADMIN_PASSWORD", PASSWORD)
        .output()
        .unwrap());
    assert!(out.starts_with("created admin `bob`"), "{out}");
    // carol was never created: her name is still free.
    let out = ok(modelforge(dir.path(), "carol-password-1", &["user", "add", "carol"]));
    assert!(out.starts_with("created user `carol`"), "{out}");
}

#[test]
fn another_users_session_is_not_found() {
    let dir = setup();
    let session = turn(dir.path(), None, "Hello there.")["session_id"].as_str().unwrap().to_owned();
    ok(Command::new(env!("CARGO_BIN_EXE_modelforge"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["user", "add", "mallory"])
        .env("MODELFORGE_PASSWORD", "another-pass-7")
        .output()
        .unwrap());
    let model = model();
    let out = modelforge(
        dir.path(),
        "another-pass-7",
        &["chat", "--user", "mallory", "--model", &model, "--session", &session, "--message", "hi"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("not found"), "{stderr}");
}

#[test]
fn broken_model_files_are_clear_errors() {
    let dir = setup();
    let text = dir.path().join("notes.gguf");
    std::fs::write(&text, "not a model").unwrap();
    let out = modelforge(
        dir.path(),
        PASSWORD,
        &["chat", "--user", "lina", "--model", text.to_str().unwrap(), "--message", "hi"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("notes.gguf") && stderr.contains("not a model file"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn models_in_the_data_dir_are_listed_and_usable_by_name() {
    let dir = setup();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::os::unix::fs::symlink(modelforge_testkit::smollm2_gguf(), models.join("smollm2.gguf")).unwrap();
    let listed = json(modelforge(dir.path(), PASSWORD, &["models", "--json"]));
    assert_eq!(listed[0]["name"], "smollm2");
    assert_eq!(listed[0]["format"], "gguf");
    let reply = json(modelforge(
        dir.path(),
        PASSWORD,
        &["chat", "--user", "lina", "--model", "smollm2", "--max-tokens", "8", "--message", "Hi", "--json"],
    ));
    assert!(!reply["reply"].as_str().unwrap().is_empty());
}

#[test]
fn memories_can_be_added_searched_edited_exported_and_removed() {
    let dir = setup();
    let memories = |args: &[&str]| {
        let mut all = vec!["memories", "--user", "lina", "--json"];
        all.extend_from_slice(args);
        json(modelforge(dir.path(), PASSWORD, &all))
    };
    let added = memories(&["add", "The user is vegetarian.", "--kind", "profile"]);
    let id = added["id"].as_str().unwrap().to_owned();
    memories(&["add", "The user plays chess on Sundays."]);
    let hits = memories(&["search", "Do I eat meat?"]);
    assert_eq!(hits[0]["memory"]["id"], id.as_str(), "{hits}");
    let edited = memories(&["edit", &id, "The user is vegan."]);
    assert_eq!(edited["content"], "The user is vegan.");
    let file = dir.path().join("export.json");
    ok(modelforge(
        dir.path(),
        PASSWORD,
        &["memories", "--user", "lina", "export", "-o", file.to_str().unwrap()],
    ));
    let exported: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(exported.as_array().unwrap().len(), 2);
    memories(&["rm", &id]);
    assert_eq!(memories(&[]).as_array().unwrap().len(), 1);
    let missing = modelforge(dir.path(), PASSWORD, &["memories", "--user", "lina", "rm", &id]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
}

#[test]
fn temporary_sessions_and_memory_off_learn_nothing() {
    let dir = setup();
    let chat = |extra: &[&str]| chat_json(dir.path(), "8", extra);
    let temporary = chat(&["--temporary", "--message", "My name is Lina and I live in Lyon."]);
    assert_eq!(temporary["memory"], "temporary");
    assert!(temporary["memories_learned"].as_array().unwrap().is_empty());

    assert_eq!(
        json(modelforge(dir.path(), PASSWORD, &["memories", "--user", "lina", "--json", "off"]))["memory_enabled"],
        false
    );
    let off = chat(&["--message", "My name is Lina and I live in Lyon."]);
    assert_eq!(off["memory"], "off");
    assert!(off["memories_learned"].as_array().unwrap().is_empty());

    ok(modelforge(dir.path(), PASSWORD, &["memories", "--user", "lina", "on"]));
    let on = chat(&["--message", "My name is Lina and I live in Lyon."]);
    assert_eq!(on["memory"], "on");
    assert_eq!(on["memories_learned"].as_array().unwrap().len(), 2);
    assert!(
        json(modelforge(dir.path(), PASSWORD, &["memories", "--user", "lina", "--json"]))
            .as_array()
            .unwrap()
            .len()
            == 2
    );
}

/// `bench` measures both backends; `--threads` reaches candle (whose thread count only the
/// environment sets) and `--kv-cache` reaches llama.cpp.
#[test]
fn bench_runs_both_backends_with_their_options() {
    let dir = tempfile::tempdir().unwrap();
    let model = model();
    let bench = |extra: &[&str]| {
        let mut args = vec!["bench", "--model", &model, "--pp", "16", "--tg", "4", "--json"];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_modelforge"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(&args)
            .env("MODELFORGE_LOG", "modelforge_engine=info")
            .env_remove("RAYON_NUM_THREADS")
            .env_remove("CANDLE_NUM_THREADS")
            .output()
            .expect("the binary runs")
    };
    let out = bench(&["--backend", "candle", "--threads", "1"]);
    let report: Value = serde_json::from_str(&ok(out.clone())).unwrap();
    assert_eq!(report["backend"], "candle");
    assert!(report["tg_tps"].as_f64().unwrap() > 0.0, "{report}");
    // The log without its colour codes (ESC [ ... m).
    let log: String = String::from_utf8_lossy(&out.stderr)
        .split('\x1b')
        .map(|part| {
            part.strip_prefix('[').map_or(part, |rest| rest.split_once('m').map_or(rest, |(_, text)| text))
        })
        .collect();
    assert!(
        log.contains("model loaded") && log.contains("threads=1"),
        "candle runs the one thread asked for: {log}"
    );

    // The default (auto) is q8_0 for SmolLM2's 64-wide heads; a type named is kept.
    for (extra, loaded) in [(&[][..], "kv_cache: Q8_0"), (&["--kv-cache", "f16"][..], "kv_cache: F16")] {
        let out = bench(&[&["--backend", "llama-cpp"], extra].concat());
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        let report: Value = serde_json::from_str(&ok(out)).unwrap();
        assert_eq!(report["backend"], "llama-cpp");
        assert!(report["pp_tps"].as_f64().unwrap() > 0.0, "{report}");
        assert!(log.contains(loaded), "{extra:?} loads with {loaded}: {log}");
    }
    let err = bench(&["--kv-cache", "q3"]);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("q8_0"), "the choices are listed");
}
