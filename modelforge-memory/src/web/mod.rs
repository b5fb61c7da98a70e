//! Web search for a chat turn (feature `web`): write queries, search, fetch the top pages,
//! extract their text, rank passages against the question, and hand back numbered
//! [`Source`]s with a [`WebReport`].
//!
//! Library traits are synchronous, so concurrency is plain threads: the queries run at once,
//! then the pages, all under one deadline. Whatever arrived by then is used; the rest is
//! reported as timed out, and its threads end on their own (each request carries the time
//! that was left). Search results and extracted pages are cached for a while, so a follow-up
//! question about the same thing costs no network.

mod decode;
mod extract;
mod fetch;
mod passages;
mod providers;
mod queries;

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use modelforge_core::{ChatMessage, Embedder, LoadedModel, SearchHit, SearchProvider, WebSearchOptions};

pub use decode::{decode_page, prescan};
pub use extract::{Extracted, extract};
pub use fetch::{FetchError, FetchOptions, Page, PageFetcher, not_public};
pub use passages::{EMBED_AT_MOST, EMBED_TOKENS, PASSAGES_PER_PAGE, Passage, rank, split};
pub use providers::{JsonFields, JsonProvider, SearxngProvider};
pub use queries::{QUERIES_GRAMMAR, write_queries};

use crate::sources::{PageFailure, QueriesBy, Source, WebReport};

/// How a [`WebSearch`] searches. `Default`: up to 3 queries, 5 pages, 8 seconds, 6 passages,
/// results cached for 10 minutes.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WebOptions {
    /// The most queries written per question (1 to 3).
    pub max_queries: usize,
    /// Results asked for per query.
    pub results_per_query: usize,
    /// The most pages fetched per question.
    pub pages: usize,
    /// The deadline of the whole search, from the first query to the last page.
    pub deadline: Duration,
    /// The most passages kept over all sources.
    pub max_passages: usize,
    /// The most passages kept from one page.
    pub passages_per_page: usize,
    /// The share of the prompt budget the sources may take, from 0 to 1.
    pub share: f32,
    /// Let the model write the queries (otherwise the user's words are the query).
    pub model_queries: bool,
    /// How long search results and pages are reused.
    pub cache_for: Duration,
    /// How pages are fetched.
    pub fetch: FetchOptions,
}

impl Default for WebOptions {
    fn default() -> Self {
        Self {
            max_queries: 3,
            results_per_query: 5,
            pages: 5,
            deadline: Duration::from_secs(8),
            max_passages: 6,
            passages_per_page: 2,
            share: 0.3,
            model_queries: true,
            cache_for: Duration::from_secs(600),
            fetch: FetchOptions::default(),
        }
    }
}

impl WebOptions {
    /// With another overall deadline.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Also fetching from private addresses (a local deployment, tests).
    pub fn with_allow_private(mut self, allow: bool) -> Self {
        self.fetch.allow_private = allow;
        self
    }

    /// Also fetching from private addresses of these hosts (`host` or `host:port`).
    pub fn with_allow_hosts(mut self, hosts: Vec<String>) -> Self {
        self.fetch.allow_hosts = hosts;
        self
    }

    /// With pages cut at `bytes`.
    pub fn with_max_page_bytes(mut self, bytes: usize) -> Self {
        self.fetch.max_bytes = bytes;
        self
    }

    /// With the model writing queries, or the user's words used as they are.
    pub fn with_model_queries(mut self, on: bool) -> Self {
        self.model_queries = on;
        self
    }

    /// With at most `pages` pages fetched.
    pub fn with_pages(mut self, pages: usize) -> Self {
        self.pages = pages;
        self
    }
}

/// What a web search found for one question.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Research {
    /// The sources, best first, not yet numbered (numbers are given once they are fitted
    /// into the prompt).
    pub sources: Vec<Source>,
    /// What happened.
    pub report: WebReport,
}

/// A page as cached: its title and paragraphs, or why it could not be used.
#[derive(Clone)]
enum Fetched {
    Page { url: String, extracted: Extracted, truncated: bool },
    Failed(FetchError),
}

/// Web search for chat turns; share one between threads (it lives in an `Arc` in a
/// [`Conversation`](crate::Conversation)).
pub struct WebSearch {
    provider: Arc<dyn SearchProvider>,
    fetcher: Arc<PageFetcher>,
    embedder: Option<Arc<dyn Embedder>>,
    options: WebOptions,
    searches: Cache<Vec<SearchHit>>,
    pages: Cache<(String, Extracted, bool)>,
}

