//! `POST /v1/completions`: a raw prompt continued, for clients that build their own prompts.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use modelforge_core::{Generation, TokenLogprob};
use serde::Deserialize;
use serde_json::{Value, json};

use super::validation::Sampling;
use super::{OpenAiCaller, Out, collect, resolve_model, spawn_generation, sse, unix_now, usage};
use crate::server::error::Body;
use crate::server::{ApiError, AppState};

/// OpenAI's legacy completions allow at most 5 alternatives per token.
const MAX_LOGPROBS: u32 = 5;

/// OpenAI's reply budget for completions when the request sets none.
const DEFAULT_MAX_TOKENS: u32 = 16;

/// OpenAI's completion request; fields not listed are accepted and ignored.
#[derive(Deserialize)]
pub struct CompletionRequest {
    #[serde(flatten)]
    sampling: Sampling,
    prompt: Value,
    logprobs: Option<u32>,
    echo: Option<bool>,
}

/// The prompt: a string, or a list holding one string.
fn prompt_text(prompt: &Value) -> Result<String, ApiError> {
    let invalid = |message: &str| ApiError::bad_request(message).with_param("prompt");
    match prompt {
        Value::String(text) => Ok(text.clone()),
        Value::Array(items) => match items.as_slice() {
            [Value::String(text)] => Ok(text.clone()),
            [_, _, ..] => Err(invalid("one prompt per request: send the others separately")),
            _ => Err(invalid("`prompt` must be a string or a list of one string")),
        },
        _ => Err(invalid("`prompt` must be a string or a list of one string")),
    }
}

pub(super) async fn completions(
    State(state): State<AppState>,
    _: OpenAiCaller,
    Body(req): Body<CompletionRequest>,
) -> Result<Response, ApiError> {
    let prompt = prompt_text(&req.prompt)?;
    if prompt.is_empty() {
        return Err(ApiError::bad_request("`prompt` must not be empty").with_param("prompt"));
    }
    let (mut params, max_tokens) = req.sampling.params(req.sampling.max_tokens)?;
    params.max_tokens = max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    params.logprobs = match req.logprobs {
        Some(n) if n > MAX_LOGPROBS => {
            return Err(ApiError::bad_request("`logprobs` must be between 0 and 5").with_param("logprobs"));
        }
        other => other,
    };
    let echo = req.echo.unwrap_or(false).then(|| prompt.clone());
    let (model, model_id) = resolve_model(&state, req.sampling.model.clone()).await?;
    let id = format!("cmpl-{}", modelforge_core::MessageId::new());
    let with_logprobs = params.logprobs.is_some();
    let rx = spawn_generation(Arc::clone(&state.metrics), model, prompt, params, req.sampling.streams());
    let reply = Reply { id, model_id, created: unix_now() };
    if req.sampling.streams() {
        return Ok(reply.stream(rx, echo, with_logprobs, req.sampling.include_usage()).into_response());
    }
    let (generation, tokens) = collect(rx).await?;
    let text = format!("{}{}", echo.unwrap_or_default(), generation.text);
    let logprobs = with_logprobs.then(|| logprobs_json(&tokens, 0));
    Ok(Json(reply.body(json!([choice(&text, logprobs, Some(&generation))]), Some(usage(&generation))))
        .into_response())
}

/// A choice of a completion or of a chunk.
fn choice(text: &str, logprobs: Option<Value>, done: Option<&Generation>) -> Value {
    json!({
        "index": 0,
        "text": text,
        "logprobs": logprobs,
        "finish_reason": done.map(|g| g.finish_reason.as_str()),
    })
}

/// OpenAI's legacy `logprobs`: parallel lists, `text_offset` counted from `offset`.
fn logprobs_json(tokens: &[TokenLogprob], offset: usize) -> Value {
    let mut at = offset;
    let mut offsets = Vec::with_capacity(tokens.len());
    for t in tokens {
        offsets.push(at);
        at += t.token.len();
    }
    let top: Vec<serde_json::Map<String, Value>> =
        tokens.iter().map(|t| t.top.iter().map(|a| (a.token.clone(), json!(a.logprob))).collect()).collect();
    json!({
        "tokens": tokens.iter().map(|t| &t.token).collect::<Vec<_>>(),
        "token_logprobs": tokens.iter().map(|t| t.logprob).collect::<Vec<_>>(),
        "top_logprobs": top,
        "text_offset": offsets,
    })
}

struct Reply {
    id: String,
    model_id: String,
    created: i64,
}

impl Reply {
    fn body(&self, choices: Value, usage: Option<Value>) -> Value {
        let mut body = json!({
            "id": self.id, "object": "text_completion", "created": self.created, "model": self.model_id,
            "system_fingerprint": null, "choices": choices,
        });
        if let Some(usage) = usage {
            body["usage"] = usage;
        }
        body
    }

    fn stream(
        self,
        mut rx: tokio::sync::mpsc::UnboundedReceiver<Out>,
        echo: Option<String>,
        with_logprobs: bool,
        include_usage: bool,
    ) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
        sse(move |tx| async move {
            let event = |body: Value| Event::default().data(body.to_string());
            if let Some(echo) = echo
                && tx.send(event(self.body(json!([choice(&echo, None, None)]), None))).is_err()
            {
                return;
            }
            let mut offset = 0;
            while let Some(out) = rx.recv().await {
                match out {
                    Out::Piece(piece, tokens) => {
                        let logprobs = with_logprobs.then(|| logprobs_json(&tokens, offset));
                        offset += piece.len();
                        if tx.send(event(self.body(json!([choice(&piece, logprobs, None)]), None))).is_err() {
                            return; // the client left: dropping `rx` stops the generation
                        }
                    }
                    Out::Done(Ok(generation)) => {
                        let _ = tx.send(event(self.body(json!([choice("", None, Some(&generation))]), None)));
                        if include_usage {
                            let _ = tx.send(event(self.body(json!([]), Some(usage(&generation)))));
                        }
                        break;
                    }
                    Out::Done(Err(err)) => {
                        let _ = tx.send(event(ApiError::from(err).body()));
                        break;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_is_one_string() {
        assert_eq!(prompt_text(&json!("Once")).unwrap(), "Once");
        assert_eq!(prompt_text(&json!(["Once"])).unwrap(), "Once");
        assert_eq!(prompt_text(&json!(["a", "b"])).unwrap_err().param.as_deref(), Some("prompt"));
        assert!(prompt_text(&json!(3)).is_err());
    }
}
