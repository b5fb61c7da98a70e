//! The HTTP API of `modelforge-server`: an OpenAI-compatible chat endpoint behind JWT login,
//! and the caller's memories (list, add, edit, delete, search, switch off).
//!
//! Inference and diesel are blocking, so every call into them runs on tokio's blocking pool;
//! streamed pieces cross back to the async side through a channel and leave as server-sent
//! events.

use std::convert::Infallible;
use std::ops::ControlFlow;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use modelforge_core::{
    Actor, BackendError, ChatMessage, Generation, GenerationParams, LoadedModel, MemoryError, MemoryId,
    MemoryKind, SessionStore, StoreError,
};
use modelforge_memory::{MemoryBank, SearchOptions};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

/// Largest request body accepted (chat histories can be long, but not unbounded).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Users and auth.
    pub store: Arc<dyn SessionStore>,
    /// The model served.
    pub model: Arc<dyn LoadedModel>,
    /// The model's id in `/v1/models`.
    pub model_id: String,
    /// The users' memories.
    pub memory: Arc<MemoryBank>,
}

/// The routes: `/health`, `/v1/auth/login`, `/v1/models`, `/v1/chat/completions`, and
/// `/v1/memories` (GET list, POST add), `/v1/memories/{id}` (PATCH edit, DELETE),
/// `/v1/memories/search?q=TEXT&limit=N`, `/v1/memories/settings` (PUT `{"enabled": bool}`).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/v1/auth/login", post(login))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/memories", get(list_memories).post(add_memory))
        .route("/v1/memories/search", get(search_memories))
        .route("/v1/memories/settings", put(memory_settings))
        .route("/v1/memories/{id}", patch(edit_memory).delete(delete_memory))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// An error as an OpenAI-style JSON body with a fitting status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "message": self.message, "code": self.status.as_u16() } });
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        let status = match err {
            StoreError::InvalidCredentials | StoreError::InvalidToken { .. } => StatusCode::UNAUTHORIZED,
            StoreError::PermissionDenied { .. } => StatusCode::FORBIDDEN,
            StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
            StoreError::Conflict { .. } => StatusCode::CONFLICT,
            StoreError::InvalidInput { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, err.to_string())
    }
}

impl From<BackendError> for ApiError {
    fn from(err: BackendError) -> Self {
        let status = match err {
            BackendError::ContextOverflow { .. } | BackendError::Template { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, err.to_string())
    }
}

impl From<MemoryError> for ApiError {
    fn from(err: MemoryError) -> Self {
        match err {
            MemoryError::Store(err) => err.into(),
            MemoryError::Backend(err) => err.into(),
            other => Self::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

/// The caller, from an `Authorization: Bearer` access token.
pub struct Authenticated(pub Actor);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "missing bearer token"))?;
        Ok(Authenticated(state.store.verify_token(token.trim())?))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("worker failed: {e}")))?
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    Json(req): Json<LoginRequest>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let token = blocking(move || {
        let user = store.login(&req.username, &req.password)?;
        Ok(store.issue_token(&user.actor())?)
    })
    .await?;
    Ok(Json(json!({ "access_token": token, "token_type": "bearer" })))
}

async fn models(State(state): State<AppState>, Authenticated(_): Authenticated) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{ "id": state.model_id, "object": "model", "owned_by": "modelforge" }],
    }))
}

/// The subset of OpenAI's chat completion request that local models support.
#[derive(Deserialize)]
struct ChatRequest {
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    seed: Option<u64>,
    #[serde(default)]
    stop: Option<StopField>,
}

/// OpenAI accepts one stop string or a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum StopField {
    One(String),
    Many(Vec<String>),
}

impl ChatRequest {
    fn params(&self) -> GenerationParams {
        let defaults = GenerationParams::default();
        GenerationParams {
            max_tokens: self.max_tokens.unwrap_or(defaults.max_tokens),
            temperature: self.temperature.unwrap_or(defaults.temperature),
            top_p: self.top_p.unwrap_or(defaults.top_p),
            seed: self.seed.unwrap_or(defaults.seed),
            stop: match &self.stop {
                None => Vec::new(),
                Some(StopField::One(s)) => vec![s.clone()],
                Some(StopField::Many(v)) => v.clone(),
            },
            ..defaults
        }
    }
}

