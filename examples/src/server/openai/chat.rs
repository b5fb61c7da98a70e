//! `POST /v1/chat/completions`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use modelforge_core::json_schema::{any_object_grammar, schema_grammar};
use modelforge_core::{ChatMessage, Generation, LoadedModel, Role, TokenLogprob};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::tools::{self, Choice, Tool};
use super::validation::{self, MAX_TOP_LOGPROBS, Sampling};
use super::{OpenAiCaller, Out, collect, resolve_model, spawn_generation, unix_now, usage};
use crate::server::error::Body;
use crate::server::{ApiError, AppState, blocking};

/// The reply budget when a request sets none: what is left of the context, up to this.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// OpenAI's chat completion request; fields not listed are accepted and ignored.
#[derive(Deserialize)]
pub struct ChatRequest {
    #[serde(flatten)]
    sampling: Sampling,
    messages: Vec<Value>,
    max_completion_tokens: Option<u32>,
    response_format: Option<Value>,
    logprobs: Option<bool>,
    top_logprobs: Option<u32>,
    tools: Option<Vec<Tool>>,
    tool_choice: Option<Value>,
}

/// What a checked request asks the model for.
struct Plan {
    model: Arc<dyn LoadedModel>,
    model_id: String,
    prompt: String,
    params: modelforge_core::GenerationParams,
    tools: Vec<Tool>,
    choice: Choice,
}

pub(super) async fn chat_completions(
    State(state): State<AppState>,
    _: OpenAiCaller,
    Body(req): Body<ChatRequest>,
) -> Result<Response, ApiError> {
    let messages = validation::messages(&req.messages)?;
    let (mut params, max_tokens) =
        req.sampling.params(req.max_completion_tokens.or(req.sampling.max_tokens))?;
    let tools = req.tools.clone().unwrap_or_default();
    let choice = tools::choice(&tools, req.tool_choice.as_ref())?;
    params.grammar = match tools::forced_call_grammar(&tools, &choice)? {
        Some(grammar) => Some(grammar),
        None => response_format_grammar(req.response_format.as_ref())?,
    };
    params.logprobs = logprobs(req.logprobs, req.top_logprobs)?;
    let (model, model_id) = resolve_model(&state, req.sampling.model.clone()).await?;
    let (prompt, params) = {
        let (model, tools, choice) = (Arc::clone(&model), tools.clone(), choice.clone());
        blocking(move || {
            let prompt = render(model.as_ref(), messages, &tools, &choice)?;
            params.max_tokens = budget(model.as_ref(), &prompt, max_tokens)?;
            Ok((prompt, params))
        })
        .await?
    };
    let plan = Plan { model, model_id, prompt, params, tools, choice };
    let id = format!("chatcmpl-{}", modelforge_core::MessageId::new());
    if req.sampling.streams() {
        return Ok(stream(state, plan, id, req.sampling.include_usage()).into_response());
    }
    let rx = spawn_generation(Arc::clone(&state.metrics), plan.model, plan.prompt, plan.params.clone());
    let (generation, tokens) = collect(rx).await?;
    let (message, finish_reason) = answer(&generation, &plan.tools, &plan.choice);
    let logprobs = plan.params.logprobs.map(|_| logprobs_json(&tokens));
    Ok(Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": plan.model_id,
        "system_fingerprint": null,
        "choices": [{ "index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish_reason }],
        "usage": usage(&generation),
    }))
    .into_response())
}

/// The prompt: the template renders the tools where it can; otherwise a system message
/// describes them.
fn render(
    model: &dyn LoadedModel,
    mut messages: Vec<ChatMessage>,
    tools: &[Tool],
    choice: &Choice,
) -> Result<String, ApiError> {
    if tools.is_empty() || *choice == Choice::None {
        return Ok(model.render_chat(&messages, true)?);
    }
    if let Some(prompt) = model.render_chat_with_tools(&messages, &tools::as_json(tools), true)? {
        return Ok(prompt);
    }
    let description = tools::describe(tools);
    match messages.first_mut() {
        Some(first) if first.role == Role::System => {
            first.content = format!("{}\n\n{description}", first.content);
        }
        _ => messages.insert(0, ChatMessage::system(description)),
    }
    Ok(model.render_chat(&messages, true)?)
}

