//! [`SqliteStore`]: the embedded SQLite implementation of [`SessionStore`].

mod connection;
mod errors;
mod memories;
mod messages;
mod rows;
mod schema;
mod sessions;
mod users;

use std::fmt;
use std::path::{Path, PathBuf};

use diesel::SqliteConnection;
use diesel::r2d2::{ConnectionManager, PooledConnection};
use modelforge_core::{
    Actor, ChatMessage, Memory, MemoryId, Message, NewMemory, NewUser, Session, SessionId, SessionStore,
    StoreError, User,
};
use tracing::field::Empty;

use crate::jwt::TokenKeys;
use crate::options::StoreOptions;
use crate::{limits, password};
use connection::SqlitePool;

/// A [`SessionStore`] in one SQLite file, with a connection pool.
///
/// The file is opened in WAL mode with a 5 s busy timeout and foreign keys enforced, so
/// readers do not block the writer and deleting a session removes its messages. Cloning is
/// not offered; share it as `Arc<dyn SessionStore>` or `Arc<SqliteStore>`.
pub struct SqliteStore {
    pool: SqlitePool,
    keys: TokenKeys,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens the store at `path`, creating the file and its parent directories if needed and
    /// applying pending schema migrations.
    ///
    /// Fails with [`StoreError::InvalidInput`] for a signing key shorter than
    /// [`StoreOptions::MIN_SECRET_LEN`] or a path that is not UTF-8, and with
    /// [`StoreError::Database`] naming the file if it cannot be created, opened or migrated.
    pub fn open(path: &Path, options: StoreOptions) -> Result<SqliteStore, StoreError> {
        let keys = TokenKeys::new(&options)?;
        // Absolute, so a relative name like `file:x` is never read as an SQLite URI.
        let path = std::path::absolute(path).map_err(|err| StoreError::Database {
            context: format!("resolving the database path {}", path.display()),
            source: Box::new(err),
        })?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| StoreError::Database {
                context: format!("creating the database directory {}", parent.display()),
                source: Box::new(err),
            })?;
        }
        let url = path.to_str().ok_or_else(|| StoreError::InvalidInput {
            field: "path",
            reason: format!("{} is not valid UTF-8", path.display()),
        })?;
        let pool = connection::open_pool(url, &path)?;
        tracing::debug!(path = %path.display(), "opened the store");
        Ok(SqliteStore { pool, keys, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> Result<PooledConnection<ConnectionManager<SqliteConnection>>, StoreError> {
        self.pool.get().map_err(|err| StoreError::Database {
            context: format!("getting a connection to {}", self.path.display()),
            source: Box::new(err),
        })
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SessionStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = Empty))]
    fn create_user(&self, new_user: &NewUser) -> Result<User, StoreError> {
        limits::check_username(&new_user.username)?;
        limits::check_password(&new_user.password)?;
        limits::check_email(new_user.email.as_deref())?;
        // Hash before taking a connection: argon2 is deliberately slow.
        let hash = password::hash_password(&new_user.password)?;
        let user = users::insert(&mut *self.conn()?, new_user, &hash)?;
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        tracing::info!(role = %user.role, "created a user");
        Ok(user)
    }

    // The attempted username is not recorded: people sometimes type a password into it.
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = Empty))]
    fn login(&self, username: &str, password: &str) -> Result<User, StoreError> {
        if password.len() > limits::PASSWORD_MAX_BYTES {
            return Err(StoreError::InvalidCredentials);
        }
        // The connection goes back to the pool before the slow verification.
        let found = users::find_credentials(&mut *self.conn()?, username)?;
        let Some((row, hash)) = found else {
            password::verify_dummy(password);
            tracing::debug!("login refused");
            return Err(StoreError::InvalidCredentials);
        };
        if !password::verify_password(password, &hash)? {
            tracing::debug!("login refused");
            return Err(StoreError::InvalidCredentials);
        }
        let id = row.into_user()?.id;
        tracing::Span::current().record("user_id", tracing::field::display(id));
        users::record_login(&mut *self.conn()?, id)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn issue_token(&self, actor: &Actor) -> Result<String, StoreError> {
        self.keys.issue(actor)
    }

    /// Also checks that the user still exists, and takes the role from the database, so a
    /// role change applies to tokens already issued.
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = Empty))]
    fn verify_token(&self, token: &str) -> Result<Actor, StoreError> {
        let claimed = self.keys.verify(token)?;
        tracing::Span::current().record("user_id", tracing::field::display(claimed.user_id));
        match users::get(&mut *self.conn()?, claimed.user_id) {
            Ok(user) => Ok(user.actor()),
            Err(StoreError::NotFound { .. }) => {
                Err(StoreError::InvalidToken { reason: "the token's user no longer exists".to_owned() })
            }
            Err(err) => Err(err),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn current_user(&self, actor: &Actor) -> Result<User, StoreError> {
        users::get(&mut *self.conn()?, actor.user_id)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = Empty))]
    fn create_session(&self, actor: &Actor, title: &str) -> Result<Session, StoreError> {
        limits::check_title(title)?;
        let session = sessions::insert(&mut *self.conn()?, actor.user_id, title)?;
        tracing::Span::current().record("session_id", tracing::field::display(session.id));
        Ok(session)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn list_sessions(&self, actor: &Actor) -> Result<Vec<Session>, StoreError> {
        sessions::list(&mut *self.conn()?, actor.user_id)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %id))]
    fn get_session(&self, actor: &Actor, id: SessionId) -> Result<Session, StoreError> {
        sessions::get(&mut *self.conn()?, actor.user_id, id)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %id))]
    fn rename_session(&self, actor: &Actor, id: SessionId, title: &str) -> Result<Session, StoreError> {
        limits::check_title(title)?;
        sessions::rename(&mut *self.conn()?, actor.user_id, id, title)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %id))]
    fn delete_session(&self, actor: &Actor, id: SessionId) -> Result<(), StoreError> {
        sessions::remove(&mut *self.conn()?, actor.user_id, id)
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(user_id = %actor.user_id, session_id = %session, role = %message.role, bytes = message.content.len())
    )]
    fn append_message(
        &self,
        actor: &Actor,
        session: SessionId,
        message: &ChatMessage,
    ) -> Result<Message, StoreError> {
        limits::check_message(&message.content)?;
        messages::append(&mut *self.conn()?, actor.user_id, session, message)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %session))]
    fn list_messages(&self, actor: &Actor, session: SessionId) -> Result<Vec<Message>, StoreError> {
        messages::list(&mut *self.conn()?, actor.user_id, session)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, kind = memory.kind.as_str()))]
    fn add_memory(&self, actor: &Actor, memory: &NewMemory) -> Result<Memory, StoreError> {
        limits::check_memory(&memory.content)?;
        memories::insert(&mut *self.conn()?, actor.user_id, memory)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn list_memories(&self, actor: &Actor) -> Result<Vec<Memory>, StoreError> {
        memories::list(&mut *self.conn()?, actor.user_id)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, memory_id = %id))]
    fn update_memory(&self, actor: &Actor, id: MemoryId, content: &str) -> Result<Memory, StoreError> {
        limits::check_memory(content)?;
        memories::update_content(&mut *self.conn()?, actor.user_id, id, content)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, memory_id = %id))]
    fn delete_memory(&self, actor: &Actor, id: MemoryId) -> Result<(), StoreError> {
        memories::remove(&mut *self.conn()?, actor.user_id, id)
    }
}
