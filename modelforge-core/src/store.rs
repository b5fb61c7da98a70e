//! Users, sessions, messages and memories: the [`SessionStore`] trait and its records.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::chat::{ChatMessage, Role};
use crate::error::StoreError;
use crate::ids::{MemoryId, MessageId, SessionId, UserId};

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
    /// Unique login name.
    pub username: String,
    /// Optional email address.
    pub email: Option<String>,
    /// Role.
    pub role: UserRole,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
    /// The last successful login.
    pub last_login: Option<DateTime<Utc>>,
}

impl User {
    /// The principal for store calls made on this user's behalf.
    pub fn actor(&self) -> Actor {
        Actor { user_id: self.id, role: self.role }
    }
}

/// The authenticated user on whose behalf a store call acts.
///
/// Obtained from [`SessionStore::login`] (through [`User::actor`]) or
/// [`SessionStore::verify_token`]. Every call that reads or changes a user's data takes one
/// and is scoped to it, so passing another user's session id yields "not found".
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
    /// Requested role; the first user of a store is always an admin.
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

/// A chat session of one user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Id.
    pub id: SessionId,
    /// Owner.
    pub user_id: UserId,
    /// Title.
    pub title: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed (rename or new message).
    pub updated_at: DateTime<Utc>,
    /// How many messages it holds.
    pub message_count: u64,
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
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

impl From<&Message> for ChatMessage {
    fn from(m: &Message) -> Self {
        ChatMessage::new(m.role, m.content.clone())
    }
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

/// One entry of a user's knowledge base.
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

/// Persistent users, sessions, messages and memories, with authentication.
///
/// Every method that reads or changes a user's data takes the acting user and is scoped to
/// them: an id that belongs to someone else behaves exactly like an id that does not exist.
pub trait SessionStore: Send + Sync {
    /// Registers a user. The first user of a store becomes an admin.
    fn create_user(&self, new_user: &NewUser) -> Result<User, StoreError>;

    /// Checks a password. Unknown users and wrong passwords give the same
    /// [`StoreError::InvalidCredentials`].
    fn login(&self, username: &str, password: &str) -> Result<User, StoreError>;

    /// Issues a signed access token for the acting user.
    fn issue_token(&self, actor: &Actor) -> Result<String, StoreError>;

    /// Verifies a token's signature and expiry and returns whom it speaks for.
    fn verify_token(&self, token: &str) -> Result<Actor, StoreError>;

    /// The acting user's own account.
    fn current_user(&self, actor: &Actor) -> Result<User, StoreError>;

    /// Starts a new session.
    fn create_session(&self, actor: &Actor, title: &str) -> Result<Session, StoreError>;

    /// The acting user's sessions, most recently updated first.
    fn list_sessions(&self, actor: &Actor) -> Result<Vec<Session>, StoreError>;

    /// One session of the acting user.
    fn get_session(&self, actor: &Actor, id: SessionId) -> Result<Session, StoreError>;

    /// Renames one of the acting user's sessions.
    fn rename_session(&self, actor: &Actor, id: SessionId, title: &str) -> Result<Session, StoreError>;

    /// Deletes one of the acting user's sessions with its messages.
    fn delete_session(&self, actor: &Actor, id: SessionId) -> Result<(), StoreError>;

    /// Appends a message to one of the acting user's sessions.
    fn append_message(
        &self,
        actor: &Actor,
        session: SessionId,
        message: &ChatMessage,
    ) -> Result<Message, StoreError>;

    /// A session's messages, oldest first.
    fn list_messages(&self, actor: &Actor, session: SessionId) -> Result<Vec<Message>, StoreError>;

    /// Stores a memory for the acting user.
    fn add_memory(&self, actor: &Actor, memory: &NewMemory) -> Result<Memory, StoreError>;

    /// The acting user's memories, oldest first.
    fn list_memories(&self, actor: &Actor) -> Result<Vec<Memory>, StoreError>;

    /// Replaces a memory's content.
    fn update_memory(&self, actor: &Actor, id: MemoryId, content: &str) -> Result<Memory, StoreError>;

    /// Deletes a memory.
    fn delete_memory(&self, actor: &Actor, id: MemoryId) -> Result<(), StoreError>;
}
