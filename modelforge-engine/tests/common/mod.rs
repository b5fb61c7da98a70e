//! Helpers shared by this crate's integration tests.
#![allow(dead_code)]

pub mod contract;
pub mod export;
