//! Shared pieces of the reference tools: where data lives and how one chat turn runs.
//!
//! Everything here is assembled from the public API of the ModelForge crates, through the core
//! traits, so it doubles as documentation of how the pieces fit.
#![deny(missing_docs)]

pub mod server;
pub mod setup;
pub mod turn;
