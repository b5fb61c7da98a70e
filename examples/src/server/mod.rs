//! The HTTP API of `modelforge-server`: the native API under `/api` (auth, API keys,
//! sessions, chat with memory over server-sent events, memories, models, admin), the
//! OpenAI-compatible API under `/v1`, `/health` and `/metrics`, and the [`web`] page at `/`.
//!
//! Inference and diesel are blocking, so every call into them runs on tokio's blocking pool;
//! streamed pieces cross back to the async side through [`replies`] and leave as server-sent
//! events. The [`openai`] API's generations need no blocking thread: a model starts them
//! ([`LoadedModel::start_generation`](modelforge_core::LoadedModel::start_generation)) and
//! hands each piece to the request's task from its own thread. Cross-cutting concerns (tracing, body limit, panics as JSON) are tower-http layers
//! around one [`app`] router.

pub mod admin;
pub mod auth;
pub mod error;
pub mod memories;
pub mod metrics;
pub mod models;
pub mod openai;
pub mod replies;
pub mod sessions;
pub mod web;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use modelforge_core::SessionStore;
use modelforge_memory::{Conversation, MemoryBank};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use models::ModelPool;

/// Largest request body accepted (chat histories can be long, but not unbounded).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Whether new users may register themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Registration {
    /// Until an admin closes it (the first user becomes the admin).
    #[default]
    Open,
    /// Only admins add users (`modelforge user add`).
    Closed,
}

/// What every handler can reach. Cheap to clone: everything sits behind `Arc`s.
#[derive(Clone)]
pub struct AppState {
    /// Users, tokens, sessions, messages and memories.
    pub store: Arc<dyn SessionStore>,
    /// The models the server can serve, loaded on demand.
    pub models: Arc<ModelPool>,
    /// The users' memories.
    pub memory: Arc<MemoryBank>,
    /// The chat turn (with the default model; [`Conversation::for_model`] for the others).
    pub chat: Arc<Conversation>,
    /// Replies being written, for readers who reconnect.
    pub replies: Arc<replies::Replies>,
    /// Request and generation figures for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Whether registration is closed by the command line, whatever the store says.
    pub registration: Registration,
    /// The store is shared with other server processes (PostgreSQL): caches are re-read
    /// from it on every turn.
    pub shared_store: bool,
    /// `/v1` accepts any caller (`--no-auth`, which the binary allows on loopback only).
    pub no_auth: bool,
    /// The sentence embedder `/v1/embeddings` serves, if the server has one.
    pub embedder: Option<openai::ServedEmbedder>,
    /// Web pages on other origins allowed to call the APIs from a browser (`--cors-origin`,
    /// checked by [`cors_origin`]; `*` is any). Empty: only the server's own page.
    pub cors_origins: Vec<String>,
}

impl AppState {
    /// A state over `store` and `models`, with memory in `memory` and chat options in
    /// `chat`.
    pub fn new(
        store: Arc<dyn SessionStore>,
        models: Arc<ModelPool>,
        memory: Arc<MemoryBank>,
        chat: Conversation,
    ) -> Self {
        Self {
            store,
            models,
            memory,
            chat: Arc::new(chat),
            replies: Arc::default(),
            metrics: Arc::default(),
            registration: Registration::Open,
            shared_store: false,
            no_auth: false,
            embedder: None,
            cors_origins: Vec::new(),
        }
    }
}

/// Every route, with the layers around them.
pub fn app(state: AppState) -> Router {
    let metrics = Arc::clone(&state.metrics);
    let cors = cors(&state.cors_origins);
    let router = Router::new()
        .route("/health", get(models::health))
        .route("/metrics", get(metrics::render))
        .merge(web::routes())
        .nest("/api", api())
        .nest("/v1", openai::routes())
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(axum::middleware::from_fn_with_state(metrics, metrics::track))
        // Enforced by the body extractors, so an oversized body gets the JSON 413.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    // Outermost, so a browser's preflight is answered before routing and errors carry the
    // headers too (a page on another origin can read the JSON error).
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// CORS for the allowed origins: bearer tokens only (no credentials: the server sets no
/// cookies), so a page must hold a token or key to do anything a caller could not do anyway.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    use axum::http::{HeaderValue, Method, header};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// `value` as an allowed CORS origin: `*`, or `scheme://host[:port]` with no path, as
/// browsers send it in `Origin` (lower case; a trailing `/` is dropped).
pub fn cors_origin(value: &str) -> Result<String, String> {
    let origin = value.trim().trim_end_matches('/').to_ascii_lowercase();
    let host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    let valid = origin == "*"
        || host.is_some_and(|h| !h.is_empty() && !h.contains(['/', '?', '#', ' ', '*']) && h.is_ascii());
    if valid {
        Ok(origin)
    } else {
        Err(format!(
            "`{value}` is not an origin: write scheme://host[:port], like http://localhost:5173, or * for any"
        ))
    }
}

fn api() -> Router<AppState> {
    Router::new()
        .merge(auth::routes())
        .merge(sessions::routes())
        .merge(memories::routes())
        .merge(models::routes())
        .merge(admin::routes())
}

/// A list answer, `{"data": [...], "next_offset": n|null}`, serialized straight from the
/// items (no `serde_json::Value` tree in between: the session list is the hottest route).
#[derive(serde::Serialize)]
pub struct Listing<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Where the next page starts, if there is one.
    pub next_offset: Option<u64>,
}

impl<T> Listing<T> {
    /// Every item, on one page.
    pub fn all(data: Vec<T>) -> Self {
        Self { data, next_offset: None }
    }
}

/// Runs `f` on the blocking pool: store and model calls block.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
}
