//! Who is calling: registration, login, token refresh and logout, the caller's account, and
//! API keys for clients that cannot refresh a short-lived token.

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use modelforge_core::{Actor, ApiKey, ApiKeyId, NewUser, TokenPair, UserRole};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{Body, PathParam};
use super::{ApiError, AppState, Registration, blocking};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
        .route("/auth/password", put(change_password))
        .route("/keys", get(list_keys).post(create_key))
        .route("/keys/{id}", delete(revoke_key))
}

/// The caller, from `Authorization: Bearer` with an access token or an API key.
#[derive(Clone, Copy, Debug)]
pub struct Authenticated(pub Actor);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| ApiError::unauthorized("missing bearer token: log in, or send an API key"))?;
        let store = state.store.clone();
        let actor = blocking(move || {
            Ok(if token.starts_with(ApiKey::KEY_PREFIX) {
                store.verify_api_key(&token)?
            } else {
                store.verify_token(&token)?
            })
        })
        .await?;
        Ok(Authenticated(actor))
    }
}

/// An authenticated admin.
pub struct Admin(pub Actor);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Authenticated(actor) = Authenticated::from_request_parts(parts, state).await?;
        if actor.role != UserRole::Admin {
            return Err(ApiError::forbidden("admins only"));
        }
        Ok(Admin(actor))
    }
}

#[derive(Deserialize)]
struct RegisterRequest {
    username: String,
    password: String,
    email: Option<String>,
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

#[derive(Deserialize)]
struct PasswordRequest {
    current_password: String,
    new_password: String,
}

#[derive(Deserialize)]
struct NewKeyRequest {
    name: String,
}

/// The login answer: a token pair in OAuth's words, and the account.
fn token_body(pair: &TokenPair, user: Option<Value>) -> Value {
    let now = chrono::Utc::now();
    let mut body = json!({
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "bearer",
        "expires_in": (pair.access_expires_at - now).num_seconds().max(0),
        "refresh_expires_in": (pair.refresh_expires_at - now).num_seconds().max(0),
    });
    if let Some(user) = user {
        body["user"] = user;
    }
    body
}

async fn register(
    State(state): State<AppState>,
    Body(req): Body<RegisterRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let store = state.store.clone();
    let closed_by_flag = state.registration == Registration::Closed;
    blocking(move || {
        if closed_by_flag || !store.registration_open()? {
            return Err(ApiError::forbidden("registration is closed: ask an admin for an account"));
        }
        let new = NewUser {
            username: req.username,
            password: req.password,
            email: req.email,
            role: UserRole::User,
        };
        // The store makes the very first account the admin.
        let user = store.create_user(&new)?;
        let pair = store.issue_tokens(&user.actor())?;
        Ok((StatusCode::CREATED, Json(token_body(&pair, Some(json!(user))))))
    })
    .await
}

async fn login(
    State(state): State<AppState>,
    Body(req): Body<LoginRequest>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    blocking(move || {
        let user = store.login(&req.username, &req.password)?;
        let pair = store.issue_tokens(&user.actor())?;
        Ok(Json(token_body(&pair, Some(json!(user)))))
    })
    .await
}

async fn refresh(
    State(state): State<AppState>,
    Body(req): Body<RefreshRequest>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    blocking(move || Ok(Json(token_body(&store.refresh(&req.refresh_token)?, None)))).await
}

async fn logout(
    State(state): State<AppState>,
    Body(req): Body<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    blocking(move || {
        store.logout(&req.refresh_token)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

async fn me(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let registration_open = state.registration == Registration::Open;
    blocking(move || {
        let user = store.current_user(&actor)?;
        let open = registration_open && store.registration_open()?;
        Ok(Json(json!({ "user": user, "registration_open": open })))
    })
    .await
}

async fn change_password(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Body(req): Body<PasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    blocking(move || {
        store.change_password(&actor, &req.current_password, &req.new_password)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

async fn create_key(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Body(req): Body<NewKeyRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let store = state.store.clone();
    blocking(move || {
        let created = store.create_api_key(&actor, &req.name)?;
        let mut body = json!(created.api_key);
        body["key"] = json!(created.secret);
        Ok((StatusCode::CREATED, Json(body)))
    })
    .await
}

async fn list_keys(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    blocking(move || Ok(Json(json!({ "data": store.list_api_keys(&actor)? })))).await
}

async fn revoke_key(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    PathParam(id): PathParam<ApiKeyId>,
) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    blocking(move || {
        store.revoke_api_key(&actor, id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
