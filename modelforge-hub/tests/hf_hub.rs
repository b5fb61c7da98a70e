//! `HfHub` against the local stand-in for the Hugging Face Hub (`modelforge_testkit::hub_server`):
//! search, listing, quantization choice, downloads into the huggingface_hub cache layout,
//! resume, verification, offline mode and the errors a user meets.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use modelforge_core::{CancelToken, HubError, ModelFormat, ModelHub, Progress};
use modelforge_hub::{HfHub, HfHubOptions, SearchOptions};
use modelforge_testkit::hub_server::{
    COMMIT, DOCS_REPO, GATED_REPO, HubFile, HubRepo, HubServer, QUANTS_REPO, SAFETENSORS_REPO, SMOL_FILE,
    SMOL_REPO, SPLIT_REPO, TEST_TOKEN,
};
use sha2::Digest as _;

fn options(server: &HubServer, cache: &Path) -> HfHubOptions {
    HfHubOptions { endpoint: server.url(), cache_dir: cache.to_owned(), ..HfHubOptions::default() }
}

fn hub(server: &HubServer, cache: &Path) -> HfHub {
    HfHub::new(options(server, cache))
}

fn pull(hub: &HfHub, reference: &str) -> Result<modelforge_core::CachedModel, HubError> {
    hub.pull(reference, &mut |_| {}, &CancelToken::new())
}

fn repo_dir(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn search_filters_by_gguf_sorts_by_downloads_and_limits() {
    let server = HubServer::start();
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&server, cache.path());
    let search =
        SearchOptions { query: "modelforge-test".into(), gguf_only: true, ..SearchOptions::default() };
    let ids: Vec<String> = hub.search_with(&search).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, [SMOL_REPO, QUANTS_REPO, SPLIT_REPO, GATED_REPO]);
    let request = server.requests().pop().unwrap();
    assert!(request.contains("filter=gguf") && request.contains("sort=downloads"), "{request}");

    let first = hub.search("TINY", 1).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].id, QUANTS_REPO);
    assert_eq!(first[0].downloads, Some(900));
    let all_tiny = hub.search("tiny", 10).unwrap();
    assert!(all_tiny.iter().any(|r| r.id == SAFETENSORS_REPO), "without --gguf, safetensors repos are found");
}

#[test]
fn files_are_listed_with_size_sha256_and_quantization() {
    let server = HubServer::start();
    let cache = tempfile::tempdir().unwrap();
    let files = hub(&server, cache.path()).list_files(SMOL_REPO).unwrap();
    let gguf = files.iter().find(|f| f.path == SMOL_FILE).expect("the GGUF is listed");
    assert_eq!(gguf.size, server.file(SMOL_REPO, SMOL_FILE).len() as u64);
    assert_eq!(gguf.sha256.as_deref(), Some(server.sha256(SMOL_REPO, SMOL_FILE).as_str()));
    assert_eq!(gguf.quantization.as_deref(), Some("Q4_1"));
    let readme = files.iter().find(|f| f.path == "README.md").unwrap();
    assert_eq!((readme.sha256.as_deref(), readme.quantization.as_deref()), (None, None));

    let split = hub(&server, cache.path()).list_files(SPLIT_REPO).unwrap();
    let models = modelforge_hub::gguf_models(&split);
    assert_eq!(models.len(), 2, "three shards are one model: {models:?}");
    assert!(split.iter().any(|f| f.path == "Q8_0/big-Q8_0-00002-of-00003.gguf"), "recursive listing");
}

#[test]
fn the_default_quantization_is_q4_k_m_else_the_documented_order() {
    let server = HubServer::start();
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&server, cache.path());
    let plan = |r: &str| hub.plan(r).unwrap();
    assert_eq!(plan(QUANTS_REPO).files[0].path, "tiny-Q4_K_M.gguf");
    assert_eq!(plan(QUANTS_REPO).name, format!("{QUANTS_REPO}:Q4_K_M"));
    assert_eq!(plan(&format!("{QUANTS_REPO}:q8_0")).files[0].path, "tiny-Q8_0.gguf");
    // No 4-bit file: larger quantizations come before smaller ones, and a split set is one.
    let split = plan(SPLIT_REPO);
    assert_eq!((split.quantization.as_deref(), split.files.len()), (Some("Q8_0"), 3));
    assert_eq!(plan(SMOL_REPO).quantization.as_deref(), Some("Q4_1"));
    let safetensors = plan(SAFETENSORS_REPO);
    assert_eq!(safetensors.format, ModelFormat::Safetensors);

    let missing = hub.plan(&format!("{QUANTS_REPO}:Q5_K_M")).unwrap_err();
    assert!(matches!(missing, HubError::NotFound { what: "quantization", .. }), "{missing:?}");
    assert!(missing.to_string().contains("Q4_K_M, Q8_0"), "{missing}");
    for repo in [format!("{SAFETENSORS_REPO}:Q4_K_M"), DOCS_REPO.to_owned()] {
        let err = hub.plan(&repo).unwrap_err();
        assert!(matches!(err, HubError::NoGguf { .. }), "{repo}: {err:?}");
        assert!(err.to_string().contains("has no GGUF file"), "{err}");
    }
}

