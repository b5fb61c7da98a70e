//! Model files: format detection from contents and the metadata a backend needs.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ModelFileError;
use crate::gguf::{GGUF_MAGIC, GgufFile};

/// The on-disk format of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    /// A single GGUF file (llama.cpp's format).
    Gguf,
    /// A safetensors file, or a directory with `config.json` and `.safetensors` weights.
    Safetensors,
}

impl ModelFormat {
    /// Lowercase name: `gguf` or `safetensors`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ModelFormat::Gguf => "gguf",
            ModelFormat::Safetensors => "safetensors",
        }
    }
}

/// What is known about a model before it is loaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The model file or directory.
    pub path: PathBuf,
    /// Its format.
    pub format: ModelFormat,
    /// A display name (`general.name`, else the file name).
    pub name: String,
    /// Architecture, e.g. `llama`.
    pub architecture: Option<String>,
    /// Training context length in tokens.
    pub context_length: Option<u32>,
    /// Quantization, e.g. `Q4_1`, when known.
    pub quantization: Option<String>,
    /// The model's own Jinja chat template.
    pub chat_template: Option<String>,
    /// Total size of the weights in bytes.
    pub size_bytes: u64,
}

/// Detects a model's format from its contents, never its name.
///
/// A directory is safetensors when it holds a `config.json` and at least one `.safetensors`
/// file. A file is GGUF when it starts with the GGUF magic, safetensors when it starts with a
/// little-endian header length followed by a JSON object.
pub fn detect_format(path: impl AsRef<Path>) -> Result<ModelFormat, ModelFileError> {
    let path = path.as_ref();
    let io_err = |source| ModelFileError::Io { path: path.to_owned(), source };
    if path.is_dir() {
        let has_config = path.join("config.json").is_file();
        let has_weights = safetensors_files(path).map_err(io_err)?.next().is_some();
        return if has_config && has_weights {
            Ok(ModelFormat::Safetensors)
        } else {
            Err(ModelFileError::UnknownFormat { path: path.to_owned() })
        };
    }
    let mut file = File::open(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    if size == 0 {
        return Err(ModelFileError::Empty { path: path.to_owned() });
    }
    let mut head = [0u8; 9];
    let n = read_up_to(&mut file, &mut head).map_err(io_err)?;
    if n >= 4 && &head[..4] == GGUF_MAGIC {
        return Ok(ModelFormat::Gguf);
    }
    if n == 9 {
        let header_len = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        if header_len >= 2 && header_len <= size - 8 && head[8] == b'{' {
            return Ok(ModelFormat::Safetensors);
        }
    }
    Err(ModelFileError::UnknownFormat { path: path.to_owned() })
}

/// Detects the format and reads the metadata of a model, validating a GGUF file's structure
/// (header, tensor table, every tensor inside the file).
pub fn inspect(path: impl AsRef<Path>) -> Result<ModelInfo, ModelFileError> {
    let path = path.as_ref();
    match detect_format(path)? {
        ModelFormat::Gguf => {
            let gguf = GgufFile::open(path)?;
            Ok(ModelInfo {
                path: path.to_owned(),
                format: ModelFormat::Gguf,
                name: gguf.get_str("general.name").map_or_else(|| file_stem(path), str::to_owned),
                architecture: gguf.architecture().map(str::to_owned),
                context_length: gguf.context_length().and_then(|n| u32::try_from(n).ok()),
                quantization: gguf.quantization().map(str::to_owned),
                chat_template: gguf.chat_template().map(str::to_owned),
                size_bytes: gguf.file_size,
            })
        }
        ModelFormat::Safetensors => inspect_safetensors(path),
    }
}

fn inspect_safetensors(path: &Path) -> Result<ModelInfo, ModelFileError> {
    let io_err = |source| ModelFileError::Io { path: path.to_owned(), source };
    let dir = if path.is_dir() { path } else { path.parent().unwrap_or(Path::new(".")) };
    let config = read_json(&dir.join("config.json"));
    let tokenizer_config = read_json(&dir.join("tokenizer_config.json"));
    let size_bytes = if path.is_dir() {
        safetensors_files(dir).map_err(io_err)?.filter_map(|p| p.metadata().ok()).map(|m| m.len()).sum()
    } else {
        path.metadata().map_err(io_err)?.len()
    };
    let config_str =
        |key: &str| config.as_ref().and_then(|c| c.get(key)).and_then(|v| v.as_str()).map(str::to_owned);
    Ok(ModelInfo {
        path: path.to_owned(),
        format: ModelFormat::Safetensors,
        name: file_stem(path),
        architecture: config_str("model_type"),
        context_length: config
            .as_ref()
            .and_then(|c| c.get("max_position_embeddings"))
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok()),
        quantization: config_str("torch_dtype").map(|d| d.to_uppercase()),
        chat_template: tokenizer_config
            .as_ref()
            .and_then(|c| c.get("chat_template"))
            .and_then(template_text)
            .or_else(|| std::fs::read_to_string(dir.join("chat_template.jinja")).ok())
            .filter(|t| !t.trim().is_empty()),
        size_bytes,
    })
}

/// A `chat_template` of `tokenizer_config.json`: a string, or a list of named templates of
/// which the one named `default` (else the first) is taken.
fn template_text(value: &serde_json::Value) -> Option<String> {
    if let Some(text) = value.as_str() {
        return Some(text.to_owned());
    }
    let named = value.as_array()?;
    let template = |t: &serde_json::Value| t.get("template")?.as_str().map(str::to_owned);
    named
        .iter()
        .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
        .and_then(template)
        .or_else(|| named.first().and_then(template))
}

fn safetensors_files(dir: &Path) -> std::io::Result<impl Iterator<Item = PathBuf>> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors")))
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn file_stem(path: &Path) -> String {
    path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
