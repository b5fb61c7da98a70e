//! Users, sessions, messages and memories: the store traits ([`UserStore`], [`TokenStore`],
//! [`ApiKeyStore`], [`ChatStore`], [`MemoryStore`], [`ExportStore`], together
//! [`SessionStore`]) and their records.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::chat::{ChatMessage, Role};
use crate::error::StoreError;
use crate::ids::{ApiKeyId, MemoryId, MessageId, SessionId, UserId};

/// A user's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    /// May manage other users.
    Admin,
    /// May manage only their own data.
    User,
}

impl UserRole {
    /// `admin` or `user`.
    pub const fn as_str(self) -> &'static str {
        match self {
            UserRole::Admin => "admin",
            UserRole::User => "user",
        }
    }
}

impl fmt::Display for UserRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UserRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(UserRole::Admin),
            "user" => Ok(UserRole::User),
            other => Err(format!("unknown role `{other}` (expected admin or user)")),
        }
    }
}

/// A user account. Never carries the password hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Unique login name (unique regardless of ASCII case).
    pub username: String,
    /// Optional email address.
    pub email: Option<String>,
    /// Role.
    pub role: UserRole,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
    /// The last successful login.
    pub last_login: Option<DateTime<Utc>>,
    /// Disabled by an admin: no logins, no refreshes, and its access tokens stop verifying.
    #[serde(default)]
    pub disabled: bool,
    /// Whether the assistant may remember things about this user across sessions (on for a
    /// new account). When off, no session reads or writes the user's memories, as if every
    /// session were [`temporary`](Session::temporary); the memories already stored are kept.
    /// The store records the switch ([`UserStore::set_memory_enabled`]); the code that
    /// reads and writes memories honours it.
    #[serde(default = "memory_enabled_by_default")]
    pub memory_enabled: bool,
}

/// Exports written before the switch existed had memory on.
const fn memory_enabled_by_default() -> bool {
    true
}

impl User {
    /// The principal for store calls made on this user's behalf.
    pub fn actor(&self) -> Actor {
        Actor { user_id: self.id, role: self.role }
    }
}

/// The authenticated user on whose behalf a store call acts.
///
/// Obtained from [`UserStore::login`] (through [`User::actor`]) or
/// [`TokenStore::verify_token`]. Every call that reads or changes a user's data takes one
/// and is scoped to it, so passing another user's session id yields "not found". Admin
/// calls re-check the role in the store, so a hand-made `Actor` claiming to be an admin gains
/// nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Whose data the call may touch.
    pub user_id: UserId,
    /// What the user may do.
    pub role: UserRole,
}

/// A registration request.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Plain-text password; only its argon2 hash is stored.
    pub password: String,
    /// Optional email.
    pub email: Option<String>,
    /// Requested role; the first user of a store is always an admin, and later users may
    /// only ask for [`UserRole::User`] (an admin promotes them with
    /// [`UserStore::set_user_role`]).
    pub role: UserRole,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("email", &self.email)
            .field("role", &self.role)
            .finish()
    }
}

/// An access token and the refresh token that renews it.
///
/// The refresh token is single-use: [`TokenStore::refresh`] returns a new pair and retires
/// the old refresh token; presenting a retired one again revokes every token descended from
/// the same login. `Debug` hides both tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPair {
    /// A short-lived signed access token (JWT), sent as `Authorization: Bearer ...`.
    pub access_token: String,
    /// When the access token expires.
    pub access_expires_at: DateTime<Utc>,
    /// A long-lived opaque token for [`TokenStore::refresh`]; the store keeps only its hash.
    pub refresh_token: String,
    /// When the refresh token expires.
    pub refresh_expires_at: DateTime<Utc>,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"<redacted>")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_token", &"<redacted>")
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish()
    }
}

