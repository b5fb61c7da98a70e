//! Persistent users, sessions, messages and memories for ModelForge, with authentication.
//!
//! This crate implements [`modelforge_core::SessionStore`] on top of diesel: all six of its
//! slices ([`UserStore`](modelforge_core::UserStore), [`TokenStore`](modelforge_core::TokenStore),
//! [`ApiKeyStore`](modelforge_core::ApiKeyStore), [`ChatStore`](modelforge_core::ChatStore),
//! [`MemoryStore`](modelforge_core::MemoryStore), [`ExportStore`](modelforge_core::ExportStore)),
//! so a store can be shared as the whole `Arc<dyn SessionStore>` or handed to a component as
//! just the slice it uses. The embedded default is `SqliteStore` (feature `sqlite`, on by
//! default): one file in WAL mode, schema migrations compiled in and applied on open. `PgStore` (feature `postgres`) serves several
//! server replicas sharing one PostgreSQL database. Each backend sits behind its own feature
//! so users compile only the driver they use; both behave the same, and one test suite runs
//! against both.
//!
//! The two backends share everything but the driver: input rules ([`limits`]), password
//! hashing, token signing, permissions and even the query code, which is written once and
//! compiled for each connection type (see `src/queries/mod.rs`).
//!
//! Authentication lives here too, because it is bound to the user table: passwords are
//! hashed with argon2id, logins of unknown users cost the same as wrong passwords, repeated
//! failures lock an account with growing waits ([`LockoutPolicy`]), access tokens are
//! short-lived HS256 JWTs signed with a per-installation key (see [`load_or_create_secret`]),
//! refresh tokens rotate on every use and are stored only as hashes, and so are the long-lived
//! API keys of clients that cannot refresh. Installation-wide switches an admin sets (whether
//! registration is open) live in the database too, so every replica sees the same.
//!
//! The central design decision is that every data call takes the acting user
//! ([`Actor`](modelforge_core::Actor)) and every query filters by it. There is no "get
//! session by id" that forgets to check ownership: another user's id matches no row, so it is
//! indistinguishable from an id that never existed.
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // On a concrete store, each slice's methods need its trait in scope (on a `dyn SessionStore`
//! // they do not).
//! use modelforge_core::{ChatMessage, ChatStore, NewUser, TokenStore, UserRole, UserStore};
//! use modelforge_store::{SqliteStore, StoreOptions, load_or_create_secret};
//!
//! let dir = tempfile::tempdir()?;
//! let secret = load_or_create_secret(dir.path())?;
//! let store = SqliteStore::open(&dir.path().join("modelforge.db"), StoreOptions::with_secret(secret))?;
//!
//! store.create_user(&NewUser {
//!     username: "lina".into(),
//!     password: "correct horse battery".into(),
//!     email: None,
//!     role: UserRole::User,
//! })?;
//! let user = store.login("lina", "correct horse battery")?;
//! assert_eq!(user.role, UserRole::Admin, "the first user is an admin");
//!
//! // A server hands out the token and later turns it back into the acting user.
//! let token = store.issue_token(&user.actor())?;
//! let actor = store.verify_token(&token)?;
//!
//! let session = store.create_session(&actor, "Trip planning")?;
//! store.append_message(&actor, session.id, &ChatMessage::user("Where should I go in May?"), Some(9))?;
//! let messages = store.list_messages(&actor, session.id)?;
//! assert_eq!(messages[0].content, "Where should I go in May?");
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "sqlite"))]
//! # fn main() {}
//! ```
#![deny(missing_docs)]
// Library code returns errors; tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
// Password hashing, tokens and input rules are shared by the backends; with no backend
// feature enabled nothing calls them.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

mod api_key;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod db;
mod embedding;
mod jwt;
pub mod limits;
mod options;
mod password;
#[cfg(feature = "postgres")]
mod postgres;
mod refresh;
mod secret;
#[cfg(feature = "sqlite")]
mod sqlite;
mod text;
mod token_cache;

pub use jwt::AUDIENCE;
pub use options::{LockoutPolicy, StoreOptions};
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
pub use secret::{SECRET_FILE_NAME, load_or_create_secret};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
