//! Sentence embeddings from BERT-family models (all-MiniLM-L6-v2 and its kin).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use modelforge_core::{BackendError, BoxError, Embedder};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Texts embedded per forward pass: bounds memory for long lists.
const MAX_BATCH: usize = 32;

/// A BERT sentence embedder: mean pooling of the last hidden states over the attention mask,
/// then L2 normalisation, as sentence-transformers does for all-MiniLM-L6-v2.
///
/// Texts are embedded in batches padded to the longest text of the batch; padding is masked
/// out of both attention and pooling, so a text's vector does not depend on its batch.
pub struct BertEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    dimensions: usize,
    dir: PathBuf,
}

/// all-MiniLM-L6-v2 is the default embedder; it is an ordinary [`BertEmbedder`].
pub type MiniLmEmbedder = BertEmbedder;

impl std::fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEmbedder").field("dir", &self.dir).field("dimensions", &self.dimensions).finish()
    }
}

fn load_error(path: &Path, reason: impl Into<String>) -> BackendError {
    BackendError::Load { path: path.to_owned(), reason: reason.into() }
}

impl BertEmbedder {
    /// Loads a directory holding `config.json`, `model.safetensors` and `tokenizer.json`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, BackendError> {
        let dir = dir.as_ref();
        let _span = tracing::info_span!("load_embedder", dir = %dir.display()).entered();
        let config_path = dir.join("config.json");
        let config_bytes = std::fs::read(&config_path)
            .map_err(|e| load_error(&config_path, format!("cannot read it: {e}")))?;
        let config: Config = serde_json::from_slice(&config_bytes)
            .map_err(|e| load_error(&config_path, format!("not a BERT config: {e}")))?;
        let dimensions = serde_json::from_slice::<serde_json::Value>(&config_bytes)
            .ok()
            .and_then(|v| v.get("hidden_size")?.as_u64())
            .ok_or_else(|| load_error(&config_path, "it has no hidden_size"))?
            as usize;

        let weights_path = dir.join("model.safetensors");
        modelforge_core::inspect(&weights_path)?;
        let tensors: HashMap<String, Tensor> = candle_core::safetensors::load(&weights_path, &Device::Cpu)
            .map_err(|e| load_error(&weights_path, format!("not a valid safetensors file: {e}")))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let model = BertModel::load(vb, &config)
            .map_err(|e| load_error(&weights_path, format!("missing or mis-shaped BERT tensor: {e}")))?;

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| load_error(&tokenizer_path, format!("cannot read the tokenizer: {e}")))?;
        let max_length = serde_json::from_slice::<serde_json::Value>(&config_bytes)
            .ok()
            .and_then(|v| v.get("max_position_embeddings")?.as_u64())
            .unwrap_or(512) as usize;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length, ..TruncationParams::default() }))
            .map_err(|e| load_error(&tokenizer_path, format!("cannot set truncation: {e}")))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        Ok(Self { model, tokenizer, dimensions, dir: dir.to_owned() })
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BackendError> {
        let encodings =
            self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| BackendError::Inference {
                context: format!("tokenizing {} texts for embedding", texts.len()),
                source: Some(e),
            })?;
        let rows = |f: fn(&tokenizers::Encoding) -> &[u32]| -> candle_core::Result<Tensor> {
            let rows = encodings
                .iter()
                .map(|e| Tensor::new(f(e), &Device::Cpu))
                .collect::<candle_core::Result<Vec<_>>>()?;
            Tensor::stack(&rows, 0)
        };
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = rows(tokenizers::Encoding::get_ids)?;
            let type_ids = rows(tokenizers::Encoding::get_type_ids)?;
            let mask = rows(tokenizers::Encoding::get_attention_mask)?;
            let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
            // Mean over real tokens only: padding is zeroed and not counted.
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
            let mean = summed.broadcast_div(&counts)?;
            let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            mean.broadcast_div(&norms)?.to_vec2::<f32>()
        };
        run().map_err(|e| BackendError::Inference {
            context: format!("embedding {} texts with {}", texts.len(), self.dir.display()),
            source: Some(Box::new(e) as BoxError),
        })
    }
}

impl Embedder for BertEmbedder {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BackendError> {
        let _span = tracing::debug_span!("embed", texts = texts.len()).entered();
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(MAX_BATCH) {
            out.extend(self.embed_batch(batch)?);
        }
        Ok(out)
    }

    /// Tokens read, special tokens included, after truncation to the model's limit.
    fn count_tokens(&self, text: &str) -> Option<usize> {
        self.tokenizer.encode(text, true).ok().map(|e| e.get_ids().len())
    }
}
