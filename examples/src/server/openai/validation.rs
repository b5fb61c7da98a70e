//! Requests to `/v1` checked field by field before anything reaches a model, as
//! text-generation-inference's `validation.rs` does: each failure is a 400 naming the field
//! (OpenAI's `param`), and the checked request becomes [`GenerationParams`].

use std::collections::HashMap;

use modelforge_core::{ChatMessage, GenerationParams, ToolCall};
use serde::Deserialize;
use serde_json::Value;

use crate::server::ApiError;

/// The most alternatives `top_logprobs` may ask for (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: u32 = 20;

/// OpenAI accepts one stop string or a list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum StopField {
    /// `"stop": "\n"`
    One(String),
    /// `"stop": ["\n", "END"]`
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` and no choices.
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// The sampling fields `chat/completions` and `completions` share. Every field may be absent
/// or `null`, as OpenAI's clients send them.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Sampling {
    /// Which model answers.
    pub model: Option<String>,
    /// Stream server-sent events.
    pub stream: Option<bool>,
    /// Options of the stream.
    pub stream_options: Option<StreamOptions>,
    /// The most tokens to generate.
    pub max_tokens: Option<u32>,
    /// Softmax temperature, 0 to 2.
    pub temperature: Option<f32>,
    /// Nucleus sampling, 0 to 1.
    pub top_p: Option<f32>,
    /// Seed of the sampler.
    pub seed: Option<i64>,
    /// Stop strings.
    pub stop: Option<StopField>,
    /// -2 to 2.
    pub frequency_penalty: Option<f32>,
    /// -2 to 2.
    pub presence_penalty: Option<f32>,
    /// Token id (as a string) to a bias from -100 to 100.
    pub logit_bias: Option<HashMap<String, f32>>,
    /// How many choices; only 1 is served.
    pub n: Option<u32>,
}

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).with_param(param)
}

fn in_range(param: &str, value: Option<f32>, min: f32, max: f32) -> Result<(), ApiError> {
    match value {
        Some(v) if !(min..=max).contains(&v) => {
            Err(invalid(param, format!("`{param}` must be between {min} and {max}, not {v}")))
        }
        _ => Ok(()),
    }
}

impl Sampling {
    /// Whether to stream.
    pub fn streams(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether the stream ends with a usage chunk.
    pub fn include_usage(&self) -> bool {
        self.stream_options.and_then(|o| o.include_usage).unwrap_or(false)
    }

    /// The checked settings; `max_tokens` is `None` when the request leaves it to the server.
    pub fn params(&self, max_tokens: Option<u32>) -> Result<(GenerationParams, Option<u32>), ApiError> {
        in_range("temperature", self.temperature, 0.0, 2.0)?;
        in_range("top_p", self.top_p, 0.0, 1.0)?;
        in_range("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?;
        in_range("presence_penalty", self.presence_penalty, -2.0, 2.0)?;
        match self.n {
            None | Some(1) => {}
            Some(n) => {
                return Err(invalid(
                    "n",
                    format!(
                        "`n` = {n} is not supported: this server makes one choice per request (send n = 1, or several requests)"
                    ),
                ));
            }
        }
        if max_tokens == Some(0) {
            return Err(invalid("max_tokens", "`max_tokens` must be at least 1"));
        }
        let mut logit_bias = Vec::new();
        for (token, bias) in self.logit_bias.iter().flatten() {
            let id = token.parse::<u32>().map_err(|_| {
                invalid("logit_bias", format!("logit_bias keys are token ids, not `{token}`"))
            })?;
            if !(-100.0..=100.0).contains(bias) {
                return Err(invalid(
                    "logit_bias",
                    format!("the bias of token {id} must be between -100 and 100"),
                ));
            }
            logit_bias.push((id, *bias));
        }
        let stop = match &self.stop {
            None => Vec::new(),
            Some(StopField::One(s)) => vec![s.clone()],
            Some(StopField::Many(v)) => v.clone(),
        };
        if stop.iter().any(String::is_empty) {
            return Err(invalid("stop", "stop strings must not be empty"));
        }
        // OpenAI's defaults: temperature 1, top_p 1, no top-k or min-p.
        let defaults = GenerationParams::default();
        let params = GenerationParams {
            temperature: self.temperature.unwrap_or(1.0),
            top_p: self.top_p.unwrap_or(1.0),
            top_k: 0,
            min_p: 0.0,
            seed: self.seed.map_or(defaults.seed, |s| s as u64),
            stop,
            frequency_penalty: self.frequency_penalty.unwrap_or(0.0),
            presence_penalty: self.presence_penalty.unwrap_or(0.0),
            logit_bias,
            ..defaults
        };
        Ok((params, max_tokens))
    }
}

/// Text of a message's `content`: a string, a list of `{"type": "text", "text": ...}` parts,
/// or nothing (an assistant message that only calls tools).
fn content_text(content: Option<&Value>, param: &str) -> Result<String, ApiError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (i, part) in parts.iter().enumerate() {
                match (part.get("type").and_then(Value::as_str), part.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(text)) => texts.push(text),
                    (Some(kind), _) if kind != "text" => {
                        return Err(invalid(
                            &format!("{param}[{i}].type"),
                            format!("content parts of type `{kind}` are not supported: only text"),
                        ));
                    }
                    _ => {
                        return Err(invalid(
                            &format!("{param}[{i}]"),
                            "a content part must be {\"type\": \"text\", \"text\": \"...\"}",
                        ));
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        Some(_) => Err(invalid(param, "`content` must be a string or a list of content parts")),
    }
}

/// The conversation as the model's template sees it. `developer` is a system message; an
/// assistant's `tool_calls` and tool results (`tool`, or the older `function`) keep their
/// structure, so the template shows them its own way (or as labelled text when it has none).
pub fn messages(raw: &[Value]) -> Result<Vec<ChatMessage>, ApiError> {
    if raw.is_empty() {
        return Err(invalid("messages", "`messages` must hold at least one message"));
    }
    let mut out: Vec<ChatMessage> = Vec::with_capacity(raw.len());
    for (i, message) in raw.iter().enumerate() {
        let at = format!("messages[{i}]");
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&format!("{at}.role"), format!("{at} has no `role` string")))?;
        let content = content_text(message.get("content"), &format!("{at}.content"))?;
        let message = match role {
            "system" | "developer" => ChatMessage::system(content),
            "user" => ChatMessage::user(content),
            "assistant" => ChatMessage::assistant_with_calls(content, tool_calls(message, &at)?),
            "tool" | "function" => {
                let call_id = message.get("tool_call_id").and_then(Value::as_str).map(str::to_owned);
                // The function's name: the older `function` role sends it; for `tool`, the
                // assistant message that made the call has it.
                let name = message.get("name").and_then(Value::as_str).map(str::to_owned).or_else(|| {
                    let id = call_id.as_deref()?;
                    out.iter()
                        .rev()
                        .flat_map(|m| &m.tool_calls)
                        .find(|call| call.id == id)
                        .map(|call| call.name.clone())
                });
                ChatMessage::tool(call_id, name, content)
            }
            other => {
                return Err(invalid(
                    &format!("{at}.role"),
                    format!(
                        "unknown role `{other}` in {at} (expected system, developer, user, assistant or tool)"
                    ),
                ));
            }
        };
        out.push(message);
    }
    Ok(out)
}

/// An assistant message's `tool_calls`: `[{id, type: "function", function: {name,
/// arguments}}]`, the arguments a JSON string (an object is accepted too).
fn tool_calls(message: &Value, at: &str) -> Result<Vec<ToolCall>, ApiError> {
    let calls = match message.get("tool_calls") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(calls)) => calls,
        Some(_) => return Err(invalid(&format!("{at}.tool_calls"), "`tool_calls` must be a list")),
    };
    calls
        .iter()
        .enumerate()
        .map(|(j, call)| {
            let at = format!("{at}.tool_calls[{j}]");
            let name = call.pointer("/function/name").and_then(Value::as_str).ok_or_else(|| {
                invalid(&format!("{at}.function.name"), "a tool call needs `function.name`")
            })?;
            let arguments = match call.pointer("/function/arguments") {
                None | Some(Value::Null) => "{}".to_owned(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            let id =
                call.get("id").and_then(Value::as_str).map_or_else(|| format!("call_{j}"), str::to_owned);
            Ok(ToolCall { id, name: name.to_owned(), arguments })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use modelforge_core::Role;
    use serde_json::json;

    use super::*;

    #[test]
    fn content_parts_developer_and_tool_messages_are_read() {
        let raw = [
            json!({ "role": "developer", "content": "Be brief." }),
            json!({ "role": "user", "content": [{ "type": "text", "text": "a" }, { "type": "text", "text": "b" }] }),
            json!({ "role": "assistant", "content": null, "tool_calls": [{ "id": "c1", "type": "function",
                "function": { "name": "f", "arguments": "{\"x\":1}" } }] }),
            json!({ "role": "tool", "tool_call_id": "c1", "content": "42" }),
        ];
        let got = messages(&raw).unwrap();
        assert_eq!(got[0], ChatMessage::system("Be brief."));
        assert_eq!(got[1], ChatMessage::user("a\nb"));
        assert_eq!(got[2].role, Role::Assistant);
        assert_eq!(
            got[2].tool_calls,
            [ToolCall { id: "c1".into(), name: "f".into(), arguments: "{\"x\":1}".into() }]
        );
        assert_eq!(got[3], ChatMessage::tool(Some("c1".into()), Some("f".into()), "42"));
    }

    #[test]
    fn bad_messages_name_the_field() {
        for (raw, param) in [
            (vec![], "messages"),
            (vec![json!({ "role": "wizard", "content": "x" })], "messages[0].role"),
            (vec![json!({ "content": "x" })], "messages[0].role"),
            (vec![json!({ "role": "user", "content": 3 })], "messages[0].content"),
            (
                vec![json!({ "role": "assistant", "tool_calls": [{ "id": "c", "function": {} }] })],
                "messages[0].tool_calls[0].function.name",
            ),
            (
                vec![json!({ "role": "user", "content": [{ "type": "image_url" }] })],
                "messages[0].content[0].type",
            ),
        ] {
            let err = messages(&raw).unwrap_err();
            assert_eq!((err.status.as_u16(), err.param.as_deref()), (400, Some(param)), "{err}");
        }
    }

    #[test]
    fn sampling_fields_are_checked() {
        let ok = Sampling { stop: Some(StopField::One("\n".into())), seed: Some(-1), ..Sampling::default() };
        let (params, _) = ok.params(Some(5)).unwrap();
        assert_eq!(params.stop, ["\n"]);
        for (bad, param) in [
            (Sampling { n: Some(2), ..Sampling::default() }, "n"),
            (Sampling { temperature: Some(3.0), ..Sampling::default() }, "temperature"),
            (
                Sampling { logit_bias: Some([("x".to_owned(), 1.0)].into()), ..Sampling::default() },
                "logit_bias",
            ),
            (Sampling { stop: Some(StopField::Many(vec![String::new()])), ..Sampling::default() }, "stop"),
        ] {
            assert_eq!(bad.params(None).unwrap_err().param.as_deref(), Some(param));
        }
        assert_eq!(Sampling::default().params(Some(0)).unwrap_err().param.as_deref(), Some("max_tokens"));
    }
}
