//! Sessions and the chat in them: list, create, change, delete, export; messages; a turn
//! answered as server-sent events through [`Conversation`](modelforge_memory::Conversation);
//! regenerate, edit, stop, and following a reply still being written.

use std::ops::ControlFlow;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use modelforge_core::{
    Actor, GenerationParams, MessageId, NewSession, Page, Session, SessionId, SessionQuery, SessionUpdate,
};
use modelforge_memory::{TurnOptions, TurnOutcome};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Authenticated;
use super::error::{Body, PathParam, QueryParams};
use super::{ApiError, AppState, Listing, blocking};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/sessions", get(list).post(create))
        .route("/sessions/{id}", get(show).patch(update).delete(remove))
        .route("/sessions/{id}/messages", get(messages).post(send))
        .route("/sessions/{id}/messages/{message}", put(edit))
        .route("/sessions/{id}/regenerate", post(regenerate))
        .route("/sessions/{id}/stop", post(stop))
        .route("/sessions/{id}/stream", get(follow))
        .route("/sessions/{id}/export", get(export))
}

#[derive(Deserialize)]
struct ListQuery {
    query: Option<String>,
    pinned: Option<bool>,
    #[serde(default)]
    archived: bool,
    limit: Option<u32>,
    #[serde(default)]
    offset: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSessionBody {
    #[serde(default)]
    title: String,
    model: Option<String>,
    #[serde(default)]
    temporary: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionPatch {
    title: Option<String>,
    pinned: Option<bool>,
    archived: Option<bool>,
    temporary: Option<bool>,
    /// `null` goes back to the server's default model.
    #[serde(default, deserialize_with = "double_option")]
    model: Option<Option<String>>,
}

/// `"model": null` (clear) apart from no `model` at all (unchanged).
fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<u32>,
    #[serde(default)]
    offset: u64,
}

/// Sampling settings a message may carry; the rest are the server's defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamsBody {
    max_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<u32>,
    min_p: Option<f32>,
    repeat_penalty: Option<f32>,
    seed: Option<u64>,
    stop: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    content: String,
    #[serde(default)]
    params: ParamsBody,
    #[serde(default)]
    web: bool,
    /// The caller's own system prompt for this turn (the web page's settings); the server's
    /// when absent or blank.
    system: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegenerateBody {
    #[serde(default)]
    params: ParamsBody,
    system: Option<String>,
}

fn page(limit: Option<u32>, offset: u64) -> Result<Page, ApiError> {
    let limit = limit.unwrap_or(50);
    if !(1..=Page::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be 1 to {}", Page::MAX_LIMIT)));
    }
    Ok(Page { offset, limit })
}

impl ParamsBody {
    /// The generation settings, checked against what the model can do.
    pub fn params(&self, context_length: u32) -> Result<GenerationParams, ApiError> {
        let defaults = GenerationParams::default();
        let params = GenerationParams {
            max_tokens: self.max_tokens.unwrap_or(defaults.max_tokens),
            temperature: self.temperature.unwrap_or(defaults.temperature),
            top_p: self.top_p.unwrap_or(defaults.top_p),
            top_k: self.top_k.unwrap_or(defaults.top_k),
            min_p: self.min_p.unwrap_or(defaults.min_p),
            repeat_penalty: self.repeat_penalty.unwrap_or(defaults.repeat_penalty),
            seed: self.seed.unwrap_or(defaults.seed),
            stop: self.stop.clone().unwrap_or_default(),
            ..defaults
        };
        if params.max_tokens == 0 || params.max_tokens >= context_length {
            return Err(ApiError::bad_request(format!(
                "max_tokens must be 1 to {} (the model's context is {context_length} tokens)",
                context_length.saturating_sub(1)
            )));
        }
        if !(0.0..=2.0).contains(&params.temperature) || !(0.0..=1.0).contains(&params.top_p) {
            return Err(ApiError::bad_request("temperature must be 0 to 2 and top_p 0 to 1"));
        }
        Ok(params)
    }
}

async fn list(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<Listing<Session>>, ApiError> {
    let page = page(q.limit, q.offset)?;
    let query = SessionQuery {
        search: q.query.filter(|s| !s.trim().is_empty()),
        archived: q.archived,
        pinned: q.pinned,
        page,
    };
    let store = state.store.clone();
    blocking(move || {
        let found = store.list_sessions(&actor, &query)?;
        Ok(Json(Listing { data: found.sessions, next_offset: found.next.map(|p| p.offset) }))
    })
    .await
}

async fn create(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Body(body): Body<NewSessionBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let store = state.store.clone();
    blocking(move || {
        if let Some(model) = &body.model {
            state.models.check_known(model)?;
        }
        let new = NewSession { title: body.title, temporary: body.temporary, model: body.model };
        Ok((StatusCode::CREATED, Json(json!(store.create_session_with(&actor, &new)?))))
    })
    .await
}

async fn show(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    PathParam(id): PathParam<SessionId>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let writing = state.replies.get(id, actor.user_id).is_some();
    blocking(move || {
        let mut session = json!(store.get_session(&actor, id)?);
        session["reply_in_progress"] = json!(writing);
        Ok(Json(session))
    })
    .await
}

async fn update(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    PathParam(id): PathParam<SessionId>,
    Body(patch): Body<SessionPatch>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    blocking(move || {
        if let Some(Some(model)) = &patch.model {
            state.models.check_known(model)?;
        }
        let update = SessionUpdate {
            title: patch.title,
            pinned: patch.pinned,
            archived: patch.archived,
            temporary: patch.temporary,
            model: patch.model,
        };
        Ok(Json(json!(store.update_session(&actor, id, &update)?)))
    })
    .await
}

async fn remove(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    PathParam(id): PathParam<SessionId>,
) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    let chat = Arc::clone(&state.chat);
    blocking(move || {
        store.delete_session(&actor, id)?;
        chat.forget_state(id);
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

async fn messages(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    PathParam(id): PathParam<SessionId>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = page(q.limit, q.offset)?;
    let store = state.store.clone();
    let writing = state.replies.get(id, actor.user_id).is_some();
    blocking(move || {
        let found = store.list_messages_page(&actor, id, page)?;
        Ok(Json(json!({
            "data": found.messages,
            "next_offset": found.next.map(|p| p.offset),
            "reply_in_progress": writing,
        })))
    })
    .await
}

async fn export(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    PathParam(id): PathParam<SessionId>,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let body = blocking(move || {
        let session = store.get_session(&actor, id)?;
        let messages = store.list_messages(&actor, id)?;
        Ok(json!({ "session": session, "messages": messages }))
    })
    .await?;
    let disposition = format!("attachment; filename=\"session-{id}.json\"");
    Ok(([(axum::http::header::CONTENT_DISPOSITION, disposition)], Json(body)).into_response())
}

/// What a turn does once its model and parameters are known.
enum Ask {
    Send(String),
    Regenerate,
    Edit(MessageId, String),
}

async fn send(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    PathParam(id): PathParam<SessionId>,
    Body(body): Body<MessageBody>,
) -> Result<Response, ApiError> {
    if body.content.trim().is_empty() {
        return Err(ApiError::bad_request("content must not be blank"));
    }
    let turn = turn_options(&state, body.web)?;
    answer(state, actor, id, (body.params, body.system), turn, Ask::Send(body.content)).await
}

async fn regenerate(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    PathParam(id): PathParam<SessionId>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|err| ApiError::new(err.status(), "invalid_body", err.body_text()))?;
    // The body is optional: no body regenerates with the server's settings.
    let settings = if body.iter().all(u8::is_ascii_whitespace) {
        (ParamsBody::default(), None)
    } else {
        let body = serde_json::from_slice::<RegenerateBody>(&body)
            .map_err(|err| ApiError::bad_request(format!("invalid JSON body: {err}")))?;
        (body.params, body.system)
    };
    answer(state, actor, id, settings, TurnOptions::default(), Ask::Regenerate).await
}

async fn edit(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    PathParam((id, message)): PathParam<(SessionId, MessageId)>,
    Body(body): Body<MessageBody>,
) -> Result<Response, ApiError> {
    if body.content.trim().is_empty() {
        return Err(ApiError::bad_request("content must not be blank"));
    }
    let turn = turn_options(&state, body.web)?;
    answer(state, actor, id, (body.params, body.system), turn, Ask::Edit(message, body.content)).await
}

/// The turn's settings; web search on a server without a search service is refused up front.
fn turn_options(state: &AppState, web: bool) -> Result<TurnOptions, ApiError> {
    if web && !state.chat.has_web() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "web_search_not_configured",
            "web search is not configured on this server: start it with --search-url URL (or MODELFORGE_SEARCH_URL)",
        ));
    }
    Ok(TurnOptions::default().with_web(web))
}

