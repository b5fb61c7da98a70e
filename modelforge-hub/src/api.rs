//! The Hub's HTTP API: search, tree listing, file metadata, and opening a file's content.
//!
//! Redirects are followed by hand: the metadata of a file lives on the `resolve` answer (a
//! `302` to the CDN for LFS files), not on the file itself, and the token must go only to the
//! Hub, never to the CDN host a redirect points at.

use std::io::Read;
use std::time::Duration;

use modelforge_core::{HubError, RepoFile, RepoSummary};
use serde::Deserialize;
use ureq::http::{HeaderMap, Response, StatusCode};

use crate::options::{HfHubOptions, TOKEN_ENV};
use crate::quant::parse_quantization;

/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 10;
/// Most bytes read from a JSON answer.
const JSON_LIMIT: u64 = 64 << 20;

/// How search results are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SearchSort {
    /// Most downloaded first.
    #[default]
    Downloads,
    /// Most liked first.
    Likes,
    /// Trending first.
    Trending,
    /// Most recently updated first.
    Updated,
}

impl SearchSort {
    fn as_param(self) -> &'static str {
        match self {
            SearchSort::Downloads => "downloads",
            SearchSort::Likes => "likes",
            SearchSort::Trending => "trendingScore",
            SearchSort::Updated => "lastModified",
        }
    }
}

/// A repository search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchOptions {
    /// Words the repository id contains.
    pub query: String,
    /// Only repositories tagged `gguf`.
    pub gguf_only: bool,
    /// The order.
    pub sort: SearchSort,
    /// At most this many results.
    pub limit: usize,
}

impl Default for SearchOptions {
    /// Everything, most downloaded first, 20 results.
    fn default() -> Self {
        Self { query: String::new(), gguf_only: false, sort: SearchSort::Downloads, limit: 20 }
    }
}

/// What the `resolve` answer says about a file before its content is fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileMetadata {
    /// The commit the revision points at (`X-Repo-Commit`).
    pub commit: String,
    /// The content's hash, unquoted: the sha256 for LFS files, the git blob sha1 for others.
    pub etag: String,
    /// The size in bytes.
    pub size: Option<u64>,
    /// Where the content is: the CDN for LFS files, else the resolve URL itself.
    pub location: String,
}

/// A blocking client of one Hub endpoint.
pub(crate) struct Api {
    agent: ureq::Agent,
    endpoint: String,
    token: Option<String>,
}

#[derive(Deserialize)]
struct ApiModel {
    id: String,
    downloads: Option<u64>,
    likes: Option<u64>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    lfs: Option<TreeLfs>,
}

#[derive(Deserialize)]
struct TreeLfs {
    oid: String,
}