/// The reply budget: the request's, else what is left of the context (at most
/// [`DEFAULT_MAX_TOKENS`]). A prompt that does not fit is left for the backend to refuse with
/// the numbers.
pub(super) fn budget(model: &dyn LoadedModel, prompt: &str, asked: Option<u32>) -> Result<u32, ApiError> {
    if let Some(max_tokens) = asked {
        return Ok(max_tokens);
    }
    // One more than the text's tokens, for a beginning-of-sequence token.
    let prompt_tokens = model.count_tokens(prompt)? as u32 + 1;
    Ok(model.context_length().saturating_sub(prompt_tokens).clamp(1, DEFAULT_MAX_TOKENS))
}

/// The grammar `response_format` asks for: none for `text`, any JSON object for
/// `json_object`, the schema's for `json_schema` (a schema that is not one is a 400).
fn response_format_grammar(raw: Option<&Value>) -> Result<Option<String>, ApiError> {
    let Some(format) = raw.filter(|v| !v.is_null()) else { return Ok(None) };
    let invalid = |param: &str, message: String| ApiError::bad_request(message).with_param(param);
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(any_object_grammar())),
        Some("json_schema") => match format.pointer("/json_schema/schema") {
            None | Some(Value::Null) => Ok(Some(any_object_grammar())),
            Some(schema) => schema_grammar(schema)
                .map(Some)
                .map_err(|e| invalid("response_format.json_schema.schema", e.to_string())),
        },
        Some(other) => Err(invalid(
            "response_format.type",
            format!("response_format `{other}` is not supported (text, json_object or json_schema)"),
        )),
        None => Err(invalid("response_format", "response_format needs a `type`".into())),
    }
}

/// `logprobs` and `top_logprobs` as the number of alternatives to report.
fn logprobs(on: Option<bool>, top: Option<u32>) -> Result<Option<u32>, ApiError> {
    let invalid = |message: &str| ApiError::bad_request(message).with_param("top_logprobs");
    match (on.unwrap_or(false), top) {
        (_, Some(top)) if top > MAX_TOP_LOGPROBS => Err(invalid("top_logprobs must be between 0 and 20")),
        (false, Some(_)) => Err(invalid("top_logprobs needs logprobs: true")),
        (false, None) => Ok(None),
        (true, top) => Ok(Some(top.unwrap_or(0))),
    }
}

/// The assistant's message and finish reason: a tool call when the tools allow one and the
/// text is one, else the text.
fn answer(generation: &Generation, tools: &[Tool], choice: &Choice) -> (Value, &'static str) {
    if *choice != Choice::None
        && let Some((name, arguments)) = tools::parse_call(&generation.text, tools)
    {
        let call = json!({
            "id": format!("call_{}", modelforge_core::MessageId::new().to_string().replace('-', "")),
            "type": "function",
            "function": { "name": name, "arguments": arguments },
        });
        return (json!({ "role": "assistant", "content": null, "tool_calls": [call] }), "tool_calls");
    }
    (json!({ "role": "assistant", "content": generation.text }), generation.finish_reason.as_str())
}

/// `logprobs` of a choice or a chunk, in OpenAI's chat shape.
fn logprobs_json(tokens: &[TokenLogprob]) -> Value {
    let content: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let top: Vec<Value> = t
                .top
                .iter()
                .map(|a| json!({ "token": a.token, "logprob": a.logprob, "bytes": a.bytes }))
                .collect();
            json!({ "token": t.token, "logprob": t.logprob, "bytes": t.bytes, "top_logprobs": top })
        })
        .collect();
    json!({ "content": content, "refusal": null })
}

