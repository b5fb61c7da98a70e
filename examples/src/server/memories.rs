//! Each user's memories: list, add, edit, delete, search, and the switch that turns memory
//! off.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use modelforge_core::{MemoryId, MemoryKind};
use modelforge_memory::SearchOptions;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Authenticated;
use super::error::{Body, PathParam, QueryParams};
use super::{ApiError, AppState, blocking};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/memories", get(list).post(add))
        .route("/memories/search", get(search))
        .route("/memories/settings", get(settings).put(set_settings))
        .route("/memories/{id}", patch(edit).delete(remove))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMemoryBody {
    content: String,
    #[serde(default = "default_kind")]
    kind: MemoryKind,
}

fn default_kind() -> MemoryKind {
    MemoryKind::Fact
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
struct MemorySettings {
    enabled: bool,
}

/// Rejects blank memory text before it reaches the store.
fn memory_text(content: &str) -> Result<&str, ApiError> {
    let content = content.trim();
    if content.is_empty() {
        return Err(ApiError::bad_request("memory content must not be blank"));
    }
    Ok(content)
}

async fn list(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        if state.shared_store {
            state.memory.reload(actor.user_id);
        }
        Ok(Json(json!({ "data": state.memory.list(&actor)? })))
    })
    .await
}

async fn add(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Body(body): Body<NewMemoryBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    blocking(move || {
        let memory = state.memory.add(&actor, body.kind, memory_text(&body.content)?)?;
        Ok((StatusCode::CREATED, Json(json!(memory))))
    })
    .await
}

async fn edit(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    PathParam(id): PathParam<MemoryId>,
    Body(body): Body<EditMemoryBody>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || Ok(Json(json!(state.memory.edit(&actor, id, memory_text(&body.content)?)?)))).await
}

async fn remove(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    PathParam(id): PathParam<MemoryId>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        state.memory.delete(&actor, id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

async fn search(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let options = SearchOptions { top_k: query.limit.clamp(1, 100), ..SearchOptions::default() };
        Ok(Json(json!({ "data": state.memory.search(&actor, &query.q, &options)? })))
    })
    .await
}

async fn settings(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
) -> Result<Json<Value>, ApiError> {
    blocking(move || Ok(Json(json!({ "enabled": state.store.current_user(&actor)?.memory_enabled })))).await
}

async fn set_settings(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Body(body): Body<MemorySettings>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let user = state.store.set_memory_enabled(&actor, actor.user_id, body.enabled)?;
        Ok(Json(json!({ "enabled": user.memory_enabled })))
    })
    .await
}
