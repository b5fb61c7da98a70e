//! Benchmarks of ModelForge's hot paths live in `benches/`; run them with
//! `cargo bench -p modelforge-benches`. This library is empty.
