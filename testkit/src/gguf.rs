//! Tiny GGUF files built in memory, for tests of format detection, GGUF validation and the
//! model catalogue.
//!
//! Real models are hundreds of megabytes; a test that only reads headers needs a file of a
//! few hundred bytes whose every field it controls. [`GgufBuilder`] writes GGUF v3 in the
//! order the format lays it out: header, metadata, tensor table, padding to the 32-byte
//! default alignment, then the zero-filled tensor data.
//!
//! ```
//! use modelforge_testkit::gguf::GgufBuilder;
//!
//! let bytes = GgufBuilder::new()
//!     .string("general.architecture", "llama")
//!     .u32("llama.context_length", 2048)
//!     .tensor_f32("weight", 8)
//!     .build();
//! assert_eq!(&bytes[..4], b"GGUF");
//! assert_eq!(bytes.len() % 32, 0);
//! ```

/// The alignment of the tensor data. Writing `general.alignment` is not supported, so files
/// always use the format's default.
const ALIGNMENT: usize = 32;

/// GGUF metadata value types (the format's numbering).
const TYPE_U32: u32 = 4;
const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;

/// The ggml type of an `f32` tensor.
const GGML_TYPE_F32: u32 = 0;

/// One metadata value the builder can write.
#[derive(Clone, Debug)]
enum Value {
    U32(u32),
    String(String),
    StringArray(Vec<String>),
}

/// Builds a small, valid GGUF v3 file. Metadata and tensors are written in the order they
/// were added, so the bytes are fully determined by the calls.
#[derive(Clone, Debug, Default)]
pub struct GgufBuilder {
    metadata: Vec<(String, Value)>,
    /// Name and element count of each one-dimensional `f32` tensor.
    tensors: Vec<(String, u64)>,
}

impl GgufBuilder {
    /// An empty file: no metadata, no tensors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a string metadata entry, e.g. `general.architecture` = `llama`.
    pub fn string(self, key: &str, value: &str) -> Self {
        self.entry(key, Value::String(value.to_owned()))
    }

    /// Adds a `u32` metadata entry, e.g. `llama.context_length` or `general.file_type`.
    pub fn u32(self, key: &str, value: u32) -> Self {
        self.entry(key, Value::U32(value))
    }

    /// Adds an array-of-strings metadata entry, e.g. `tokenizer.ggml.tokens`.
    pub fn string_array(self, key: &str, values: &[&str]) -> Self {
        self.entry(key, Value::StringArray(values.iter().map(|v| (*v).to_owned()).collect()))
    }

    /// Adds a one-dimensional `f32` tensor of `elements` zeros.
    pub fn tensor_f32(mut self, name: &str, elements: u64) -> Self {
        self.tensors.push((name.to_owned(), elements));
        self
    }

    /// The file's bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_string(&mut out, key);
            put_value(&mut out, value);
        }
        // Each tensor's offset is relative to the data section and aligned within it.
        let mut offset = 0u64;
        for (name, elements) in &self.tensors {
            put_string(&mut out, name);
            out.extend_from_slice(&1u32.to_le_bytes()); // dimensions
            out.extend_from_slice(&elements.to_le_bytes());
            out.extend_from_slice(&GGML_TYPE_F32.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset += aligned(elements * 4);
        }
        out.resize(out.len().next_multiple_of(ALIGNMENT), 0);
        out.resize(out.len() + offset as usize, 0);
        out
    }

    fn entry(mut self, key: &str, value: Value) -> Self {
        self.metadata.push((key.to_owned(), value));
        self
    }
}

/// Copies the GGUF file `src` to `dst` without the metadata entries named in `keys` (e.g.
/// `tokenizer.chat_template`, to try a real model as a file that lacks it). The tensor
/// table and data are copied unchanged, the data re-aligned after the shorter header.
/// Returns how many entries were dropped.
pub fn copy_without_keys(
    src: &std::path::Path,
    dst: &std::path::Path,
    keys: &[&str],
) -> std::io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let parsed = modelforge_core::gguf::GgufFile::open(src)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let alignment = parsed.get_u64("general.alignment").unwrap_or(ALIGNMENT as u64);
    let mut file = std::io::BufReader::new(std::fs::File::open(src)?);
    let mut header = vec![0u8; parsed.data_offset as usize];
    file.read_exact(&mut header)?;
    if parsed.version < 2 {
        return Err(std::io::Error::other("GGUF v1 files are not supported"));
    }
    let mut pos = 24usize;
    let u32_at = |pos: usize| u32::from_le_bytes(header[pos..pos + 4].try_into().expect("4 bytes"));
    let u64_at = |pos: usize| u64::from_le_bytes(header[pos..pos + 8].try_into().expect("8 bytes"));
    let kv_count = u64_at(16);
    // The end of a value of `value_type` starting at `pos`.
    fn skip(header: &[u8], pos: usize, value_type: u32) -> usize {
        let u32_at = |pos: usize| u32::from_le_bytes(header[pos..pos + 4].try_into().expect("4 bytes"));
        let u64_at = |pos: usize| u64::from_le_bytes(header[pos..pos + 8].try_into().expect("8 bytes"));
        match value_type {
            0 | 1 | 7 => pos + 1,
            2 | 3 => pos + 2,
            4..=6 => pos + 4,
            10..=12 => pos + 8,
            8 => pos + 8 + u64_at(pos) as usize,
            9 => {
                let item_type = u32_at(pos);
                let n = u64_at(pos + 4);
                (0..n).fold(pos + 12, |at, _| skip(header, at, item_type))
            }
            other => panic!("unknown GGUF value type {other}"),
        }
    }
    let mut kept = Vec::new();
    let mut dropped = 0;
    for _ in 0..kv_count {
        let start = pos;
        let key_len = u64_at(pos) as usize;
        let key = String::from_utf8_lossy(&header[pos + 8..pos + 8 + key_len]).into_owned();
        let value_type = u32_at(pos + 8 + key_len);
        pos = skip(&header, pos + 12 + key_len, value_type);
        if keys.contains(&key.as_str()) {
            dropped += 1;
        } else {
            kept.extend_from_slice(&header[start..pos]);
        }
    }
    // The tensor table ends where the padding before the data begins: walk it.
    let mut table_end = pos;
    for _ in 0..u64_at(8) {
        let name_len = u64_at(table_end) as usize;
        let n_dims = u32_at(table_end + 8 + name_len) as usize;
        table_end += 8 + name_len + 4 + 8 * n_dims + 4 + 8;
    }
    let mut out = header[..24].to_vec();
    out[16..24].copy_from_slice(&(kv_count - dropped as u64).to_le_bytes());
    out.extend_from_slice(&kept);
    out.extend_from_slice(&header[pos..table_end]);
    out.resize(out.len().next_multiple_of(alignment as usize), 0);
    let mut writer = std::io::BufWriter::new(std::fs::File::create(dst)?);
    writer.write_all(&out)?;
    file.seek(SeekFrom::Start(parsed.data_offset))?;
    std::io::copy(&mut file, &mut writer)?;
    writer.flush()?;
    Ok(dropped)
}

