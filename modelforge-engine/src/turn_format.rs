//! Turn formats of the known model families, and choosing one for a model without a chat
//! template.
//!
//! A model is trained on one way of marking turns. Its GGUF usually carries that format as a
//! Jinja template (`tokenizer.chat_template`), but older and community files often do not. A
//! model prompted in a format it has never seen does not end its turn: it writes the foreign
//! markers as text until the token budget runs out. So, as llama.cpp and Ollama do, the
//! format is chosen from what the model itself carries: the turn markers in its vocabulary
//! (`<start_of_turn>`, `<|start_header_id|>`, `<|im_start|>`, `[INST]`, ...) and its
//! architecture ([`TurnFormat::detect`]). A model with neither gets [`TurnFormat::Plain`]
//! (`User:` / `Assistant:` text).
//!
//! Whatever the template, generation also ends on the model's turn markers: each format
//! names its end markers ([`TurnFormat::stops`]), and every known marker the vocabulary holds
//! ends the reply too, as a token or as text, so no reply ever shows one
//! ([`ChatSetup::stops`]).
//!
//! `--chat-template NAME|FILE` ([`LoadOptions::chat_template`]) overrides all of this: a NAME
//! of this table ([`TurnFormat::NAMES`]) or a file holding a Jinja template.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use modelforge_core::gguf::{GgufFile, GgufValue};
use modelforge_core::{BackendError, LoadOptions, ModelFormat, ModelInfo};
use serde::Serialize;

use crate::chat_template::ChatTemplate;

/// A family's way of marking turns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnFormat {
    /// `<|im_start|>role ... <|im_end|>`: Qwen, SmolLM, many fine-tunes.
    ChatMl,
    /// `<start_of_turn>user ... <end_of_turn>`, the assistant as `model`: Gemma 1-3.
    Gemma,
    /// `<|start_header_id|>role<|end_header_id|> ... <|eot_id|>`: Llama 3.
    Llama3,
    /// `[INST] <<SYS>> ... <</SYS>> ... [/INST]`: Llama 2 chat.
    Llama2,
    /// `[INST] ... [/INST]`: Mistral and Mixtral instruct.
    Mistral,
    /// `<|user|> ... <|end|>`: Phi-3 and Phi-3.5.
    Phi3,
    /// `<|user|> ... </s>`: Zephyr, TinyLlama chat.
    Zephyr,
    /// `<｜User｜> ... <｜Assistant｜>`: DeepSeek V2.5, V3 and R1.
    DeepSeek,
    /// `User: ... Assistant:` text, for a model with no recognisable format.
    Plain,
}

/// Every turn marker this module knows, with the format it belongs to (`None`: several).
/// A vocabulary holding one of these as a token ends generation on it.
const KNOWN_MARKERS: &[&str] = &[
    "<|im_start|>",
    "<|im_end|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "[INST]",
    "[/INST]",
    "<|user|>",
    "<|assistant|>",
    "<|system|>",
    "<|end|>",
    "<｜User｜>",
    "<｜Assistant｜>",
    "<｜end▁of▁sentence｜>",
    "<|endoftext|>",
    "<|end_of_text|>",
];

impl TurnFormat {
    /// Every format, in the order of [`NAMES`](Self::NAMES).
    pub const ALL: [TurnFormat; 9] = [
        TurnFormat::ChatMl,
        TurnFormat::Gemma,
        TurnFormat::Llama3,
        TurnFormat::Llama2,
        TurnFormat::Mistral,
        TurnFormat::Phi3,
        TurnFormat::Zephyr,
        TurnFormat::DeepSeek,
        TurnFormat::Plain,
    ];

    /// The names `--chat-template` accepts (besides `qwen` for ChatML).
    pub const NAMES: &'static str =
        "chatml (qwen), gemma, llama3, llama2, mistral, phi3, zephyr, deepseek, plain";

