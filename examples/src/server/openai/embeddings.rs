//! `POST /v1/embeddings` with the server's sentence embedder (the one memory search uses).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use modelforge_core::Embedder;
use serde::Deserialize;
use serde_json::{Value, json};

use super::OpenAiCaller;
use crate::server::error::Body;
use crate::server::{ApiError, AppState, blocking};

/// Most texts in one request.
const MAX_INPUTS: usize = 2048;

/// The embedder `/v1/embeddings` serves, and the name requests use for it.
#[derive(Clone)]
pub struct ServedEmbedder {
    /// The model name, e.g. `all-MiniLM-L6-v2`.
    pub name: String,
    /// The embedder.
    pub embedder: Arc<dyn Embedder>,
}

impl ServedEmbedder {
    /// Whether a request's `model` names this embedder: its name, or a Hub id ending in it
    /// (`sentence-transformers/all-MiniLM-L6-v2`), in any case.
    pub(super) fn answers_to(&self, model: &str) -> bool {
        model.rsplit('/').next().is_some_and(|tail| tail.eq_ignore_ascii_case(&self.name))
    }
}

/// OpenAI's embeddings request; fields not listed are accepted and ignored.
#[derive(Deserialize)]
pub struct EmbeddingRequest {
    model: Option<String>,
    input: Value,
    encoding_format: Option<String>,
}

fn inputs(input: &Value) -> Result<Vec<String>, ApiError> {
    let invalid = |message: &str| ApiError::bad_request(message).with_param("input");
    let texts = match input {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) if !items.is_empty() => {
            items.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>().ok_or_else(
                || invalid("`input` must be a string or a list of strings (token ids are not supported)"),
            )?
        }
        _ => return Err(invalid("`input` must be a string or a non-empty list of strings")),
    };
    if texts.len() > MAX_INPUTS {
        return Err(invalid("at most 2048 inputs per request"));
    }
    Ok(texts)
}

/// `encoding_format: "base64"`: the little-endian `f32` bytes in standard base64.
fn base64(vector: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(super) async fn embeddings(
    State(state): State<AppState>,
    _: OpenAiCaller,
    Body(req): Body<EmbeddingRequest>,
) -> Result<Json<Value>, ApiError> {
    let texts = inputs(&req.input)?;
    let as_base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!("encoding_format `{other}` is not float or base64"))
                .with_param("encoding_format"));
        }
    };
    let served = state.embedder.clone().ok_or_else(|| {
        ApiError::not_found("this server has no embedder (start it with --embedder DIR)").with_param("model")
    })?;
    if let Some(model) = req.model.as_deref().filter(|m| !served.answers_to(m)) {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "model_not_found",
            format!("no embedding model named `{model}`; this server embeds with `{}`", served.name),
        )
        .with_param("model"));
    }
    blocking(move || {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = served.embedder.embed(&refs)?;
        let tokens: usize = texts.iter().map(|t| served.embedder.count_tokens(t).unwrap_or(0)).sum();
        let data: Vec<Value> = vectors
            .iter()
            .enumerate()
            .map(|(index, v)| {
                let embedding = if as_base64 { json!(base64(v)) } else { json!(v) };
                json!({ "object": "embedding", "index": index, "embedding": embedding })
            })
            .collect();
        Ok(Json(json!({
            "object": "list",
            "data": data,
            "model": served.name,
            "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
        })))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_the_little_endian_floats() {
        // 1.0f32 is 00 00 80 3f.
        assert_eq!(base64(&[1.0]), "AACAPw==");
        assert_eq!(base64(&[1.0, 1.0, 1.0]), "AACAPwAAgD8AAIA/");
    }

    #[test]
    fn input_is_a_string_or_a_list_of_them() {
        assert_eq!(inputs(&json!("a")).unwrap(), ["a"]);
        assert_eq!(inputs(&json!(["a", "b"])).unwrap(), ["a", "b"]);
        assert!(inputs(&json!([])).is_err());
        assert!(inputs(&json!([1, 2])).is_err());
    }
}