/// Starts the turn on the blocking pool and answers with its reply as server-sent events.
/// The turn belongs to the session, not to this request: if the client goes away the reply
/// is still finished, stored and learned from.
async fn answer(
    state: AppState,
    actor: Actor,
    session: SessionId,
    (params, system): (ParamsBody, Option<String>),
    turn: TurnOptions,
    ask: Ask,
) -> Result<Response, ApiError> {
    // Checked first, so an unknown session or a bad request gets its own status.
    let (chat, params) = {
        let state = state.clone();
        blocking(move || {
            let stored = state.store.get_session(&actor, session)?;
            if state.shared_store {
                // Another replica may have learned something since this one last looked.
                state.memory.reload(actor.user_id);
            }
            let model = state.models.get(stored.model.as_deref())?;
            let params = params.params(model.context_length())?;
            let mut chat = state.chat.for_model(model);
            if let Some(system) = system.filter(|s| !s.trim().is_empty()) {
                let options = chat.options().clone().with_system_prompt(system);
                chat = chat.with_options(options);
            }
            Ok((chat, params))
        })
        .await?
    };
    let reply = state.replies.start(session, actor.user_id)?;
    let metrics = Arc::clone(&state.metrics);
    let replies = Arc::clone(&state.replies);
    let writer = Arc::clone(&reply);
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let mut first = true;
        let on_piece = &mut |piece: &str| {
            if std::mem::take(&mut first) {
                metrics.first_token(started.elapsed());
            }
            writer.push(piece);
            ControlFlow::Continue(())
        };
        let result = match ask {
            Ask::Send(text) => chat.turn_with(&actor, session, &text, &params, &turn, on_piece),
            Ask::Regenerate => chat.regenerate(&actor, session, &params, on_piece),
            Ask::Edit(message, text) => {
                chat.edit_with(&actor, session, message, &text, &params, &turn, on_piece)
            }
        };
        // The session is free for the next message before `done` reaches anyone, so a client
        // that answers at once is never told a reply is still in progress.
        match result {
            Ok(outcome) => {
                metrics.generated(outcome.generation.usage.completion_tokens);
                let learned = chat.learn(&actor, &outcome);
                replies.end(session);
                writer.finish(done_event(&outcome, learned));
            }
            Err(err) => {
                replies.end(session);
                writer.fail(err.into());
            }
        }
    });
    reply.started().await?;
    Ok(reply.follow().into_response())
}