    /// The short name: `chatml`, `gemma`, `llama3`, ...
    pub const fn name(self) -> &'static str {
        match self {
            TurnFormat::ChatMl => "chatml",
            TurnFormat::Gemma => "gemma",
            TurnFormat::Llama3 => "llama3",
            TurnFormat::Llama2 => "llama2",
            TurnFormat::Mistral => "mistral",
            TurnFormat::Phi3 => "phi3",
            TurnFormat::Zephyr => "zephyr",
            TurnFormat::DeepSeek => "deepseek",
            TurnFormat::Plain => "plain",
        }
    }

    /// The format called `name` (case-insensitive; `qwen` is ChatML, `llama-3` is Llama 3).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase().replace(['-', '_', '.'], "");
        Some(match name.as_str() {
            "chatml" | "qwen" | "qwen2" | "qwen3" => TurnFormat::ChatMl,
            "gemma" | "gemma2" | "gemma3" => TurnFormat::Gemma,
            "llama3" => TurnFormat::Llama3,
            "llama2" => TurnFormat::Llama2,
            "mistral" | "mixtral" => TurnFormat::Mistral,
            "phi3" => TurnFormat::Phi3,
            "zephyr" => TurnFormat::Zephyr,
            "deepseek" => TurnFormat::DeepSeek,
            "plain" => TurnFormat::Plain,
            _ => return None,
        })
    }

    /// The format's Jinja template (Hugging Face's conventions: `messages`,
    /// `add_generation_prompt`, `bos_token`, `eos_token`).
    pub const fn template(self) -> &'static str {
        match self {
            TurnFormat::ChatMl => crate::chat_template::FALLBACK_TEMPLATE,
            TurnFormat::Gemma => concat!(
                "{{ bos_token }}",
                "{% set first_system = messages and messages[0].role == 'system' %}",
                "{% set system = messages[0].content ~ '\n\n' if first_system else '' %}",
                "{% for m in (messages[1:] if first_system else messages) %}",
                "<start_of_turn>{{ 'model' if m.role == 'assistant' else 'user' }}\n",
                "{% if loop.first %}{{ system }}{% endif %}{{ m.content | trim }}<end_of_turn>\n",
                "{% endfor %}",
                "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}",
            ),
            TurnFormat::Llama3 => concat!(
                "{{ bos_token }}",
                "{% for m in messages %}",
                "<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content | trim }}<|eot_id|>",
                "{% endfor %}",
                "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}",
            ),
            TurnFormat::Llama2 => concat!(
                "{% set first_system = messages and messages[0].role == 'system' %}",
                "{% set system = messages[0].content if first_system else '' %}",
                "{% for m in (messages[1:] if first_system else messages) %}",
                "{% if m.role == 'assistant' %} {{ m.content | trim }} {{ eos_token }}",
                "{% else %}{{ bos_token }}[INST] ",
                "{% if loop.first and system %}<<SYS>>\n{{ system }}\n<</SYS>>\n\n{% endif %}",
                "{{ m.content | trim }} [/INST]{% endif %}",
                "{% endfor %}",
            ),
            TurnFormat::Mistral => concat!(
                "{{ bos_token }}",
                "{% set first_system = messages and messages[0].role == 'system' %}",
                "{% set system = messages[0].content ~ '\n\n' if first_system else '' %}",
                "{% for m in (messages[1:] if first_system else messages) %}",
                "{% if m.role == 'assistant' %}{{ m.content | trim }}{{ eos_token }}",
                "{% else %}[INST] {% if loop.first %}{{ system }}{% endif %}{{ m.content | trim }} [/INST]{% endif %}",
                "{% endfor %}",
            ),
            TurnFormat::Phi3 => concat!(
                "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|end|>\n{% endfor %}",
                "{% if add_generation_prompt %}<|assistant|>\n{% endif %}",
            ),
            TurnFormat::Zephyr => concat!(
                "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}\n{% endfor %}",
                "{% if add_generation_prompt %}<|assistant|>\n{% endif %}",
            ),
            TurnFormat::DeepSeek => concat!(
                "{{ bos_token }}",
                "{% set first_system = messages and messages[0].role == 'system' %}",
                "{% if first_system %}{{ messages[0].content }}{% endif %}",
                "{% for m in (messages[1:] if first_system else messages) %}",
                "{% if m.role == 'assistant' %}<｜Assistant｜>{{ m.content }}<｜end▁of▁sentence｜>",
                "{% else %}<｜User｜>{{ m.content }}{% endif %}",
                "{% endfor %}",
                "{% if add_generation_prompt %}<｜Assistant｜>{% endif %}",
            ),
            TurnFormat::Plain => concat!(
                "{% for m in messages %}",
                "{% if m.role == 'system' %}{{ m.content }}\n\n",
                "{% elif m.role == 'assistant' %}Assistant: {{ m.content | trim }}\n",
                "{% else %}User: {{ m.content | trim }}\n{% endif %}",
                "{% endfor %}",
                "{% if add_generation_prompt %}Assistant:{% endif %}",
            ),
        }
    }

    /// Text that ends the assistant's turn in this format: generation stops there and the
    /// marker is never shown.
    pub const fn stops(self) -> &'static [&'static str] {
        match self {
            TurnFormat::ChatMl => &["<|im_end|>", "<|im_start|>"],
            TurnFormat::Gemma => &["<end_of_turn>", "<start_of_turn>"],
            TurnFormat::Llama3 => &["<|eot_id|>", "<|start_header_id|>"],
            TurnFormat::Llama2 | TurnFormat::Mistral => &["</s>", "[INST]"],
            TurnFormat::Phi3 => &["<|end|>", "<|user|>", "<|assistant|>"],
            TurnFormat::Zephyr => &["</s>", "<|user|>", "<|assistant|>"],
            TurnFormat::DeepSeek => &["<｜end▁of▁sentence｜>", "<｜User｜>"],
            TurnFormat::Plain => &["\nUser:", "\nAssistant:"],
        }
    }

    /// Chooses the format from what the model carries: turn markers in its vocabulary first,
    /// then its architecture, then (for SentencePiece llama models, whose Llama 2 and Mistral
    /// formats are plain text) its name; `None` when nothing is recognised. Returns the format
    /// and what it was recognised by.
    pub fn detect(vocab: &Vocabulary) -> Option<(TurnFormat, String)> {
        let by_tokens = |format, tokens: &[&str]| {
            tokens
                .iter()
                .all(|t| vocab.markers.contains_key(*t))
                .then(|| (format, format!("tokens {}", tokens.join(" "))))
        };
        let from_vocab = by_tokens(TurnFormat::Gemma, &["<start_of_turn>", "<end_of_turn>"])
            .or_else(|| by_tokens(TurnFormat::Llama3, &["<|start_header_id|>", "<|eot_id|>"]))
            .or_else(|| by_tokens(TurnFormat::ChatMl, &["<|im_start|>", "<|im_end|>"]))
            .or_else(|| by_tokens(TurnFormat::DeepSeek, &["<｜User｜>", "<｜Assistant｜>"]))
            .or_else(|| by_tokens(TurnFormat::Phi3, &["<|user|>", "<|end|>"]))
            .or_else(|| by_tokens(TurnFormat::Zephyr, &["<|user|>", "<|assistant|>"]))
            .or_else(|| by_tokens(TurnFormat::Mistral, &["[INST]", "[/INST]"]));
        if from_vocab.is_some() {
            return from_vocab;
        }
        let arch = vocab.architecture.as_deref().unwrap_or_default().to_ascii_lowercase();
        let by_arch = match arch.as_str() {
            a if a.starts_with("gemma") => Some(TurnFormat::Gemma),
            a if a.starts_with("qwen") => Some(TurnFormat::ChatMl),
            "phi3" => Some(TurnFormat::Phi3),
            "deepseek2" | "deepseek_v2" | "deepseek_v3" => Some(TurnFormat::DeepSeek),
            "mistral" | "mistral3" | "mixtral" => Some(TurnFormat::Mistral),
            _ => None,
        };
        if let Some(format) = by_arch {
            return Some((format, format!("architecture `{arch}`")));
        }
        // Llama 2 and the first Mistral models write their markers as text: only the name
        // tells them apart from a base llama model.
        let name = vocab.name.as_deref().unwrap_or_default().to_ascii_lowercase().replace(['_', ' '], "-");
        let by_name = if name.contains("llama-2") || name.contains("llama2") {
            Some(TurnFormat::Llama2)
        } else if name.contains("mistral") || name.contains("mixtral") {
            Some(TurnFormat::Mistral)
        } else if name.contains("zephyr") || (name.contains("tinyllama") && name.contains("chat")) {
            Some(TurnFormat::Zephyr)
        } else {
            None
        };
        by_name.filter(|_| arch == "llama").map(|format| (format, format!("the name `{name}`")))
    }
}