/// One API key of a user, as [`ApiKeyStore::list_api_keys`] shows it: never the key itself.
///
/// API keys are for clients that send one fixed `Authorization: Bearer` value and cannot
/// refresh a short-lived access token (most OpenAI-style tools). They do not expire; they end
/// when revoked, when every token of their user is revoked, or with their user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Id, for revoking it.
    pub id: ApiKeyId,
    /// Owner.
    pub user_id: UserId,
    /// What the owner called it, e.g. `laptop editor`.
    pub name: String,
    /// The key's first characters ([`ApiKey::KEY_PREFIX`] and a few more), so the owner can
    /// tell which key a client holds. Not enough of the key to use it.
    pub prefix: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was last verified, to within a minute; `None` if never.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// How every API key starts, so a server can tell one from an access token (a JWT, which
    /// starts with `eyJ`) and route it to [`ApiKeyStore::verify_api_key`].
    ///
    /// ```
    /// use modelforge_core::ApiKey;
    /// let bearer = "mf_0123abcd";
    /// assert!(bearer.starts_with(ApiKey::KEY_PREFIX));
    /// ```
    pub const KEY_PREFIX: &'static str = "mf_";
}

/// A new API key and its secret, as [`ApiKeyStore::create_api_key`] returns it.
///
/// The secret is shown this once: the store keeps only its SHA-256, so a lost key cannot be
/// recovered, only revoked and replaced. `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    /// The key's record, as later listed.
    pub api_key: ApiKey,
    /// The key itself, sent as `Authorization: Bearer <secret>`; starts with
    /// [`ApiKey::KEY_PREFIX`].
    pub secret: String,
}

impl fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("api_key", &self.api_key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Which slice of a long list to return: skip `offset` items, return at most `limit`.
///
/// ```
/// use modelforge_core::Page;
/// let second = Page::first(20).next();
/// assert_eq!((second.offset, second.limit), (20, 20));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Items to skip.
    pub offset: u64,
    /// Items to return, 1 to [`Page::MAX_LIMIT`].
    pub limit: u32,
}

impl Page {
    /// The largest page a store returns at once.
    pub const MAX_LIMIT: u32 = 1000;

    /// The first `limit` items.
    pub const fn first(limit: u32) -> Self {
        Self { offset: 0, limit }
    }

    /// The page after this one.
    pub const fn next(self) -> Self {
        Self { offset: self.offset + self.limit as u64, limit: self.limit }
    }
}

impl Default for Page {
    /// The first 50 items.
    fn default() -> Self {
        Self::first(50)
    }
}

/// A chat session of one user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Id.
    pub id: SessionId,
    /// Owner.
    pub user_id: UserId,
    /// Title. Empty until the first user message names it (unless given or renamed).
    pub title: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed (rename or new message).
    pub updated_at: DateTime<Utc>,
    /// How many messages it holds.
    pub message_count: u64,
    /// The start of the newest message, for session lists.
    pub last_message_preview: Option<String>,
    /// Pinned sessions list before the others.
    pub pinned: bool,
    /// Archived sessions are listed only when asked for.
    pub archived: bool,
    /// A temporary session neither reads nor writes the user's memories: nothing said in it
    /// is remembered, and nothing remembered is brought into it. Its messages are still
    /// stored like any other session's. The store records the flag
    /// ([`ChatStore::set_session_temporary`]); the code that reads and writes memories
    /// honours it.
    #[serde(default)]
    pub temporary: bool,
    /// The model this session chats with, as the server names it (e.g. a Hub reference);
    /// `None` for the server's default. The store records the name and checks only its
    /// length; the server decides what it means.
    #[serde(default)]
    pub model: Option<String>,
}

/// A request for a new session, for [`ChatStore::create_session_with`].
///
/// ```
/// use modelforge_core::NewSession;
/// let private = NewSession { temporary: true, ..NewSession::default() };
/// assert!(private.title.is_empty(), "untitled: the first user message names it");
/// assert_eq!(private.model, None, "the server's default model");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSession {
    /// Title; empty to have the first user message name it.
    pub title: String,
    /// Start the session [temporary](Session::temporary).
    pub temporary: bool,
    /// The [model](Session::model) to chat with; `None` for the server's default. Must not be
    /// blank.
    #[serde(default)]
    pub model: Option<String>,
}

