//! A quantized llama for candle: GGUF weights kept in their file's types, Q4_1 products by
//! [`q4_1`](super::q4_1), and a KV cache that grows in steps instead of being copied on every
//! token.
//!
//! candle-transformers' `quantized_llama` runs every tensor through candle's `QMatMul`; its
//! fields are private, so a faster kernel for one type means owning the forward pass. It is
//! the standard llama block (RMS norm, rotary attention with grouped KV heads, SwiGLU MLP),
//! with rotary angles computed as ggml computes them.

use std::borrow::Cow;
use std::io::{Read, Seek};
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor, gguf_file};
use candle_core::{D, Device, IndexOp, Module, Tensor};
use candle_nn::kv_cache::KvCache;
use candle_transformers::quantized_nn::RmsNorm;

use super::q4_1::{Q4_1MatMul, Q4_1Matrix};

/// The most positions the rotary tables are computed for (8 MiB of tables at a head size of
/// 128), however long the model's training context.
const MAX_POSITIONS: usize = 32_768;

/// Tokens of KV cache added at a time: a cache reallocates once per this many tokens.
const KV_CACHE_STEP: usize = 256;

/// A weight matrix: Q4_1 through this crate's kernel, any other type through candle.
#[derive(Clone, Debug)]
enum Linear {
    Q4_1(Q4_1MatMul),
    Candle(QMatMul),
}

impl Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Linear::Q4_1(w) => w.forward(x),
            Linear::Candle(w) => w.forward(x),
        }
    }
}

/// Weight matrices that read the same input (q, k and v; gate and up). When they share a
/// type they are stacked into one matrix, so one product (one pass of quantizing the input,
/// one round of the thread pool) computes them all.
#[derive(Clone, Debug)]
enum Stacked {
    One { weight: Linear, rows: Vec<usize> },
    Separate(Vec<Linear>),
}

impl Stacked {
    /// Reads the matrices `names` from the GGUF, which all read the same input.
    fn load<R: Read + Seek>(
        ct: &gguf_file::Content,
        reader: &mut R,
        names: &[String],
    ) -> candle_core::Result<Self> {
        let mut infos = Vec::with_capacity(names.len());
        for name in names {
            match ct.tensor_infos.get(name) {
                Some(info) => infos.push((info, info.shape.dims2()?)),
                None => candle_core::bail!("the GGUF has no tensor `{name}`"),
            }
        }
        let (dtype, cols) = (infos[0].0.ggml_dtype, infos[0].1.1);
        let rows: Vec<usize> = infos.iter().map(|(_, (r, _))| *r).collect();
        let tensor = |reader: &mut R, name: &str| ct.tensor(reader, name, &Device::Cpu);
        if infos.iter().any(|(info, (_, c))| info.ggml_dtype != dtype || *c != cols) {
            let parts = names.iter().map(|n| linear(Arc::new(tensor(reader, n)?)));
            return Ok(Stacked::Separate(parts.collect::<candle_core::Result<_>>()?));
        }
        let weight = if dtype == GgmlDType::Q4_1 {
            let parts: Vec<(u64, usize)> =
                infos.iter().map(|(info, (r, _))| (ct.tensor_data_offset + info.offset, *r)).collect();
            Linear::Q4_1(Q4_1MatMul(Arc::new(Q4_1Matrix::read(reader, &parts, cols)?)))
        } else if names.len() == 1 {
            linear(Arc::new(tensor(reader, &names[0])?))?
        } else {
            let mut bytes = Vec::new();
            for name in names {
                bytes.extend_from_slice(&tensor(reader, name)?.data()?);
            }
            let storage = QStorage::from_data(Cow::Owned(bytes), &Device::Cpu, dtype)?;
            linear(Arc::new(QTensor::new(storage, (rows.iter().sum::<usize>(), cols))?))?
        };
        Ok(Stacked::One { weight, rows })
    }

    /// The one matrix a single name was loaded as.
    fn single(self) -> Linear {
        match self {
            Stacked::One { weight, .. } => weight,
            Stacked::Separate(mut parts) => parts.remove(0),
        }
    }