#[test]
fn a_pulled_model_lands_in_the_huggingface_hub_layout() {
    let server = HubServer::start();
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&server, cache.path());
    let mut last = None;
    let model = hub.pull(SPLIT_REPO, &mut |p| last = Some(p), &CancelToken::new()).unwrap();
    let dir = repo_dir(cache.path(), SPLIT_REPO);
    let snapshot = dir.join("snapshots").join(COMMIT);
    assert_eq!(model.path, snapshot.join("Q8_0/big-Q8_0-00001-of-00003.gguf"));
    assert_eq!(model.name, format!("{SPLIT_REPO}:Q8_0"));
    assert_eq!(std::fs::read_to_string(dir.join("refs/main")).unwrap(), COMMIT);
    let total: u64 = (1..=3)
        .map(|i| server.file(SPLIT_REPO, &format!("Q8_0/big-Q8_0-0000{i}-of-00003.gguf")).len() as u64)
        .sum();
    assert_eq!(last, Some(Progress { downloaded: total, total: Some(total) }));
    assert_eq!(model.size_bytes, total);
    for i in 1..=3 {
        let file = format!("Q8_0/big-Q8_0-0000{i}-of-00003.gguf");
        let link = snapshot.join(&file);
        let sha = server.sha256(SPLIT_REPO, &file);
        // A relative link, as huggingface_hub makes, to the blob named by the sha256.
        assert_eq!(std::fs::read_link(&link).unwrap(), PathBuf::from(format!("../../../blobs/{sha}")));
        assert_eq!(std::fs::read(&link).unwrap(), *server.file(SPLIT_REPO, &file));
    }
    assert_eq!(files_in(&dir.join("blobs")).len(), 3, "no .incomplete file is left");
}

#[test]
fn a_safetensors_repo_brings_config_tokenizer_and_the_indexed_shards() {
    let server = HubServer::start();
    let cache = tempfile::tempdir().unwrap();
    let model = pull(&hub(&server, cache.path()), SAFETENSORS_REPO).unwrap();
    assert_eq!(model.format, ModelFormat::Safetensors);
    assert_eq!(model.path, repo_dir(cache.path(), SAFETENSORS_REPO).join("snapshots").join(COMMIT));
    assert_eq!(model.quantization.as_deref(), Some("BF16"));
    assert_eq!(
        files_in(&model.path),
        [
            "config.json",
            "generation_config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "special_tokens_map.json",
            "tokenizer.json",
            "tokenizer_config.json",
        ]
    );
    assert_eq!(modelforge_core::detect_format(&model.path).unwrap(), ModelFormat::Safetensors);
}

#[test]
fn a_cut_download_resumes_and_fetches_only_the_rest() {
    let server = HubServer::start();
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&server, cache.path());
    let size = server.file(SMOL_REPO, SMOL_FILE).len() as u64;
    let sha = server.sha256(SMOL_REPO, SMOL_FILE);
    server.cut_next_body_after(20 << 20);
    let err = pull(&hub, SMOL_REPO).unwrap_err();
    assert!(matches!(err, HubError::Network { .. }), "{err:?}");
    assert!(err.to_string().contains("run again to resume"), "{err}");
    let partial = repo_dir(cache.path(), SMOL_REPO).join("blobs").join(format!("{sha}.incomplete"));
    let kept = partial.metadata().expect("the partial download is kept").len();
    assert!(kept > 0 && kept <= 20 << 20, "kept {kept} bytes");

    server.reset_counters();
    let model = pull(&hub, SMOL_REPO).unwrap();
    assert_eq!(server.bytes_sent(), size - kept, "only the rest was sent");
    assert!(!partial.exists());
    assert_eq!(sha256_hex(&std::fs::read(&model.path).unwrap()), sha);
    assert_eq!(model.quantization.as_deref(), Some("Q4_1"));
}

