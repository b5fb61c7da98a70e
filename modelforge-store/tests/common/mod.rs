//! Helpers shared by the integration tests: a store in a temporary directory, users, raw
//! access to the database file, and token crafting.
// Each test file uses a different subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use modelforge_core::{Actor, NewUser, SessionStore, User, UserRole};
use modelforge_store::{SqliteStore, StoreOptions};
use tempfile::TempDir;

/// The signing key of test stores.
pub const SECRET: &[u8] = b"test-secret-0123456789abcdef-0123456789";

/// A store in its own temporary directory, removed on drop.
pub struct TestStore {
    pub store: SqliteStore,
    pub dir: TempDir,
}

impl TestStore {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = open_at(&db_path(dir.path()));
        Self { store, dir }
    }

    pub fn db_path(&self) -> PathBuf {
        db_path(self.dir.path())
    }

    /// Registers `name` with [`password_of`] as password and returns the user and actor.
    pub fn register(&self, name: &str) -> (User, Actor) {
        let user = self.store.create_user(&new_user(name, &password_of(name))).unwrap();
        let actor = user.actor();
        (user, actor)
    }

    /// Rows in `table`, read straight from the file, bypassing the store's scoping.
    pub fn count_rows(&self, table: &str) -> i64 {
        count_rows(&self.db_path(), table)
    }
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("data").join("store.db")
}

pub fn open_at(path: &Path) -> SqliteStore {
    SqliteStore::open(path, StoreOptions::with_secret(SECRET.to_vec())).unwrap()
}

pub fn password_of(name: &str) -> String {
    format!("password of {name}")
}

pub fn new_user(name: &str, password: &str) -> NewUser {
    NewUser { username: name.to_owned(), password: password.to_owned(), email: None, role: UserRole::User }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A plain connection to the file, bypassing the store.
pub fn raw_connection(path: &Path) -> SqliteConnection {
    SqliteConnection::establish(path.to_str().unwrap()).unwrap()
}

pub fn count_rows(path: &Path, table: &str) -> i64 {
    let mut conn = raw_connection(path);
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}")).get_result::<Count>(&mut conn).unwrap().n
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
