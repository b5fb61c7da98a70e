//! What admins manage: users (list, disable, role, revoke tokens, delete) and whether
//! registration is open.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use modelforge_core::{Page, UserId, UserRole};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Admin;
use super::error::{Body, PathParam, QueryParams};
use super::{ApiError, AppState, Registration, blocking};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(users))
        .route("/admin/users/{id}", axum::routing::patch(update_user).delete(delete_user))
        .route("/admin/users/{id}/revoke", post(revoke))
        .route("/admin/settings", get(settings).put(set_settings))
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default = "default_limit")]
    limit: u32,
    #[serde(default)]
    offset: u64,
}

fn default_limit() -> u32 {
    100
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    disabled: Option<bool>,
    role: Option<UserRole>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    registration_open: bool,
}

async fn users(
    State(state): State<AppState>,
    Admin(actor): Admin,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    if !(1..=Page::MAX_LIMIT).contains(&q.limit) {
        return Err(ApiError::bad_request(format!("limit must be 1 to {}", Page::MAX_LIMIT)));
    }
    blocking(move || {
        let page = Page { offset: q.offset, limit: q.limit };
        Ok(Json(json!({ "data": state.store.list_users(&actor, page)? })))
    })
    .await
}

async fn update_user(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParam(id): PathParam<UserId>,
    Body(patch): Body<UserPatch>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let mut user = None;
        if let Some(disabled) = patch.disabled {
            user = Some(state.store.set_user_disabled(&actor, id, disabled)?);
        }
        if let Some(role) = patch.role {
            user = Some(state.store.set_user_role(&actor, id, role)?);
        }
        let user = match user {
            Some(user) => user,
            None => return Err(ApiError::bad_request("nothing to change: send disabled and/or role")),
        };
        Ok(Json(json!(user)))
    })
    .await
}

async fn revoke(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParam(id): PathParam<UserId>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        state.store.revoke_tokens(&actor, id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

async fn delete_user(
    State(state): State<AppState>,
    Admin(actor): Admin,
    PathParam(id): PathParam<UserId>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        state.store.delete_user(&actor, id)?;
        state.memory.reload(id);
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

async fn settings(State(state): State<AppState>, Admin(_): Admin) -> Result<Json<Value>, ApiError> {
    let flag_open = state.registration == Registration::Open;
    blocking(move || {
        let open = state.store.registration_open()?;
        Ok(Json(json!({ "registration_open": open && flag_open, "closed_by_flag": !flag_open })))
    })
    .await
}

async fn set_settings(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Body(body): Body<SettingsBody>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        state.store.set_registration_open(&actor, body.registration_open)?;
        Ok(Json(json!({ "registration_open": body.registration_open })))
    })
    .await
}