/// A change to a session, for [`ChatStore::update_session`]: fields left `None` stay as they
/// are, and the rest change together or not at all.
///
/// ```
/// use modelforge_core::SessionUpdate;
/// // Pin a session and switch it back to the server's default model, in one call.
/// let change = SessionUpdate { pinned: Some(true), model: Some(None), ..SessionUpdate::default() };
/// assert_eq!(change.title, None, "the title stays");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUpdate {
    /// A new title (not blank). The only change that moves `updated_at`: renaming changes
    /// what the session shows, the other fields are settings.
    pub title: Option<String>,
    /// Pin or unpin.
    pub pinned: Option<bool>,
    /// Archive or restore.
    pub archived: Option<bool>,
    /// Make [temporary](Session::temporary) or ordinary again.
    pub temporary: Option<bool>,
    /// A new [model](Session::model) (not blank); `Some(None)` returns to the server's
    /// default.
    pub model: Option<Option<String>>,
}

impl SessionUpdate {
    /// Whether this changes nothing.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.pinned.is_none()
            && self.archived.is_none()
            && self.temporary.is_none()
            && self.model.is_none()
    }
}

/// What [`ChatStore::list_sessions`] returns: filters and the page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionQuery {
    /// Only sessions whose title or any message contains this text (case-insensitive for
    /// ASCII letters; `%` and `_` match themselves).
    pub search: Option<String>,
    /// List archived sessions instead of active ones.
    pub archived: bool,
    /// Only pinned sessions (`Some(true)`) or only unpinned ones (`Some(false)`); `None` for
    /// both.
    #[serde(default)]
    pub pinned: Option<bool>,
    /// Which slice.
    pub page: Page,
}

/// A page of sessions: pinned first, then most recently updated first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPage {
    /// The sessions on this page.
    pub sessions: Vec<Session>,
    /// The query's page for the next slice, if there is more.
    pub next: Option<Page>,
}

/// One stored message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Id.
    pub id: MessageId,
    /// The session it belongs to.
    pub session_id: SessionId,
    /// Who wrote it.
    pub role: Role,
    /// What was written.
    pub content: String,
    /// Its length in tokens, if the caller counted it.
    pub token_count: Option<u32>,
    /// When it was stored. Strictly increasing within a session, so time order is
    /// insertion order.
    pub created_at: DateTime<Utc>,
}

impl From<&Message> for ChatMessage {
    fn from(m: &Message) -> Self {
        ChatMessage::new(m.role, m.content.clone())
    }
}

/// A cached summary of a session's oldest messages, up to and including `through_message`,
/// so a long conversation fits the context window without summarizing it again every turn.
///
/// A session has at most one: saving a new one replaces it. It goes away with its session,
/// and with `through_message` (e.g. when [`ChatStore::delete_messages_after`] removes it),
/// so a summary never covers messages that no longer exist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// The session summarized.
    pub session_id: SessionId,
    /// The newest message the summary covers.
    pub through_message: MessageId,
    /// The summary text.
    pub content: String,
    /// How many messages the summary stands for, as counted by whoever wrote it.
    pub covered_messages: u64,
    /// When it was saved.
    pub created_at: DateTime<Utc>,
}

/// A page of a session's messages, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePage {
    /// The messages on this page.
    pub messages: Vec<Message>,
    /// The page for the next slice, if there is more.
    pub next: Option<Page>,
}

/// What kind of thing a memory records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryKind {
    /// Who the user is: name, home, work, family.
    Profile,
    /// What the user likes or dislikes.
    Preference,
    /// Anything else worth remembering.
    Fact,
}

impl MemoryKind {
    /// Lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MemoryKind::Profile => "profile",
            MemoryKind::Preference => "preference",
            MemoryKind::Fact => "fact",
        }
    }
}

impl FromStr for MemoryKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "profile" => Ok(MemoryKind::Profile),
            "preference" => Ok(MemoryKind::Preference),
            "fact" => Ok(MemoryKind::Fact),
            other => Err(format!("unknown memory kind `{other}` (expected profile, preference or fact)")),
        }
    }
}

/// One entry of a user's knowledge base: what retrieval and context assembly need.
/// [`MemoryRecord`] adds the bookkeeping the store keeps beside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Id.
    pub id: MemoryId,
    /// Owner.
    pub user_id: UserId,
    /// Kind.
    pub kind: MemoryKind,
    /// The remembered statement, e.g. "The user's name is Lina."
    pub content: String,
    /// The session it was learned in, if any.
    pub source_session_id: Option<SessionId>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// A memory to be stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMemory {
    /// Kind.
    pub kind: MemoryKind,
    /// The statement.
    pub content: String,
    /// The session it was learned in.
    pub source_session_id: Option<SessionId>,
}

