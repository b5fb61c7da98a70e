//! `GET /metrics` in the Prometheus text format: requests by route and status, tokens
//! generated, time to first token, replies being written and models loaded.
//!
//! A handful of counters does not need a metrics framework: they are atomics and one map,
//! rendered by hand in the exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// Upper bounds of the time-to-first-token histogram, in seconds.
const TTFT_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];

/// The server's figures.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    tokens: AtomicU64,
    ttft_buckets: [AtomicU64; TTFT_BUCKETS.len()],
    ttft_count: AtomicU64,
    ttft_micros: AtomicU64,
    /// Generations of the OpenAI-compatible API running now (each holds a model slot).
    pub generations_in_flight: AtomicUsize,
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, method: &str, route: &str, status: u16) {
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *requests.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
    }

    /// Counts generated tokens.
    pub fn generated(&self, tokens: u32) {
        self.tokens.fetch_add(u64::from(tokens), Ordering::Relaxed);
    }

    /// Records one time to first token.
    pub fn first_token(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in TTFT_BUCKETS.iter().zip(&self.ttft_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.ttft_count.fetch_add(1, Ordering::Relaxed);
        self.ttft_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// The exposition text, with the gauges read now.
    fn text(&self, replies_in_progress: usize, models_loaded: usize) -> String {
        let mut out = String::new();
        out.push_str("# HELP modelforge_http_requests_total HTTP requests answered, by route and status.\n");
        out.push_str("# TYPE modelforge_http_requests_total counter\n");
        for ((method, route, status), n) in
            self.requests.lock().unwrap_or_else(PoisonError::into_inner).iter()
        {
            let _ = writeln!(
                out,
                "modelforge_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let counter = |out: &mut String, name: &str, help: &str, kind: &str, value: String| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
        };
        counter(
            &mut out,
            "modelforge_tokens_generated_total",
            "Tokens generated in chat replies.",
            "counter",
            self.tokens.load(Ordering::Relaxed).to_string(),
        );
        counter(
            &mut out,
            "modelforge_replies_in_progress",
            "Chat replies being written (the queue depth).",
            "gauge",
            replies_in_progress.to_string(),
        );
        counter(
            &mut out,
            "modelforge_openai_generations_in_flight",
            "Generations of the OpenAI-compatible API running now.",
            "gauge",
            self.generations_in_flight.load(Ordering::SeqCst).to_string(),
        );
        counter(
            &mut out,
            "modelforge_models_loaded",
            "Models in memory.",
            "gauge",
            models_loaded.to_string(),
        );
        out.push_str(
            "# HELP modelforge_time_to_first_token_seconds From a chat request to its first piece.\n",
        );
        out.push_str("# TYPE modelforge_time_to_first_token_seconds histogram\n");
        for (bound, bucket) in TTFT_BUCKETS.iter().zip(&self.ttft_buckets) {
            let _ = writeln!(
                out,
                "modelforge_time_to_first_token_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.ttft_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "modelforge_time_to_first_token_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.ttft_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "modelforge_time_to_first_token_seconds_sum {sum}");
        let _ = writeln!(out, "modelforge_time_to_first_token_seconds_count {count}");
        out
    }
}

/// Counts every request by its route pattern (`/api/sessions/{id}`, never the id itself).
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let response = next.run(req).await;
    metrics.request(&method, &route, response.status().as_u16());
    response
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.metrics.text(state.replies.len(), state.models.loaded_count());
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