impl fmt::Display for TurnFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What of a model's vocabulary the choice of format needs: the known turn markers it holds
/// (with their ids), its end-of-generation tokens, its architecture and name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vocabulary {
    /// `general.architecture` or `model_type`.
    pub architecture: Option<String>,
    /// `general.name` or the file name.
    pub name: Option<String>,
    /// Known turn markers that are tokens of the vocabulary, by text.
    pub markers: BTreeMap<String, u32>,
    /// Texts of the tokens the model declares as end of generation (EOS, EOT, EOM).
    pub end_of_generation: Vec<String>,
}

impl Vocabulary {
    /// A vocabulary of these `(text, id)` tokens; only the known markers are kept.
    pub fn from_tokens<'a>(
        architecture: Option<&str>,
        name: Option<&str>,
        tokens: impl IntoIterator<Item = (&'a str, u32)>,
    ) -> Self {
        let markers = tokens
            .into_iter()
            .filter(|(text, _)| KNOWN_MARKERS.contains(text))
            .map(|(text, id)| (text.to_owned(), id))
            .collect();
        Self {
            architecture: architecture.map(str::to_owned),
            name: name.map(str::to_owned),
            markers,
            end_of_generation: Vec::new(),
        }
    }

    /// The vocabulary of a GGUF file (`tokenizer.ggml.tokens`).
    pub fn from_gguf(gguf: &GgufFile) -> Self {
        let tokens = match gguf.metadata.get("tokenizer.ggml.tokens") {
            Some(GgufValue::Array(tokens)) => tokens.as_slice(),
            _ => &[],
        };
        let name = gguf.get_str("general.name").map(str::to_owned).or_else(|| file_name(&gguf.path));
        let mut vocab = Self::from_tokens(
            gguf.architecture(),
            name.as_deref(),
            tokens.iter().enumerate().filter_map(|(id, t)| Some((t.as_str()?, id as u32))),
        );
        vocab.end_of_generation =
            ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"]
                .iter()
                .filter_map(|key| gguf.get_u64(key))
                .filter_map(|id| tokens.get(usize::try_from(id).ok()?)?.as_str())
                .map(str::to_owned)
                .collect();
        vocab
    }

