//! The test harness: a fresh store on SQLite (a temporary file) or PostgreSQL (a scratch
//! schema on the local server), raw access to its tables, and token crafting.
// Each test uses a different subset.
#![allow(dead_code)]

use std::path::PathBuf;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use modelforge_core::{Actor, NewUser, SessionStore, StoreError, User, UserRole};
use modelforge_store::{PgStore, SqliteStore, StoreOptions};
use tempfile::TempDir;

/// The signing key of test stores.
pub const SECRET: &[u8] = b"test-secret-0123456789abcdef-0123456789";

/// The PostgreSQL server the tests use; `.ci/run` makes sure it is up.
pub fn postgres_url() -> String {
    std::env::var("MODELFORGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Makes a fresh, empty store.
pub type Factory = fn() -> TestStore;

/// Where a test store's data lives.
enum Location {
    Sqlite { dir: TempDir, path: PathBuf },
    Postgres { url: String, schema: String },
}

/// A fresh store and a way to reach its tables directly.
pub struct TestStore {
    pub store: Box<dyn SessionStore>,
    location: Location,
}

/// A store in a new SQLite file, removed on drop.
pub fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("store.db");
    let store = SqliteStore::open(&path, options()).unwrap();
    TestStore { store: Box::new(store), location: Location::Sqlite { dir, path } }
}

/// A store in a new schema of the local PostgreSQL server, dropped on drop. Panics with a
/// clear message when the server is unreachable: these tests must fail, not skip.
pub fn postgres() -> TestStore {
    let url = postgres_url();
    let store = PgStore::open_scratch(&url, options()).unwrap_or_else(|err| {
        panic!(
            "PostgreSQL is required for these tests but {url} is unusable: {err} ({:?}). Start the \
             server (`.ci/run` does) or point MODELFORGE_TEST_POSTGRES_URL at one.",
            std::error::Error::source(&err).map(ToString::to_string)
        )
    });
    let schema = store.schema().unwrap().to_owned();
    TestStore { store: Box::new(store), location: Location::Postgres { url, schema } }
}

pub fn options() -> StoreOptions {
    StoreOptions::with_secret(SECRET.to_vec())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl TestStore {
    /// Another store over the same data, e.g. after a restart or with other options.
    pub fn reopen(&self, options: StoreOptions) -> Box<dyn SessionStore> {
        match &self.location {
            Location::Sqlite { path, .. } => Box::new(SqliteStore::open(path, options).unwrap()),
            Location::Postgres { url, schema } => {
                Box::new(PgStore::open_in_schema(url, schema, options).unwrap())
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.location, Location::Postgres { .. })
    }

    /// Registers `name` with [`password_of`] as password and returns the user and actor.
    pub fn register(&self, name: &str) -> (User, Actor) {
        let user = self.store.create_user(&new_user(name, &password_of(name))).unwrap();
        let actor = user.actor();
        (user, actor)
    }

    /// Runs `sql` straight on the database, bypassing the store.
    pub fn execute(&self, sql: &str) {
        match &self.location {
            Location::Sqlite { path, .. } => {
                SqliteConnection::establish(path.to_str().unwrap()).unwrap().batch_execute(sql).unwrap()
            }
            Location::Postgres { .. } => self.pg().batch_execute(sql).unwrap(),
        }
    }

    /// `SELECT COUNT(*) FROM {from_where}`, straight from the database.
    pub fn count(&self, from_where: &str) -> i64 {
        let query = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {from_where}"));
        match &self.location {
            Location::Sqlite { path, .. } => {
                let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
                query.get_result::<Count>(&mut conn).unwrap().n
            }
            Location::Postgres { .. } => query.get_result::<Count>(&mut self.pg()).unwrap().n,
        }
    }

    /// Rows in `table`, bypassing the store's scoping.
    pub fn count_rows(&self, table: &str) -> i64 {
        self.count(table)
    }

    fn pg(&self) -> PgConnection {
        let Location::Postgres { url, schema } = &self.location else { unreachable!() };
        let mut conn = PgConnection::establish(url).unwrap();
        conn.batch_execute(&format!("SET search_path TO \"{schema}\"")).unwrap();
        conn
    }
}

pub fn password_of(name: &str) -> String {
    format!("password of {name}")
}

pub fn new_user(name: &str, password: &str) -> NewUser {
    NewUser { username: name.to_owned(), password: password.to_owned(), email: None, role: UserRole::User }
}

/// Unpadded base64url, as JWTs use.
pub fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0_u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Fails unless `result` is [`StoreError::InvalidInput`] naming `field`.
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, field: &str) {
    match result {
        Err(StoreError::InvalidInput { field: found, .. }) => assert_eq!(found, field),
        other => panic!("expected invalid {field}, got {other:?}"),
    }
}

/// Fails unless `result` is [`StoreError::NotFound`] for a `what`.
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound { what: found, .. }) => assert_eq!(found, what),
        other => panic!("expected {what} not found, got {other:?}"),
    }
}

/// Fails unless `result` is [`StoreError::InvalidToken`].
pub fn assert_invalid_token<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::InvalidToken { .. })),
        "expected an invalid token, got {result:?}"
    );
}

/// Fails unless `result` is [`StoreError::PermissionDenied`].
pub fn assert_denied<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(matches!(result, Err(StoreError::PermissionDenied { .. })), "expected a refusal, got {result:?}");
}