/// The optional attributes of a new memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryDetails {
    /// How sure the extractor was, from 0 to 1.
    pub confidence: f32,
    /// An embedding of the content, for similarity search; finite values only.
    pub embedding: Option<Vec<f32>>,
}

impl Default for MemoryDetails {
    /// Full confidence, no embedding.
    fn default() -> Self {
        Self { confidence: 1.0, embedding: None }
    }
}

/// A stored memory with its bookkeeping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryRecord {
    /// The memory itself.
    #[serde(flatten)]
    pub memory: Memory,
    /// How sure the extractor was, from 0 to 1.
    pub confidence: f32,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Its embedding, if one was stored.
    pub embedding: Option<Vec<f32>>,
}

/// A change to a memory: fields left `None` stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryUpdate {
    /// A new kind.
    pub kind: Option<MemoryKind>,
    /// A new statement.
    pub content: Option<String>,
    /// A new confidence.
    pub confidence: Option<f32>,
    /// A new embedding (`Some(None)` removes it).
    pub embedding: Option<Option<Vec<f32>>>,
}

/// One session and its messages in a [`UserExport`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionExport {
    /// The session.
    pub session: Session,
    /// Its messages, oldest first.
    pub messages: Vec<Message>,
}

/// Everything a user has in a store, as written by [`ExportStore::export_user_data`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserExport {
    /// The export format; [`UserExport::FORMAT_VERSION`] when written by this version.
    pub format_version: u32,
    /// When it was written.
    pub exported_at: DateTime<Utc>,
    /// The account (without any secret).
    pub user: User,
    /// Sessions with their messages.
    pub sessions: Vec<SessionExport>,
    /// Memories with their bookkeeping.
    pub memories: Vec<MemoryRecord>,
}

impl UserExport {
    /// The format written by this version.
    pub const FORMAT_VERSION: u32 = 1;
}

/// What an import added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    /// Sessions created.
    pub sessions: u64,
    /// Messages created.
    pub messages: u64,
    /// Memories created.
    pub memories: u64,
}

/// Users and their administration: registration, login, accounts, roles and switches,
/// and whether registration is open.
///
/// One slice of the [`SessionStore`]; hold it alone (`Arc<dyn UserStore>`) when only accounts
/// matter. Admin methods check in the store that the acting user is an enabled admin, so a
/// hand-made [`Actor`] claiming to be one gains nothing.
pub trait UserStore: Send + Sync {
    /// Registers a user. The first user of a store becomes an admin; later users may only
    /// register as [`UserRole::User`] ([`StoreError::PermissionDenied`] otherwise). Names,
    /// passwords and emails are checked first ([`StoreError::InvalidInput`]).
    fn create_user(&self, new_user: &NewUser) -> Result<User, StoreError>;

    /// Checks a password and records the login. Unknown users and wrong passwords give the
    /// same [`StoreError::InvalidCredentials`] in about the same time. After repeated failures
    /// the account answers [`StoreError::AccountLocked`] for a growing while; a disabled
    /// account gives [`StoreError::AccountDisabled`] once the password is right.
    fn login(&self, username: &str, password: &str) -> Result<User, StoreError>;

    /// The acting user's own account.
    fn current_user(&self, actor: &Actor) -> Result<User, StoreError>;

    /// Changes the acting user's password after checking the current one, and revokes all
    /// their tokens (access and refresh).
    ///
    /// Their [API keys](ApiKeyStore) keep working: a key is not derived from the password,
    /// and the scripts that hold keys should not break because a password changed. To end
    /// them too, revoke them ([`ApiKeyStore::revoke_api_key`], or
    /// [`TokenStore::revoke_tokens`] for everything at once).
    fn change_password(
        &self,
        actor: &Actor,
        current_password: &str,
        new_password: &str,
    ) -> Result<(), StoreError>;

    /// Deletes `user` with all their sessions, messages, memories, tokens and API keys: the
    /// user themselves or an admin. The last enabled admin cannot be deleted.
    fn delete_user(&self, actor: &Actor, user: UserId) -> Result<(), StoreError>;

    /// All users, oldest account first. Admins only.
    fn list_users(&self, actor: &Actor, page: Page) -> Result<Vec<User>, StoreError>;