    /// The vocabulary of a safetensors directory: `tokenizer.json`'s vocabulary and added
    /// tokens, `config.json`'s `model_type`, `tokenizer_config.json`'s `eos_token`.
    pub fn from_safetensors_dir(dir: &Path) -> Self {
        let read = |file: &str| -> Option<serde_json::Value> {
            serde_json::from_slice(&std::fs::read(dir.join(file)).ok()?).ok()
        };
        let tokenizer = read("tokenizer.json");
        let config = read("config.json");
        let mut tokens: Vec<(&str, u32)> = Vec::new();
        if let Some(t) = &tokenizer {
            if let Some(vocab) = t.pointer("/model/vocab").and_then(|v| v.as_object()) {
                tokens.extend(vocab.iter().filter_map(|(k, v)| Some((k.as_str(), v.as_u64()? as u32))));
            }
            if let Some(added) = t.get("added_tokens").and_then(|v| v.as_array()) {
                tokens.extend(
                    added
                        .iter()
                        .filter_map(|a| Some((a.get("content")?.as_str()?, a.get("id")?.as_u64()? as u32))),
                );
            }
        }
        let architecture = config.as_ref().and_then(|c| c.get("model_type")).and_then(|v| v.as_str());
        let mut vocab = Self::from_tokens(architecture, file_name(dir).as_deref(), tokens);
        let eos = read("tokenizer_config.json").and_then(|c| {
            let value = c.get("eos_token")?;
            value.as_str().or_else(|| value.get("content")?.as_str()).map(str::to_owned)
        });
        vocab.end_of_generation.extend(eos);
        vocab
    }

    /// The vocabulary of the model at `path`, whichever its format.
    pub fn of_model(info: &ModelInfo) -> Result<Self, BackendError> {
        Ok(match info.format {
            ModelFormat::Gguf => Self::from_gguf(&GgufFile::open(&info.path)?),
            ModelFormat::Safetensors => {
                let dir = if info.path.is_dir() {
                    info.path.as_path()
                } else {
                    info.path.parent().unwrap_or(Path::new("."))
                };
                Self::from_safetensors_dir(dir)
            }
        })
    }
}

