//! Search providers: SearXNG's JSON API, and any JSON search API described by field paths.
//!
//! The search service is the deployment's own choice (often a SearXNG on the same host), so
//! providers talk to it directly; only the pages found go through the guarded fetcher.

use chrono::NaiveDate;
use modelforge_core::{SearchError, SearchHit, SearchProvider, WebSearchOptions};
use serde_json::Value;

/// What a provider makes of an error status: the status, the `Retry-After` seconds and the
/// address shown in messages; `None` for the generic status error.
type OnStatus<'a> = &'a dyn Fn(u16, Option<u64>, &str) -> Option<SearchError>;

/// One GET to a search service: the JSON answer, or the error the status means.
fn get_json(
    agent: &ureq::Agent,
    url: &url::Url,
    options: &WebSearchOptions,
    on_status: OnStatus<'_>,
) -> Result<Value, SearchError> {
    let shown = without_query(url);
    let mut response = agent
        .get(url.as_str())
        .header("Accept", "application/json")
        .config()
        .timeout_global(Some(options.timeout))
        .build()
        .call()
        .map_err(|err| SearchError::Unreachable { url: shown.clone(), reason: err.to_string() })?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(8 * 1024 * 1024)
        .read_to_string()
        .map_err(|err| SearchError::Unreachable { url: shown.clone(), reason: err.to_string() })?;
    if status != 200 {
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        if let Some(err) = on_status(status, retry_after, &shown) {
            return Err(err);
        }
        let body: String = body.chars().take(200).collect();
        return Err(SearchError::Status { url: shown, status, body });
    }
    serde_json::from_str(&body)
        .map_err(|err| SearchError::BadResponse { url: shown, reason: format!("not JSON ({err})") })
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent("modelforge-web/0.1")
        .build()
        .new_agent()
}

/// The address without its query, for messages (the query is the user's words).
fn without_query(url: &url::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

fn parse_base(base: &str) -> Result<url::Url, SearchError> {
    url::Url::parse(base)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| SearchError::Config { reason: format!("`{base}` is not an http or https address") })
}

/// A date from the start of a provider's date string (`2024-03-01`, `2024-03-01T10:00:00Z`).
fn date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// A SearXNG instance's JSON API (`/search?q=...&format=json`). The instance must list
/// `json` in `search.formats`; otherwise it answers 403, reported as
/// [`SearchError::JsonDisabled`].
pub struct SearxngProvider {
    base: url::Url,
    agent: ureq::Agent,
}

impl SearxngProvider {
    /// A provider for the instance at `base` (e.g. `http://127.0.0.1:8888`, or with a path
    /// prefix such as `https://example.org/searx/`).
    pub fn new(base: &str) -> Result<Self, SearchError> {
        Ok(Self { base: parse_base(base)?, agent: agent() })
    }
}

impl SearchProvider for SearxngProvider {
    fn name(&self) -> &str {
        "searxng"
    }

    fn search(&self, query: &str, options: &WebSearchOptions) -> Result<Vec<SearchHit>, SearchError> {
        let mut url = self.base.clone();
        url.set_path(&format!("{}/search", self.base.path().trim_end_matches('/')));
        url.query_pairs_mut().append_pair("q", query).append_pair("format", "json");
        if let Some(language) = &options.language {
            url.query_pairs_mut().append_pair("language", language);
        }
        let base = without_query(&self.base);
        let answer = get_json(&self.agent, &url, options, &|status, retry_after, _| match status {
            403 => Some(SearchError::JsonDisabled { url: base.clone() }),
            429 => Some(SearchError::RateLimited { url: base.clone(), retry_after }),
            _ => None,
        })?;
        let fields = JsonFields::default().with_snippet("content").with_published("publishedDate");
        hits(&answer, &fields, options.max_results, &without_query(&url))
    }
}

/// Where a [`JsonProvider`] finds each field, as dotted paths (`data.items`, `links.0.href`).
///
/// ```
/// use modelforge_memory::JsonFields;
/// let fields = JsonFields::default().with_results("data.items").with_url("link");
/// assert_eq!(fields.title, "title");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JsonFields {
    /// The array of results in the answer (empty: the answer is the array).
    pub results: String,
    /// The page address in one result.
    pub url: String,
    /// The title in one result.
    pub title: String,
    /// The excerpt in one result.
    pub snippet: String,
    /// The publication date in one result (`YYYY-MM-DD` first), if the API has one.
    pub published: Option<String>,
}