impl WebSearch {
    /// A web search over `provider`, ranking passages by keywords and, when given, by
    /// `embedder`.
    pub fn new(
        provider: Arc<dyn SearchProvider>,
        embedder: Option<Arc<dyn Embedder>>,
        options: WebOptions,
    ) -> Self {
        Self {
            provider,
            fetcher: Arc::new(PageFetcher::new(options.fetch.clone())),
            embedder,
            options,
            searches: Cache::default(),
            pages: Cache::default(),
        }
    }

    /// The options in effect.
    pub fn options(&self) -> &WebOptions {
        &self.options
    }

    /// Searches the web for `question`, asked after `history`, with `model` writing the queries.
    pub fn research(&self, model: &dyn LoadedModel, history: &[ChatMessage], question: &str) -> Research {
        let mut report = WebReport::default();
        let started = Instant::now();
        let (queries, by, note) = if self.options.model_queries {
            match write_queries(model, history, question, self.options.max_queries) {
                Ok(queries) => (queries, QueriesBy::Model, None),
                Err(reason) => (vec![question.trim().to_owned()], QueriesBy::UserWords, Some(reason)),
            }
        } else {
            (vec![question.trim().to_owned()], QueriesBy::UserWords, None)
        };
        report.timings.queries_ms = ms(started.elapsed());
        if let Some(reason) = &note {
            tracing::debug!(%reason, "searching with the user's words");
        }
        (report.queries, report.queries_by, report.queries_note) = (queries, Some(by), note);
        self.research_queries(question, report)
    }

    /// Like [`research`](Self::research) with the queries already in `report.queries`.
    fn research_queries(&self, question: &str, mut report: WebReport) -> Research {
        let deadline = Instant::now() + self.options.deadline;
        let started = Instant::now();
        let queries = report.queries.clone();
        let hits = self.search_all(&queries, deadline, &mut report);
        report.timings.search_ms = ms(started.elapsed());
        report.results = hits.len();
        if hits.is_empty() {
            return Research { sources: Vec::new(), report };
        }

        let started = Instant::now();
        let chosen: Vec<&SearchHit> = hits.iter().take(self.options.pages).collect();
        let fetched = self.fetch_all(&chosen, deadline, &mut report);
        report.timings.fetch_ms = ms(started.elapsed());

        let started = Instant::now();
        let mut pages: Vec<(&SearchHit, String, Extracted)> = Vec::new();
        for (hit, result) in chosen.iter().zip(fetched) {
            match result {
                Some(Fetched::Page { url, extracted, truncated }) => {
                    if truncated {
                        report.truncated.push(url.clone());
                    }
                    pages.push((hit, url, extracted));
                }
                Some(Fetched::Failed(FetchError::TimedOut { url })) => report.timed_out.push(url),
                Some(Fetched::Failed(err)) => {
                    report.failed.push(PageFailure { url: hit.url.clone(), reason: err.to_string() })
                }
                None => report.timed_out.push(hit.url.clone()),
            }
        }
        report.timings.extract_ms += ms(started.elapsed());
        if pages.is_empty() {
            // Nothing could be read: the engine's own excerpts are better than nothing.
            pages = chosen
                .iter()
                .filter(|h| !h.snippet.is_empty())
                .map(|h| {
                    (
                        *h,
                        h.url.clone(),
                        Extracted { title: h.title.clone(), paragraphs: vec![h.snippet.clone()] },
                    )
                })
                .collect();
        }

        let started = Instant::now();
        let sources = self.best_sources(question, &pages);
        report.timings.rank_ms = ms(started.elapsed());
        Research { sources, report }
    }

