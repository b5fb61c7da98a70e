//! Tokenizers for the candle backend: from a `tokenizer.json`, or rebuilt from GGUF metadata.
//!
//! A GGUF file carries its vocabulary as metadata (`tokenizer.ggml.*`) rather than as a
//! `tokenizer.json`. [`tokenizer_from_gguf`] rebuilds a Hugging Face [`Tokenizer`] from it that
//! splits text exactly as llama.cpp does: the same byte-level BPE merges, the same
//! pre-tokenizer regex for the file's `tokenizer.ggml.pre`, and the same control and
//! user-defined tokens matched in text. A test compares both on a mixed corpus.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use modelforge_core::BackendError;
use modelforge_core::gguf::{GgufFile, GgufValue};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TOKEN_TYPE_CONTROL: u64 = 3;
const TOKEN_TYPE_USER_DEFINED: u64 = 4;

/// Texts of control tokens that end a turn in some model family. llama.cpp treats a token
/// with one of these texts as end of generation besides the declared EOS/EOT ids; so do we,
/// so both backends stop at the same place.
const END_OF_GENERATION_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
];

/// llama.cpp's `LLAMA3` pre-tokenizer regex.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// llama.cpp's `QWEN2` pre-tokenizer regex.
const QWEN2_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A tokenizer plus what generation needs beside ids: each token's bytes, the end-of-generation
/// tokens and the special-token texts the chat template refers to.
#[derive(Debug)]
pub(crate) struct ModelTokenizer {
    pub(crate) inner: Tokenizer,
    token_bytes: Vec<Vec<u8>>,
    end_of_generation: HashSet<u32>,
    pub(crate) bos_text: String,
    pub(crate) eos_text: String,
}

