//! Opening the database file: pragmas, migrations and the connection pool.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::{Connection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use modelforge_core::StoreError;

use super::errors::db_error;

/// The schema, compiled into the binary so a store upgrades itself on open.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Connections kept by the pool. SQLite allows one writer at a time, so more connections
/// only help concurrent readers.
const MAX_CONNECTIONS: u32 = 8;

/// Set on every connection: wait up to 5 s for a lock instead of failing at once, let
/// readers run beside the writer (WAL), and enforce the `ON DELETE` rules of the schema.
const PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;";

pub(super) type SqlitePool = Pool<ConnectionManager<SqliteConnection>>;

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
pub(super) fn open_pool(url: &str, path: &Path) -> Result<SqlitePool, StoreError> {
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
        .connection_customizer(Box::new(Pragmas))
        .build(ConnectionManager::new(url))
        .map_err(|err| StoreError::Database {
            context: format!("creating the connection pool for {}", path.display()),
            source: Box::new(err),
        })
}