    /// Disables or enables `user`. Admins only; the last enabled admin cannot be disabled.
    fn set_user_disabled(&self, actor: &Actor, user: UserId, disabled: bool) -> Result<User, StoreError>;

    /// Changes `user`'s role. Admins only; the last enabled admin cannot be demoted.
    fn set_user_role(&self, actor: &Actor, user: UserId, role: UserRole) -> Result<User, StoreError>;

    /// Switches [memory](User::memory_enabled) on or off for `user`: the user themselves or
    /// an admin (the same rule as [`revoke_tokens`](TokenStore::revoke_tokens)). Stored
    /// memories are kept either way.
    fn set_memory_enabled(&self, actor: &Actor, user: UserId, enabled: bool) -> Result<User, StoreError>;

    /// Whether people may register themselves: true until an admin closes it.
    ///
    /// The switch lives in the store, so every server replica sharing it agrees. The store
    /// only records it: [`create_user`](Self::create_user) does not check it, so an admin's
    /// command-line tool can still add accounts; a server checks it before offering sign-up.
    fn registration_open(&self) -> Result<bool, StoreError>;

    /// Opens or closes [registration](Self::registration_open). Admins only
    /// ([`StoreError::PermissionDenied`] otherwise, checked against the role in the store).
    fn set_registration_open(&self, actor: &Actor, open: bool) -> Result<(), StoreError>;
}

/// Access and refresh tokens: issuing, rotating, verifying and revoking them.
///
/// One slice of the [`SessionStore`]; an authentication layer that only turns bearer tokens
/// into an [`Actor`] holds just this (`Arc<dyn TokenStore>`).
pub trait TokenStore: Send + Sync {
    /// Issues a short-lived signed access token for the acting user.
    fn issue_token(&self, actor: &Actor) -> Result<String, StoreError>;

    /// Issues an access token and a new refresh token (the start of a new token family),
    /// typically right after [`login`](UserStore::login).
    fn issue_tokens(&self, actor: &Actor) -> Result<TokenPair, StoreError>;

    /// Trades a refresh token for a new pair. The old refresh token is retired; presenting
    /// it again revokes its whole family and fails with [`StoreError::InvalidToken`].
    fn refresh(&self, refresh_token: &str) -> Result<TokenPair, StoreError>;

    /// Logs out: revokes the refresh token's whole family. Unknown tokens are
    /// [`StoreError::InvalidToken`].
    fn logout(&self, refresh_token: &str) -> Result<(), StoreError>;

    /// Verifies an access token's signature, algorithm, expiry, issuer and audience, and
    /// that its user still exists, is enabled and has not revoked it; returns whom it speaks
    /// for, with the role currently in the store.
    fn verify_token(&self, token: &str) -> Result<Actor, StoreError>;

    /// Revokes every access and refresh token and every [API key](ApiKeyStore) of `user`: the
    /// user themselves or an admin. The "sign out everywhere" of a compromised account.
    fn revoke_tokens(&self, actor: &Actor, user: UserId) -> Result<(), StoreError>;
}

/// Long-lived API keys, for clients that cannot refresh a short-lived access token.
///
/// One slice of the [`SessionStore`]. A key speaks for its owner until it is revoked; the store
/// keeps only its SHA-256 (a key is 256 random bits, so unlike a password it needs no slow
/// hash), so a stolen database yields no usable key. An authentication layer that accepts
/// both kinds of bearer token holds this beside [`TokenStore`], and tells them apart by
/// [`ApiKey::KEY_PREFIX`].
pub trait ApiKeyStore: Send + Sync {
    /// Makes a new key for the acting user, named `name` (not blank, at most a line's length)
    /// so they can tell their keys apart. The secret is in the result and nowhere else.
    fn create_api_key(&self, actor: &Actor, name: &str) -> Result<CreatedApiKey, StoreError>;

    /// The acting user's keys, oldest first, without their secrets.
    fn list_api_keys(&self, actor: &Actor) -> Result<Vec<ApiKey>, StoreError>;

    /// Revokes one of the acting user's keys at once. Another user's key is
    /// [`StoreError::NotFound`], exactly like a missing one (an admin ends another user's keys
    /// with [`TokenStore::revoke_tokens`]).
    fn revoke_api_key(&self, actor: &Actor, id: ApiKeyId) -> Result<(), StoreError>;

