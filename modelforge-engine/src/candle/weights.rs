//! Loading llama-family weights for candle: quantized GGUF or a safetensors directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::llama::{Cache, Config, Llama, LlamaConfig, LlamaEosToks};

use super::quantized::{QuantizedLlama, Sequence};
use modelforge_core::{BackendError, BoxError};

/// Loaded weights, shared by every generation (tensors are reference-counted, so a
/// generation's [`Decoder`] is a cheap copy with a KV cache of its own).
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // one per model: its size does not matter
pub(crate) enum Weights {
    /// A quantized GGUF through this crate's [`QuantizedLlama`].
    Quantized(Arc<QuantizedLlama>),
    /// Full-precision safetensors through `llama`.
    Full { model: Llama, config: Config },
}

/// One sequence's model state: the weights plus its KV cache.
#[allow(clippy::large_enum_variant)] // one per sequence, beside a KV cache of megabytes
pub(crate) enum Decoder {
    Quantized { model: Arc<QuantizedLlama>, sequence: Sequence },
    Full { model: Llama, cache: Cache },
}

impl Weights {
    /// The longest context these weights can attend over (rope tables are precomputed).
    pub(crate) fn max_context(&self) -> u32 {
        match self {
            Weights::Quantized(model) => model.max_positions() as u32,
            Weights::Full { config, .. } => config.max_position_embeddings as u32,
        }
    }

    /// A fresh decoder with an empty KV cache.
    pub(crate) fn decoder(&self) -> Result<Decoder, BackendError> {
        Ok(match self {
            Weights::Quantized(model) => {
                Decoder::Quantized { model: model.clone(), sequence: model.sequence() }
            }
            Weights::Full { model, config } => Decoder::Full {
                model: model.clone(),
                cache: Cache::new(true, DType::F32, config, &Device::Cpu)
                    .map_err(|e| inference_error("creating a KV cache", e))?,
            },
        })
    }
}

impl Decoder {
    /// Runs `tokens` (shape `(batch, seq)`) at position `pos`, returning the last position's
    /// logits, shape `(batch, vocab)`.
    pub(crate) fn forward(&mut self, tokens: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Decoder::Quantized { model, sequence } => model.forward(tokens, pos, sequence),
            Decoder::Full { model, cache } => model.forward(tokens, pos, cache),
        }
    }

    /// Runs one sequence's `tokens` at `pos` in chunks of `chunk` and returns the logits after
    /// the last one.
    pub(crate) fn feed(
        &mut self,
        tokens: &[u32],
        pos: usize,
        chunk: usize,
    ) -> Result<Vec<f32>, BackendError> {
        let mut logits = None;
        for (i, part) in tokens.chunks(chunk.max(1)).enumerate() {
            let input = Tensor::new(part, &Device::Cpu)
                .and_then(|t| t.unsqueeze(0))
                .map_err(|e| inference_error("building the input tensor", e))?;
            let context =
                if tokens.len() == 1 { "decoding a generated token" } else { "processing the prompt" };
            logits = Some(self.forward(&input, pos + i * chunk).map_err(|e| inference_error(context, e))?);
        }
        let logits = logits
            .ok_or_else(|| BackendError::Inference { context: "no tokens to run".into(), source: None })?;
        logits
            .squeeze(0)
            .and_then(|l| l.to_dtype(DType::F32))
            .and_then(|l| l.to_vec1::<f32>())
            .map_err(|e| inference_error("reading the logits", e))
    }
}

pub(crate) fn inference_error(context: &str, err: candle_core::Error) -> BackendError {
    BackendError::Inference { context: context.to_owned(), source: Some(Box::new(err) as BoxError) }
}

fn load_error(path: &Path, reason: impl Into<String>) -> BackendError {
    BackendError::Load { path: path.to_owned(), reason: reason.into() }
}

/// Loads a llama-architecture GGUF, with its tensors as they are in the file.
///
/// Every tensor keeps its own quantization, with ggml's pairing (Q4_1 weights with Q8_1
/// activations, ...). Repacking Q4_1 to Q8_0, for which candle has a SIMD kernel, was
/// measured and dropped: the second rounding of the weights let candle's logits part from the
/// full-precision weights' by up to 1.1 where the choice was not close (0.3 at most without
/// it). Q4_1 runs on this crate's own kernel instead ([`super::q4_1`]).
pub(crate) fn load_gguf(path: &Path) -> Result<Weights, BackendError> {
    let open_error = |e: std::io::Error| load_error(path, format!("cannot open the file: {e}"));
    let mut file = std::fs::File::open(path).map_err(open_error)?;
    let content = gguf_file::Content::read(&mut file)
        .map_err(|e| load_error(path, format!("candle cannot read its GGUF header: {e}")))?;
    let model = QuantizedLlama::from_gguf(&content, &mut file)
        .map_err(|e| load_error(path, format!("candle cannot build a llama model from it: {e}")))?;
    Ok(Weights::Quantized(Arc::new(model)))
}

/// The parts of a Hugging Face llama `config.json` that loading needs beside candle's own.
pub(crate) struct SafetensorsConfig {
    pub(crate) config: Config,
    pub(crate) eos_ids: Vec<u32>,
    pub(crate) bos_id: Option<u32>,
}

