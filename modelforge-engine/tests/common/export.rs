//! Writes a GGUF llama model as a Hugging Face safetensors directory (dequantized to f32), so
//! the same weights can run through candle's full-precision llama.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};
use modelforge_core::gguf::GgufFile;

/// Exports the GGUF at `gguf` into `dir`: `model.safetensors` (f32), `config.json`,
/// `tokenizer.json` (rebuilt from the GGUF metadata) and `tokenizer_config.json` (chat
/// template, BOS/EOS).
pub fn export_gguf_as_safetensors(gguf: &Path, dir: &Path) {
    let mut file = std::fs::File::open(gguf).unwrap();
    let content = Content::read(&mut file).unwrap_or_else(|e| panic!("reading {}: {e}", gguf.display()));
    let md = |key: &str| {
        content.metadata.get(key).unwrap_or_else(|| panic!("{key} missing in {}", gguf.display()))
    };
    let int = |key: &str| md(key).to_u32().unwrap() as usize;
    let n_head = int("llama.attention.head_count");
    let n_kv_head = int("llama.attention.head_count_kv");

    let mut tensors = HashMap::new();
    let names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    for name in &names {
        let weight = content
            .tensor(&mut file, name, &Device::Cpu)
            .and_then(|q| q.dequantize(&Device::Cpu))
            .unwrap_or_else(|e| panic!("dequantizing {name}: {e}"));
        let weight = match name.as_str() {
            n if n.ends_with("attn_q.weight") => unpermute(&weight, n_head),
            n if n.ends_with("attn_k.weight") => unpermute(&weight, n_kv_head),
            _ => weight,
        };
        tensors.insert(hf_name(name), weight);
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();

    let tied = !tensors.contains_key("lm_head.weight");
    let tokens = match md("tokenizer.ggml.tokens") {
        Value::Array(tokens) => tokens.len(),
        _ => panic!("tokenizer.ggml.tokens is not an array"),
    };
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": int("llama.embedding_length"),
        "intermediate_size": int("llama.feed_forward_length"),
        "num_hidden_layers": int("llama.block_count"),
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv_head,
        "rms_norm_eps": md("llama.attention.layer_norm_rms_epsilon").to_f32().unwrap(),
        "rope_theta": content.metadata.get("llama.rope.freq_base").map_or(10_000.0, |v| v.to_f32().unwrap()),
        "max_position_embeddings": int("llama.context_length"),
        "vocab_size": tokens,
        "tie_word_embeddings": tied,
        "bos_token_id": int("tokenizer.ggml.bos_token_id"),
        "eos_token_id": int("tokenizer.ggml.eos_token_id"),
        "torch_dtype": "float32",
    });
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();

    let header = GgufFile::open(gguf).unwrap();
    let tokenizer = modelforge_engine::candle::tokenizer_from_gguf(&header).unwrap();
    tokenizer.save(dir.join("tokenizer.json"), false).unwrap();
    let token_text = |key: &str| tokenizer.id_to_token(header.get_u64(key).unwrap() as u32).unwrap();
    let tokenizer_config = serde_json::json!({
        "chat_template": header.chat_template(),
        "bos_token": token_text("tokenizer.ggml.bos_token_id"),
        "eos_token": token_text("tokenizer.ggml.eos_token_id"),
    });
    std::fs::write(dir.join("tokenizer_config.json"), serde_json::to_vec_pretty(&tokenizer_config).unwrap())
        .unwrap();
}

/// GGUF tensor names to Hugging Face llama names.
fn hf_name(name: &str) -> String {
    match name {
        "token_embd.weight" => return "model.embed_tokens.weight".into(),
        "output_norm.weight" => return "model.norm.weight".into(),
        "output.weight" => return "lm_head.weight".into(),
        _ => {}
    }
    let rest = name.strip_prefix("blk.").unwrap_or_else(|| panic!("unexpected tensor {name}"));
    let (layer, part) = rest.split_once('.').unwrap();
    let hf = match part {
        "attn_norm.weight" => "input_layernorm.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        other => panic!("unexpected tensor part {other} in {name}"),
    };
    format!("model.layers.{layer}.{hf}")
}

/// Undoes llama.cpp's conversion permutation of q/k rows (its `permute`, which interleaves
/// the two rotary halves of each head for ggml's rope): rows of each head go from
/// `(half, pair)` order back to `(pair, half)`.
fn unpermute(weight: &Tensor, heads: usize) -> Tensor {
    let (rows, cols) = weight.dims2().unwrap();
    weight
        .reshape((heads, rows / heads / 2, 2, cols))
        .and_then(|w| w.transpose(1, 2))
        .and_then(|w| w.contiguous())
        .and_then(|w| w.reshape((rows, cols)))
        .unwrap()
}

/// Writes the GGUF at `gguf` to `out` with every Q4_1 tensor requantized to `dtype` (metadata
/// and other tensors as they are), so a backend can be run on another quantization of the
/// same model.
pub fn requantize_gguf(gguf: &Path, out: &Path, dtype: candle_core::quantized::GgmlDType) {
    use candle_core::quantized::{GgmlDType, QTensor};
    let mut file = std::fs::File::open(gguf).unwrap();
    let content = Content::read(&mut file).unwrap();
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    for name in content.tensor_infos.keys() {
        let tensor = content.tensor(&mut file, name, &Device::Cpu).unwrap();
        let tensor = if tensor.dtype() == GgmlDType::Q4_1 {
            QTensor::quantize(&tensor.dequantize(&Device::Cpu).unwrap(), dtype).unwrap()
        } else {
            tensor
        };
        tensors.push((name.clone(), tensor));
    }
    // The file type in the metadata names the new quantization.
    let file_type = Value::U32(match dtype {
        GgmlDType::Q8_0 => 7,
        GgmlDType::Q4_0 => 2,
        other => panic!("no file type for {other:?}"),
    });
    let mut metadata: Vec<(&str, &Value)> = content
        .metadata
        .iter()
        .filter(|(k, _)| k.as_str() != "general.file_type")
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    metadata.push(("general.file_type", &file_type));
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut writer = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    candle_core::quantized::gguf_file::write(&mut writer, &metadata, &tensors).unwrap();
}