    /// Whom a key speaks for, with the role currently in the store, and records its use (at
    /// most once a minute, so a busy client does not write on every request). Unknown and
    /// revoked keys, and keys of disabled users, are [`StoreError::InvalidToken`].
    fn verify_api_key(&self, key: &str) -> Result<Actor, StoreError>;
}

/// Chat sessions with their messages and summaries.
///
/// One slice of the [`SessionStore`]. Every method is scoped to the acting user: a session id
/// that belongs to someone else behaves exactly like one that does not exist.
pub trait ChatStore: Send + Sync {
    /// Starts a new session as requested. An empty title is filled in from the first user
    /// message.
    fn create_session_with(&self, actor: &Actor, new: &NewSession) -> Result<Session, StoreError>;

    /// Starts a new session that is not temporary. An empty title is filled in from the
    /// first user message.
    fn create_session(&self, actor: &Actor, title: &str) -> Result<Session, StoreError> {
        self.create_session_with(actor, &NewSession { title: title.to_owned(), ..NewSession::default() })
    }

    /// A page of the acting user's sessions: pinned first, then most recently updated.
    fn list_sessions(&self, actor: &Actor, query: &SessionQuery) -> Result<SessionPage, StoreError>;

    /// One session of the acting user.
    fn get_session(&self, actor: &Actor, id: SessionId) -> Result<Session, StoreError>;

    /// Changes one of the acting user's sessions as `update` says, all in one transaction,
    /// and returns it as changed. Every value is checked before anything is written, so a
    /// refused update changes nothing; an empty one returns the session as it is. Only a new
    /// title moves `updated_at` (see [`SessionUpdate::title`]).
    fn update_session(
        &self,
        actor: &Actor,
        id: SessionId,
        update: &SessionUpdate,
    ) -> Result<Session, StoreError>;

    /// Renames one of the acting user's sessions (the title must not be blank); `updated_at`
    /// moves.
    fn rename_session(&self, actor: &Actor, id: SessionId, title: &str) -> Result<Session, StoreError> {
        let update = SessionUpdate { title: Some(title.to_owned()), ..SessionUpdate::default() };
        self.update_session(actor, id, &update)
    }

    /// Pins or unpins a session (`updated_at` stays).
    fn set_session_pinned(&self, actor: &Actor, id: SessionId, pinned: bool) -> Result<Session, StoreError> {
        let update = SessionUpdate { pinned: Some(pinned), ..SessionUpdate::default() };
        self.update_session(actor, id, &update)
    }

    /// Archives or restores a session (`updated_at` stays).
    fn set_session_archived(
        &self,
        actor: &Actor,
        id: SessionId,
        archived: bool,
    ) -> Result<Session, StoreError> {
        let update = SessionUpdate { archived: Some(archived), ..SessionUpdate::default() };
        self.update_session(actor, id, &update)
    }

    /// Makes a session [temporary](Session::temporary) or ordinary again (`updated_at`
    /// stays). Memories already learned from it are not removed.
    fn set_session_temporary(
        &self,
        actor: &Actor,
        id: SessionId,
        temporary: bool,
    ) -> Result<Session, StoreError> {
        let update = SessionUpdate { temporary: Some(temporary), ..SessionUpdate::default() };
        self.update_session(actor, id, &update)
    }

    /// Deletes one of the acting user's sessions with its messages and its summary.
    fn delete_session(&self, actor: &Actor, id: SessionId) -> Result<(), StoreError>;

    /// Appends a message to one of the acting user's sessions, with its length in tokens if
    /// known.
    fn append_message(
        &self,
        actor: &Actor,
        session: SessionId,
        message: &ChatMessage,
        token_count: Option<u32>,
    ) -> Result<Message, StoreError>;

    /// All of a session's messages, oldest first.
    fn list_messages(&self, actor: &Actor, session: SessionId) -> Result<Vec<Message>, StoreError>;

    /// A page of a session's messages, oldest first.
    fn list_messages_page(
        &self,
        actor: &Actor,
        session: SessionId,
        page: Page,
    ) -> Result<MessagePage, StoreError>;