#[test]
fn a_corrupted_byte_fails_the_check_and_leaves_nothing_in_the_cache() {
    let server = HubServer::start();
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&server, cache.path());
    server.corrupt_next_body();
    let err = pull(&hub, &format!("{QUANTS_REPO}:Q8_0")).unwrap_err();
    match &err {
        HubError::ChecksumMismatch { algorithm, expected, file, .. } => {
            assert_eq!((*algorithm, file.as_str()), ("sha256", "tiny-Q8_0.gguf"));
            assert_eq!(expected, &server.sha256(QUANTS_REPO, "tiny-Q8_0.gguf"));
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("deleted"), "{err}");
    let dir = repo_dir(cache.path(), QUANTS_REPO);
    assert!(files_in(&dir.join("blobs")).is_empty(), "{:?}", files_in(&dir.join("blobs")));
    assert!(!dir.join("snapshots").join(COMMIT).join("tiny-Q8_0.gguf").exists());
    assert!(hub.cached().unwrap().is_empty());
    // The next attempt gets the true content.
    pull(&hub, &format!("{QUANTS_REPO}:Q8_0")).unwrap();
}

/// Lays out `file` of `repo` the way huggingface_hub does.
fn python_style_cache(cache: &Path, repo: &str, file: &str, content: &[u8]) -> PathBuf {
    let dir = repo_dir(cache, repo);
    let sha = sha256_hex(content);
    std::fs::create_dir_all(dir.join("blobs")).unwrap();
    std::fs::create_dir_all(dir.join("snapshots").join(COMMIT)).unwrap();
    std::fs::create_dir_all(dir.join("refs")).unwrap();
    std::fs::write(dir.join("blobs").join(&sha), content).unwrap();
    let link = dir.join("snapshots").join(COMMIT).join(file);
    std::os::unix::fs::symlink(format!("../../blobs/{sha}"), &link).unwrap();
    std::fs::write(dir.join("refs/main"), COMMIT).unwrap();
    link
}

#[test]
fn a_file_already_in_the_cache_is_used_without_a_request() {
    let server = HubServer::start();
    let cache = tempfile::tempdir().unwrap();
    let content = server.file(QUANTS_REPO, "tiny-Q4_K_M.gguf");
    let link = python_style_cache(cache.path(), QUANTS_REPO, "tiny-Q4_K_M.gguf", &content);
    let hub = hub(&server, cache.path());
    let mut reports = Vec::new();
    let path =
        hub.download(QUANTS_REPO, "tiny-Q4_K_M.gguf", &mut |p| reports.push(p), &CancelToken::new()).unwrap();
    assert_eq!(path, link);
    let size = content.len() as u64;
    assert_eq!(reports, [Progress { downloaded: size, total: Some(size) }]);
    let model = pull(&hub, &format!("{QUANTS_REPO}:Q4_K_M")).unwrap();
    assert_eq!((model.path, model.quantization.as_deref()), (link.clone(), Some("Q4_K_M")));
    assert_eq!(server.requests(), Vec::<String>::new());
    // A bare repository asks for the listing to learn its default, but fetches no file.
    assert_eq!(pull(&hub, QUANTS_REPO).unwrap().path, link);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].starts_with("GET /api/models/") && requests[0].contains("/tree/main"),
        "{requests:?}"
    );
    assert_eq!(server.bytes_sent(), 0);
    let cached = hub.cached().unwrap();
    assert_eq!(cached.len(), 1);
    assert_eq!(cached[0].name, format!("{QUANTS_REPO}:Q4_K_M"));
}