    /// Each matrix's product with `x`, in the order they were loaded.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        match self {
            Stacked::One { weight, rows } => {
                let y = weight.forward(x)?;
                let mut start = 0;
                rows.iter()
                    .map(|&n| {
                        start += n;
                        y.narrow(D::Minus1, start - n, n)
                    })
                    .collect()
            }
            Stacked::Separate(parts) => parts.iter().map(|w| w.forward(x)).collect(),
        }
    }
}

#[derive(Clone, Debug)]
struct Layer {
    attn_norm: RmsNorm,
    /// q, k and v.
    qkv: Stacked,
    wo: Linear,
    ffn_norm: RmsNorm,
    /// gate and up.
    gate_up: Stacked,
    down: Linear,
}

/// Token embeddings looked up in their quantized table: only the rows a batch needs are
/// dequantized, instead of keeping the whole table in f32 (113 MB for SmolLM2, beside its
/// 28 MB Q8_0 table, which tied models also use as their output matrix).
#[derive(Debug)]
struct Embeddings {
    table: Arc<QTensor>,
    vocab: usize,
    hidden: usize,
}

impl Embeddings {
    fn forward(&self, tokens: &Tensor) -> candle_core::Result<Tensor> {
        let ids = tokens.flatten_all()?.to_vec1::<u32>()?;
        let data = self.table.data()?;
        let row = data.len() / self.vocab;
        let mut rows = Vec::with_capacity(ids.len() * row);
        for &id in &ids {
            let id = id as usize;
            if id >= self.vocab {
                candle_core::bail!("token id {id} is outside the vocabulary of {}", self.vocab);
            }
            rows.extend_from_slice(&data[id * row..(id + 1) * row]);
        }
        let storage = QStorage::from_data(Cow::Owned(rows), &Device::Cpu, self.table.dtype())?;
        let mut dims = tokens.dims().to_vec();
        dims.push(self.hidden);
        QTensor::new(storage, (ids.len(), self.hidden))?.dequantize(&Device::Cpu)?.reshape(dims)
    }
}

/// The weights of a llama-architecture GGUF, shared by every sequence.
#[derive(Debug)]
pub(crate) struct QuantizedLlama {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    /// Rotary tables, `(positions, head_dim / 2)`.
    cos: Tensor,
    sin: Tensor,
}

/// One sequence's keys and values, one cache per layer.
pub(crate) struct Sequence {
    caches: Vec<KvCache>,
}

/// Reads GGUF metadata `key` as a u32.
fn meta_u32(ct: &gguf_file::Content, key: &str) -> candle_core::Result<u32> {
    match ct.metadata.get(key) {
        Some(v) => v.to_u32(),
        None => candle_core::bail!("the GGUF metadata has no `{key}`"),
    }
}

