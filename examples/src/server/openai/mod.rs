//! The OpenAI-compatible API under `/v1`, for tools that speak OpenAI's protocol unchanged
//! (the official clients, editors, LangChain): `models`, `chat/completions`, `completions` and
//! `embeddings`. It is stateless (the client sends the whole conversation) and authenticated
//! like the native API (an access token or an API key), or not at all with `--no-auth` on a
//! loopback address.
//!
//! Requests are checked field by field before anything reaches a model ([`validation`]), and
//! fields OpenAI defines that a local server has no use for (`user`, `store`, `metadata`, ...)
//! are accepted and ignored, because clients send them on every call. Structured output and
//! forced tool calls go through one path: a JSON schema becomes a grammar for the sampler
//! ([`tools`] builds the schema of a call).

mod chat;
mod completions;
mod embeddings;
mod tools;
mod validation;

use std::convert::Infallible;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use modelforge_core::{
    BackendError, CancelToken, Generation, GenerationParams, GenerationSink, LoadedModel, TokenLogprob,
};
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_stream::wrappers::UnboundedReceiverStream;

pub use embeddings::ServedEmbedder;

use super::auth::Authenticated;
use super::metrics::Metrics;
use super::{ApiError, AppState, blocking};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/models", get(models))
        .route("/models/{*model}", get(model))
        .route("/chat/completions", post(chat::chat_completions))
        .route("/completions", post(completions::completions))
        .route("/embeddings", post(embeddings::embeddings))
}

/// A caller of `/v1`: authenticated like the native API, or anyone when the server runs with
/// `--no-auth` (only allowed on loopback, for local tools that cannot log in).
pub struct OpenAiCaller;

impl FromRequestParts<AppState> for OpenAiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if !state.no_auth {
            Authenticated::from_request_parts(parts, state).await?;
        } else if let Some(host) = parts.headers.get(axum::http::header::HOST)
            && !loopback_host(host.to_str().unwrap_or_default())
        {
            // A page whose name an attacker re-points at 127.0.0.1 (DNS rebinding) would be
            // same-origin to the browser; its requests still name that host.
            return Err(ApiError::forbidden(
                "without authentication (--no-auth) this server answers only requests addressed to \
                 localhost, 127.0.0.1 or [::1]; use an API key to reach it by another name",
            ));
        }
        Ok(OpenAiCaller)
    }
}

/// Whether a `Host` header names this machine's loopback: `localhost`, `127.0.0.1`, `[::1]`,
/// with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

async fn models(State(state): State<AppState>, _: OpenAiCaller) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let mut data: Vec<Value> =
            state.models.catalogue().iter().map(|m| model_entry(&m.name, Some(&m.path))).collect();
        if let Some(embedder) = &state.embedder {
            data.push(model_entry(&embedder.name, None));
        }
        Ok(Json(json!({ "object": "list", "data": data })))
    })
    .await
}

/// `GET /v1/models/{model}` (OpenAI's `models.retrieve`): one model the server can serve, by
/// the id `/v1/models` lists (ids of Hub models hold a `/`), or a 404.
async fn model(
    State(state): State<AppState>,
    _: OpenAiCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        if let Some(embedder) = state.embedder.as_ref().filter(|e| e.answers_to(&id)) {
            return Ok(Json(model_entry(&embedder.name, None)));
        }
        let found = state.models.find(&id).map_err(|e| e.with_param("model"))?;
        Ok(Json(model_entry(&found.name, Some(&found.path))))
    })
    .await
}

/// A model in OpenAI's shape. `created` is when its file was written (Unix seconds; 0 when
/// unknown): clients sort and display it as a date.
fn model_entry(id: &str, path: Option<&std::path::Path>) -> Value {
    let created = path
        .and_then(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    json!({ "id": id, "object": "model", "created": created, "owned_by": "modelforge" })
}

/// The model a request names (the default when it names none), loaded on demand. A model that
/// is not in memory while another one loads is a 503, which OpenAI clients retry.
async fn resolve_model(
    state: &AppState,
    wanted: Option<String>,
) -> Result<(Arc<dyn LoadedModel>, String), ApiError> {
    let models = Arc::clone(&state.models);
    blocking(move || {
        let name = wanted.filter(|m| !m.is_empty()).unwrap_or_else(|| models.default_name().to_owned());
        models.check_known(&name).map_err(|e| e.with_param("model"))?;
        if !models.is_loaded(&name) && models.is_loading() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "model_loading",
                format!("another model is loading; `{name}` will load after it: retry shortly"),
            ));
        }
        Ok((models.get(Some(&name))?, name))
    })
    .await
}

