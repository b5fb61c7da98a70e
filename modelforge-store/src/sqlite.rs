//! [`SqliteStore`]: the embedded SQLite implementation of
//! [`SessionStore`](modelforge_core::SessionStore) (all six of its slices).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::{Connection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use modelforge_core::StoreError;

use crate::db::errors::{TxError, db_error};
use crate::db::pool::Shared;
use crate::jwt::TokenKeys;
use crate::options::StoreOptions;
use crate::token_cache::TokenStateCache;

// Compiled once per backend on purpose; see `queries/mod.rs`.
#[allow(clippy::duplicate_mod)]
#[path = "queries/mod.rs"]
mod queries;

/// The connection type the shared queries run on.
type Conn = SqliteConnection;
/// The store type the shared store-trait implementations are for.
type Store = SqliteStore;

/// The schema, compiled into the binary so a store upgrades itself on open.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Connections kept by the pool. SQLite allows one writer at a time, so more connections
/// only help concurrent readers.
const MAX_CONNECTIONS: u32 = 8;

/// Set on every connection: wait up to 5 s for a lock held by another process instead of
/// failing at once, let readers run beside the writer (WAL), sync at checkpoints rather than
/// every commit (in WAL mode a crash still cannot corrupt the file; a power loss may lose the
/// last commits), and enforce the `ON DELETE` rules of the schema.
const PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                       PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// A [`SessionStore`](modelforge_core::SessionStore) in one SQLite file, with a connection
/// pool.
///
/// The file is opened in WAL mode with a 5 s busy timeout and foreign keys enforced, so
/// readers do not block the writer and deleting a session removes its messages. Writers of
/// one process take turns on an in-process lock, so heavy concurrent appends never see
/// "database is locked". Share it as `Arc<dyn SessionStore>` or `Arc<SqliteStore>`, or hand
/// a component one slice of it (`Arc<dyn MemoryStore>`); calling a slice's methods on a
/// `SqliteStore` itself needs that slice's trait in scope (`use modelforge_core::UserStore`).
pub struct SqliteStore {
    shared: Shared<SqliteConnection>,
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
        let path = std::path::absolute(path).map_err(|err| StoreError::Io {
            context: format!("resolving the database path {}", path.display()),
            source: err,
        })?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| StoreError::Io {
                context: format!("creating the database directory {}", parent.display()),
                source: err,
            })?;
        }
        let url = path.to_str().ok_or_else(|| StoreError::InvalidInput {
            field: "path",
            reason: format!("{} is not valid UTF-8", path.display()),
        })?;
        let pool = open_pool(url, &path)?;
        tracing::debug!(path = %path.display(), "opened the store");
        let shared = Shared {
            pool,
            keys,
            token_states: TokenStateCache::new(options.auth_cache_ttl),
            options,
            location: path.display().to_string(),
            write_lock: Some(Mutex::new(())),
        };
        Ok(SqliteStore { shared, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Applies [`PRAGMAS`] to each connection the pool opens.
#[derive(Debug)]
struct Pragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(PRAGMAS).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Opens (creating if needed) the database at `url`, brings its schema up to date and
/// returns a pool of configured connections.
///
/// One connection is opened by hand first: a bad path fails here immediately with the
/// driver's message, instead of after the pool's connection timeout.
fn open_pool(url: &str, path: &Path) -> Result<Pool<ConnectionManager<SqliteConnection>>, StoreError> {
    let mut conn = SqliteConnection::establish(url).map_err(|err| StoreError::Database {
        context: format!("opening the database {}", path.display()),
        source: Box::new(err),
    })?;
    conn.batch_execute(PRAGMAS)
        .map_err(|err| db_error(format!("configuring the database {}", path.display()), err))?;
    let applied = conn.run_pending_migrations(MIGRATIONS).map_err(|source| StoreError::Database {
        context: format!("migrating the database {}", path.display()),
        source,
    })?;
    if !applied.is_empty() {
        tracing::info!(path = %path.display(), migrations = applied.len(), "applied database migrations");
    }
    drop(conn);

    Pool::builder()
        .max_size(MAX_CONNECTIONS)
        .min_idle(Some(1))
        // A file on the local disk does not drop connections: r2d2's `SELECT 1` before every
        // checkout would be a second query per request for nothing.
        .test_on_check_out(false)
        .connection_customizer(Box::new(Pragmas))
        .build(ConnectionManager::new(url))
        .map_err(|err| StoreError::Database {
            context: format!("creating the connection pool for {}", path.display()),
            source: Box::new(err),
        })
}

/// Runs `f` in a write transaction, rolled back if it fails.
///
/// `BEGIN IMMEDIATE` takes the write lock up front, so a writer in another process waits out
/// the busy timeout instead of failing on a read-to-write lock upgrade.
fn write_tx<T>(
    conn: &mut Conn,
    context: &'static str,
    f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.immediate_transaction(|conn| f(conn).map_err(TxError::Store)).map_err(|err| err.into_store(context))
}

/// Runs `f` in a read transaction, so several queries see one consistent snapshot.
fn read_tx<T>(
    conn: &mut Conn,
    context: &'static str,
    f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.transaction(|conn| f(conn).map_err(TxError::Store)).map_err(|err| err.into_store(context))
}

/// Nothing to do: `BEGIN IMMEDIATE` already holds the database's only write lock.
fn lock_users(_: &mut Conn) -> Result<(), StoreError> {
    Ok(())
}