impl ModelTokenizer {
    /// Token ids of `text`; `add_special` adds what the tokenizer's post-processor adds (BOS).
    pub(crate) fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>, BackendError> {
        let encoding = self.inner.encode_fast(text, add_special).map_err(|e| BackendError::Inference {
            context: format!("tokenizing {} bytes of text", text.len()),
            source: Some(e),
        })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The bytes `token` stands for in generated text; control tokens stand for nothing.
    pub(crate) fn token_bytes(&self, token: u32) -> &[u8] {
        self.token_bytes.get(token as usize).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn is_end_of_generation(&self, token: u32) -> bool {
        self.end_of_generation.contains(&token)
    }

    /// Makes `ids` end generation too.
    pub(crate) fn add_end_of_generation(&mut self, ids: &[u32]) {
        self.end_of_generation.extend(ids.iter().copied());
    }

    pub(crate) fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    /// Wraps `inner`, with `eos_ids` (declared by the model) ending generation besides the
    /// well-known end-of-turn tokens.
    pub(crate) fn new(inner: Tokenizer, eos_ids: &[u32], bos: Option<u32>) -> Self {
        let token_bytes = token_byte_table(&inner);
        let added = inner.get_added_tokens_decoder();
        let mut end_of_generation: HashSet<u32> = eos_ids.iter().copied().collect();
        for (&id, token) in &added {
            if token.special && END_OF_GENERATION_TEXTS.contains(&token.content.as_str()) {
                end_of_generation.insert(id);
            }
        }
        let text_of = |id: Option<u32>| id.and_then(|id| inner.id_to_token(id)).unwrap_or_default();
        let bos_text = text_of(bos);
        let eos_text = text_of(eos_ids.first().copied());
        Self { inner, token_bytes, end_of_generation, bos_text, eos_text }
    }
}

/// Builds a tokenizer from a GGUF file's metadata: `tokenizer.huggingface.json` when the file
/// embeds one, otherwise from `tokenizer.ggml.*` (byte-level BPE, `tokenizer.ggml.model` =
/// `gpt2`).
///
/// The pre-tokenizer follows `tokenizer.ggml.pre` as llama.cpp does; supported are `default`
/// / `gpt2`, the StarCoder family (`smollm`, `starcoder`, `refact`, `command-r`, `codeshell`,
/// `exaone`, `minerva`), `llama3` / `llama-bpe` / `smaug-bpe` and `qwen2`. SentencePiece
/// vocabularies (`tokenizer.ggml.model` = `llama`) are refused with an error that says so.
pub fn tokenizer_from_gguf(gguf: &GgufFile) -> Result<Tokenizer, BackendError> {
    let path = &gguf.path;
    if let Some(json) = gguf.get_str("tokenizer.huggingface.json") {
        return Tokenizer::from_bytes(json.as_bytes()).map_err(|e| {
            load_error(path, format!("its embedded tokenizer.huggingface.json is invalid: {e}"))
        });
    }
    let model = gguf.get_str("tokenizer.ggml.model").unwrap_or("");
    if model != "gpt2" {
        return Err(load_error(
            path,
            format!(
                "building a tokenizer from GGUF metadata supports tokenizer.ggml.model `gpt2` (byte-level \
                 BPE), not `{model}`; put the model's tokenizer.json in the GGUF as \
                 tokenizer.huggingface.json or use the llama.cpp backend"
            ),
        ));
    }
    let tokens = string_array(gguf, "tokenizer.ggml.tokens")?;
    let merges = string_array(gguf, "tokenizer.ggml.merges")?
        .into_iter()
        .enumerate()
        .map(|(i, merge)| match merge.split_once(' ') {
            Some((a, b)) => Ok((a.to_owned(), b.to_owned())),
            None => Err(load_error(path, format!("tokenizer.ggml.merges[{i}] `{merge}` is not a pair"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let types = match gguf.metadata.get("tokenizer.ggml.token_type") {
        Some(GgufValue::Array(types)) => types.iter().map(|t| t.as_u64().unwrap_or(1)).collect(),
        _ => vec![1; tokens.len()],
    };
    let vocab: Vocab = tokens.iter().enumerate().map(|(id, t)| (t.to_string(), id as u32)).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| load_error(path, format!("the BPE vocabulary in its metadata is invalid: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer(gguf)?));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    let added: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|&(_, &t)| t == TOKEN_TYPE_CONTROL || t == TOKEN_TYPE_USER_DEFINED)
        .map(|(text, &t)| AddedToken::from(*text, t == TOKEN_TYPE_CONTROL).normalized(false))
        .collect();
    tokenizer.add_special_tokens(&added);
    if let Some(processor) = bos_processor(gguf, &tokens)? {
        tokenizer.with_post_processor(Some(processor));
    }
    Ok(tokenizer)
}

/// The end-of-generation ids a GGUF file declares (`tokenizer.ggml.eos_token_id`,
/// `tokenizer.ggml.eot_token_id`, `tokenizer.ggml.eom_token_id`).
pub(crate) fn gguf_eos_ids(gguf: &GgufFile) -> Vec<u32> {
    ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"]
        .iter()
        .filter_map(|key| gguf.get_u64(key))
        .map(|id| id as u32)
        .collect()
}

/// `tokenizer.ggml.pre` to the pre-tokenizer llama.cpp uses for it.
fn pre_tokenizer(gguf: &GgufFile) -> Result<PreTokenizerWrapper, BackendError> {
    let pre = gguf.get_str("tokenizer.ggml.pre").unwrap_or("default");
    let split = |regex: &str| -> Result<PreTokenizerWrapper, BackendError> {
        Split::new(SplitPattern::Regex(regex.to_owned()), SplitDelimiterBehavior::Isolated, false)
            .map(Into::into)
            .map_err(|e| load_error(&gguf.path, format!("pre-tokenizer regex for `{pre}`: {e}")))
    };
    // With `use_regex`, the byte-level step splits with GPT-2's regex itself.
    let byte_level = |use_regex: bool| PreTokenizerWrapper::from(ByteLevel::new(false, true, use_regex));
    let steps = match pre {
        "default" | "gpt2" | "gpt-2" => vec![byte_level(true)],
        // Digits one by one, then GPT-2's regex.
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            vec![split(r"\p{N}")?, byte_level(true)]
        }
        "llama3" | "llama-v3" | "llama-bpe" | "smaug-bpe" | "falcon3" => {
            vec![split(LLAMA3_REGEX)?, byte_level(false)]
        }
        "qwen2" | "deepseek-r1-qwen" => vec![split(QWEN2_REGEX)?, byte_level(false)],
        other => {
            return Err(load_error(
                &gguf.path,
                format!(
                    "its tokenizer.ggml.pre is `{other}`, whose pre-tokenizer is not known here; \
                     known: default, gpt2, smollm, starcoder, refact, command-r, llama3, llama-bpe, qwen2"
                ),
            ));
        }
    };
    Ok(Sequence::new(steps).into())
}

/// A post-processor adding BOS (and EOS) when the GGUF asks for them.
fn bos_processor(gguf: &GgufFile, tokens: &[&str]) -> Result<Option<TemplateProcessing>, BackendError> {
    let flag = |key: &str, default: bool| match gguf.metadata.get(key) {
        Some(GgufValue::Bool(b)) => *b,
        _ => default,
    };
    let token = |key: &str| {
        gguf.get_u64(key).and_then(|id| tokens.get(id as usize).map(|t| ((*t).to_owned(), id as u32)))
    };
    let bos = token("tokenizer.ggml.bos_token_id").filter(|_| flag("tokenizer.ggml.add_bos_token", false));
    let eos = token("tokenizer.ggml.eos_token_id").filter(|_| flag("tokenizer.ggml.add_eos_token", false));
    if bos.is_none() && eos.is_none() {
        return Ok(None);
    }
    let mut single = Vec::new();
    let mut special = Vec::new();
    if let Some((text, id)) = &bos {
        single.push(text.clone());
        special.push((text.clone(), *id));
    }
    single.push("$A".to_owned());
    if let Some((text, id)) = &eos {
        single.push(text.clone());
        special.push((text.clone(), *id));
    }
    TemplateProcessing::builder()
        .try_single(single.join(" "))
        .map_err(|e| load_error(&gguf.path, format!("BOS/EOS template: {e}")))?
        .special_tokens(special)
        .build()
        .map(Some)
        .map_err(|e| load_error(&gguf.path, format!("BOS/EOS template: {e}")))
}

fn string_array<'a>(gguf: &'a GgufFile, key: &str) -> Result<Vec<&'a str>, BackendError> {
    match gguf.metadata.get(key) {
        Some(GgufValue::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().ok_or_else(|| load_error(&gguf.path, format!("{key}[{i}] is not a string")))
            })
            .collect(),
        _ => Err(load_error(&gguf.path, format!("its metadata has no string array `{key}`"))),
    }
}

fn load_error(path: &Path, reason: String) -> BackendError {
    BackendError::Load { path: path.to_owned(), reason }
}

/// GPT-2's byte-to-character table, reversed: the byte each vocabulary character stands for.
fn byte_level_chars() -> HashMap<char, u8> {
    let mut printable: Vec<u8> = (b'!'..=b'~').chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut chars: Vec<u32> = printable.iter().map(|&b| u32::from(b)).collect();
    let mut n = 0;
    for b in 0..=255u8 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    printable.into_iter().zip(chars).filter_map(|(b, c)| Some((char::from_u32(c)?, b))).collect()
}

/// Each token's bytes in generated text. Byte-level vocabularies map characters back to bytes;
/// SentencePiece ones turn `▁` into a space and `<0xNN>` into that byte; anything else is
/// decoded token by token. Special tokens stand for nothing, as in llama.cpp's
/// `token_to_piece(.., special = false)`.
fn token_byte_table(tokenizer: &Tokenizer) -> Vec<Vec<u8>> {
    let size = tokenizer.get_vocab_size(true);
    let added = tokenizer.get_added_tokens_decoder();
    let byte_level =
        serde_json::to_string(&tokenizer.get_decoder()).is_ok_and(|json| json.contains("\"ByteLevel\""));
    let chars = byte_level_chars();
    let spm = tokenizer.token_to_id("<0x0A>").is_some();
    (0..size as u32)
        .map(|id| {
            if let Some(token) = added.get(&id) {
                return if token.special { Vec::new() } else { token.content.as_bytes().to_vec() };
            }
            let Some(text) = tokenizer.id_to_token(id) else { return Vec::new() };
            if byte_level {
                text.chars().map(|c| chars.get(&c).copied().unwrap_or(b'?')).collect()
            } else if spm {
                spm_bytes(&text)
            } else {
                tokenizer.decode(&[id], false).unwrap_or_default().into_bytes()
            }
        })
        .collect()
}

fn spm_bytes(text: &str) -> Vec<u8> {
    if let Some(hex) = text.strip_prefix("<0x").and_then(|t| t.strip_suffix('>'))
        && let Ok(byte) = u8::from_str_radix(hex, 16)
    {
        return vec![byte];
    }
    text.replace('\u{2581}', " ").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_table_covers_every_byte_once() {
        let chars = byte_level_chars();
        assert_eq!(chars.len(), 256);
        assert_eq!(chars[&'Ġ'], b' ');
        assert_eq!(chars[&'Ċ'], b'\n');
        assert_eq!(chars[&'a'], b'a');
        let bytes: HashSet<u8> = chars.values().copied().collect();
        assert_eq!(bytes.len(), 256);
    }

    #[test]
    fn sentencepiece_pieces_become_bytes() {
        assert_eq!(spm_bytes("<0x0A>"), b"\n");
        assert_eq!(spm_bytes("\u{2581}hello"), b" hello");
        assert_eq!(spm_bytes("<0xZZ>"), b"<0xZZ>");
    }
}
