//! Sentence embeddings through llama.cpp, for GGUF embedding models.

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use modelforge_core::{BackendError, ModelInfo};

use super::{inference_error, llama_backend};

/// Tokens processed per call; a text longer than this is an error, not silently cut.
const EMBED_BATCH_TOKENS: u32 = 2048;
/// Texts per batch.
const EMBED_BATCH_TEXTS: u32 = 64;

/// Embeds `texts` in batches, one sequence per text, and L2-normalises each vector.
pub(crate) fn embed(
    model: &LlamaModel,
    info: &ModelInfo,
    texts: &[&str],
    threads: i32,
) -> Result<Vec<Vec<f32>>, BackendError> {
    let _span = tracing::debug_span!("embed", texts = texts.len()).entered();
    // Embedding models declare their pooling in the GGUF; chat models get mean pooling.
    let declares_pooling = info
        .architecture
        .as_ref()
        .is_some_and(|arch| model.meta_val_str(&format!("{arch}.pooling_type")).is_ok());
    let pooling = if declares_pooling { LlamaPoolingType::Unspecified } else { LlamaPoolingType::Mean };
    let params = LlamaContextParams::default()
        .with_embeddings(true)
        .with_pooling_type(pooling)
        .with_n_ctx(std::num::NonZeroU32::new(EMBED_BATCH_TOKENS))
        .with_n_batch(EMBED_BATCH_TOKENS)
        .with_n_ubatch(EMBED_BATCH_TOKENS)
        .with_n_seq_max(EMBED_BATCH_TEXTS)
        // One cache shared by the batch's sequences; split per sequence it would leave each
        // text only n_ctx / n_seq_max cells.
        .with_kv_unified(true)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = model
        .new_context(llama_backend()?, params)
        .map_err(|e| inference_error("creating a llama.cpp embedding context", e))?;
    let vocab = model.vocab();
    let tokenized: Vec<_> = texts.iter().map(|t| vocab.tokenize(t.as_bytes(), true, false)).collect();
    if let Some(too_long) = tokenized.iter().find(|t| t.len() as u32 > EMBED_BATCH_TOKENS) {
        return Err(BackendError::ContextOverflow {
            prompt_tokens: too_long.len() as u32,
            reserved: 0,
            context_length: EMBED_BATCH_TOKENS,
        });
    }
    let mut out = Vec::with_capacity(texts.len());
    let mut batch = LlamaBatch::new(EMBED_BATCH_TOKENS as usize, 1);
    let mut start = 0;
    while start < tokenized.len() {
        // Fill one batch with whole texts.
        let mut end = start;
        let mut used = 0;
        while end < tokenized.len()
            && end - start < EMBED_BATCH_TEXTS as usize
            && used + tokenized[end].len() <= EMBED_BATCH_TOKENS as usize
        {
            used += tokenized[end].len();
            end += 1;
        }
        batch.clear();
        ctx.clear_kv_cache();
        for (seq, tokens) in tokenized[start..end].iter().enumerate() {
            for (pos, &token) in tokens.iter().enumerate() {
                batch
                    .add(token, pos as i32, &[seq as i32], true)
                    .map_err(|e| inference_error("building a batch", e))?;
            }
        }
        ctx.decode(&mut batch).map_err(|e| inference_error("computing embeddings", e))?;
        for seq in 0..(end - start) {
            let vector =
                ctx.embeddings_seq_ith(seq as i32).map_err(|e| inference_error("reading embeddings", e))?;
            out.push(normalized(vector));
        }
        start = end;
    }
    Ok(out)
}

fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    v.iter().map(|x| x / norm).collect()
}