/// The `done` event: what was stored, how it ended, and what memory did.
fn done_event(
    outcome: &TurnOutcome,
    learned: Result<modelforge_memory::Learned, modelforge_memory::ChatError>,
) -> Value {
    let usage = outcome.generation.usage;
    let (learned, learn_error) = match learned {
        Ok(learned) => (learned, None),
        Err(err) => (Default::default(), Some(err.to_string())),
    };
    json!({
        "session_id": outcome.session_id,
        "user_message": outcome.user_message,
        "reply": outcome.reply,
        "message_ids": [
            outcome.user_message.as_ref().map(|m| m.id),
            outcome.reply.as_ref().map(|m| m.id),
        ],
        "finish_reason": outcome.generation.finish_reason.as_str(),
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens(),
            "cached_tokens": usage.cached_tokens,
        },
        "memory": outcome.memory,
        "memories_injected": outcome.memories,
        "memories_learned": learned.changed,
        "memories_forgotten": learned.deleted,
        "memory_failures": learned.failures,
        "memory_error": learn_error,
        "context": outcome.context,
        "context_summary": context_line(outcome),
        "sources": outcome.sources,
        "web": outcome.web,
    })
}

/// "2 memories used · 0 messages summarized", and what was left out.
fn context_line(outcome: &TurnOutcome) -> String {
    let c = &outcome.context;
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut line = format!(
        "{} used · {} summarized",
        plural(c.memories_used.len(), "memory", "memories"),
        plural(c.history_summarized, "message", "messages")
    );
    if c.history_left_out > 0 {
        line.push_str(&format!(" · {} left out", plural(c.history_left_out, "message", "messages")));
    }
    line
}

async fn stop(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    PathParam(id): PathParam<SessionId>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    blocking(move || store.get_session(&actor, id).map_err(ApiError::from)).await?;
    if !state.chat.stop(&actor, id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_reply_in_progress",
            format!(
                "no reply is being written in session {id} on this server (with several replicas, stop it on the one writing it)"
            ),
        ));
    }
    Ok(Json(json!({ "stopped": true })))
}

async fn follow(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    PathParam(id): PathParam<SessionId>,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    blocking(move || store.get_session(&actor, id).map_err(ApiError::from)).await?;
    match state.replies.get(id, actor.user_id) {
        Some(reply) => Ok(reply.follow().into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}
