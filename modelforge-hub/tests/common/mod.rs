//! Model files written by the tests, and a capture of `tracing` warnings.

#![allow(dead_code)] // Each test binary uses a different part.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata};

/// `general.file_type` 3 is `Q4_1`.
pub const FILE_TYPE_Q4_1: u32 = 3;

/// A minimal valid GGUF v3 file: `general.architecture` = `llama`, optionally
/// `general.file_type`, and one F32 tensor `weight` of 8 elements.
pub fn tiny_gguf(file_type: Option<u32>) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes()); // tensors
    out.extend_from_slice(&(1 + u64::from(file_type.is_some())).to_le_bytes()); // metadata entries
    string(&mut out, "general.architecture");
    out.extend_from_slice(&8u32.to_le_bytes()); // string
    string(&mut out, "llama");
    if let Some(file_type) = file_type {
        string(&mut out, "general.file_type");
        out.extend_from_slice(&4u32.to_le_bytes()); // u32
        out.extend_from_slice(&file_type.to_le_bytes());
    }
    string(&mut out, "weight");
    out.extend_from_slice(&1u32.to_le_bytes()); // n_dims
    out.extend_from_slice(&8u64.to_le_bytes()); // dim
    out.extend_from_slice(&0u32.to_le_bytes()); // F32
    out.extend_from_slice(&0u64.to_le_bytes()); // offset
    while out.len() % 32 != 0 {
        out.push(0);
    }
    out.extend_from_slice(&[0u8; 32]);
    out
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
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let subscriber = WarningCapture { warnings: Arc::clone(&warnings) };
    let result = tracing::subscriber::with_default(subscriber, f);
    let warnings = warnings.lock().expect("not poisoned").clone();
    (result, warnings)
}

struct WarningCapture {
    warnings: Arc<Mutex<Vec<String>>>,
}

impl tracing::Subscriber for WarningCapture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if *event.metadata().level() == Level::WARN {
            let mut line = Fields(String::new());
            event.record(&mut line);
            self.warnings.lock().expect("not poisoned").push(line.0);
        }
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