#[test]
fn offline_mode_works_from_the_cache_and_fails_clearly_otherwise() {
    let server = HubServer::start();
    let cache = tempfile::tempdir().unwrap();
    let content = server.file(QUANTS_REPO, "tiny-Q4_K_M.gguf");
    let link = python_style_cache(cache.path(), QUANTS_REPO, "tiny-Q4_K_M.gguf", &content);
    let hub = HfHub::new(HfHubOptions { offline: true, ..options(&server, cache.path()) });
    assert_eq!(pull(&hub, &format!("{QUANTS_REPO}:Q4_K_M")).unwrap().path, link);
    let files = hub.list_files(QUANTS_REPO).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].sha256.as_deref(), Some(sha256_hex(&content).as_str()));

    let err = pull(&hub, &format!("{QUANTS_REPO}:Q8_0")).unwrap_err();
    assert!(matches!(err, HubError::Offline { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("HF_HUB_OFFLINE") && message.contains(&cache.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("Q8_0"), "{message}");
    assert!(matches!(hub.search("tiny", 5), Err(HubError::Offline { .. })));
    assert!(matches!(hub.list_files(SMOL_REPO), Err(HubError::Offline { .. })));
    assert_eq!(server.requests(), Vec::<String>::new(), "offline means no request at all");
}

#[test]
fn errors_name_the_repository_file_and_the_token_variable() {
    let server = HubServer::start();
    let cache = tempfile::tempdir().unwrap();
    let anonymous = hub(&server, cache.path());

    let err = pull(&anonymous, "modelforge-test/does-not-exist").unwrap_err();
    assert!(matches!(err, HubError::NotFound { what: "repository", .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("modelforge-test/does-not-exist") && message.contains("HF_TOKEN"), "{message}");

    let err = anonymous.download(QUANTS_REPO, "nope.gguf", &mut |_| {}, &CancelToken::new()).unwrap_err();
    assert!(matches!(err, HubError::NotFound { what: "file", .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("nope.gguf in {QUANTS_REPO}")), "{err}");

    let err = pull(&anonymous, GATED_REPO).unwrap_err();
    assert!(
        matches!(err, HubError::AccessDenied { status: 401, gated: true, token_sent: false, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("set HF_TOKEN"), "{err}");

    let wrong = HfHub::new(HfHubOptions { token: Some("hf_wrong".into()), ..options(&server, cache.path()) });
    let err = pull(&wrong, GATED_REPO).unwrap_err();
    assert!(matches!(err, HubError::AccessDenied { status: 403, token_sent: true, .. }), "{err:?}");
    assert!(err.to_string().contains("does not grant access"), "{err}");

    let granted =
        HfHub::new(HfHubOptions { token: Some(TEST_TOKEN.into()), ..options(&server, cache.path()) });
    let (model, logs) = common::capture_all_logs(|| pull(&granted, GATED_REPO).unwrap());
    assert_eq!(model.quantization.as_deref(), Some("Q4_K_M"));
    assert!(logs.iter().any(|l| l.contains(GATED_REPO)), "the download is traced: {logs:?}");
    assert!(logs.iter().all(|l| !l.contains(TEST_TOKEN)), "the token is never logged: {logs:?}");

    let err = pull(&anonymous, "justaname").unwrap_err();
    assert!(matches!(err, HubError::InvalidReference { .. }), "{err:?}");
}

#[test]
fn an_unreachable_hub_is_a_network_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let cache = tempfile::tempdir().unwrap();
    let hub = HfHub::new(HfHubOptions {
        endpoint: url,
        cache_dir: cache.path().to_owned(),
        ..HfHubOptions::default()
    });
    let err = pull(&hub, QUANTS_REPO).unwrap_err();
    assert!(matches!(err, HubError::Network { .. }), "{err:?}");
    assert!(err.to_string().contains(QUANTS_REPO), "{err}");
}

#[test]
fn a_cancelled_download_keeps_its_part_for_later() {
    let server = HubServer::start();
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&server, cache.path());
    let cancel = CancelToken::new();
    let err = hub
        .pull(
            SMOL_REPO,
            &mut |p| {
                if p.downloaded > 8 << 20 {
                    cancel.cancel();
                }
            },
            &cancel,
        )
        .unwrap_err();
    assert!(matches!(err, HubError::Cancelled), "{err:?}");
    let size = server.file(SMOL_REPO, SMOL_FILE).len() as u64;
    let sha = server.sha256(SMOL_REPO, SMOL_FILE);
    let partial = repo_dir(cache.path(), SMOL_REPO).join("blobs").join(format!("{sha}.incomplete"));
    let kept = partial.metadata().expect("the partial download is kept").len();
    assert!(kept > 8 << 20, "kept {kept} bytes");
    // The server goes on writing into the socket for a moment after the client hangs up.
    let mut sent = server.bytes_sent();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        if std::mem::replace(&mut sent, server.bytes_sent()) == sent {
            break;
        }
    }
    server.reset_counters();
    pull(&hub, SMOL_REPO).unwrap();
    assert_eq!(server.bytes_sent(), size - kept, "resumed where it stopped");
}

/// Eight pulls of one file at once: one transfer, and every pull finds the file. (With two,
/// the snapshot link being removed and made again by one pull while another read it failed
/// now and then, with eight nearly always.)
#[test]
fn downloads_of_one_file_at_once_transfer_it_once_and_all_find_it() {
    let server = Arc::new(HubServer::start());
    let cache = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let hub = hub(&server, cache.path());
            std::thread::spawn(move || pull(&hub, SMOL_REPO).map(|m| m.path))
        })
        .collect();
    let paths: Vec<PathBuf> = threads.into_iter().map(|t| t.join().unwrap().unwrap()).collect();
    assert!(paths.iter().all(|p| *p == paths[0]), "{paths:?}");
    let content = server.file(SMOL_REPO, SMOL_FILE);
    assert_eq!(std::fs::read(&paths[0]).unwrap(), *content);
    assert_eq!(server.bytes_sent(), content.len() as u64, "the others waited for the first");
    let names =
        |dir: &Path| -> Vec<_> { std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect() };
    let snapshot = paths[0].parent().unwrap();
    assert_eq!(names(snapshot), [SMOL_FILE], "no link left half made");
    let repo_dir = snapshot.parent().unwrap().parent().unwrap();
    assert_eq!(names(&repo_dir.join("refs")), ["main"], "no ref left half written");
    let main = std::fs::read_to_string(repo_dir.join("refs").join("main")).unwrap();
    assert_eq!(std::ffi::OsStr::new(&main), snapshot.file_name().unwrap());
}

#[test]
fn remove_deletes_one_quantization_or_the_whole_repository() {
    let server = HubServer::start();
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&server, cache.path());
    pull(&hub, &format!("{QUANTS_REPO}:Q8_0")).unwrap();
    pull(&hub, QUANTS_REPO).unwrap();
    pull(&hub, SAFETENSORS_REPO).unwrap();
    let names = |hub: &HfHub| hub.cached().unwrap().into_iter().map(|m| m.name).collect::<Vec<_>>();
    assert_eq!(
        names(&hub),
        [format!("{QUANTS_REPO}:Q4_K_M"), format!("{QUANTS_REPO}:Q8_0"), SAFETENSORS_REPO.to_owned()]
    );

    let removed = hub.remove(&format!("{QUANTS_REPO}:q8_0")).unwrap();
    assert_eq!(removed.bytes_freed, server.file(QUANTS_REPO, "tiny-Q8_0.gguf").len() as u64);
    assert_eq!(names(&hub), [format!("{QUANTS_REPO}:Q4_K_M"), SAFETENSORS_REPO.to_owned()]);
    assert_eq!(files_in(&repo_dir(cache.path(), QUANTS_REPO).join("blobs")).len(), 1);

    let err = hub.remove(&format!("{QUANTS_REPO}:Q8_0")).unwrap_err();
    assert!(matches!(err, HubError::NotFound { .. }) && err.to_string().contains("Q4_K_M"), "{err}");
    hub.remove(SAFETENSORS_REPO).unwrap();
    assert!(!repo_dir(cache.path(), SAFETENSORS_REPO).exists());
    assert_eq!(names(&hub), [format!("{QUANTS_REPO}:Q4_K_M")]);
}

fn repo_of(id: &str, files: Vec<HubFile>) -> HubRepo {
    HubRepo { id: id.to_owned(), tags: vec!["gguf".into()], downloads: 1, likes: 0, gated: false, files }
}

#[test]
fn a_tree_listed_in_pages_gives_every_file_once() {
    let repo = "modelforge-test/many-files";
    // Five in a directory, so a directory entry takes a place in the first page too.
    let paths: Vec<String> = (0..25)
        .map(|i| if i < 5 { format!("sub/file-{i:02}.txt") } else { format!("file-{i:02}.txt") })
        .collect();
    let files = paths.iter().map(|p| HubFile::git(p, format!("{p}\n"))).collect();
    let server = HubServer::with_repos(vec![repo_of(repo, files)]);
    server.set_tree_page_size(10);
    let cache = tempfile::tempdir().unwrap();
    let mut listed: Vec<String> =
        hub(&server, cache.path()).list_files(repo).unwrap().into_iter().map(|f| f.path).collect();
    listed.sort();
    let mut expected = paths;
    expected.sort();
    assert_eq!(listed, expected, "every file exactly once");
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "26 entries in pages of 10: {requests:?}");
    assert!(requests.iter().all(|r| r.contains(&format!("/api/models/{repo}/tree/main"))), "{requests:?}");
    assert!(requests[1..].iter().all(|r| r.contains("cursor=")), "{requests:?}");
}