fn file_name(path: &Path) -> Option<String> {
    path.file_stem().map(|s| s.to_string_lossy().into_owned())
}

/// Where a model's chat format came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatSource {
    /// The model's own Jinja template.
    Model,
    /// `--chat-template` (a name of the table or a file).
    Override,
    /// Chosen from the vocabulary, architecture or name ([`TurnFormat::detect`]).
    Detected,
    /// Nothing recognised: plain `User:` / `Assistant:` text.
    Fallback,
}

impl FormatSource {
    /// `model`, `override`, `detected` or `fallback`.
    pub const fn as_str(self) -> &'static str {
        match self {
            FormatSource::Model => "model",
            FormatSource::Override => "override",
            FormatSource::Detected => "detected",
            FormatSource::Fallback => "fallback",
        }
    }
}

/// The chat format a model is prompted with, for logs and model lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatFormat {
    /// `template` for the model's own template, a [`TurnFormat`] name, or a template file.
    pub name: String,
    /// Where it came from.
    pub source: FormatSource,
    /// The family recognised in the vocabulary (also when the model has its own template).
    pub family: Option<TurnFormat>,
}

impl fmt::Display for ChatFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            FormatSource::Model => f.write_str("model's template"),
            FormatSource::Override => write!(f, "{} (--chat-template)", self.name),
            FormatSource::Detected => write!(f, "{} (detected)", self.name),
            FormatSource::Fallback => write!(f, "{} (fallback)", self.name),
        }
    }
}

/// How a loaded model is prompted and where its replies end.
#[derive(Debug)]
pub struct ChatSetup {
    /// The compiled template.
    pub template: ChatTemplate,
    /// What it is, for logs and lists.
    pub format: ChatFormat,
    /// Stop strings added to every generation: the format's end markers, the known turn
    /// markers and end-of-generation texts of the vocabulary.
    pub stops: Vec<String>,
    /// Tokens that end generation besides the ones the backend already treats so: the known
    /// turn markers of the vocabulary.
    pub end_tokens: Vec<u32>,
}

/// The template source and its description for a model: the override, else the model's own
/// template, else a detected format, else [`TurnFormat::Plain`].
fn choose(
    info: &ModelInfo,
    vocab: &Vocabulary,
    chat_template: Option<&str>,
) -> Result<(String, ChatFormat), BackendError> {
    let family = TurnFormat::detect(vocab);
    let family_format = family.as_ref().map(|(f, _)| *f);
    if let Some(wanted) = chat_template.map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(format) = TurnFormat::from_name(wanted) {
            let chosen = ChatFormat {
                name: format.name().into(),
                source: FormatSource::Override,
                family: Some(format),
            };
            return Ok((format.template().to_owned(), chosen));
        }
        let path = Path::new(wanted);
        if !path.is_file() {
            return Err(BackendError::Template {
                reason: format!(
                    "--chat-template `{wanted}` is neither a template file nor a known format ({})",
                    TurnFormat::NAMES
                ),
            });
        }
        let source = std::fs::read_to_string(path).map_err(|e| BackendError::Template {
            reason: format!("cannot read the chat template file {}: {e}", path.display()),
        })?;
        let chosen = ChatFormat {
            name: path.display().to_string(),
            source: FormatSource::Override,
            family: family_format,
        };
        return Ok((source, chosen));
    }
    if let Some(own) = info.chat_template.as_deref().filter(|t| !t.trim().is_empty()) {
        let chosen =
            ChatFormat { name: "template".into(), source: FormatSource::Model, family: family_format };
        return Ok((own.to_owned(), chosen));
    }
    Ok(match family {
        Some((format, _)) => (
            format.template().to_owned(),
            ChatFormat { name: format.name().into(), source: FormatSource::Detected, family: Some(format) },
        ),
        None => (
            TurnFormat::Plain.template().to_owned(),
            ChatFormat {
                name: TurnFormat::Plain.name().into(),
                source: FormatSource::Fallback,
                family: None,
            },
        ),
    })
}