    /// Deletes every message of the session that came after `message` (which stays), to
    /// regenerate a reply or edit a turn. Returns how many were deleted.
    ///
    /// The session's [summary](SessionSummary) is deleted if, and only if, its
    /// `through_message` was among the deleted messages; a summary of older messages stays.
    fn delete_messages_after(
        &self,
        actor: &Actor,
        session: SessionId,
        message: MessageId,
    ) -> Result<u64, StoreError>;

    /// Deletes `message` and every message of the session after it, to edit a turn (the
    /// first one included). Returns how many were deleted. The session's summary goes with
    /// them exactly as for [`delete_messages_after`](Self::delete_messages_after).
    fn delete_messages_from(
        &self,
        actor: &Actor,
        session: SessionId,
        message: MessageId,
    ) -> Result<u64, StoreError>;

    /// Stores the summary of one of the acting user's sessions, replacing the one it had.
    /// `through_message` must be a message of that session ([`StoreError::NotFound`]
    /// otherwise) and `covered_messages` at least 1.
    fn save_session_summary(
        &self,
        actor: &Actor,
        session: SessionId,
        through_message: MessageId,
        covered_messages: u64,
        content: &str,
    ) -> Result<SessionSummary, StoreError>;

    /// The summary of one of the acting user's sessions, if one is saved.
    fn session_summary(
        &self,
        actor: &Actor,
        session: SessionId,
    ) -> Result<Option<SessionSummary>, StoreError>;
}

/// A user's memories: what the assistant remembers about them across sessions.
///
/// One slice of the [`SessionStore`]; code that only remembers and recalls (a memory bank)
/// can hold just this (`Arc<dyn MemoryStore>`). Scoped to the acting user like every other
/// slice.
pub trait MemoryStore: Send + Sync {
    /// Stores a memory with its details for the acting user.
    fn add_memory_record(
        &self,
        actor: &Actor,
        memory: &NewMemory,
        details: &MemoryDetails,
    ) -> Result<MemoryRecord, StoreError>;

    /// Stores a memory with full confidence and no embedding.
    fn add_memory(&self, actor: &Actor, memory: &NewMemory) -> Result<Memory, StoreError> {
        self.add_memory_record(actor, memory, &MemoryDetails::default()).map(|record| record.memory)
    }

    /// The acting user's memories with their details, oldest first.
    fn list_memory_records(&self, actor: &Actor) -> Result<Vec<MemoryRecord>, StoreError>;

    /// The acting user's memories, oldest first.
    fn list_memories(&self, actor: &Actor) -> Result<Vec<Memory>, StoreError> {
        Ok(self.list_memory_records(actor)?.into_iter().map(|record| record.memory).collect())
    }

    /// Changes a memory; `updated_at` moves, `created_at` stays.
    fn update_memory_record(
        &self,
        actor: &Actor,
        id: MemoryId,
        update: &MemoryUpdate,
    ) -> Result<MemoryRecord, StoreError>;

    /// Replaces a memory's content.
    fn update_memory(&self, actor: &Actor, id: MemoryId, content: &str) -> Result<Memory, StoreError> {
        let update = MemoryUpdate { content: Some(content.to_owned()), ..MemoryUpdate::default() };
        self.update_memory_record(actor, id, &update).map(|record| record.memory)
    }

    /// Deletes a memory.
    fn delete_memory(&self, actor: &Actor, id: MemoryId) -> Result<(), StoreError>;
}

/// Export and import of everything a user has, as a [`UserExport`] or its JSON.
///
/// One slice of the [`SessionStore`], for backup tools and account moves.
pub trait ExportStore: Send + Sync {
    /// Everything the acting user has: account, sessions with messages, memories.
    fn export_user_data(&self, actor: &Actor) -> Result<UserExport, StoreError>;

    /// Adds an export's sessions, messages and memories to the acting user's data, with new
    /// ids, all or nothing. The export's account details are not applied.
    fn import_user_data(&self, actor: &Actor, export: &UserExport) -> Result<ImportSummary, StoreError>;

    /// [`export_user_data`](Self::export_user_data) as pretty JSON bytes.
    fn export_json(&self, actor: &Actor) -> Result<Vec<u8>, StoreError> {
        let export = self.export_user_data(actor)?;
        serde_json::to_vec_pretty(&export).map_err(|err| StoreError::Database {
            context: format!("serializing the export of user {}", actor.user_id),
            source: Box::new(err),
        })
    }

