//! The OpenAI-compatible API under `/v1`: `models` and `chat/completions` (stateless: the
//! client sends the whole conversation), authenticated like the native API (an access token
//! or an API key).

use std::convert::Infallible;
use std::ops::ControlFlow;

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use modelforge_core::{ChatMessage, Generation, GenerationParams, LoadedModel};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::auth::Authenticated;
use super::error::Body;
use super::{ApiError, AppState, blocking};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/models", get(models)).route("/chat/completions", post(chat_completions))
}

async fn models(
    State(state): State<AppState>,
    Authenticated(_): Authenticated,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let data: Vec<Value> = state
            .models
            .catalogue()
            .into_iter()
            .map(|m| json!({ "id": m.name, "object": "model", "created": 0, "owned_by": "modelforge" }))
            .collect();
        Ok(Json(json!({ "object": "list", "data": data })))
    })
    .await
}

/// The subset of OpenAI's chat completion request that local models support.
#[derive(Deserialize)]
struct ChatRequest {
    model: Option<String>,
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
    Body(req): Body<ChatRequest>,
) -> Result<Response, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::bad_request("messages must not be empty"));
    }
    let params = req.params();
    let id = completion_id();
    let created = chrono::Utc::now().timestamp();
    let wanted = req.model.clone().filter(|m| !m.is_empty());
    let models = Arc::clone(&state.models);
    let (model, model_id) = blocking(move || {
        let name = wanted.unwrap_or_else(|| models.default_name().to_owned());
        Ok((models.get(Some(&name))?, name))
    })
    .await?;
    if req.stream {
        return Ok(stream_completion(model, model_id, req.messages, params, id, created).into_response());
    }
    let messages = req.messages;
    let chat_model = Arc::clone(&model);
    let generation =
        blocking(move || Ok(chat_model.chat(&messages, &params, &mut |_| ControlFlow::Continue(()))?))
            .await?;
    Ok(Json(completion_body(&id, created, &model_id, &generation)).into_response())
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
    model: Arc<dyn LoadedModel>,
    model_id: String,
    messages: Vec<ChatMessage>,
    params: GenerationParams,
    id: String,
    created: i64,
) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
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
            Err(err) => tx.send(ApiError::from(err).body()),
        };
    });
    let events = UnboundedReceiverStream::new(rx)
        .map(|value| Ok(Event::default().data(value.to_string())))
        .chain(tokio_stream::once(Ok(Event::default().data("[DONE]"))));
    Sse::new(events)
}