impl Api {
    pub(crate) fn new(options: &HfHubOptions) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_recv_response(Some(options.read_timeout + Duration::from_secs(30)))
            .timeout_per_read(Some(options.read_timeout))
            .user_agent(concat!("modelforge/", env!("CARGO_PKG_VERSION")))
            .input_buffer_size(1 << 20)
            .build();
        Self { agent: config.new_agent(), endpoint: options.endpoint.clone(), token: options.token.clone() }
    }

    /// `GET /api/models`.
    pub(crate) fn search(&self, search: &SearchOptions) -> Result<Vec<RepoSummary>, HubError> {
        let mut url = format!(
            "{}/api/models?search={}&sort={}&direction=-1&limit={}",
            self.endpoint,
            encode(&search.query, false),
            search.sort.as_param(),
            search.limit
        );
        if search.gguf_only {
            url.push_str("&filter=gguf");
        }
        let what = format!("searching {} for `{}`", self.endpoint, search.query);
        let models: Vec<ApiModel> = self.get_json(&url, &what, &Target::Search)?.0;
        Ok(models
            .into_iter()
            .map(|m| RepoSummary { id: m.id, downloads: m.downloads, likes: m.likes, tags: m.tags })
            .collect())
    }

    /// `GET /api/models/{repo}/tree/{revision}?recursive=true`, following `Link: rel="next"`
    /// pages.
    pub(crate) fn tree(&self, repo: &str, revision: &str) -> Result<Vec<RepoFile>, HubError> {
        let mut url = Some(format!(
            "{}/api/models/{repo}/tree/{}?recursive=true",
            self.endpoint,
            encode(revision, false)
        ));
        let what = format!("listing the files of {repo}");
        let target = Target::Repo { repo, revision };
        let mut files = Vec::new();
        while let Some(page) = url.take() {
            let (entries, headers): (Vec<TreeEntry>, _) = self.get_json(&page, &what, &target)?;
            files.extend(entries.into_iter().filter(|e| e.kind == "file").map(|e| RepoFile {
                quantization: parse_quantization(e.path.rsplit('/').next().unwrap_or(&e.path)),
                sha256: e.lfs.map(|l| l.oid),
                size: e.size,
                path: e.path,
            }));
            url = next_link(&headers).map(|next| absolute(&page, &next));
        }
        Ok(files)
    }

    /// `HEAD /{repo}/resolve/{revision}/{file}`, following only redirects that stay on the Hub
    /// (a renamed repository), as `huggingface_hub` does.
    pub(crate) fn file_metadata(
        &self,
        repo: &str,
        revision: &str,
        file: &str,
    ) -> Result<FileMetadata, HubError> {
        let mut url = self.resolve_url(repo, revision, file);
        let target = Target::File { repo, revision, file };
        let what = format!("asking for {file} of {repo}");
        for _ in 0..MAX_REDIRECTS {
            let response = self.send("HEAD", &url, None, &what)?;
            let status = response.status();
            let headers = response.headers();
            if status.is_redirection() && header(headers, "x-linked-etag").is_none() {
                let location = header(headers, "location")
                    .ok_or_else(|| remote(&what, "a redirect without Location"))?;
                let next = absolute(&url, location);
                if same_origin(&next, &self.endpoint) {
                    url = next;
                    continue;
                }
            }
            if !status.is_success() && !status.is_redirection() {
                return Err(status_error(status, headers, self.token.is_some(), &self.endpoint, &target));
            }
            let etag = header(headers, "x-linked-etag")
                .or_else(|| header(headers, "etag"))
                .map(normalize_etag)
                .ok_or_else(|| remote(&what, "the Hub sent no ETag for the file"))?;
            let commit = header(headers, "x-repo-commit")
                .ok_or_else(|| remote(&what, "the Hub sent no X-Repo-Commit for the file"))?
                .to_owned();
            let size = header(headers, "x-linked-size")
                .or_else(|| header(headers, "content-length"))
                .and_then(|s| s.parse().ok());
            let location = match header(headers, "location") {
                Some(location) if status.is_redirection() => absolute(&url, location),
                _ => url.clone(),
            };
            return Ok(FileMetadata { commit, etag, size, location });
        }
        Err(remote(&what, "too many redirects"))
    }

    /// `GET location` from byte `offset` on, following redirects; the token goes only to the
    /// Hub's own host. Returns the status (200 or 206) and the body.
    pub(crate) fn open(
        &self,
        location: &str,
        offset: u64,
        target: (&str, &str, &str),
    ) -> Result<(StatusCode, HeaderMap, ureq::BodyReader<'static>), HubError> {
        let (repo, revision, file) = target;
        let what = format!("downloading {file} of {repo}");
        let mut url = location.to_owned();
        for _ in 0..MAX_REDIRECTS {
            let range = (offset > 0).then(|| format!("bytes={offset}-"));
            let response = self.send("GET", &url, range.as_deref(), &what)?;
            let status = response.status();
            if status.is_redirection() {
                let location = header(response.headers(), "location")
                    .ok_or_else(|| remote(&what, "a redirect without Location"))?;
                url = absolute(&url, location);
                continue;
            }
            if !status.is_success() && status != StatusCode::RANGE_NOT_SATISFIABLE {
                let target = Target::File { repo, revision, file };
                return Err(status_error(
                    status,
                    response.headers(),
                    self.token.is_some(),
                    &self.endpoint,
                    &target,
                ));
            }
            let (parts, body) = response.into_parts();
            return Ok((status, parts.headers, body.into_reader()));
        }
        Err(remote(&what, "too many redirects"))
    }

    fn resolve_url(&self, repo: &str, revision: &str, file: &str) -> String {
        format!("{}/{repo}/resolve/{}/{}", self.endpoint, encode(revision, false), encode(file, true))
    }

    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        what: &str,
        target: &Target<'_>,
    ) -> Result<(T, HeaderMap), HubError> {
        let response = self.send("GET", url, None, what)?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_error(
                status,
                response.headers(),
                self.token.is_some(),
                &self.endpoint,
                target,
            ));
        }
        let (parts, mut body) = response.into_parts();
        let bytes =
            body.with_config().limit(JSON_LIMIT).read_to_vec().map_err(|e| transport_error(what, e))?;
        let value = serde_json::from_slice(&bytes).map_err(|e| HubError::Remote {
            context: format!("{what}: the Hub's answer is not the expected JSON"),
            source: Some(Box::new(e)),
        })?;
        Ok((value, parts.headers))
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        range: Option<&str>,
        what: &str,
    ) -> Result<Response<ureq::Body>, HubError> {
        let span = tracing::debug_span!("http", method, url);
        let _entered = span.enter();
        let mut request =
            ureq::http::Request::builder().method(method).uri(url).header("Accept-Encoding", "identity");
        if let Some(range) = range {
            request = request.header("Range", range);
        }
        if let Some(token) = self.token.as_deref().filter(|_| same_origin(url, &self.endpoint)) {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let request =
            request.body(()).map_err(|e| remote(what, &format!("invalid request URL {url}: {e}")))?;
        self.agent.run(request).map_err(|e| transport_error(what, e))
    }
}

