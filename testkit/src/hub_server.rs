//! A local stand-in for the Hugging Face Hub, for tests and benchmarks that cannot reach the
//! real one.
//!
//! It speaks the part of the Hub's HTTP API that `huggingface_hub` and ModelForge use, with the
//! same JSON shapes and headers:
//!
//! - `GET /api/models?search=&filter=&sort=&limit=`: repository summaries;
//! - `GET /api/models/{org}/{name}/tree/{revision}?recursive=true`: files with `oid`, `size` and,
//!   for LFS files, `lfs.oid` (the sha256), in pages of [`TREE_PAGE_SIZE`] entries (see
//!   [`HubServer::set_tree_page_size`]) linked by `Link: <...&cursor=...>; rel="next"`;
//! - `HEAD`/`GET /{org}/{name}/resolve/{revision}/{path}`: small files answer `200` with
//!   `ETag` (the git blob sha1); LFS files answer `302` to `/cdn/{sha256}` (a separate path,
//!   like the Hub's CDN) with `X-Linked-Etag`, `X-Linked-Size`; both carry `X-Repo-Commit`;
//! - `Range: bytes=N-` answers `206` with `Content-Range`;
//! - errors carry `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`,
//!   `GatedRepo`) with the Hub's statuses: a missing repository is `401` without a token and
//!   `404` with one; a gated repository is `401` without a token and `403` with a wrong one.
//!
//! It is a plain thread-per-connection server over `std::net`, one request per connection, so
//! tests can cut a response after a given number of bytes and count exactly what was sent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use serde_json::{Value, json};
use sha1::Digest as _;

/// The token that opens [`GATED_REPO`].
pub const TEST_TOKEN: &str = "hf_testkit_0123456789";
/// The real SmolLM2-135M-Instruct Q4_1 GGUF, with a README.
pub const SMOL_REPO: &str = "modelforge-test/SmolLM2-135M-Instruct-GGUF";
/// The real SmolLM2 file's name in [`SMOL_REPO`].
pub const SMOL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Small GGUF files in several quantizations, and a vision projector.
pub const QUANTS_REPO: &str = "modelforge-test/tiny-quants-GGUF";
/// A GGUF split into three shards (Q8_0) beside a single Q3_K_M file.
pub const SPLIT_REPO: &str = "modelforge-test/split-GGUF";
/// A small safetensors model: config, tokenizer, two indexed shards and a stray
/// `consolidated.safetensors` that the index does not name.
pub const SAFETENSORS_REPO: &str = "modelforge-test/tiny-safetensors";
/// A gated repository: [`TEST_TOKEN`] opens it.
pub const GATED_REPO: &str = "modelforge-test/gated-GGUF";
/// A repository with a README and nothing else.
pub const DOCS_REPO: &str = "modelforge-test/docs-only";
/// The commit every test repository is at.
pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
/// Tree entries per page unless a test sets another size: the Hub's page size.
pub const TREE_PAGE_SIZE: usize = 1000;

/// One file of a repository.
#[derive(Clone)]
pub struct HubFile {
    /// Path inside the repository.
    pub path: String,
    /// The content.
    pub content: Arc<Vec<u8>>,
    /// Stored with LFS (served through the CDN path, announced by sha256).
    pub lfs: bool,
}

impl HubFile {
    /// A small file stored in git.
    pub fn git(path: &str, content: impl Into<Vec<u8>>) -> Self {
        Self { path: path.to_owned(), content: Arc::new(content.into()), lfs: false }
    }

    /// A file stored with LFS.
    pub fn lfs(path: &str, content: Arc<Vec<u8>>) -> Self {
        Self { path: path.to_owned(), content, lfs: true }
    }
}

/// One repository.
#[derive(Clone)]
pub struct HubRepo {
    /// `org/name`.
    pub id: String,
    /// Tags, e.g. `gguf`.
    pub tags: Vec<String>,
    /// The download count reported by search.
    pub downloads: u64,
    /// The like count reported by search.
    pub likes: u64,
    /// Whether [`TEST_TOKEN`] is needed.
    pub gated: bool,
    /// The files.
    pub files: Vec<HubFile>,
}

/// A file's hashes, computed once.
struct Served {
    file: HubFile,
    sha256: String,
    git_sha1: String,
}