impl QuantizedLlama {
    /// Loads the weights of a llama GGUF whose header `ct` was read from `reader`.
    pub(crate) fn from_gguf<R: std::io::Seek + std::io::Read>(
        ct: &gguf_file::Content,
        reader: &mut R,
    ) -> candle_core::Result<Self> {
        let device = &Device::Cpu;
        let n_head = meta_u32(ct, "llama.attention.head_count")? as usize;
        let n_kv_head = meta_u32(ct, "llama.attention.head_count_kv")? as usize;
        let n_layer = meta_u32(ct, "llama.block_count")? as usize;
        let hidden = meta_u32(ct, "llama.embedding_length")? as usize;
        let context = (meta_u32(ct, "llama.context_length")? as usize).min(MAX_POSITIONS);
        let rope_dim = meta_u32(ct, "llama.rope.dimension_count").map_or(hidden / n_head, |d| d as usize);
        let eps = match ct.metadata.get("llama.attention.layer_norm_rms_epsilon") {
            Some(v) => f64::from(v.to_f32()?),
            None => candle_core::bail!("the GGUF metadata has no rms epsilon"),
        };
        let freq_base =
            ct.metadata.get("llama.rope.freq_base").and_then(|v| v.to_f32().ok()).unwrap_or(10_000.0);
        if n_kv_head == 0 || n_head % n_kv_head != 0 || rope_dim != hidden / n_head {
            candle_core::bail!(
                "unsupported attention shape: {n_head} heads, {n_kv_head} KV heads, rotary dimension {rope_dim}"
            );
        }

        let mut tensor = |name: &str| ct.tensor(reader, name, device);
        let table = Arc::new(tensor("token_embd.weight")?);
        let (vocab, width) = table.shape().dims2()?;
        if width != hidden {
            candle_core::bail!("token_embd.weight is {vocab}x{width}; the embedding length is {hidden}");
        }
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, eps)?;
        let output = if ct.tensor_infos.contains_key("output.weight") {
            Stacked::load(ct, reader, &["output.weight".to_owned()])?.single()
        } else {
            // Tied embeddings: the same table (shared, unless it is Q4_1).
            linear(table.clone())?
        };
        let embeddings = Embeddings { table, vocab, hidden };
        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let names =
                |parts: &[&str]| parts.iter().map(|p| format!("blk.{i}.{p}.weight")).collect::<Vec<_>>();
            let norm = |reader: &mut R, part: &str| {
                RmsNorm::from_qtensor(ct.tensor(reader, &format!("blk.{i}.{part}.weight"), device)?, eps)
            };
            layers.push(Layer {
                attn_norm: norm(reader, "attn_norm")?,
                qkv: Stacked::load(ct, reader, &names(&["attn_q", "attn_k", "attn_v"]))?,
                wo: Stacked::load(ct, reader, &names(&["attn_output"]))?.single(),
                ffn_norm: norm(reader, "ffn_norm")?,
                gate_up: Stacked::load(ct, reader, &names(&["ffn_gate", "ffn_up"]))?,
                down: Stacked::load(ct, reader, &names(&["ffn_down"]))?.single(),
            });
        }
        let (cos, sin) = rotary_tables(context, rope_dim, freq_base)?;
        Ok(Self { embeddings, layers, norm, output, n_head, n_kv_head, head_dim: hidden / n_head, cos, sin })
    }

    /// The most positions the rotary tables cover: the model's training context, at most
    /// `MAX_POSITIONS`.
    pub(crate) fn max_positions(&self) -> usize {
        self.cos.dim(0).unwrap_or(0)
    }

    /// An empty KV cache.
    pub(crate) fn sequence(&self) -> Sequence {
        Sequence { caches: self.layers.iter().map(|_| KvCache::new(2, KV_CACHE_STEP)).collect() }
    }

    /// Runs `tokens` (`(batch, seq)`) at position `pos` of `cache`, returning the last
    /// position's logits, `(batch, vocab)`.
    pub(crate) fn forward(
        &self,
        tokens: &Tensor,
        pos: usize,
        cache: &mut Sequence,
    ) -> candle_core::Result<Tensor> {
        let (batch, seq) = tokens.dims2()?;
        if seq == 0 {
            candle_core::bail!("no tokens to run");
        }
        if pos + seq > self.max_positions() {
            candle_core::bail!(
                "position {} is past the model's context of {}",
                pos + seq,
                self.max_positions()
            );
        }
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        let mask = if seq > 1 { Some(causal_mask(seq, pos, self.n_head / self.n_kv_head)?) } else { None };
        let mut x = self.embeddings.forward(tokens)?;
        for (layer, kv) in self.layers.iter().zip(&mut cache.caches) {
            let h = layer.attn_norm.forward(&x)?;
            let h = self.attention(layer, &h, &cos, &sin, mask.as_ref(), kv, batch, seq)?;
            x = (x + h)?;
            let h = layer.ffn_norm.forward(&x)?;
            let [gate, up] = <[Tensor; 2]>::try_from(layer.gate_up.forward(&h)?).expect("gate and up");
            let h = (candle_nn::ops::silu(&gate)? * up)?;
            x = (x + layer.down.forward(&h)?)?;
        }
        let x = self.norm.forward(&x.i((.., seq - 1, ..))?.contiguous()?)?;
        self.output.forward(&x)
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        layer: &Layer,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
        kv: &mut KvCache,
        batch: usize,
        seq: usize,
    ) -> candle_core::Result<Tensor> {
        let (d, heads, kv_heads) = (self.head_dim, self.n_head, self.n_kv_head);
        let group = heads / kv_heads;
        let split =
            |t: Tensor, n: usize| t.contiguous()?.reshape((batch, seq, n, d))?.transpose(1, 2)?.contiguous();
        let [q, k, v] = <[Tensor; 3]>::try_from(layer.qkv.forward(x)?).expect("q, k and v");
        let q = candle_nn::rotary_emb::rope_i(&split(q, heads)?, cos, sin)?;
        let k = candle_nn::rotary_emb::rope_i(&split(k, kv_heads)?, cos, sin)?;
        let v = split(v, kv_heads)?;
        let (k, v) = kv.append(&k, &v)?;
        // The `group` query heads that share a KV head attend together, as rows of one matrix,
        // so keys and values are never repeated per head.
        let q = q.reshape((batch, kv_heads, group * seq, d))?;
        let scores = (q.matmul(&k.t()?)? * (1.0 / (d as f64).sqrt()))?;
        let scores = match mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let attn = candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)?;
        let y = attn.reshape((batch, heads, seq, d))?.transpose(1, 2)?.reshape((batch, seq, heads * d))?;
        layer.wo.forward(&y)
    }
}