/// What a request was about, for its error message.
enum Target<'a> {
    Search,
    Repo { repo: &'a str, revision: &'a str },
    File { repo: &'a str, revision: &'a str, file: &'a str },
}

impl Target<'_> {
    fn repo(&self) -> &str {
        match self {
            Target::Search => "the Hub",
            Target::Repo { repo, .. } | Target::File { repo, .. } => repo,
        }
    }
}

/// The error for a non-success status, read the way `huggingface_hub` reads it: by
/// `X-Error-Code` first, then by status.
fn status_error(
    status: StatusCode,
    headers: &HeaderMap,
    token_sent: bool,
    endpoint: &str,
    target: &Target<'_>,
) -> HubError {
    let code = header(headers, "x-error-code").unwrap_or_default();
    let message = header(headers, "x-error-message").unwrap_or_default();
    let repo = target.repo().to_owned();
    let private_hint = if token_sent {
        String::new()
    } else {
        format!(" (a private repository looks the same without a token: set {TOKEN_ENV})")
    };
    match (code, status.as_u16(), target) {
        ("RepoNotFound", ..) | ("", 401, Target::Repo { .. } | Target::File { .. })
            if message != "Invalid credentials in Authorization header" =>
        {
            HubError::NotFound { what: "repository", name: format!("{repo} on {endpoint}{private_hint}") }
        }
        ("RevisionNotFound", ..) => {
            let revision = match target {
                Target::Repo { revision, .. } | Target::File { revision, .. } => revision,
                Target::Search => "",
            };
            HubError::NotFound { what: "revision", name: format!("`{revision}` of {repo}") }
        }
        ("EntryNotFound", ..) | ("", 404, Target::File { .. }) => {
            let (file, revision) = match target {
                Target::File { file, revision, .. } => (*file, *revision),
                _ => ("?", "?"),
            };
            HubError::NotFound { what: "file", name: format!("{file} in {repo} at revision {revision}") }
        }
        ("GatedRepo", status, _) | (_, status @ (401 | 403), _) => HubError::AccessDenied {
            repo,
            status,
            gated: code == "GatedRepo",
            token_sent,
            token_env: TOKEN_ENV,
        },
        (_, 404, _) => {
            HubError::NotFound { what: "repository", name: format!("{repo} on {endpoint}{private_hint}") }
        }
        (_, status, _) => {
            let detail = if message.is_empty() { String::new() } else { format!(": {message}") };
            let context = match status {
                429 => format!(
                    "the Hub is rate-limiting requests about {repo} (HTTP 429); wait a moment{detail}"
                ),
                500..=599 => format!(
                    "the Hub failed while answering about {repo} (HTTP {status}); try again later{detail}"
                ),
                _ => format!("the Hub refused a request about {repo} (HTTP {status}){detail}"),
            };
            HubError::Remote { context, source: None }
        }
    }
}