/// Reads `config.json` of a llama safetensors directory.
pub(crate) fn read_config(dir: &Path) -> Result<SafetensorsConfig, BackendError> {
    let path = dir.join("config.json");
    let bytes = std::fs::read(&path).map_err(|e| load_error(&path, format!("cannot read it: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| load_error(&path, format!("invalid JSON: {e}")))?;
    if let Some(model_type) = value.get("model_type").and_then(|v| v.as_str())
        && !matches!(model_type, "llama" | "mistral")
    {
        return Err(load_error(
            &path,
            format!("the candle backend runs llama-family safetensors models; this one is `{model_type}`"),
        ));
    }
    let config: LlamaConfig =
        serde_json::from_value(value).map_err(|e| load_error(&path, format!("not a llama config: {e}")))?;
    let mut eos_ids = match &config.eos_token_id {
        Some(LlamaEosToks::Single(id)) => vec![*id],
        Some(LlamaEosToks::Multiple(ids)) => ids.clone(),
        None => Vec::new(),
    };
    // generation_config.json often lists extra end-of-turn ids (e.g. Llama 3's <|eot_id|>).
    if let Ok(bytes) = std::fs::read(dir.join("generation_config.json"))
        && let Ok(generation) = serde_json::from_slice::<serde_json::Value>(&bytes)
        && let Some(ids) = generation.get("eos_token_id")
    {
        let ids = ids.as_array().cloned().unwrap_or_else(|| vec![ids.clone()]);
        eos_ids.extend(ids.iter().filter_map(serde_json::Value::as_u64).map(|id| id as u32));
    }
    let bos_id = config.bos_token_id;
    Ok(SafetensorsConfig { config: config.into_config(false), eos_ids, bos_id })
}

/// Loads every `.safetensors` file of `dir` (read into memory; no unsafe mmap) and checks that
/// each tensor the llama model needs is present with the right shape, so a missing or
/// mis-shaped tensor is an error naming it instead of a panic inside candle.
pub(crate) fn load_safetensors(dir: &Path, config: &Config) -> Result<Weights, BackendError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| load_error(dir, format!("cannot list the directory: {e}")))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for file in &files {
        let part = candle_core::safetensors::load(file, &Device::Cpu)
            .map_err(|e| load_error(file, format!("not a valid safetensors file: {e}")))?;
        tensors.extend(part);
    }
    // transformers 5 saves tied embeddings once, under the output layer's name.
    if config.tie_word_embeddings
        && !tensors.contains_key(EMBEDDINGS)
        && let Some(output) = tensors.get("lm_head.weight").cloned()
    {
        tensors.insert(EMBEDDINGS.to_owned(), output);
    }
    for (name, shape) in expected_tensors(config) {
        let found = tensors.get(&name).ok_or_else(|| {
            load_error(dir, format!("no safetensors file in the directory holds tensor `{name}`"))
        })?;
        if found.dims() != shape.as_slice() {
            return Err(load_error(
                dir,
                format!("tensor `{name}` has shape {:?}; config.json implies {shape:?}", found.dims()),
            ));
        }
    }
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let model = Llama::load(vb, config)
        .map_err(|e| load_error(dir, format!("candle cannot build the llama model: {e}")))?;
    Ok(Weights::Full { model, config: config.clone() })
}

/// The input embeddings' tensor, which tied models also use as their output layer.
const EMBEDDINGS: &str = "model.embed_tokens.weight";

/// Hugging Face llama tensor names and shapes for `config`.
fn expected_tensors(c: &Config) -> Vec<(String, Vec<usize>)> {
    let hidden = c.hidden_size;
    let head_dim = hidden / c.num_attention_heads;
    let q = c.num_attention_heads * head_dim;
    let kv = c.num_key_value_heads * head_dim;
    let mut out = vec![
        (EMBEDDINGS.to_owned(), vec![c.vocab_size, hidden]),
        ("model.norm.weight".to_owned(), vec![hidden]),
    ];
    if !c.tie_word_embeddings {
        out.push(("lm_head.weight".to_owned(), vec![c.vocab_size, hidden]));
    }
    for i in 0..c.num_hidden_layers {
        let p = format!("model.layers.{i}");
        out.extend([
            (format!("{p}.input_layernorm.weight"), vec![hidden]),
            (format!("{p}.post_attention_layernorm.weight"), vec![hidden]),
            (format!("{p}.self_attn.q_proj.weight"), vec![q, hidden]),
            (format!("{p}.self_attn.k_proj.weight"), vec![kv, hidden]),
            (format!("{p}.self_attn.v_proj.weight"), vec![kv, hidden]),
            (format!("{p}.self_attn.o_proj.weight"), vec![hidden, q]),
            (format!("{p}.mlp.gate_proj.weight"), vec![c.intermediate_size, hidden]),
            (format!("{p}.mlp.up_proj.weight"), vec![c.intermediate_size, hidden]),
            (format!("{p}.mlp.down_proj.weight"), vec![hidden, c.intermediate_size]),
        ]);
    }
    out
}
