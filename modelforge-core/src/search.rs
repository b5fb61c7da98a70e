//! Web search: the [`SearchProvider`] trait, what it returns and how it fails.
//!
//! A provider only lists results (title, address, snippet); fetching and reading the pages is
//! the caller's business, so a provider is a thin client of one search API (SearXNG, a company
//! search service) and easy to replace in tests.

use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One search result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The page's address.
    pub url: String,
    /// The page's title as the search engine gives it.
    pub title: String,
    /// The engine's excerpt of the page; may be empty.
    pub snippet: String,
    /// When the page was published, when the engine knows.
    pub published: Option<NaiveDate>,
}

/// How to search. `Default`: 5 results, any language, 5 seconds.
///
/// ```
/// use modelforge_core::WebSearchOptions;
/// let options = WebSearchOptions::default().with_max_results(3);
/// assert_eq!(options.max_results, 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebSearchOptions {
    /// The most results to return.
    pub max_results: usize,
    /// A language code (e.g. `en`, `zh`) the engine should prefer; `None` lets it choose.
    pub language: Option<String>,
    /// How long the whole request may take.
    pub timeout: Duration,
}

impl Default for WebSearchOptions {
    fn default() -> Self {
        Self { max_results: 5, language: None, timeout: Duration::from_secs(5) }
    }
}

impl WebSearchOptions {
    /// With at most `n` results.
    pub fn with_max_results(mut self, n: usize) -> Self {
        self.max_results = n;
        self
    }

    /// With a preferred language.
    pub fn with_language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    /// With another time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A web search API. Synchronous like the other core traits: a server calls it on a blocking
/// pool, and a caller that wants several queries at once runs them on threads.
pub trait SearchProvider: Send + Sync {
    /// A short name for messages, e.g. `searxng`.
    fn name(&self) -> &str;

    /// The results for `query`, best first, at most `options.max_results`.
    fn search(&self, query: &str, options: &WebSearchOptions) -> Result<Vec<SearchHit>, SearchError>;
}

impl<T: SearchProvider + ?Sized> SearchProvider for std::sync::Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn search(&self, query: &str, options: &WebSearchOptions) -> Result<Vec<SearchHit>, SearchError> {
        (**self).search(query, options)
    }
}

/// What went wrong in a [`SearchProvider`]. Each variant says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The search service could not be reached or did not answer in time.
    #[error("cannot reach the search service at {url}: {reason}")]
    Unreachable {
        /// The address asked.
        url: String,
        /// Why, in words.
        reason: String,
    },
    /// SearXNG answered 403 to a JSON request: its settings do not allow the JSON format.
    #[error(
        "the SearXNG instance at {url} refuses JSON (HTTP 403): add `json` to `search.formats` in its \
         settings.yml (beside `html`) and restart it"
    )]
    JsonDisabled {
        /// The instance's address.
        url: String,
    },
    /// The service is limiting requests (HTTP 429).
    #[error(
        "the search service at {url} is rate limiting (HTTP 429){}; for a self-hosted SearXNG, turn \
         off `server.limiter` in settings.yml or allow this host in its limiter.toml",
        retry_after.map_or_else(String::new, |s| format!(", retry after {s} s"))
    )]
    RateLimited {
        /// The service's address.
        url: String,
        /// Seconds to wait, when the service says.
        retry_after: Option<u64>,
    },
    /// The service answered with another error status.
    #[error("the search service at {url} answered HTTP {status}: {body}")]
    Status {
        /// The address asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// The answer is not what the provider expects (not JSON, a field missing).
    #[error("the search service at {url} gave an answer this provider cannot read: {reason}")]
    BadResponse {
        /// The address asked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The provider is misconfigured (e.g. an invalid base address).
    #[error("invalid search configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}