fn transport_error(what: &str, err: ureq::Error) -> HubError {
    HubError::Network { context: what.to_owned(), source: Box::new(err) }
}

fn remote(what: &str, why: &str) -> HubError {
    HubError::Remote { context: format!("{what}: {why}"), source: None }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `"abc"` and `W/"abc"` are `abc`.
fn normalize_etag(etag: &str) -> String {
    etag.trim().trim_start_matches("W/").trim_matches('"').to_owned()
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    header(headers, "link")?.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .contains("rel=\"next\"")
            .then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}

/// `location` made absolute against `base`.
fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let origin_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[origin_end..].find('/').map_or(base.len(), |i| origin_end + i);
    if location.starts_with('/') {
        return format!("{}{location}", &base[..path_start]);
    }
    let dir_end = base[..base.find('?').unwrap_or(base.len())]
        .rfind('/')
        .filter(|&i| i >= path_start)
        .map_or(base.len(), |i| i + 1);
    format!("{}{location}", &base[..dir_end])
}

fn same_origin(url: &str, endpoint: &str) -> bool {
    let origin = |u: &str| {
        let start = u.find("://").map_or(0, |i| i + 3);
        let end = u[start..].find('/').map_or(u.len(), |i| start + i);
        u[..end].to_ascii_lowercase()
    };
    origin(url) == origin(endpoint)
}

/// Percent-encodes everything but unreserved characters (and `/` when `keep_slash`).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads until `buf` is full or the body ends; returns how much was read.
pub(crate) fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_joined_and_compared_by_origin() {
        assert_eq!(absolute("http://h:1/a/b?x=1", "/cdn/x"), "http://h:1/cdn/x");
        assert_eq!(absolute("http://h:1/a/b", "c"), "http://h:1/a/c");
        assert_eq!(absolute("http://h/a", "https://cdn/x"), "https://cdn/x");
        assert!(same_origin("http://H:1/x", "http://h:1"));
        assert!(!same_origin("https://cdn-lfs.hf.co/x", "https://huggingface.co"));
    }

    #[test]
    fn etags_lose_quotes_and_weakness() {
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("\"abc\""), "abc");
    }

    #[test]
    fn paths_and_revisions_are_encoded() {
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(encode("a b/c.gguf", true), "a%20b/c.gguf");
    }

    #[test]
    fn statuses_become_errors_that_say_what_to_do() {
        let mut headers = HeaderMap::new();
        let target = Target::File { repo: "o/r", revision: "main", file: "f.gguf" };
        let err = status_error(StatusCode::UNAUTHORIZED, &headers, false, "https://hub", &target);
        assert!(matches!(err, HubError::NotFound { what: "repository", .. }), "{err:?}");
        assert!(err.to_string().contains("HF_TOKEN"), "{err}");
        headers.insert("x-error-code", "GatedRepo".parse().unwrap());
        let err = status_error(StatusCode::FORBIDDEN, &headers, true, "https://hub", &target);
        assert!(
            matches!(err, HubError::AccessDenied { gated: true, token_sent: true, status: 403, .. }),
            "{err:?}"
        );
        headers.insert("x-error-code", "EntryNotFound".parse().unwrap());
        let err = status_error(StatusCode::NOT_FOUND, &headers, true, "https://hub", &target);
        assert!(err.to_string().contains("f.gguf in o/r"), "{err}");
        let err = status_error(StatusCode::BAD_GATEWAY, &HeaderMap::new(), false, "https://hub", &target);
        assert!(matches!(err, HubError::Remote { .. }) && err.to_string().contains("502"), "{err}");
    }
}