struct State {
    repos: BTreeMap<String, (HubRepo, Vec<Served>)>,
    /// Files by sha256, for the CDN path.
    blobs: BTreeMap<String, Arc<Vec<u8>>>,
    body_bytes: AtomicU64,
    requests: Mutex<Vec<String>>,
    /// One-shot: the next file body stops after this many bytes (`u64::MAX`: off).
    cut_after: AtomicU64,
    /// One-shot: the next file body stops after this many bytes and the connection stays open.
    stall_after: AtomicU64,
    /// One-shot: the next file body has its middle byte flipped.
    corrupt_next: AtomicBool,
    /// Most tree entries in one answer.
    tree_page_size: AtomicUsize,
    /// `http://127.0.0.1:PORT`, for the absolute links of tree pages.
    url: String,
    stop: AtomicBool,
}

/// A running local Hub. Stops when dropped.
pub struct HubServer {
    addr: SocketAddr,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl HubServer {
    /// Serves the standard test repositories ([`SMOL_REPO`], [`QUANTS_REPO`], [`SPLIT_REPO`],
    /// [`SAFETENSORS_REPO`], [`GATED_REPO`], [`DOCS_REPO`]). Needs the SmolLM2 test model.
    pub fn start() -> Self {
        Self::with_repos(standard_repos())
    }

    /// Serves `repos` on a free port of 127.0.0.1.
    pub fn with_repos(repos: Vec<HubRepo>) -> Self {
        let mut blobs = BTreeMap::new();
        let repos = repos
            .into_iter()
            .map(|repo| {
                let served: Vec<Served> = repo
                    .files
                    .iter()
                    .map(|f| {
                        let sha256 = hex(&sha2::Sha256::digest(f.content.as_slice()));
                        blobs.insert(sha256.clone(), Arc::clone(&f.content));
                        Served { sha256, git_sha1: git_sha1(&f.content), file: f.clone() }
                    })
                    .collect();
                (repo.id.clone(), (repo, served))
            })
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(State {
            repos,
            blobs,
            body_bytes: AtomicU64::new(0),
            requests: Mutex::new(Vec::new()),
            cut_after: AtomicU64::new(u64::MAX),
            stall_after: AtomicU64::new(u64::MAX),
            corrupt_next: AtomicBool::new(false),
            tree_page_size: AtomicUsize::new(TREE_PAGE_SIZE),
            url: format!("http://{addr}"),
            stop: AtomicBool::new(false),
        });
        let thread_state = Arc::clone(&state);
        let thread = std::thread::spawn(move || accept_loop(&listener, &thread_state));
        Self { addr, state, thread: Some(thread) }
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`, to use as `HF_ENDPOINT`.
    pub fn url(&self) -> String {
        self.state.url.clone()
    }

    /// Tree listings answer at most `entries` entries (at least 1) per page, the rest behind
    /// `Link: rel="next"`.
    pub fn set_tree_page_size(&self, entries: usize) {
        self.state.tree_page_size.store(entries.max(1), Ordering::SeqCst);
    }

    /// File-body bytes sent so far (from `resolve` and the CDN path), over all requests.
    pub fn bytes_sent(&self) -> u64 {
        self.state.body_bytes.load(Ordering::SeqCst)
    }

    /// Every request so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().expect("not poisoned").clone()
    }

    /// Forgets the requests and byte count so far.
    pub fn reset_counters(&self) {
        self.state.requests.lock().expect("not poisoned").clear();
        self.state.body_bytes.store(0, Ordering::SeqCst);
    }

    /// The next file body is cut (the connection closed) after `bytes` bytes.
    pub fn cut_next_body_after(&self, bytes: u64) {
        self.state.cut_after.store(bytes, Ordering::SeqCst);
    }

    /// The next file body stops after `bytes` bytes and the connection stays open and silent
    /// (for at most a minute, or until the client leaves): a download to interrupt midway.
    pub fn stall_next_body_after(&self, bytes: u64) {
        self.state.stall_after.store(bytes, Ordering::SeqCst);
    }

    /// The next file body has one byte changed, while its headers still announce the true hash.
    pub fn corrupt_next_body(&self) {
        self.state.corrupt_next.store(true, Ordering::SeqCst);
    }

    /// The content of `path` in `repo`.
    pub fn file(&self, repo: &str, path: &str) -> Arc<Vec<u8>> {
        let (_, served) = &self.state.repos[repo];
        let found = served.iter().find(|s| s.file.path == path).expect("a served file");
        Arc::clone(&found.file.content)
    }

    /// The sha256 (hex) of `path` in `repo`.
    pub fn sha256(&self, repo: &str, path: &str) -> String {
        let (_, served) = &self.state.repos[repo];
        served.iter().find(|s| s.file.path == path).expect("a served file").sha256.clone()
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The standard repositories (see [`HubServer::start`]).
pub fn standard_repos() -> Vec<HubRepo> {
    let gguf = |label: &str| Arc::new(tiny_gguf(label));
    let repo = |id: &str, tags: &[&str], downloads: u64, files: Vec<HubFile>| HubRepo {
        id: id.to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        downloads,
        likes: downloads / 100,
        gated: false,
        files,
    };
    let readme = |title: &str| HubFile::git("README.md", format!("# {title}\n"));
    let safetensors = |n: u8| Arc::new(tiny_safetensors(n));
    vec![
        repo(
            SMOL_REPO,
            &["gguf", "llama", "text-generation"],
            5000,
            vec![
                HubFile::git(".gitattributes", "*.gguf filter=lfs diff=lfs merge=lfs -text\n"),
                readme("SmolLM2-135M-Instruct GGUF"),
                HubFile::lfs(SMOL_FILE, smollm2_bytes()),
            ],
        ),
        repo(
            QUANTS_REPO,
            &["gguf", "llama"],
            900,
            vec![
                readme("tiny quants"),
                HubFile::lfs("tiny-Q2_K.gguf", gguf("Q2_K")),
                HubFile::lfs("tiny-Q4_K_M.gguf", gguf("Q4_K_M")),
                HubFile::lfs("tiny-Q8_0.gguf", gguf("Q8_0")),
                HubFile::lfs("tiny-F16.gguf", gguf("F16")),
                HubFile::lfs("mmproj-tiny-F16.gguf", gguf("mmproj")),
            ],
        ),
        repo(
            SPLIT_REPO,
            &["gguf"],
            300,
            vec![
                readme("split"),
                HubFile::lfs("big-Q3_K_M.gguf", gguf("Q3_K_M")),
                HubFile::lfs("Q8_0/big-Q8_0-00001-of-00003.gguf", gguf("Q8_0 1")),
                HubFile::lfs("Q8_0/big-Q8_0-00002-of-00003.gguf", gguf("Q8_0 2")),
                HubFile::lfs("Q8_0/big-Q8_0-00003-of-00003.gguf", gguf("Q8_0 3")),
            ],
        ),
        repo(
            SAFETENSORS_REPO,
            &["safetensors", "transformers", "llama"],
            700,
            vec![
                readme("tiny safetensors"),
                HubFile::git(
                    "config.json",
                    r#"{"model_type":"llama","max_position_embeddings":128,"torch_dtype":"bfloat16"}"#,
                ),
                HubFile::git("generation_config.json", r#"{"do_sample":false}"#),
                HubFile::git("tokenizer.json", r#"{"version":"1.0","model":{"type":"BPE"}}"#),
                HubFile::git("tokenizer_config.json", r#"{"chat_template":"{{ messages }}"}"#),
                HubFile::git("special_tokens_map.json", "{}"),
                HubFile::git(
                    "model.safetensors.index.json",
                    r#"{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#,
                ),
                HubFile::lfs("model-00001-of-00002.safetensors", safetensors(1)),
                HubFile::lfs("model-00002-of-00002.safetensors", safetensors(2)),
                HubFile::lfs("consolidated.safetensors", safetensors(3)),
                HubFile::lfs("onnx/model.onnx", Arc::new(vec![7; 64])),
            ],
        ),
        HubRepo {
            gated: true,
            ..repo(GATED_REPO, &["gguf"], 50, vec![HubFile::lfs("gated-Q4_K_M.gguf", gguf("gated"))])
        },
        repo(DOCS_REPO, &[], 10, vec![readme("docs only")]),
    ]
}

/// The SmolLM2 test model's bytes, read once per process.
pub fn smollm2_bytes() -> Arc<Vec<u8>> {
    static BYTES: OnceLock<Arc<Vec<u8>>> = OnceLock::new();
    Arc::clone(BYTES.get_or_init(|| {
        let path = crate::smollm2_gguf();
        Arc::new(std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
    }))
}

/// A small valid GGUF v3 file with no tensors and `general.name` = `label`.
pub fn tiny_gguf(label: &str) -> Vec<u8> {
    crate::gguf::GgufBuilder::new().string("general.name", label).build()
}

/// A small safetensors file whose one tensor is filled with `fill`.
pub fn tiny_safetensors(fill: u8) -> Vec<u8> {
    let header = br#"{"weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(&[fill; 8]);
    out
}

fn accept_loop(listener: &TcpListener, state: &Arc<State>) {
    for stream in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let state = Arc::clone(state);
        std::thread::spawn(move || {
            // A client that hangs up early is not the server's problem.
            let _ = handle(stream, &state);
        });
    }
}

/// A parsed request.
struct Request {
    method: String,
    /// The path as sent, still percent-encoded.
    raw_path: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn token(&self) -> Option<&str> {
        self.header("authorization").and_then(|v| v.strip_prefix("Bearer "))
    }
}

/// A response before it is written.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

enum Body {
    Empty,
    Text(Vec<u8>),
    /// A slice of a served file: counted, and subject to cuts and corruption.
    File {
        content: Arc<Vec<u8>>,
        start: usize,
        end: usize,
    },
}

impl Response {
    fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Body::Empty }
    }

    fn json(value: &Value) -> Self {
        Self::new(200).header("Content-Type", "application/json").text(value.to_string())
    }

    fn error(status: u16, code: &str, message: &str) -> Self {
        Self::new(status)
            .header("X-Error-Code", code)
            .header("X-Error-Message", message)
            .header("Content-Type", "application/json")
            .text(json!({ "error": message }).to_string())
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    fn text(mut self, body: String) -> Self {
        self.body = Body::Text(body.into_bytes());
        self
    }
}

fn handle(stream: TcpStream, state: &State) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(request) = read_request(&mut reader)? else { return Ok(()) };
    let mut line = format!("{} {}", request.method, request.path);
    if !request.query.is_empty() {
        let pairs: Vec<String> = request.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line = format!("{line}?{}", pairs.join("&"));
    }
    state.requests.lock().expect("not poisoned").push(line);
    let response = route(&request, state);
    write_response(stream, &request, response, state)
}

fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let mut first = String::new();
    if reader.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut parts = first.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else { return Ok(None) };
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (percent_decode(k, true), percent_decode(v, true)))
        .collect();
    Ok(Some(Request {
        method: method.to_owned(),
        raw_path: path.to_owned(),
        path: percent_decode(path, false),
        query,
        headers,
    }))
}

fn route(request: &Request, state: &State) -> Response {
    let path = request.path.trim_start_matches('/');
    if request.method != "GET" && request.method != "HEAD" {
        return Response::error(405, "MethodNotAllowed", "only GET and HEAD");
    }
    if path == "api/models" {
        return search(request, state);
    }
    if let Some(rest) = path.strip_prefix("api/models/") {
        return tree(request, state, rest);
    }
    if let Some(sha) = path.strip_prefix("cdn/") {
        return match state.blobs.get(sha) {
            Some(content) => file_response(request, Arc::clone(content), &format!("\"{sha}\"")),
            None => Response::error(404, "EntryNotFound", "no such blob"),
        };
    }
    resolve(request, state, path)
}

fn search(request: &Request, state: &State) -> Response {
    let query = request.query.get("search").map(|s| s.to_lowercase()).unwrap_or_default();
    let filter = request.query.get("filter");
    let mut found: Vec<&HubRepo> = state
        .repos
        .values()
        .map(|(repo, _)| repo)
        .filter(|r| r.id.to_lowercase().contains(&query))
        .filter(|r| filter.is_none_or(|f| r.tags.contains(f)))
        .collect();
    match request.query.get("sort").map(String::as_str) {
        Some("likes") => found.sort_by_key(|r| std::cmp::Reverse(r.likes)),
        Some("downloads") => found.sort_by_key(|r| std::cmp::Reverse(r.downloads)),
        _ => {}
    }
    let limit = request.query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(usize::MAX);
    let items: Vec<Value> = found
        .into_iter()
        .take(limit)
        .map(|r| {
            json!({
                "_id": format!("{:024x}", r.downloads),
                "id": r.id,
                "modelId": r.id,
                "likes": r.likes,
                "trendingScore": 0,
                "private": false,
                "downloads": r.downloads,
                "tags": r.tags,
                "library_name": if r.tags.iter().any(|t| t == "gguf") { "gguf" } else { "transformers" },
                "createdAt": "2025-01-01T00:00:00.000Z",
            })
        })
        .collect();
    Response::json(&Value::Array(items))
}

/// `org/name/tree/{revision}[/{path}]`.
fn tree(request: &Request, state: &State, rest: &str) -> Response {
    let mut parts = rest.splitn(5, '/');
    let (Some(org), Some(name), Some("tree"), Some(revision)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Response::error(404, "EntryNotFound", "unknown API path");
    };
    let served = match access(request, state, &format!("{org}/{name}"), revision) {
        Ok((_, served)) => served,
        Err(response) => return response,
    };
    let recursive = matches!(request.query.get("recursive").map(String::as_str), Some("true" | "1" | "True"));
    let prefix = parts.next().map(|p| format!("{}/", p.trim_end_matches('/'))).unwrap_or_default();
    let mut entries = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    for s in served.iter().filter(|s| s.file.path.starts_with(&prefix)) {
        let rest = &s.file.path[prefix.len()..];
        if let Some((dir, _)) = rest.split_once('/') {
            // Directories are listed as entries of their own, as the Hub does.
            dirs.insert(format!("{prefix}{dir}"));
            if !recursive {
                continue;
            }
        }
        let size = s.file.content.len();
        let mut entry = json!({ "type": "file", "oid": s.git_sha1, "size": size, "path": s.file.path });
        if s.file.lfs {
            entry["lfs"] = json!({ "oid": s.sha256, "size": size, "pointerSize": 134 });
        }
        entries.push(entry);
    }
    let dir_entries =
        dirs.into_iter().map(|d| json!({ "type": "directory", "oid": COMMIT, "size": 0, "path": d }));
    let all: Vec<Value> = dir_entries.chain(entries).collect();
    tree_page(request, state, all)
}

/// The page of `entries` the request's `cursor` points at, with a `Link` to the next one.
/// The cursor is opaque to clients, as on the Hub: here the first entry's index in hex.
fn tree_page(request: &Request, state: &State, mut entries: Vec<Value>) -> Response {
    let start = match request.query.get("cursor") {
        None => 0,
        Some(cursor) => match usize::from_str_radix(cursor, 16).ok() {
            Some(start) if start <= entries.len() => start,
            _ => return Response::error(400, "BadRequest", &format!("Invalid cursor: {cursor}")),
        },
    };
    let end = entries.len().min(start + state.tree_page_size.load(Ordering::SeqCst));
    let rest = entries.split_off(end);
    let page = Value::Array(entries.split_off(start));
    if rest.is_empty() {
        return Response::json(&page);
    }
    let mut query: Vec<String> =
        request.query.iter().filter(|(k, _)| *k != "cursor").map(|(k, v)| format!("{k}={v}")).collect();
    query.push(format!("cursor={end:x}"));
    let next = format!("{}{}?{}", state.url, request.raw_path, query.join("&"));
    Response::json(&page).header("Link", format!("<{next}>; rel=\"next\""))
}

/// `org/name/resolve/{revision}/{path}`.
fn resolve(request: &Request, state: &State, path: &str) -> Response {
    let mut parts = path.splitn(5, '/');
    let (Some(org), Some(name), Some("resolve"), Some(revision), Some(file)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Response::error(404, "EntryNotFound", "unknown path");
    };
    let repo_id = format!("{org}/{name}");
    let served = match access(request, state, &repo_id, revision) {
        Ok((_, served)) => served,
        Err(response) => return response,
    };
    let Some(found) = served.iter().find(|s| s.file.path == file) else {
        return Response::error(404, "EntryNotFound", &format!("{file} does not exist on \"{revision}\""));
    };
    if found.file.lfs {
        let size = found.file.content.len().to_string();
        return Response::new(302)
            .header("Location", format!("/cdn/{}?repo={repo_id}", found.sha256))
            .header("X-Repo-Commit", COMMIT)
            .header("X-Linked-Etag", format!("\"{}\"", found.sha256))
            .header("X-Linked-Size", size)
            .header("ETag", format!("\"{}\"", found.sha256))
            .text(format!("Found. Redirecting to /cdn/{}", found.sha256));
    }
    file_response(request, Arc::clone(&found.file.content), &format!("\"{}\"", found.git_sha1))
        .header("X-Repo-Commit", COMMIT)
}

/// The repository `id` if the request may see it at `revision`, else the Hub's error answer.
fn access<'a>(
    request: &Request,
    state: &'a State,
    id: &str,
    revision: &str,
) -> Result<(&'a HubRepo, &'a [Served]), Response> {
    let Some((repo, served)) = state.repos.get(id) else {
        // The Hub does not reveal to anonymous callers whether a private repository exists.
        let status = if request.token().is_some() { 404 } else { 401 };
        return Err(Response::error(status, "RepoNotFound", "Repository not found"));
    };
    if repo.gated && request.token() != Some(TEST_TOKEN) {
        let status = if request.token().is_some() { 403 } else { 401 };
        let message = format!(
            "Access to model {id} is restricted. You must have access to it and be authenticated to access it. Please log in."
        );
        return Err(Response::error(status, "GatedRepo", &message));
    }
    if revision != "main" && revision != COMMIT {
        return Err(Response::error(404, "RevisionNotFound", &format!("Invalid rev id: {revision}")));
    }
    Ok((repo, served))
}

/// A file body, whole or from a `Range: bytes=N-[M]`.
fn file_response(request: &Request, content: Arc<Vec<u8>>, etag: &str) -> Response {
    let len = content.len();
    let base = Response::new(200).header("Accept-Ranges", "bytes").header("ETag", etag);
    let Some(range) = request.header("range") else {
        return Response { body: Body::File { content, start: 0, end: len }, ..base };
    };
    let parsed = range.strip_prefix("bytes=").and_then(|r| r.split_once('-')).and_then(|(a, b)| {
        let start: usize = a.parse().ok()?;
        let end = if b.is_empty() { len } else { b.parse::<usize>().ok()?.saturating_add(1).min(len) };
        Some((start, end))
    });
    match parsed {
        Some((start, end)) if start < end => Response {
            status: 206,
            body: Body::File { content, start, end },
            ..base.header("Content-Range", format!("bytes {start}-{}/{len}", end - 1))
        },
        _ => Response::new(416).header("Content-Range", format!("bytes */{len}")),
    }
}

fn write_response(
    mut stream: TcpStream,
    request: &Request,
    response: Response,
    state: &State,
) -> std::io::Result<()> {
    let length = match &response.body {
        Body::Empty => 0,
        Body::Text(text) => text.len(),
        Body::File { start, end, .. } => end - start,
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", response.status, reason(response.status));
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {length}\r\nConnection: close\r\n\r\n"));
    stream.write_all(head.as_bytes())?;
    if request.method == "HEAD" {
        return Ok(());
    }
    match response.body {
        Body::Empty => Ok(()),
        Body::Text(text) => stream.write_all(&text),
        Body::File { content, start, end } => send_file(&mut stream, &content[start..end], state),
    }
}

/// Writes a file body in 1 MiB pieces, counting bytes and applying a pending cut or corruption.
fn send_file(stream: &mut TcpStream, body: &[u8], state: &State) -> std::io::Result<()> {
    let cut = state.cut_after.swap(u64::MAX, Ordering::SeqCst);
    let stall = state.stall_after.swap(u64::MAX, Ordering::SeqCst);
    let limit = usize::try_from(cut.min(stall)).unwrap_or(usize::MAX).min(body.len());
    let corrupt_at = state.corrupt_next.swap(false, Ordering::SeqCst).then_some(body.len() / 2);
    for (i, chunk) in body[..limit].chunks(1 << 20).enumerate() {
        let offset = i << 20;
        match corrupt_at.filter(|&at| (offset..offset + chunk.len()).contains(&at)) {
            Some(at) => {
                let mut copy = chunk.to_vec();
                copy[at - offset] ^= 0xff;
                stream.write_all(&copy)?;
            }
            None => stream.write_all(chunk)?,
        }
        state.body_bytes.fetch_add(chunk.len() as u64, Ordering::SeqCst);
    }
    if limit < body.len() && stall < cut {
        stream.flush()?;
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        stream.set_read_timeout(Some(std::time::Duration::from_millis(50)))?;
        let mut probe = [0u8; 1];
        while std::time::Instant::now() < until && !state.stop.load(Ordering::SeqCst) {
            // A read of 0 bytes means the client closed its end.
            match std::io::Read::read(stream, &mut probe) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
    }
    if limit < body.len() {
        // Closing with bytes still announced is what a cut connection looks like.
        stream.shutdown(std::net::Shutdown::Both)?;
    }
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Error",
    }
}

/// The git blob id of `content`: sha1 over `blob {len}\0` and the bytes.
fn git_sha1(content: &[u8]) -> String {
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {}\0", content.len()).as_bytes());
    hasher.update(content);
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes `%XX` escapes, and in a query `+` as a space.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') if plus_is_space => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
