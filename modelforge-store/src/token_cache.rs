//! What access-token checks read about a user, kept for a moment.
//!
//! Every authenticated request checks that the token's user still exists, is enabled and has
//! not revoked the token, and reads the current role. That is one query per request, the
//! largest part of a cheap route like the session list. A client making several requests a
//! second needs the answer only once: entries live for [`StoreOptions::auth_cache_ttl`]
//! (one second by default).
//!
//! Changes made through this store (disable, role, password, revoke, delete) forget the
//! user's entry at once, so this process never honours a revoked token. Another process on
//! the same database (a second server replica, the CLI) sees the change when the entry
//! expires: a revocation takes up to the TTL to reach the other replicas. A zero TTL turns
//! the cache off.
//!
//! [`StoreOptions::auth_cache_ttl`]: crate::StoreOptions::auth_cache_ttl

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use modelforge_core::{UserId, UserRole};

/// Above this many users the cache starts again empty, which bounds its memory.
const MAX_ENTRIES: usize = 10_000;

/// A user's state as token checks need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TokenState {
    pub role: UserRole,
    pub disabled: bool,
    pub token_version: i64,
}

/// Recently read [`TokenState`]s by user.
pub(crate) struct TokenStateCache {
    ttl: Duration,
    entries: Mutex<HashMap<UserId, (Instant, TokenState)>>,
}

impl TokenStateCache {
    /// A cache whose entries live for `ttl`; zero keeps nothing.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::default() }
    }

    /// The user's state if it was read less than the TTL ago.
    pub(crate) fn get(&self, user: UserId) -> Option<TokenState> {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.get(&user).filter(|(read, _)| read.elapsed() < self.ttl).map(|(_, state)| *state)
    }

    /// Remembers what was just read from the database.
    pub(crate) fn put(&self, user: UserId, state: TokenState) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(user, (Instant::now(), state));
    }

    /// Forgets the user: their state changed.
    pub(crate) fn forget(&self, user: UserId) {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(version: i64) -> TokenState {
        TokenState { role: UserRole::User, disabled: false, token_version: version }
    }

    #[test]
    fn entries_are_served_until_forgotten() {
        let cache = TokenStateCache::new(Duration::from_secs(60));
        let user = UserId::new();
        assert_eq!(cache.get(user), None);
        cache.put(user, state(3));
        assert_eq!(cache.get(user), Some(state(3)));
        cache.forget(user);
        assert_eq!(cache.get(user), None);
    }

    #[test]
    fn entries_expire_and_a_zero_ttl_keeps_nothing() {
        let cache = TokenStateCache::new(Duration::from_millis(1));
        let user = UserId::new();
        cache.put(user, state(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.get(user), None);

        let off = TokenStateCache::new(Duration::ZERO);
        off.put(user, state(1));
        assert_eq!(off.get(user), None);
    }
}
