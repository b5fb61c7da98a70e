//! A small, strict reader of GGUF headers.
//!
//! llama.cpp trusts the file it maps: a truncated download or a tensor table pointing past the
//! end of the file can abort the process. [`GgufFile::open`] reads the header, every metadata
//! entry and the tensor table, and checks that each tensor's data lies inside the file, so a
//! bad file becomes a clear [`ModelFileError`] before it reaches native code.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::ModelFileError;

/// The four bytes every GGUF file starts with.
pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// Alignment of the tensor data section when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum GgufValue {
    /// Any unsigned integer type.
    Uint(u64),
    /// Any signed integer type.
    Int(i64),
    /// `f32` or `f64`.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string (invalid sequences replaced).
    String(String),
    /// An array of values.
    Array(Vec<GgufValue>),
}

impl GgufValue {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::Uint(v) => Some(v),
            GgufValue::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }
}

/// Where one tensor lives in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GgufTensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, innermost first.
    pub dims: Vec<u64>,
    /// ggml type id.
    pub ggml_type: u32,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    /// Size of the data in bytes.
    pub size: u64,
}

/// A parsed and validated GGUF header.
#[derive(Clone, Debug)]
pub struct GgufFile {
    /// The file that was read.
    pub path: PathBuf,
    /// Format version (1, 2 or 3).
    pub version: u32,
    /// Metadata entries by key.
    pub metadata: BTreeMap<String, GgufValue>,
    /// The tensor table.
    pub tensors: Vec<GgufTensorInfo>,
    /// Absolute offset of the tensor data section.
    pub data_offset: u64,
    /// Size of the whole file.
    pub file_size: u64,
}

impl GgufFile {
    /// Reads and validates the GGUF file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ModelFileError> {
        let path = path.as_ref();
        let io_err = |source| ModelFileError::Io { path: path.to_owned(), source };
        let file = File::open(path).map_err(io_err)?;
        let file_size = file.metadata().map_err(io_err)?.len();
        if file_size == 0 {
            return Err(ModelFileError::Empty { path: path.to_owned() });
        }
        let mut reader = Reader { inner: BufReader::new(file), pos: 0, file_size, path };
        reader.parse()
    }

    /// A metadata string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(GgufValue::as_str)
    }

    /// A metadata unsigned integer.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.metadata.get(key).and_then(GgufValue::as_u64)
    }

    /// `general.architecture`, e.g. `llama`.
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// The training context length, `{arch}.context_length`.
    pub fn context_length(&self) -> Option<u64> {
        self.get_u64(&format!("{}.context_length", self.architecture()?))
    }

    /// The Jinja chat template, `tokenizer.chat_template`.
    pub fn chat_template(&self) -> Option<&str> {
        self.get_str("tokenizer.chat_template")
    }

    /// The quantization named by `general.file_type`, e.g. `Q4_1`.
    pub fn quantization(&self) -> Option<&'static str> {
        file_type_name(self.get_u64("general.file_type")?)
    }
}

/// The name of a llama.cpp `general.file_type` value.
pub fn file_type_name(file_type: u64) -> Option<&'static str> {
    Some(match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => return None,
    })
}

/// `(elements per block, bytes per block)` of a ggml tensor type.
fn ggml_block_layout(ggml_type: u32) -> Option<(u64, u64)> {
    Some(match ggml_type {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        16 => (256, 66),  // IQ2_XXS
        17 => (256, 74),  // IQ2_XS
        18 => (256, 98),  // IQ3_XXS
        19 => (256, 50),  // IQ1_S
        20 => (32, 18),   // IQ4_NL
        21 => (256, 110), // IQ3_S
        22 => (256, 82),  // IQ2_S
        23 => (256, 136), // IQ4_XS
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        29 => (256, 56),  // IQ1_M
        30 => (1, 2),     // BF16
        34 => (256, 54),  // TQ1_0
        35 => (256, 66),  // TQ2_0
        39 => (32, 17),   // MXFP4
        _ => return None,
    })
}

struct Reader<'a> {
    inner: BufReader<File>,
    pos: u64,
    file_size: u64,
    path: &'a Path,
}

