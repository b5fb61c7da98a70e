//! [`PgStore`]: the PostgreSQL implementation of [`SessionStore`](modelforge_core::SessionStore)
//! (all six of its slices), for several server replicas sharing one database.

use std::fmt;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::{Connection, PgConnection, RunQueryDsl};
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
type Conn = PgConnection;
/// The store type the shared store-trait implementations are for.
type Store = PgStore;

/// The schema, compiled into the binary so a store upgrades itself on open.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Connections kept by the pool per store (per server replica).
const MAX_CONNECTIONS: u32 = 16;

/// A [`SessionStore`](modelforge_core::SessionStore) in a PostgreSQL database (or one schema
/// of it), with a connection pool.
///
/// Opening applies pending migrations under an advisory lock, so replicas starting together
/// do not race. Concurrent appends to one session serialize on the session's row; the first
/// registration takes a table lock so exactly one user becomes admin.
pub struct PgStore {
    shared: Shared<PgConnection>,
    url: String,
    schema: Option<String>,
    drop_schema_on_drop: bool,
}

impl PgStore {
    /// Opens the store in the database at `database_url` (e.g.
    /// `postgres://user@127.0.0.1:5432/modelforge`), in the connection's default schema,
    /// applying pending migrations.
    ///
    /// Fails with [`StoreError::InvalidInput`] for a short signing key and with
    /// [`StoreError::Database`] naming the server (without credentials) if it cannot be
    /// reached or migrated.
    pub fn open(database_url: &str, options: StoreOptions) -> Result<PgStore, StoreError> {
        Self::open_with(database_url, None, options, false)
    }

    /// Opens the store inside `schema` (created if missing), so several stores can share one
    /// database. Schema names are 1 to 63 characters of `a-z`, `0-9` and `_`, not starting with
    /// a digit.
    pub fn open_in_schema(
        database_url: &str,
        schema: &str,
        options: StoreOptions,
    ) -> Result<PgStore, StoreError> {
        check_schema_name(schema)?;
        Self::open_with(database_url, Some(schema.to_owned()), options, false)
    }

    /// Opens a store in a new, uniquely named schema (`mf_<uuid>`) that is dropped with all its
    /// data when the store is dropped: for tests and benchmarks that share a server.
    pub fn open_scratch(database_url: &str, options: StoreOptions) -> Result<PgStore, StoreError> {
        let schema = format!("mf_{}", uuid::Uuid::now_v7().simple());
        Self::open_with(database_url, Some(schema), options, true)
    }

    /// The schema the store lives in, if it was given one.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    fn open_with(
        url: &str,
        schema: Option<String>,
        options: StoreOptions,
        drop_schema_on_drop: bool,
    ) -> Result<PgStore, StoreError> {
        let keys = TokenKeys::new(&options)?;
        let location = match &schema {
            Some(schema) => format!("{} (schema {schema})", redact(url)),
            None => redact(url),
        };
        let mut conn = PgConnection::establish(url).map_err(|err| StoreError::Database {
            context: format!("connecting to PostgreSQL at {location}"),
            source: Box::new(err),
        })?;
        if let Some(schema) = &schema {
            conn.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"; {}", search_path(schema)))
                .map_err(|err| db_error(format!("creating the schema of {location}"), err))?;
        }
        migrate(&mut conn, &location)?;
        drop(conn);

        let mut builder = Pool::builder().max_size(MAX_CONNECTIONS).min_idle(Some(1));
        if let Some(schema) = &schema {
            builder = builder.connection_customizer(Box::new(SearchPath(search_path(schema))));
        }
        let pool = builder.build(ConnectionManager::new(url)).map_err(|err| StoreError::Database {
            context: format!("creating the connection pool for {location}"),
            source: Box::new(err),
        })?;
        tracing::debug!(%location, "opened the store");
        let token_states = TokenStateCache::new(options.auth_cache_ttl);
        let shared = Shared { pool, keys, options, location, write_lock: None, token_states };
        Ok(PgStore { shared, url: url.to_owned(), schema, drop_schema_on_drop })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        let (Some(schema), true) = (&self.schema, self.drop_schema_on_drop) else { return };
        let dropped =
            PgConnection::establish(&self.url).map_err(|err| err.to_string()).and_then(|mut conn| {
                conn.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .map_err(|err| err.to_string())
            });
        if let Err(err) = dropped {
            tracing::warn!(schema, error = %err, "could not drop a scratch schema");
        }
    }
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore").field("location", &self.shared.location).finish_non_exhaustive()
    }
}

/// Applies pending migrations, one opener at a time across all replicas.
fn migrate(conn: &mut PgConnection, location: &str) -> Result<(), StoreError> {
    const LOCK: &str = "SELECT pg_advisory_lock(hashtext('modelforge-migrations' || current_schema()))";
    const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtext('modelforge-migrations' || current_schema()))";
    diesel::sql_query(LOCK)
        .execute(conn)
        .map_err(|err| db_error(format!("locking {location} for migration"), err))?;
    let result = conn.run_pending_migrations(MIGRATIONS).map(|applied| applied.len());
    // Unlocked whatever happened; the session ends soon anyway, which also releases it.
    let _ = diesel::sql_query(UNLOCK).execute(conn);
    let applied =
        result.map_err(|source| StoreError::Database { context: format!("migrating {location}"), source })?;
    if applied > 0 {
        tracing::info!(%location, migrations = applied, "applied database migrations");
    }
    Ok(())
}

fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let valid = (1..=63).contains(&schema.len())
        && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(StoreError::InvalidInput {
            field: "schema",
            reason: format!(
                "{schema:?} must be 1 to 63 characters of a-z, 0-9 and _, not starting with a digit"
            ),
        })
    }
}

/// The statement that points a connection at `schema` (a checked name).
fn search_path(schema: &str) -> String {
    format!("SET search_path TO \"{schema}\"")
}

/// The URL without a password, for messages and logs.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://…@{host}"),
        _ => url.to_owned(),
    }
}

/// Points every pooled connection at the store's schema.
#[derive(Debug)]
struct SearchPath(String);

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SearchPath {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&self.0).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Runs `f` in a read-committed write transaction, rolled back if it fails. Row locks taken
/// by the updates serialize the writers that touch the same rows.
fn write_tx<T>(
    conn: &mut Conn,
    context: &'static str,
    f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.transaction(|conn| f(conn).map_err(TxError::Store)).map_err(|err| err.into_store(context))
}

/// Runs `f` in a read-only repeatable-read transaction: one snapshot for all its queries.
fn read_tx<T>(
    conn: &mut Conn,
    context: &'static str,
    f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| f(conn).map_err(TxError::Store))
        .map_err(|err| err.into_store(context))
}

/// Serializes the transactions that count users or admins before changing them, so "the
/// first user becomes admin" and "the last admin stays" hold under concurrency.
fn lock_users(conn: &mut Conn) -> Result<(), StoreError> {
    diesel::sql_query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        .execute(conn)
        .map_err(|err| db_error("locking the users table", err))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_and_redaction() {
        assert!(check_schema_name("mf_0123abcd").is_ok());
        for bad in ["", "1abc", "Upper", "a\"; DROP", &"a".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
        assert_eq!(redact("postgres://me:secret@db:5432/x"), "postgres://…@db:5432/x");
        assert_eq!(redact("postgres://127.0.0.1/test"), "postgres://127.0.0.1/test");
    }
}
