//! Format detection and GGUF validation on files written by the test.

use std::io::Write;
use std::path::Path;

use modelforge_core::gguf::GgufFile;
use modelforge_core::{ModelFileError, ModelFormat, detect_format, inspect};
use modelforge_testkit::gguf::GgufBuilder;

/// A minimal GGUF v3 file: two metadata entries and one F32 tensor of 8 elements.
fn tiny_gguf() -> Vec<u8> {
    GgufBuilder::new()
        .string("general.architecture", "llama")
        .u32("llama.context_length", 2048)
        .tensor_f32("weight", 8)
        .build()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
    path
}

#[test]
fn a_valid_gguf_is_detected_and_its_metadata_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "model.bin", &tiny_gguf());
    assert_eq!(detect_format(&path).unwrap(), ModelFormat::Gguf);
    let info = inspect(&path).unwrap();
    assert_eq!(info.architecture.as_deref(), Some("llama"));
    assert_eq!(info.context_length, Some(2048));
    let gguf = GgufFile::open(&path).unwrap();
    assert_eq!(gguf.tensors.len(), 1);
    assert_eq!(gguf.tensors[0].size, 32);
}

#[test]
fn every_truncation_of_a_gguf_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let full = tiny_gguf();
    for len in 1..full.len() {
        let path = write(dir.path(), "cut.gguf", &full[..len]);
        match inspect(&path) {
            Err(ModelFileError::Truncated { .. } | ModelFileError::UnknownFormat { .. }) => {}
            other => panic!("cut at {len} bytes: expected a truncation error, got {other:?}"),
        }
    }
}

#[test]
fn empty_and_text_files_are_refused_whatever_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.gguf", b"");
    assert!(matches!(inspect(&empty), Err(ModelFileError::Empty { .. })));
    let text = write(dir.path(), "notes.gguf", b"just some text, not a model\n");
    let err = inspect(&text).unwrap_err();
    assert!(matches!(err, ModelFileError::UnknownFormat { .. }), "{err:?}");
    assert!(err.to_string().contains("not a model file"));
}

#[test]
fn a_huge_declared_length_does_not_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(&u64::MAX.to_le_bytes()); // key length
    let path = write(dir.path(), "evil.gguf", &bytes);
    assert!(matches!(inspect(&path), Err(ModelFileError::Truncated { .. })));
}

#[test]
fn safetensors_files_and_directories_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let header = br#"{"__metadata__":{}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    let file = write(dir.path(), "weights.safetensors", &bytes);
    assert_eq!(detect_format(&file).unwrap(), ModelFormat::Safetensors);
    // A directory needs config.json beside the weights.
    assert!(detect_format(dir.path()).is_err());
    write(dir.path(), "config.json", br#"{"model_type":"llama","max_position_embeddings":8192}"#);
    let info = inspect(dir.path()).unwrap();
    assert_eq!(info.format, ModelFormat::Safetensors);
    assert_eq!(info.architecture.as_deref(), Some("llama"));
    assert_eq!(info.context_length, Some(8192));
}

/// A safetensors model's chat template comes from `tokenizer_config.json` (a string, or named
/// templates of which `default` is taken), else from `chat_template.jinja`.
#[test]
fn a_safetensors_chat_template_comes_from_tokenizer_config_or_chat_template_jinja() {
    let dir = tempfile::tempdir().unwrap();
    let header = br#"{"__metadata__":{}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    write(dir.path(), "model.safetensors", &bytes);
    write(dir.path(), "config.json", br#"{"model_type":"llama"}"#);
    assert_eq!(inspect(dir.path()).unwrap().chat_template, None);
    write(dir.path(), "chat_template.jinja", b"{{ messages }}");
    assert_eq!(inspect(dir.path()).unwrap().chat_template.as_deref(), Some("{{ messages }}"));
    write(
        dir.path(),
        "tokenizer_config.json",
        br#"{"chat_template":[{"name":"tool_use","template":"T"},{"name":"default","template":"D"}]}"#,
    );
    assert_eq!(inspect(dir.path()).unwrap().chat_template.as_deref(), Some("D"));
    write(dir.path(), "tokenizer_config.json", br#"{"chat_template":"S"}"#);
    assert_eq!(inspect(dir.path()).unwrap().chat_template.as_deref(), Some("S"));
}
