//! The error types of the core traits.
//!
//! Each trait returns its own error enum, so a caller holding an `Arc<dyn SessionStore>` can
//! still tell "not found" from "database down" without knowing which implementation it has.
//! Implementations keep richer errors of their own and convert into these.

use std::path::PathBuf;

/// A model file that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelFileError {
    /// The file could not be read.
    #[error("cannot read model file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("model file {} is empty", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Neither GGUF nor safetensors.
    #[error("{} is not a model file: neither GGUF nor safetensors (judged by its contents, not its name)", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The file ends too early: usually an incomplete download.
    #[error("model file {} is truncated: {detail}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was missing.
        detail: String,
    },
    /// The file's structure is invalid.
    #[error("model file {} is malformed: {detail}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// A boxed error from an implementation, kept as the `source` of a trait error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a [`Backend`](crate::Backend) or [`LoadedModel`](crate::LoadedModel).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The model file is missing, unreadable or malformed.
    #[error(transparent)]
    ModelFile(#[from] ModelFileError),
    /// The backend could not load a well-formed file.
    #[error("cannot load model {}: {reason}", path.display())]
    Load {
        /// The model file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The prompt does not fit in the context window. Nothing is truncated silently.
    #[error(
        "the prompt has {prompt_tokens} tokens but the context window holds {context_length} \
         (with room for {reserved} reply tokens): {} tokens too many",
        (prompt_tokens + reserved).saturating_sub(*context_length)
    )]
    ContextOverflow {
        /// Tokens in the prompt.
        prompt_tokens: u32,
        /// Tokens reserved for the reply.
        reserved: u32,
        /// The context window.
        context_length: u32,
    },
    /// The chat template could not be rendered.
    #[error("chat template error: {reason}")]
    Template {
        /// Why.
        reason: String,
    },
    /// The model or backend cannot do this (e.g. embeddings from a chat-only model).
    #[error("{what} is not supported by {backend}")]
    Unsupported {
        /// The operation.
        what: String,
        /// The backend or model.
        backend: String,
    },
    /// The request itself is invalid (e.g. a grammar that does not parse).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// Why.
        reason: String,
    },
    /// Inference failed inside the backend.
    #[error("inference failed: {context}")]
    Inference {
        /// What was being done.
        context: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

/// What went wrong in a [`SessionStore`](crate::SessionStore).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist, or it belongs to another user: the two are deliberately
    /// indistinguishable, so ids of other users' data reveal nothing.
    #[error("{what} {id} not found")]
    NotFound {
        /// The kind of record, e.g. `session`.
        what: &'static str,
        /// The id or name asked for.
        id: String,
    },
    /// Unknown user or wrong password (deliberately the same error).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// A token that is malformed, tampered with, expired or revoked.
    #[error("invalid token: {reason}")]
    InvalidToken {
        /// Why it was refused.
        reason: String,
    },
    /// The acting user may not do this.
    #[error("permission denied: {action}")]
    PermissionDenied {
        /// What was refused.
        action: String,
    },
    /// A unique value is already taken.
    #[error("{what} already exists")]
    Conflict {
        /// What collided, e.g. `username \`lina\``.
        what: String,
    },
    /// A field value was rejected before reaching the database.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Too many failed logins in a row: the account refuses logins for a while, even with the
    /// right password.
    #[error(
        "account `{username}` is locked after {failed_attempts} failed logins; try again in \
         {retry_after_secs} s"
    )]
    AccountLocked {
        /// The username as typed.
        username: String,
        /// Failed attempts in a row so far.
        failed_attempts: u32,
        /// Seconds until the next attempt is accepted (at least 1).
        retry_after_secs: u64,
    },
    /// The account was disabled by an admin: it cannot log in or refresh tokens. Reported
    /// only after the right password, so it reveals nothing to a guesser.
    #[error("account `{username}` is disabled; ask an admin to enable it")]
    AccountDisabled {
        /// The account's username.
        username: String,
    },
    /// Reading or writing a file beside the database (e.g. the token signing key) failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The database failed.
    #[error("database error while {context}")]
    Database {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

/// What went wrong while extracting or using memories.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// The model failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The extractor's own failure, e.g. output that is not valid JSON.
    #[error("memory extraction failed: {reason}")]
    Extraction {
        /// Why.
        reason: String,
    },
    /// The model could not summarize older turns, e.g. it wrote nothing.
    #[error("summarizing older turns failed: {reason}")]
    Summary {
        /// Why.
        reason: String,
    },
    /// Memories could not be written out as JSON.
    #[error("writing memories as JSON failed: {source}")]
    Serialize {
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
}

/// What went wrong in a [`ModelHub`](crate::ModelHub).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// No such repository, file or cached model.
    #[error("{what} not found: {name}")]
    NotFound {
        /// The kind of thing, e.g. `repository`.
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// The hub does not offer this operation (e.g. a local catalogue has no network).
    #[error("{what} is not supported by {hub}")]
    Unsupported {
        /// The operation.
        what: String,
        /// The hub implementation.
        hub: String,
    },
    /// A model file in the catalogue is unusable.
    #[error(transparent)]
    ModelFile(#[from] ModelFileError),
    /// The download was cancelled through its token.
    #[error("download cancelled")]
    Cancelled,
    /// Reading or writing local files failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The remote hub failed or refused.
    #[error("{context}")]
    Remote {
        /// What happened, in words a user can act on.
        context: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The connection failed or was cut. What was downloaded so far is kept, so trying again
    /// resumes where it stopped.
    #[error("network error while {context}: {source}")]
    Network {
        /// What was being done, with the repository and file.
        context: String,
        /// The transport error.
        source: BoxError,
    },
    /// The repository is gated or private and the request carried no token that grants access.
    #[error(
        "{repo} is {}: {}",
        if *gated { "gated" } else { "private or needs authentication" },
        if *token_sent {
            format!("the token in {token_env} does not grant access (HTTP {status}); accept the model's terms on its page or use a token that can read it")
        } else {
            format!("an access token is needed (HTTP {status}); set {token_env} to a Hugging Face token that can read it")
        }
    )]
    AccessDenied {
        /// The repository, `org/name`.
        repo: String,
        /// The HTTP status, 401 or 403.
        status: u16,
        /// Whether the hub said the repository is gated (terms to accept), not just private.
        gated: bool,
        /// Whether a token was sent.
        token_sent: bool,
        /// The environment variable that holds the token, e.g. `HF_TOKEN`.
        token_env: &'static str,
    },
    /// The repository has no GGUF file where one was asked for.
    #[error("{repo} has no GGUF file{}", if available.is_empty() { String::new() } else { format!(" (it holds {available})") })]
    NoGguf {
        /// The repository, `org/name`.
        repo: String,
        /// A short description of what it holds instead, possibly empty.
        available: String,
    },
    /// A downloaded file's content does not match the hash the hub announced. The partial file
    /// has been deleted.
    #[error(
        "{file} from {repo} is corrupt: its {algorithm} is {actual} but the hub announced {expected}; \
         the download was deleted, try again"
    )]
    ChecksumMismatch {
        /// The repository, `org/name`.
        repo: String,
        /// The file inside the repository.
        file: String,
        /// `sha256` (LFS files) or `git-sha1` (small files).
        algorithm: &'static str,
        /// The announced hash.
        expected: String,
        /// The hash of what arrived.
        actual: String,
    },
    /// Offline mode is on (`HF_HUB_OFFLINE`) and what was asked for is not in the local cache.
    #[error("offline mode is on ({env} is set) and {what} is not in the cache at {}", cache.display())]
    Offline {
        /// What was asked for: a repository, file or model reference.
        what: String,
        /// The cache directory searched.
        cache: PathBuf,
        /// The environment variable that turned offline mode on.
        env: &'static str,
    },
    /// The disk is full, or too full for what is left to download.
    #[error("not enough disk space for {}{}", path.display(), needed.map_or_else(String::new, |n| format!(" ({n} more bytes needed)")))]
    DiskFull {
        /// The file being written.
        path: PathBuf,
        /// The bytes still to write, when known.
        needed: Option<u64>,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A model reference that cannot be understood.
    #[error("invalid model reference `{reference}`: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Why, with the accepted forms.
        reason: String,
    },
}