fn aligned(size: u64) -> u64 {
    size.next_multiple_of(ALIGNMENT as u64)
}

/// A GGUF string: its length as a `u64`, then its bytes.
fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A value's type, then the value.
fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::U32(v) => {
            out.extend_from_slice(&TYPE_U32.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::String(s) => {
            out.extend_from_slice(&TYPE_STRING.to_le_bytes());
            put_string(out, s);
        }
        Value::StringArray(items) => {
            out.extend_from_slice(&TYPE_ARRAY.to_le_bytes());
            out.extend_from_slice(&TYPE_STRING.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                put_string(out, item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use modelforge_core::gguf::{GgufFile, GgufValue};

    use super::GgufBuilder;

    /// Writes `bytes` to a file of this process and test, and parses it with the core's reader.
    fn parse(name: &str, bytes: &[u8]) -> GgufFile {
        let path =
            std::env::temp_dir().join(format!("modelforge-testkit-{}-{name}.gguf", std::process::id()));
        std::fs::write(&path, bytes).expect("write the test file");
        let parsed = GgufFile::open(&path);
        let _ = std::fs::remove_file(&path);
        parsed.expect("the built file is valid GGUF")
    }

    #[test]
    fn the_core_reader_reads_back_what_was_built() {
        let bytes = GgufBuilder::new()
            .string("general.architecture", "llama")
            .u32("llama.context_length", 2048)
            .string_array("tokenizer.ggml.tokens", &["<s>", "hi"])
            .tensor_f32("a", 3)
            .tensor_f32("b", 8)
            .build();
        let gguf = parse("roundtrip", &bytes);
        assert_eq!(gguf.version, 3);
        assert_eq!(gguf.architecture(), Some("llama"));
        assert_eq!(gguf.context_length(), Some(2048));
        let tokens = GgufValue::Array(vec![GgufValue::String("<s>".into()), GgufValue::String("hi".into())]);
        assert_eq!(gguf.metadata["tokenizer.ggml.tokens"], tokens);
        let tensors: Vec<_> = gguf.tensors.iter().map(|t| (t.name.as_str(), t.offset, t.size)).collect();
        // `a` takes 12 bytes, padded to 32 so `b` starts aligned.
        assert_eq!(tensors, [("a", 0, 12), ("b", 32, 32)]);
        assert_eq!(gguf.data_offset % 32, 0);
        assert_eq!(bytes.len() as u64, gguf.data_offset + 64);
    }

    #[test]
    fn a_copy_without_a_key_keeps_everything_else() {
        let dir = std::env::temp_dir().join(format!("modelforge-testkit-{}-strip", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("src.gguf");
        let bytes = GgufBuilder::new()
            .string("general.architecture", "llama")
            .string("tokenizer.chat_template", "{{ messages }}")
            .string_array("tokenizer.ggml.tokens", &["<s>", "hi"])
            .tensor_f32("a", 3)
            .tensor_f32("b", 8)
            .build();
        std::fs::write(&src, &bytes).unwrap();
        let dst = dir.join("dst.gguf");
        assert_eq!(super::copy_without_keys(&src, &dst, &["tokenizer.chat_template"]).unwrap(), 1);
        let copy = GgufFile::open(&dst).unwrap();
        let original = GgufFile::open(&src).unwrap();
        assert_eq!(copy.chat_template(), None);
        let mut expected = original.metadata.clone();
        expected.remove("tokenizer.chat_template");
        assert_eq!(copy.metadata, expected);
        assert_eq!(copy.tensors, original.tensors);
        let data = |path: &std::path::Path, at: u64| std::fs::read(path).unwrap()[at as usize..].to_vec();
        assert_eq!(data(&dst, copy.data_offset), data(&src, original.data_offset));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_without_tensors_is_only_padded_metadata() {
        let bytes = GgufBuilder::new().string("general.name", "tiny").build();
        // 24 bytes of header, 8 + 12 of key, 4 of type, 8 + 4 of value: 60, padded to 64.
        assert_eq!(bytes.len(), 64);
        assert_eq!(parse("no-tensors", &bytes).get_str("general.name"), Some("tiny"));
    }
}
