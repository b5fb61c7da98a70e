//! The queries and the implementations of the [`SessionStore`](modelforge_core::SessionStore)
//! slices (in `api/`, one file per trait), written once and compiled once per backend.
//!
//! Each backend module (`sqlite.rs`, `postgres.rs`) includes this directory as its own
//! `queries` module (`#[path = "queries/mod.rs"]`) after defining the few things that differ:
//! `Conn` (the diesel connection type), `Store` (the public store type, holding a
//! [`Shared`](crate::db::pool::Shared)), `write_tx` and `read_tx` (how a transaction starts),
//! and `lock_users` (how "the first user becomes admin" stays true under concurrent
//! registrations). Everything here is plain diesel on a concrete connection, so it is checked
//! by the compiler for each database without generic bounds; the logic both backends must
//! agree on (input rules, passwords, tokens, permissions) lives outside, in one copy.

use super::{Conn, Store, lock_users, read_tx, write_tx};

mod api;
mod api_keys;
mod memories;
mod messages;
mod sessions;
mod settings;
mod summaries;
mod tokens;
mod transfer;
mod users;