impl Default for JsonFields {
    /// `results`, `url`, `title`, `snippet`, no date.
    fn default() -> Self {
        Self {
            results: "results".into(),
            url: "url".into(),
            title: "title".into(),
            snippet: "snippet".into(),
            published: None,
        }
    }
}

impl JsonFields {
    /// With the results array at `path`.
    pub fn with_results(mut self, path: impl Into<String>) -> Self {
        self.results = path.into();
        self
    }

    /// With the address at `path`.
    pub fn with_url(mut self, path: impl Into<String>) -> Self {
        self.url = path.into();
        self
    }

    /// With the title at `path`.
    pub fn with_title(mut self, path: impl Into<String>) -> Self {
        self.title = path.into();
        self
    }

    /// With the excerpt at `path`.
    pub fn with_snippet(mut self, path: impl Into<String>) -> Self {
        self.snippet = path.into();
        self
    }

    /// With the publication date at `path`.
    pub fn with_published(mut self, path: impl Into<String>) -> Self {
        self.published = Some(path.into());
        self
    }
}

/// Any search API that answers a GET with JSON: the address is a template in which `{query}`
/// stands for the query and `{count}` for the number of results wanted, and [`JsonFields`]
/// says where the results are.
pub struct JsonProvider {
    template: String,
    fields: JsonFields,
    agent: ureq::Agent,
}

impl JsonProvider {
    /// A provider for `template` (e.g. `https://search.example/api?q={query}&n={count}`).
    pub fn new(template: &str, fields: JsonFields) -> Result<Self, SearchError> {
        if !template.contains("{query}") {
            return Err(SearchError::Config { reason: format!("`{template}` has no {{query}} placeholder") });
        }
        parse_base(&template.replace("{query}", "q").replace("{count}", "5"))?;
        Ok(Self { template: template.to_owned(), fields, agent: agent() })
    }
}

impl SearchProvider for JsonProvider {
    fn name(&self) -> &str {
        "json"
    }

    fn search(&self, query: &str, options: &WebSearchOptions) -> Result<Vec<SearchHit>, SearchError> {
        let encoded: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let address =
            self.template.replace("{query}", &encoded).replace("{count}", &options.max_results.to_string());
        let url = parse_base(&address)?;
        let answer = get_json(&self.agent, &url, options, &|status, retry_after, shown| {
            (status == 429).then(|| SearchError::RateLimited { url: shown.to_owned(), retry_after })
        })?;
        hits(&answer, &self.fields, options.max_results, &without_query(&url))
    }
}

/// The value at a dotted `path` in `value` (numbers index arrays; empty is `value` itself).
fn at<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').filter(|p| !p.is_empty()).try_fold(value, |v, key| match v {
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => v.get(key),
    })
}

fn hits(answer: &Value, fields: &JsonFields, max: usize, shown: &str) -> Result<Vec<SearchHit>, SearchError> {
    let bad = |reason: String| SearchError::BadResponse { url: shown.to_owned(), reason };
    let results = at(answer, &fields.results)
        .and_then(Value::as_array)
        .ok_or_else(|| bad(format!("no array at `{}`", fields.results)))?;
    let text =
        |item: &Value, path: &str| at(item, path).and_then(Value::as_str).unwrap_or("").trim().to_owned();
    Ok(results
        .iter()
        .map(|item| SearchHit {
            url: text(item, &fields.url),
            title: text(item, &fields.title),
            snippet: text(item, &fields.snippet),
            published: fields.published.as_deref().and_then(|p| date(&text(item, p))),
        })
        .filter(|hit| !hit.url.is_empty())
        .take(max)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_reach_into_objects_and_arrays() {
        let value = serde_json::json!({"data": {"items": [{"link": {"href": "http://a"}}]}});
        assert_eq!(at(&value, "data.items.0.link.href"), Some(&Value::from("http://a")));
        assert_eq!(at(&value, "data.missing"), None);
        assert_eq!(at(&value, ""), Some(&value));
    }

    #[test]
    fn dates_are_read_from_their_start() {
        assert_eq!(date("2024-03-01T10:00:00"), NaiveDate::from_ymd_opt(2024, 3, 1));
        assert_eq!(date("yesterday"), None);
    }

    #[test]
    fn a_template_without_a_query_placeholder_is_refused() {
        assert!(matches!(
            JsonProvider::new("http://x/api", JsonFields::default()),
            Err(SearchError::Config { .. })
        ));
        assert!(matches!(SearxngProvider::new("ftp://x"), Err(SearchError::Config { .. })));
    }
}
