//! Download throughput of the Hub client against `curl` on the same URL.
//!
//! A 100 MB file is served by the local stand-in for the Hub (`modelforge_testkit::hub_server`)
//! on 127.0.0.1 and fetched, in alternation, by `curl -sSL -o /dev/null` (the reference: no
//! disk, no hash), by `curl -sSL -o FILE` (with a disk write), and by `HfHub::download` into a
//! fresh cache (disk write and SHA-256 verification). The figure is the median of the runs,
//! as MB/s and as a ratio to curl. Run with `cargo bench -p modelforge-benches --bench download`;
//! `MODELFORGE_BENCH_DIR=/dev/shm` puts the written files on tmpfs, to take the disk out of the
//! comparison.
#![allow(missing_docs)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use modelforge_core::{CancelToken, ModelHub};
use modelforge_hub::{HfHub, HfHubOptions};
use modelforge_testkit::hub_server::{HubFile, HubRepo, HubServer};

const SIZE: usize = 100_000_000;
const RUNS: usize = 7;
const REPO: &str = "bench/big";
const FILE: &str = "big.bin";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list of tests; there are none.
    }
    // Incompressible, deterministic content.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let content: Vec<u8> = (0..SIZE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let server = HubServer::with_repos(vec![HubRepo {
        id: REPO.into(),
        tags: vec![],
        downloads: 0,
        likes: 0,
        gated: false,
        files: vec![HubFile::lfs(FILE, Arc::new(content))],
    }]);
    let url = format!("{}/{REPO}/resolve/main/{FILE}", server.url());
    let scratch = match std::env::var_os("MODELFORGE_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .expect("a temp dir");
    let curl_file = scratch.path().join("curl.bin");

    let (mut null, mut disk, mut ours) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        null.push(time(|| curl(&url, "/dev/null")));
        disk.push(time(|| curl(&url, curl_file.to_str().expect("UTF-8 path"))));
        let cache = tempfile::tempdir_in(scratch.path()).expect("a temp dir");
        let options = HfHubOptions {
            endpoint: server.url(),
            cache_dir: cache.path().to_owned(),
            ..HfHubOptions::default()
        };
        let hub = HfHub::new(options);
        ours.push(time(|| {
            hub.download(REPO, FILE, &mut |_| {}, &CancelToken::new()).expect("download");
        }));
    }
    let mbps = |runs: &mut Vec<Duration>| {
        runs.sort();
        SIZE as f64 / 1e6 / runs[runs.len() / 2].as_secs_f64()
    };
    let (null, disk, ours) = (mbps(&mut null), mbps(&mut disk), mbps(&mut ours));
    println!("100 MB over loopback, median of {RUNS} runs, files written under {}", scratch.path().display());
    println!("  curl -o /dev/null             {null:>7.0} MB/s  1.00x");
    println!("  curl -o FILE                  {disk:>7.0} MB/s  {:.2}x", disk / null);
    println!("  HfHub::download (sha256+disk) {ours:>7.0} MB/s  {:.2}x", ours / null);
}

fn curl(url: &str, output: &str) {
    let status = Command::new("curl").args(["-sSL", "-o", output, url]).status().expect("curl runs");
    assert!(status.success(), "curl failed: {status}");
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}
