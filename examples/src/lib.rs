//! Shared pieces of the reference tools: where data lives, and the HTTP server.
//!
//! Everything here is assembled from the public API of the ModelForge crates, through the core
//! traits, so it doubles as documentation of how the pieces fit.
#![deny(missing_docs)]

pub mod server;
pub mod setup;

/// The README's Rust examples, compiled by `cargo test` so they cannot fall out of date.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