/// A tmpfs mounted on a directory for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` reads it) on `dir`, or says why it cannot
    /// (mounting needs root, or CAP_SYS_ADMIN in a container).
    fn mount(dir: &Path, size: &str) -> Result<Self, String> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if output.status.success() {
            Ok(Self(dir.to_owned()))
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy, so a file still open after a failed assertion cannot keep it mounted.
        match Command::new("umount").arg("-l").arg(&self.0).status() {
            Ok(status) if status.success() => {}
            other => eprintln!("unmounting the tmpfs on {} failed: {other:?}", self.0.display()),
        }
    }
}

/// A tmpfs of 8 MiB on a fresh directory, or `None` (with the reason on stderr) when this
/// process may not mount one.
fn small_disk() -> Option<(tempfile::TempDir, Tmpfs)> {
    let dir = tempfile::tempdir().unwrap();
    match Tmpfs::mount(dir.path(), "8m") {
        Ok(tmpfs) => Some((dir, tmpfs)),
        Err(why) => {
            eprintln!("skipping: cannot mount a tmpfs on {}: {why}", dir.path().display());
            None
        }
    }
}

const BIG_REPO: &str = "modelforge-test/big-GGUF";
const BIG_FILE: &str = "big-Q4_K_M.gguf";

fn big_file_server(size: usize) -> HubServer {
    let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    HubServer::with_repos(vec![repo_of(BIG_REPO, vec![HubFile::lfs(BIG_FILE, Arc::new(content))])])
}