/// Streams `chat.completion.chunk` events: the role first, then the text (or, for a forced
/// tool call, the whole call once it is complete), the finish reason, `usage` if asked, and
/// `[DONE]`. An error after the stream began is sent as a `{"error": ...}` event.
fn stream(
    state: AppState,
    plan: Plan,
    id: String,
    include_usage: bool,
) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
    let mut rx = spawn_generation(Arc::clone(&state.metrics), plan.model, plan.prompt, plan.params.clone());
    let (tx, events) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let created = unix_now();
    let (model_id, tools, choice, with_logprobs) =
        (plan.model_id, plan.tools, plan.choice, plan.params.logprobs.is_some());
    // Text is held back while it may be a tool call, so a call never leaks out as content.
    let holds_back = matches!(choice, Choice::Required | Choice::Named(_));
    tokio::spawn(async move {
        let chunk = |choices: Value, usage_value: Option<Value>| {
            let mut body = json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model_id,
                "system_fingerprint": null, "choices": choices,
            });
            if include_usage {
                body["usage"] = usage_value.unwrap_or(Value::Null);
            }
            Event::default().data(body.to_string())
        };
        let delta = |delta: Value, logprobs: Option<Value>, finish: Option<&str>| json!([{ "index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish }]);
        if tx.send(chunk(delta(json!({ "role": "assistant", "content": "" }), None, None), None)).is_err() {
            return;
        }
        while let Some(out) = rx.recv().await {
            let sent = match out {
                Out::Piece(_, _) if holds_back => Ok(()),
                Out::Piece(piece, tokens) => {
                    let logprobs = with_logprobs.then(|| logprobs_json(&tokens));
                    tx.send(chunk(delta(json!({ "content": piece }), logprobs, None), None))
                }
                Out::Done(Ok(generation)) => {
                    let (message, finish) = answer(&generation, &tools, &choice);
                    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
                        let calls: Vec<Value> = calls
                            .iter()
                            .enumerate()
                            .map(|(i, c)| {
                                let mut c = c.clone();
                                c["index"] = json!(i);
                                c
                            })
                            .collect();
                        let _ = tx.send(chunk(delta(json!({ "tool_calls": calls }), None, None), None));
                    } else if holds_back {
                        let _ =
                            tx.send(chunk(delta(json!({ "content": generation.text }), None, None), None));
                    }
                    let _ = tx.send(chunk(delta(json!({}), None, Some(finish)), None));
                    if include_usage {
                        let _ = tx.send(chunk(json!([]), Some(usage(&generation))));
                    }
                    break;
                }
                Out::Done(Err(err)) => {
                    let _ = tx.send(Event::default().data(ApiError::from(err).body().to_string()));
                    break;
                }
            };
            if sent.is_err() {
                return; // the client left: dropping `rx` stops the generation
            }
        }
        let _ = tx.send(Event::default().data("[DONE]"));
    });
    let events = tokio_stream::StreamExt::map(UnboundedReceiverStream::new(events), Ok::<_, Infallible>);
    Sse::new(events).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_formats_become_grammars_or_400s() {
        assert_eq!(response_format_grammar(Some(&json!({ "type": "text" }))).unwrap(), None);
        assert!(response_format_grammar(Some(&json!({ "type": "json_object" }))).unwrap().is_some());
        let schema = json!({ "type": "json_schema", "json_schema": { "name": "x", "schema": { "type": "object",
            "properties": { "a": { "type": "integer" } }, "required": ["a"] } } });
        assert!(response_format_grammar(Some(&schema)).unwrap().unwrap().contains("integer"));
        let broken =
            json!({ "type": "json_schema", "json_schema": { "name": "x", "schema": { "type": "thing" } } });
        let err = response_format_grammar(Some(&broken)).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.param.as_deref()),
            (400, Some("response_format.json_schema.schema"))
        );
        assert!(response_format_grammar(Some(&json!({ "type": "yaml" }))).is_err());
    }

    #[test]
    fn top_logprobs_is_bounded_and_needs_logprobs() {
        assert_eq!(logprobs(Some(true), Some(5)).unwrap(), Some(5));
        assert_eq!(logprobs(None, None).unwrap(), None);
        assert!(logprobs(Some(true), Some(21)).is_err());
        assert!(logprobs(Some(false), Some(2)).is_err());
    }
}