/// What a generation sends to the request that started it.
enum Out {
    /// A piece of text and the tokens that completed it.
    Piece(String, Vec<TokenLogprob>),
    /// How it ended.
    Done(Result<Generation, BackendError>),
}

/// Starts a generation; what it makes arrives on the returned channel: every piece as it
/// comes when `streaming`, else the tokens at the end, then how it ended. When the receiver
/// is dropped (the client hung up, streaming or not) the generation stops at its next piece,
/// which frees the model's slot for the next request.
fn spawn_generation(
    metrics: Arc<Metrics>,
    model: Arc<dyn LoadedModel>,
    prompt: String,
    params: GenerationParams,
    streaming: bool,
) -> UnboundedReceiver<Out> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    metrics.generations_in_flight.fetch_add(1, Ordering::SeqCst);
    let sink = ToRequest { tx, streaming, tokens: Vec::new(), metrics, started: Instant::now(), first: true };
    model.start_generation(prompt, params, CancelToken::new(), Box::new(sink));
    rx
}

/// A generation's output on its way to the request's task. The model calls it from its own
/// thread, so it only hands things on: a non-streamed request is woken once, at the end.
struct ToRequest {
    tx: UnboundedSender<Out>,
    streaming: bool,
    /// The tokens so far, when not streaming.
    tokens: Vec<TokenLogprob>,
    metrics: Arc<Metrics>,
    started: Instant,
    first: bool,
}

impl GenerationSink for ToRequest {
    fn piece(&mut self, text: &str, tokens: &[TokenLogprob]) -> ControlFlow<()> {
        if std::mem::take(&mut self.first) {
            self.metrics.first_token(self.started.elapsed());
        }
        let sent = if self.streaming {
            self.tx.send(Out::Piece(text.to_owned(), tokens.to_vec())).is_ok()
        } else {
            self.tokens.extend_from_slice(tokens);
            !self.tx.is_closed()
        };
        if sent { ControlFlow::Continue(()) } else { ControlFlow::Break(()) }
    }

    fn done(mut self: Box<Self>, result: Result<Generation, BackendError>) {
        if let Ok(generation) = &result {
            self.metrics.generated(generation.usage.completion_tokens);
        }
        let tokens = std::mem::take(&mut self.tokens);
        let tx = self.tx.clone();
        drop(self); // no longer in flight
        if !tokens.is_empty() {
            let _ = tx.send(Out::Piece(String::new(), tokens));
        }
        let _ = tx.send(Out::Done(result));
    }
}

impl Drop for ToRequest {
    fn drop(&mut self) {
        self.metrics.generations_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Collects a whole generation: its text, its tokens and how it ended.
async fn collect(mut rx: UnboundedReceiver<Out>) -> Result<(Generation, Vec<TokenLogprob>), ApiError> {
    let mut tokens = Vec::new();
    while let Some(out) = rx.recv().await {
        match out {
            Out::Piece(_, piece_tokens) => tokens.extend(piece_tokens),
            Out::Done(result) => return Ok((result?, tokens)),
        }
    }
    Err(ApiError::internal("the generation ended without a result"))
}

/// A stream of server-sent events: `produce` sends the events (and returns early when a send
/// fails, the client having left), then `data: [DONE]` ends the stream, as OpenAI's does.
fn sse<F, Fut>(produce: F) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>>
where
    F: FnOnce(UnboundedSender<Event>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, events) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let produced = produce(tx.clone());
    tokio::spawn(async move {
        produced.await;
        let _ = tx.send(Event::default().data("[DONE]"));
    });
    let events = tokio_stream::StreamExt::map(UnboundedReceiverStream::new(events), Ok::<_, Infallible>);
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// `usage` in OpenAI's shape.
fn usage(generation: &Generation) -> Value {
    let u = &generation.usage;
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens(),
        "prompt_tokens_details": { "cached_tokens": u.cached_tokens },
    })
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::loopback_host;

    #[test]
    fn only_loopback_names_are_loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.3.2.1:1",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(loopback_host(host), "{host}");
        }
        for host in ["evil.test", "evil.test:8080", "localhost.evil.test", "10.0.0.1:8080", "[::2]:8080", ""]
        {
            assert!(!loopback_host(host), "{host}");
        }
    }
}