fn completion_id() -> String {
    format!("chatcmpl-{}", modelforge_core::MessageId::new())
}

async fn chat_completions(
    State(state): State<AppState>,
    Authenticated(_actor): Authenticated,
    Json(req): Json<ChatRequest>,
) -> Result<Response, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "messages must not be empty"));
    }
    let params = req.params();
    let id = completion_id();
    let created = chrono::Utc::now().timestamp();
    if req.stream {
        return Ok(stream_completion(state, req.messages, params, id, created).into_response());
    }
    let model = state.model.clone();
    let generation =
        blocking(move || Ok(model.chat(&req.messages, &params, &mut |_| ControlFlow::Continue(()))?)).await?;
    Ok(Json(completion_body(&id, created, &state.model_id, &generation)).into_response())
}

fn completion_body(id: &str, created: i64, model_id: &str, g: &Generation) -> Value {
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model_id,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": g.text },
            "finish_reason": g.finish_reason.as_str(),
        }],
        "usage": {
            "prompt_tokens": g.usage.prompt_tokens,
            "completion_tokens": g.usage.completion_tokens,
            "total_tokens": g.usage.total_tokens(),
        },
    })
}

/// Streams pieces as `chat.completion.chunk` events, then `[DONE]`. A client that hangs up
/// stops generation: the send fails and the callback breaks.
fn stream_completion(
    state: AppState,
    messages: Vec<ChatMessage>,
    params: GenerationParams,
    id: String,
    created: i64,
) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let model = state.model.clone();
    let model_id = state.model_id.clone();
    tokio::task::spawn_blocking(move || {
        let chunk = |delta: Value, finish: Option<&str>| {
            json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model_id,
                "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
            })
        };
        let _ = tx.send(chunk(json!({ "role": "assistant" }), None));
        let result = model.chat(&messages, &params, &mut |piece| match tx
            .send(chunk(json!({ "content": piece }), None))
        {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        });
        let _ = match result {
            Ok(g) => tx.send(chunk(json!({}), Some(g.finish_reason.as_str()))),
            Err(err) => tx.send(json!({ "error": { "message": err.to_string() } })),
        };
    });
    let events = UnboundedReceiverStream::new(rx)
        .map(|value| Ok(Event::default().data(value.to_string())))
        .chain(tokio_stream::once(Ok(Event::default().data("[DONE]"))));
    Sse::new(events)
}

#[derive(Deserialize)]
struct NewMemoryBody {
    content: String,
    #[serde(default = "default_kind")]
    kind: MemoryKind,
}

fn default_kind() -> MemoryKind {
    MemoryKind::Fact
}

#[derive(Deserialize)]
struct EditMemoryBody {
    content: String,
}

#[derive(Deserialize)]
struct SearchQuery {
    q: String,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    5
}

#[derive(Deserialize)]
struct MemorySettings {
    enabled: bool,
}

/// Rejects blank memory text before it reaches the store.
fn memory_text(content: &str) -> Result<&str, ApiError> {
    let content = content.trim();
    if content.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "memory content must not be blank"));
    }
    Ok(content)
}

async fn list_memories(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
) -> Result<Json<Value>, ApiError> {
    blocking(move || Ok(Json(json!({ "data": state.memory.list(&actor)? })))).await
}

async fn add_memory(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Json(body): Json<NewMemoryBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    blocking(move || {
        let memory = state.memory.add(&actor, body.kind, memory_text(&body.content)?)?;
        Ok((StatusCode::CREATED, Json(json!(memory))))
    })
    .await
}

async fn edit_memory(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<MemoryId>,
    Json(body): Json<EditMemoryBody>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || Ok(Json(json!(state.memory.edit(&actor, id, memory_text(&body.content)?)?)))).await
}

async fn delete_memory(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<MemoryId>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        state.memory.delete(&actor, id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

async fn search_memories(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Query(query): Query<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let options = SearchOptions { top_k: query.limit.clamp(1, 100), ..SearchOptions::default() };
        Ok(Json(json!({ "data": state.memory.search(&actor, &query.q, &options)? })))
    })
    .await
}

async fn memory_settings(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Json(body): Json<MemorySettings>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let user = state.store.set_memory_enabled(&actor, actor.user_id, body.enabled)?;
        Ok(Json(json!({ "enabled": user.memory_enabled })))
    })
    .await
}
