//! Model files written by the tests, and a capture of `tracing` warnings.

#![allow(dead_code)] // Each test binary uses a different part.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use modelforge_testkit::gguf::GgufBuilder;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata};

/// `general.file_type` 3 is `Q4_1`.
pub const FILE_TYPE_Q4_1: u32 = 3;

/// A minimal valid GGUF v3 file: `general.architecture` = `llama`, optionally
/// `general.file_type`, and one F32 tensor `weight` of 8 elements.
pub fn tiny_gguf(file_type: Option<u32>) -> Vec<u8> {
    let mut gguf = GgufBuilder::new().string("general.architecture", "llama");
    if let Some(file_type) = file_type {
        gguf = gguf.u32("general.file_type", file_type);
    }
    gguf.tensor_f32("weight", 8).build()
}

/// A safetensors file: a u64 little-endian header length, the JSON header, 8 bytes of data.
pub fn tiny_safetensors() -> Vec<u8> {
    let header = br#"{"weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(&[0u8; 8]);
    out
}

/// Writes `bytes` to `dir/relative`, creating parent directories.
pub fn write(dir: &Path, relative: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dirs");
    std::fs::write(&path, bytes).expect("write test file");
    path
}

/// Runs `f` and returns its result with every warning logged on this thread meanwhile.
pub fn capture_warnings<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    capture(false, f)
}

/// Runs `f` and returns its result with every event and span field logged on this thread
/// meanwhile, at every level.
pub fn capture_all_logs<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    capture(true, f)
}

thread_local! {
    /// Where this thread's capture goes, and whether it keeps every level.
    static CAPTURE: std::cell::RefCell<Option<(Vec<String>, bool)>> = const { std::cell::RefCell::new(None) };
}

/// One global subscriber that hands each thread's records to that thread's capture. A
/// scoped subscriber per test (`with_default`) loses records now and then: tracing caches
/// whether a callsite is interesting, and a test running at the same time without a
/// subscriber can make it cache "never".
fn capture<T>(everything: bool, f: impl FnOnce() -> T) -> (T, Vec<String>) {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(ThreadCapture).expect("no other global subscriber in tests");
    });
    CAPTURE.with(|c| *c.borrow_mut() = Some((Vec::new(), everything)));
    let result = f();
    let lines = CAPTURE.with(|c| c.borrow_mut().take()).map(|(lines, _)| lines).unwrap_or_default();
    (result, lines)
}

fn keep(level: Level, line: impl FnOnce() -> String) {
    CAPTURE.with(|c| {
        if let Some((lines, everything)) = c.borrow_mut().as_mut()
            && (*everything || level == Level::WARN)
        {
            lines.push(line());
        }
    });
}

struct ThreadCapture;

impl tracing::Subscriber for ThreadCapture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        keep(*attributes.metadata().level(), || {
            let mut line = Fields(format!("span {}: ", attributes.metadata().name()));
            attributes.record(&mut line);
            line.0
        });
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        keep(Level::TRACE, || {
            let mut line = Fields(String::new());
            values.record(&mut line);
            line.0
        });
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        keep(*event.metadata().level(), || {
            let mut line = Fields(String::new());
            event.record(&mut line);
            line.0
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}