impl Reader<'_> {
    fn truncated(&self, what: &str) -> ModelFileError {
        ModelFileError::Truncated {
            path: self.path.to_owned(),
            detail: format!("the file ends ({} bytes) while reading {what}", self.file_size),
        }
    }

    fn malformed(&self, detail: String) -> ModelFileError {
        ModelFileError::Malformed { path: self.path.to_owned(), detail }
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ModelFileError> {
        let mut buf = [0u8; N];
        self.inner.read_exact(&mut buf).map_err(|_| self.truncated(what))?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u32(&mut self, what: &str) -> Result<u32, ModelFileError> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, ModelFileError> {
        Ok(u64::from_le_bytes(self.bytes(what)?))
    }

    /// A count or length: it must fit in what is left of the file, so a corrupt length can
    /// never make us allocate gigabytes.
    fn len(&mut self, version: u32, what: &str, min_item_size: u64) -> Result<u64, ModelFileError> {
        let n = if version == 1 { u64::from(self.u32(what)?) } else { self.u64(what)? };
        let remaining = self.file_size.saturating_sub(self.pos);
        if n.saturating_mul(min_item_size) > remaining {
            return Err(self.truncated(&format!("{what} ({n} items do not fit in the file)")));
        }
        Ok(n)
    }

    fn string(&mut self, version: u32, what: &str) -> Result<String, ModelFileError> {
        let len = self.len(version, what, 1)?;
        let mut buf = vec![0u8; len as usize];
        self.inner.read_exact(&mut buf).map_err(|_| self.truncated(what))?;
        self.pos += len;
        Ok(String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn value(&mut self, version: u32, value_type: u32, key: &str) -> Result<GgufValue, ModelFileError> {
        Ok(match value_type {
            0 => GgufValue::Uint(u64::from(self.bytes::<1>(key)?[0])),
            1 => GgufValue::Int(i64::from(self.bytes::<1>(key)?[0] as i8)),
            2 => GgufValue::Uint(u64::from(u16::from_le_bytes(self.bytes(key)?))),
            3 => GgufValue::Int(i64::from(i16::from_le_bytes(self.bytes(key)?))),
            4 => GgufValue::Uint(u64::from(self.u32(key)?)),
            5 => GgufValue::Int(i64::from(i32::from_le_bytes(self.bytes(key)?))),
            6 => GgufValue::Float(f64::from(f32::from_le_bytes(self.bytes(key)?))),
            7 => GgufValue::Bool(self.bytes::<1>(key)?[0] != 0),
            8 => GgufValue::String(self.string(version, key)?),
            9 => {
                let item_type = self.u32(key)?;
                let n = self.len(version, key, 1)?;
                let mut items = Vec::with_capacity(n.min(1 << 20) as usize);
                for _ in 0..n {
                    items.push(self.value(version, item_type, key)?);
                }
                GgufValue::Array(items)
            }
            10 => GgufValue::Uint(self.u64(key)?),
            11 => GgufValue::Int(i64::from_le_bytes(self.bytes(key)?)),
            12 => GgufValue::Float(f64::from_le_bytes(self.bytes(key)?)),
            other => return Err(self.malformed(format!("metadata `{key}` has unknown value type {other}"))),
        })
    }

    fn parse(&mut self) -> Result<GgufFile, ModelFileError> {
        let magic: [u8; 4] = self.bytes("the GGUF magic")?;
        if &magic != GGUF_MAGIC {
            return Err(ModelFileError::UnknownFormat { path: self.path.to_owned() });
        }
        let version = self.u32("the GGUF version")?;
        if !(1..=3).contains(&version) {
            return Err(self.malformed(format!("unsupported GGUF version {version}")));
        }
        // A tensor entry takes at least 24 bytes, a metadata entry at least 12.
        let tensor_count = self.len(version, "the tensor count", 24)?;
        let kv_count = self.len(version, "the metadata count", 12)?;

        let mut metadata = BTreeMap::new();
        for _ in 0..kv_count {
            let key = self.string(version, "a metadata key")?;
            let value_type = self.u32(&key)?;
            let value = self.value(version, value_type, &key)?;
            metadata.insert(key, value);
        }

        let mut tensors = Vec::with_capacity(tensor_count as usize);
        for _ in 0..tensor_count {
            tensors.push(self.tensor_info(version)?);
        }

        let alignment =
            metadata.get("general.alignment").and_then(GgufValue::as_u64).unwrap_or(DEFAULT_ALIGNMENT);
        if alignment == 0 || !alignment.is_power_of_two() {
            return Err(self.malformed(format!("general.alignment {alignment} is not a power of two")));
        }
        let data_offset = self.pos.div_ceil(alignment) * alignment;
        for t in &tensors {
            let end = data_offset.checked_add(t.offset).and_then(|o| o.checked_add(t.size));
            if end.is_none_or(|end| end > self.file_size) {
                return Err(ModelFileError::Truncated {
                    path: self.path.to_owned(),
                    detail: format!(
                        "tensor `{}` needs bytes up to {} but the file has only {} (incomplete download?)",
                        t.name,
                        end.map_or_else(|| "overflow".to_owned(), |e| e.to_string()),
                        self.file_size
                    ),
                });
            }
        }
        Ok(GgufFile {
            path: self.path.to_owned(),
            version,
            metadata,
            tensors,
            data_offset,
            file_size: self.file_size,
        })
    }

    fn tensor_info(&mut self, version: u32) -> Result<GgufTensorInfo, ModelFileError> {
        let name = self.string(version, "a tensor name")?;
        let n_dims = self.u32(&name)?;
        if n_dims > 8 {
            return Err(self.malformed(format!("tensor `{name}` has {n_dims} dimensions")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(if version == 1 { u64::from(self.u32(&name)?) } else { self.u64(&name)? });
        }
        let ggml_type = self.u32(&name)?;
        let offset = self.u64(&name)?;
        let (block, block_bytes) = ggml_block_layout(ggml_type)
            .ok_or_else(|| self.malformed(format!("tensor `{name}` has unknown ggml type {ggml_type}")))?;
        let elements = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let size = elements
            .filter(|n| n % block == 0)
            .and_then(|n| (n / block).checked_mul(block_bytes))
            .ok_or_else(|| self.malformed(format!("tensor `{name}` has invalid dimensions {dims:?}")))?;
        Ok(GgufTensorInfo { name, dims, ggml_type, offset, size })
    }
}
