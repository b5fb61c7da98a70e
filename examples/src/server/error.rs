//! Every error leaves the server as one JSON shape, `{"error": {"message", "type", "param",
//! "code"}}` (OpenAI's; `param` names the request field at fault, else `null`),
//! with the status that fits it: store, model, memory and chat errors map here once, and so do
//! axum's own rejections (bad JSON, a wrong content type, a body over the limit) and unknown
//! routes, so a client never sees an HTML or plain-text error.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use modelforge_core::{BackendError, MemoryError, StoreError};
use modelforge_memory::ChatError;
use serde_json::json;

/// An error answered as JSON with a fitting status.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A short machine-readable code, e.g. `not_found`, `context_overflow`.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault, if one is (OpenAI's `param`), e.g. `messages[2].role`.
    pub param: Option<String>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), param: None }
    }

    /// The same error, naming the request field at fault.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// 400: the request is malformed or asks for something impossible.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401: no or bad credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: authenticated but not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: no such thing for this caller.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500: the server failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    /// The OpenAI-style `type` for the status.
    fn kind(&self) -> &'static str {
        match self.status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            500..=599 => "server_error",
            _ => "invalid_request_error",
        }
    }
}

impl ApiError {
    /// The JSON body: `{"error": {"message", "type", "param", "code"}}`.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": { "message": self.message, "type": self.kind(), "param": self.param, "code": self.code }
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), code = self.code, "{}", self.message);
        }
        (self.status, Json(self.body())).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        let (status, code) = match &err {
            StoreError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            StoreError::InvalidToken { .. } => (StatusCode::UNAUTHORIZED, "invalid_token"),
            StoreError::AccountLocked { .. } => (StatusCode::TOO_MANY_REQUESTS, "account_locked"),
            StoreError::AccountDisabled { .. } => (StatusCode::FORBIDDEN, "account_disabled"),
            StoreError::PermissionDenied { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            StoreError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            StoreError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            StoreError::InvalidInput { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "store_error"),
        };
        Self::new(status, code, err.to_string())
    }
}

impl From<BackendError> for ApiError {
    fn from(err: BackendError) -> Self {
        let (status, code) = match &err {
            BackendError::ContextOverflow { .. } => (StatusCode::BAD_REQUEST, "context_overflow"),
            BackendError::Template { .. } | BackendError::InvalidRequest { .. } => {
                (StatusCode::BAD_REQUEST, "invalid_request")
            }
            BackendError::Unsupported { .. } => (StatusCode::BAD_REQUEST, "unsupported"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "model_error"),
        };
        Self::new(status, code, err.to_string())
    }
}

impl From<MemoryError> for ApiError {
    fn from(err: MemoryError) -> Self {
        match err {
            MemoryError::Store(err) => err.into(),
            MemoryError::Backend(err) => err.into(),
            other => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "memory_error", other.to_string()),
        }
    }
}

impl From<ChatError> for ApiError {
    fn from(err: ChatError) -> Self {
        match err {
            ChatError::Store(err) => err.into(),
            ChatError::Backend(err) => err.into(),
            ChatError::Memory(err) => err.into(),
            ChatError::TooLong(err) => {
                Self::new(StatusCode::BAD_REQUEST, "context_overflow", err.to_string())
            }
            other => Self::bad_request(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_fields",
            _ => "invalid_json",
        };
        Self::new(status, code, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        // A malformed id names nothing that exists: the same answer as an unknown one.
        Self::not_found(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

/// The answer to a route that does not exist.
pub async fn no_route() -> ApiError {
    ApiError::not_found("no such route")
}

/// The answer to a route that exists, called with another method.
pub async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// A body that is not JSON, or JSON of the wrong shape, answered in the one error shape:
/// use as `Body(value)` in handlers instead of `Json(value)`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for Body<T>
where
    Json<T>: axum::extract::FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Body(value))
    }
}

/// A handler that panicked: a JSON 500 instead of a dropped connection.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("the server failed while answering; the failure is logged").into_response()
}

/// A path parameter that does not parse (a malformed id) answered like an unknown id: 404.
#[derive(Debug)]
pub struct PathParam<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for PathParam<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(PathParam(value))
    }
}

/// A query string answered in the one error shape when it does not parse: 400.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for QueryParams<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(QueryParams(value))
    }
}
