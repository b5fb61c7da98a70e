//! [`Shared`]: what both stores hold besides their driver: the pool, the token keys and the
//! policies.

use std::sync::{Mutex, MutexGuard};

use diesel::r2d2::{ConnectionManager, Pool, PooledConnection, R2D2Connection};
use modelforge_core::StoreError;

use crate::jwt::TokenKeys;
use crate::options::StoreOptions;
use crate::token_cache::TokenStateCache;

/// A pooled connection of type `C`.
pub(crate) type Conn<C> = PooledConnection<ConnectionManager<C>>;

/// The state of a store over connections of type `C`.
pub(crate) struct Shared<C: R2D2Connection + 'static> {
    pub pool: Pool<ConnectionManager<C>>,
    pub keys: TokenKeys,
    pub options: StoreOptions,
    /// Where the data lives, for error messages (a path, or a URL without credentials).
    pub location: String,
    /// SQLite admits one writer at a time; writers of this process queue here instead of
    /// spinning in SQLite's busy handler, which is unfair under contention. `None` for
    /// PostgreSQL, which locks rows.
    pub write_lock: Option<Mutex<()>>,
    /// What token checks read about users, for a moment.
    pub token_states: TokenStateCache,
}

impl<C: R2D2Connection + 'static> Shared<C> {
    /// A connection from the pool.
    pub fn conn(&self) -> Result<Conn<C>, StoreError> {
        self.pool.get().map_err(|err| StoreError::Database {
            context: format!("getting a connection to {}", self.location),
            source: Box::new(err),
        })
    }

    /// Taken around every write transaction (a no-op without a write lock).
    pub fn writer(&self) -> Option<MutexGuard<'_, ()>> {
        // A writer that panicked left no half-done transaction behind (it was rolled back),
        // so a poisoned lock is still usable.
        self.write_lock.as_ref().map(|lock| lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}