/// The chat format `models list` shows for the model at `info` under `options`, without
/// loading it.
pub fn describe(info: &ModelInfo, chat_template: Option<&str>) -> Result<ChatFormat, BackendError> {
    let vocab = Vocabulary::of_model(info)?;
    Ok(choose(info, &vocab, chat_template)?.1)
}

/// Chooses and compiles the chat template of a model being loaded, and the stop strings and
/// tokens that end its replies; logs the choice (a warning for the plain fallback). A
/// template that does not compile, or (from `--chat-template`) does not render a simple
/// conversation, is an error naming the model and the template.
pub fn setup(
    info: &ModelInfo,
    vocab: &Vocabulary,
    options: &LoadOptions,
    bos_token: &str,
    eos_token: &str,
) -> Result<ChatSetup, BackendError> {
    let (source, format) = choose(info, vocab, options.chat_template.as_deref())?;
    let label = match format.source {
        FormatSource::Model => "its own chat template".to_owned(),
        FormatSource::Override => format!("the chat template `{}`", format.name),
        FormatSource::Detected | FormatSource::Fallback => format!("the built-in `{}` template", format.name),
    };
    let named = |err: BackendError| match err {
        BackendError::Template { reason } => {
            BackendError::Template { reason: format!("model `{}`, {label}: {reason}", info.name) }
        }
        other => other,
    };
    let template = ChatTemplate::new(Some(source.as_str()), bos_token, eos_token)
        .map_err(named)?
        .with_label(&info.name, &label);
    if format.source == FormatSource::Override {
        template.render(&[modelforge_core::ChatMessage::user("Hi")], true)?;
    }
    match format.source {
        FormatSource::Detected => {
            let why = TurnFormat::detect(vocab).map(|(_, why)| why).unwrap_or_default();
            tracing::info!(model = %info.name, format = %format.name, by = %why, "the model has no chat template; chat format chosen from the model");
        }
        FormatSource::Fallback => tracing::warn!(
            model = %info.name,
            "the model has no chat template and no known turn markers: chatting in plain `User:`/`Assistant:` text \
             (give --chat-template NAME|FILE for a better format)"
        ),
        FormatSource::Model | FormatSource::Override => {
            tracing::info!(model = %info.name, chat_format = %format, "chat format")
        }
    }
    let mut stops: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        if !s.is_empty() && !stops.iter().any(|have| have == s) {
            stops.push(s.to_owned());
        }
    };
    let in_use = match format.source {
        FormatSource::Model => format.family,
        _ => TurnFormat::from_name(&format.name).or(format.family),
    };
    for stop in in_use.map_or(&[][..], TurnFormat::stops) {
        add(stop);
    }
    for marker in vocab.markers.keys().chain(&vocab.end_of_generation) {
        add(marker.as_str());
    }
    // The vocabulary's turn markers end the reply as tokens too: a control token's text is
    // never shown, so a stop string alone would not see it.
    let end_tokens = vocab.markers.values().copied().collect();
    Ok(ChatSetup { template, format, stops, end_tokens })
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelforge_core::ChatMessage;

    #[test]
    fn every_name_round_trips() {
        for format in TurnFormat::ALL {
            assert_eq!(TurnFormat::from_name(format.name()), Some(format));
            assert!(TurnFormat::NAMES.contains(format.name()));
        }
        assert_eq!(TurnFormat::from_name("Qwen"), Some(TurnFormat::ChatMl));
        assert_eq!(TurnFormat::from_name("llama-3"), Some(TurnFormat::Llama3));
        assert_eq!(TurnFormat::from_name("nonsense"), None);
    }

    #[test]
    fn every_template_renders_a_conversation() {
        let messages = [
            ChatMessage::system("Be brief."),
            ChatMessage::user("Hi"),
            ChatMessage::assistant("Hello!"),
            ChatMessage::user("Bye"),
        ];
        for format in TurnFormat::ALL {
            let t = ChatTemplate::new(Some(format.template()), "<s>", "</s>").unwrap();
            let out = t.render(&messages, true).unwrap();
            for text in ["Be brief.", "Hi", "Hello!", "Bye"] {
                assert!(out.contains(text), "{format}: {out:?}");
            }
            // No conversation at all renders too (a template must not index an empty list).
            t.render(&[], true).unwrap();
        }
    }
}