#[test]
fn a_file_larger_than_the_free_space_fails_before_its_download() {
    // The mount is dropped (unmounted) before its directory.
    let Some((disk, _tmpfs)) = small_disk() else { return };
    let size = 16 << 20;
    let server = big_file_server(size);
    let hub = hub(&server, disk.path());
    let download = || hub.download(BIG_REPO, BIG_FILE, &mut |_| {}, &CancelToken::new()).unwrap_err();

    let err = download();
    assert!(matches!(err, HubError::DiskFull { needed: Some(n), .. } if n == size as u64), "{err:?}");
    let source = std::error::Error::source(&err).expect("a source").to_string();
    assert!(source.contains("bytes free in") && source.contains(&format!("{size} needed")), "{source}");
    assert_eq!(server.bytes_sent(), 0, "no byte of the file was sent");
    let requests = server.requests();
    assert!(requests.len() == 1 && requests[0].starts_with("HEAD "), "only the metadata: {requests:?}");
    let sha = server.sha256(BIG_REPO, BIG_FILE);
    let blobs = repo_dir(disk.path(), BIG_REPO).join("blobs");
    assert_eq!(files_in(&blobs), Vec::<String>::new(), "no partial file is left");
    let locks = disk.path().join(".locks").join("models--modelforge-test--big-GGUF");
    assert_eq!(files_in(&locks), [format!("{sha}.lock")]);

    // What a resumed download needs is only the rest.
    let kept = 4 << 20;
    std::fs::write(blobs.join(format!("{sha}.incomplete")), &server.file(BIG_REPO, BIG_FILE)[..kept])
        .unwrap();
    let err = download();
    assert!(
        matches!(err, HubError::DiskFull { needed: Some(n), .. } if n == (size - kept) as u64),
        "{err:?}"
    );
    assert_eq!(server.bytes_sent(), 0);
}

#[test]
fn a_disk_that_fills_during_a_download_is_reported_as_full() {
    let Some((disk, _tmpfs)) = small_disk() else { return };
    let size = 6 << 20;
    let server = big_file_server(size);
    let filler = disk.path().join("filler");
    let mut filled = false;
    // After the first MiB is written, something else takes the rest of the disk.
    let mut fill = |_: Progress| {
        if !std::mem::replace(&mut filled, true) {
            let mut file = std::fs::File::create(&filler).unwrap();
            while file.write_all(&[0; 64 << 10]).is_ok() {}
        }
    };
    let err =
        hub(&server, disk.path()).download(BIG_REPO, BIG_FILE, &mut fill, &CancelToken::new()).unwrap_err();
    assert!(filled, "the download started");
    // What is left to write: less than the file (the first MiB is on disk), more than nothing.
    assert!(matches!(err, HubError::DiskFull { needed: Some(n), .. } if n > 0 && n < size as u64), "{err:?}");
    assert!(err.to_string().contains("not enough disk space for"), "{err}");
}