    /// Every query at once; the hits merged best first (first results of every query, then
    /// the second ones, ...), each address once.
    fn search_all(&self, queries: &[String], deadline: Instant, report: &mut WebReport) -> Vec<SearchHit> {
        let (sender, receiver) = mpsc::channel();
        let mut answers: Vec<Option<Vec<SearchHit>>> = vec![None; queries.len()];
        let mut waiting = 0;
        for (i, query) in queries.iter().enumerate() {
            if let Some(hits) = self.searches.get(query, self.options.cache_for) {
                answers[i] = Some(hits);
                continue;
            }
            waiting += 1;
            let (provider, sender, query) = (Arc::clone(&self.provider), sender.clone(), query.clone());
            let options = WebSearchOptions::default()
                .with_max_results(self.options.results_per_query)
                .with_timeout(deadline.saturating_duration_since(Instant::now()));
            std::thread::spawn(move || {
                let _ = sender.send((i, provider.search(&query, &options)));
            });
        }
        let mut errors = Vec::new();
        while waiting > 0 {
            let Ok((i, result)) = receiver.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                break;
            };
            waiting -= 1;
            match result {
                Ok(hits) => {
                    self.searches.put(&queries[i], hits.clone());
                    answers[i] = Some(hits);
                }
                Err(err) => errors.push(err.to_string()),
            }
        }
        for (query, answer) in queries.iter().zip(&answers) {
            if answer.is_none() && errors.is_empty() {
                report.timed_out.push(format!("search: {query}"));
            }
        }
        if answers.iter().all(Option::is_none) {
            report.error = Some(if errors.is_empty() {
                "no search answered before the deadline".to_owned()
            } else {
                errors.join("; ")
            });
            return Vec::new();
        }
        let lists: Vec<Vec<SearchHit>> = answers.into_iter().flatten().collect();
        let mut merged: Vec<SearchHit> = Vec::new();
        let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
        for rank in 0..longest {
            for hit in lists.iter().filter_map(|l| l.get(rank)) {
                if !merged.iter().any(|m| m.url == hit.url) {
                    merged.push(hit.clone());
                }
            }
        }
        merged
    }

    /// Every page at once, extracted; `None` for a page that did not arrive by `deadline`.
    fn fetch_all(
        &self,
        hits: &[&SearchHit],
        deadline: Instant,
        report: &mut WebReport,
    ) -> Vec<Option<Fetched>> {
        let (sender, receiver) = mpsc::channel();
        let mut out: Vec<Option<Fetched>> = vec![None; hits.len()];
        let mut waiting = 0;
        for (i, hit) in hits.iter().enumerate() {
            if let Some((url, extracted, truncated)) = self.pages.get(&hit.url, self.options.cache_for) {
                out[i] = Some(Fetched::Page { url, extracted, truncated });
                continue;
            }
            waiting += 1;
            let (fetcher, sender, url) = (Arc::clone(&self.fetcher), sender.clone(), hit.url.clone());
            std::thread::spawn(move || {
                let _ = sender.send((i, fetcher.fetch(&url, deadline)));
            });
        }
        let mut extract_time = Duration::ZERO;
        while waiting > 0 {
            let Ok((i, result)) = receiver.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                break;
            };
            waiting -= 1;
            out[i] = Some(match result {
                Ok(page) => {
                    let started = Instant::now();
                    let extracted = extract(&page.html);
                    extract_time += started.elapsed();
                    self.pages.put(&hits[i].url, (page.url.clone(), extracted.clone(), page.truncated));
                    Fetched::Page { url: page.url, extracted, truncated: page.truncated }
                }
                Err(err) => Fetched::Failed(err),
            });
        }
        report.timings.extract_ms = ms(extract_time);
        out
    }

    /// The best passages over all pages, grouped into one source per page, in the order of
    /// each page's best passage.
    fn best_sources(&self, question: &str, pages: &[(&SearchHit, String, Extracted)]) -> Vec<Source> {
        let mut passages: Vec<Passage> =
            pages.iter().enumerate().flat_map(|(i, (_, _, page))| split(i, &page.paragraphs)).collect();
        rank(question, &mut passages, self.embedder.as_deref());
        let mut sources: Vec<(usize, Source)> = Vec::new();
        let mut kept = 0;
        for passage in passages {
            if kept == self.options.max_passages {
                break;
            }
            let (hit, url, page) = &pages[passage.page];
            let at = match sources.iter().position(|(p, _)| *p == passage.page) {
                Some(at) => at,
                None => {
                    let title = [page.title.as_str(), hit.title.as_str(), url.as_str()]
                        .into_iter()
                        .find(|t| !t.trim().is_empty())
                        .unwrap_or_default()
                        .to_owned();
                    sources.push((passage.page, Source { title, url: url.clone(), passages: Vec::new() }));
                    sources.len() - 1
                }
            };
            if sources[at].1.passages.len() < self.options.passages_per_page {
                sources[at].1.passages.push(passage.text);
                kept += 1;
            }
        }
        sources.into_iter().map(|(_, s)| s).collect()
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Values by key, each kept for a while.
struct Cache<T> {
    entries: Mutex<HashMap<String, (Instant, T)>>,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Self { entries: Mutex::default() }
    }
}

/// Entries kept at most; the oldest go first.
const CACHE_ENTRIES: usize = 256;

impl<T: Clone> Cache<T> {
    fn get(&self, key: &str, max_age: Duration) -> Option<T> {
        let entries = lock(&self.entries);
        entries.get(key).filter(|(at, _)| at.elapsed() < max_age).map(|(_, v)| v.clone())
    }

    fn put(&self, key: &str, value: T) {
        let mut entries = lock(&self.entries);
        if entries.len() >= CACHE_ENTRIES {
            if let Some(oldest) = entries.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone()) {
                entries.remove(&oldest);
            }
        }
        entries.insert(key.to_owned(), (Instant::now(), value));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