    /// [`import_user_data`](Self::import_user_data) from JSON bytes. Bytes that are not UTF-8
    /// or not an export are [`StoreError::InvalidInput`] and change nothing.
    fn import_json(&self, actor: &Actor, json: &[u8]) -> Result<ImportSummary, StoreError> {
        let text = std::str::from_utf8(json).map_err(|err| StoreError::InvalidInput {
            field: "import",
            reason: format!("not valid UTF-8 (at byte {})", err.valid_up_to()),
        })?;
        let export: UserExport = serde_json::from_str(text).map_err(|err| StoreError::InvalidInput {
            field: "import",
            reason: format!("not a ModelForge export: {err}"),
        })?;
        self.import_user_data(actor, &export)
    }
}

/// The whole store: persistent users, sessions, messages and memories, with authentication.
///
/// Every method that reads or changes a user's data takes the acting user and is scoped to
/// them: an id that belongs to someone else behaves exactly like an id that does not exist.
/// Admin methods check in the store that the acting user is an enabled admin.
///
/// `SessionStore` has no methods of its own: it is the six slices ([`UserStore`],
/// [`TokenStore`], [`ApiKeyStore`], [`ChatStore`], [`MemoryStore`], [`ExportStore`])
/// together, implemented for every type that implements all of them.
///
/// The store is split because one trait of forty-odd methods is more than most callers use
/// or most implementations can offer. A caller holds only the slice it uses, so its type says
/// what it can touch (a memory bank cannot delete users); a test double or a remote backend
/// implements only the slices it needs, and a function that takes `&dyn MemoryStore` accepts
/// it. Assembly points keep one `Arc<dyn SessionStore>` and hand each component its slice;
/// the pointer upcasts:
///
/// ```
/// use std::sync::Arc;
/// use modelforge_core::{MemoryStore, SessionStore};
///
/// fn memories_only(store: Arc<dyn SessionStore>) -> Arc<dyn MemoryStore> {
///     store
/// }
/// ```
///
/// Methods of every slice can be called on a `dyn SessionStore` without importing the slice;
/// on a concrete store type, bring the slice's trait into scope (`use
/// modelforge_core::UserStore;`).
pub trait SessionStore: UserStore + TokenStore + ApiKeyStore + ChatStore + MemoryStore + ExportStore {}

impl<T> SessionStore for T where
    T: UserStore + TokenStore + ApiKeyStore + ChatStore + MemoryStore + ExportStore + ?Sized
{
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_from_before_the_memory_switches_read_with_memory_on() {
        let user: User = serde_json::from_value(serde_json::json!({
            "id": UserId::new(),
            "username": "lina",
            "email": null,
            "role": "user",
            "created_at": "2025-01-01T00:00:00Z",
            "last_login": null,
        }))
        .unwrap();
        assert!(user.memory_enabled && !user.disabled);
        let session: Session = serde_json::from_value(serde_json::json!({
            "id": SessionId::new(),
            "user_id": user.id,
            "title": "Trip",
            "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-01-01T00:00:00Z",
            "message_count": 0,
            "last_message_preview": null,
            "pinned": false,
            "archived": false,
        }))
        .unwrap();
        assert!(!session.temporary);
        assert_eq!(session.model, None, "sessions from before model choice use the default");
    }

    #[test]
    fn a_created_api_key_hides_its_secret_from_debug() {
        let created = CreatedApiKey {
            api_key: ApiKey {
                id: ApiKeyId::new(),
                user_id: UserId::new(),
                name: "editor".into(),
                prefix: "mf_0123abcd".into(),
                created_at: Utc::now(),
                last_used_at: None,
            },
            secret: "mf_0123abcd-very-secret".into(),
        };
        let shown = format!("{created:?}");
        assert!(!shown.contains("very-secret") && shown.contains("mf_0123abcd"), "{shown}");
    }

    #[test]
    fn an_empty_session_update_changes_nothing() {
        assert!(SessionUpdate::default().is_empty());
        assert!(!SessionUpdate { model: Some(None), ..SessionUpdate::default() }.is_empty());
    }
}