/// A Q4_1 tensor for this crate's kernel (a copy in its layout), any other through candle.
fn linear(t: Arc<QTensor>) -> candle_core::Result<Linear> {
    if t.dtype() == GgmlDType::Q4_1 {
        let (rows, cols) = t.shape().dims2()?;
        let matrix = Q4_1Matrix::from_bytes(&t.data()?, rows, cols)?;
        Ok(Linear::Q4_1(Q4_1MatMul(Arc::new(matrix))))
    } else {
        QMatMul::from_arc(t).map(Linear::Candle)
    }
}

/// Rotary cos and sin for every position, as ggml's `rope_cache_init` computes them: the
/// angle starts at the position and is multiplied by `base^(-2/dim)` once per pair, in f32.
fn rotary_tables(positions: usize, dim: usize, base: f32) -> candle_core::Result<(Tensor, Tensor)> {
    let scale = base.powf(-2.0 / dim as f32);
    let (mut cos, mut sin) =
        (Vec::with_capacity(positions * dim / 2), Vec::with_capacity(positions * dim / 2));
    for p in 0..positions {
        let mut theta = p as f32;
        for _ in 0..dim / 2 {
            cos.push(theta.cos());
            sin.push(theta.sin());
            theta *= scale;
        }
    }
    let shape = (positions, dim / 2);
    Ok((Tensor::from_vec(cos, shape, &Device::Cpu)?, Tensor::from_vec(sin, shape, &Device::Cpu)?))
}

/// The additive causal mask for `seq` new tokens after `pos` cached ones, with each query row
/// repeated for the `group` heads that attend together: `(group * seq, pos + seq)`.
fn causal_mask(seq: usize, pos: usize, group: usize) -> candle_core::Result<Tensor> {
    let total = pos + seq;
    let row = |i: usize| (0..total).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 });
    let mask: Vec<f32> = (0..group).flat_map(|_| (0..seq).flat_map(row)).collect();
    Tensor::from_vec(mask, (group * seq, total), &Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_causal_mask_hides_only_later_tokens() {
        let mask = causal_mask(2, 3, 2).unwrap().to_vec2::<f32>().unwrap();
        let inf = f32::NEG_INFINITY;
        let rows = [[0.0, 0.0, 0.0, 0.0, inf], [0.0; 5]];
        assert_eq!(mask, [rows[0], rows[1], rows[0], rows[1]].map(|r| r.to_vec()).to_vec());
    }

    #[test]
    fn rotary_tables_start_at_the_position() {
        let (cos, sin) = rotary_tables(3, 4, 10_000.0).unwrap();
        let (cos, sin) = (cos.to_vec2::<f32>().unwrap(), sin.to_vec2::<f32>().unwrap());
        assert_eq!(cos[0], [1.0, 1.0]);
        assert_eq!(sin[2][0], 2f32.sin());
        assert!((sin[2][1] - (2.0 * 0.01f32).sin()).abs() < 1e-6);
    }
}
