//! `POST /v1/chat/completions`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use modelforge_core::json_schema::{any_object_grammar, schema_grammar};
use modelforge_core::{ChatMessage, Generation, LoadedModel, Role, TokenLogprob};
use serde::Deserialize;
use serde_json::{Value, json};

use super::tools::{self, Choice, Tool};
use super::validation::{self, MAX_TOP_LOGPROBS, Sampling};
use super::{OpenAiCaller, Out, collect, resolve_model, spawn_generation, sse, unix_now, usage};
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
    let rx =
        spawn_generation(Arc::clone(&state.metrics), plan.model, plan.prompt, plan.params.clone(), false);
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
            "id": call_id(),
            "type": "function",
            "function": { "name": name, "arguments": arguments },
        });
        return (json!({ "role": "assistant", "content": null, "tool_calls": [call] }), "tool_calls");
    }
    (json!({ "role": "assistant", "content": generation.text }), generation.finish_reason.as_str())
}

/// A new tool call id, `call_` and 32 hex digits.
fn call_id() -> String {
    format!("call_{}", modelforge_core::MessageId::new().to_string().replace('-', ""))
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

/// How a streamed answer goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Text goes out as it comes.
    Text,
    /// Text is held back: it is (a forced call) or may still be (tools with "auto") a tool
    /// call, which must never leak out as content.
    Held,
}

/// Whether an answer that begins with `text` may still turn out to be a tool call as
/// [`tools::parse_call`] reads one: `{"name": ...}` (or `"arguments"` / `"parameters"`
/// first), bare or after a `<tool_call>` tag. An empty beginning may be anything.
fn could_be_call(text: &str) -> bool {
    const TAG: &str = "<tool_call>";
    let text = text.trim_start();
    if TAG.starts_with(text) {
        return true;
    }
    let text = text.strip_prefix(TAG).unwrap_or(text).trim_start();
    let Some(body) = text.strip_prefix('{') else { return text.is_empty() };
    let body = body.trim_start();
    let Some(key) = body.strip_prefix('"') else { return body.is_empty() };
    // The key so far (up to its closing quote, if it has one).
    let key = key.split('"').next().unwrap_or_default();
    ["name", "arguments", "parameters"].iter().any(|k| k.starts_with(key))
}

/// The deltas of tool calls in OpenAI's streamed shape: for each call, its index, id, type
/// and name with empty arguments, then the arguments in pieces.
fn call_deltas(calls: &[Value]) -> Vec<Value> {
    /// Bytes of arguments per delta (cut on a character boundary).
    const PIECE: usize = 24;
    let mut deltas = Vec::new();
    for (index, call) in calls.iter().enumerate() {
        let (id, name) = (call["id"].as_str().unwrap_or_default(), call["function"]["name"].as_str());
        deltas.push(call_header(index, id, name.unwrap_or_default()));
        let mut arguments = call["function"]["arguments"].as_str().unwrap_or_default();
        while !arguments.is_empty() {
            let mut cut = arguments.len().min(PIECE);
            while !arguments.is_char_boundary(cut) {
                cut += 1;
            }
            let (piece, rest) = arguments.split_at(cut);
            deltas.push(call_arguments(index, piece));
            arguments = rest;
        }
    }
    deltas
}

/// The first delta of a streamed call: its index, id, type and name, with empty arguments.
fn call_header(index: usize, id: &str, name: &str) -> Value {
    json!({ "tool_calls": [{ "index": index, "id": id, "type": "function", "function": { "name": name, "arguments": "" } }] })
}

/// A later delta of a streamed call: a piece of its arguments.
fn call_arguments(index: usize, piece: &str) -> Value {
    json!({ "tool_calls": [{ "index": index, "function": { "arguments": piece } }] })
}

/// The start of a forced call as its grammar writes it, `{"name": "...", "arguments": `: the
/// name, and where the arguments begin in `text`. `None` until all of that has been written
/// (or if the call is written another way; it is then sent whole at the end).
fn call_start(text: &str) -> Option<(String, usize)> {
    let rest = text.trim_start().strip_prefix('{')?.trim_start().strip_prefix("\"name\"")?;
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let (name, used) = first_value::<String>(rest)?;
    let rest = rest[used..].trim_start().strip_prefix(',')?.trim_start().strip_prefix("\"arguments\"")?;
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    if rest.is_empty() {
        return None; // the arguments' first character is not written yet
    }
    Some((name, text.len() - rest.len()))
}

/// Where a JSON value that starts `text` ends, if it has ended (the arguments of a call are an
/// object, so what follows them cannot make them longer).
fn value_end(text: &str) -> Option<usize> {
    first_value::<serde::de::IgnoredAny>(text).map(|(_, end)| end)
}

/// The JSON value that starts `text` and the bytes it takes; `None` while it is incomplete.
fn first_value<T: serde::de::DeserializeOwned>(text: &str) -> Option<(T, usize)> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<T>();
    let value = values.next()?.ok()?;
    Some((value, values.byte_offset()))
}

/// A forced call whose arguments are streaming: where they begin in the text, and how much of
/// the text has gone out.
struct Streaming {
    start: usize,
    sent: usize,
}

impl Streaming {
    /// The arguments written in `held` since the last call, up to their end: never the call's
    /// own closing brace.
    fn next<'h>(&mut self, held: &'h str) -> &'h str {
        let end = value_end(&held[self.start..]).map_or(held.len(), |e| self.start + e);
        let piece = &held[self.sent..end];
        self.sent = end;
        piece
    }
}

/// Streams `chat.completion.chunk` events: the role first, then the text, the finish reason,
/// `usage` if asked, and `[DONE]`. A forced tool call streams as OpenAI's do: its id and name
/// once the name is written, then its arguments as they are generated. An answer to "auto"
/// tools is held back as long as it may still be a call, and a call goes out at the end as
/// `tool_calls` deltas; a call ends with the finish reason `tool_calls`. An error after the
/// stream began is sent as a `{"error": ...}` event.
fn stream(
    state: AppState,
    plan: Plan,
    id: String,
    include_usage: bool,
) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
    let mut rx =
        spawn_generation(Arc::clone(&state.metrics), plan.model, plan.prompt, plan.params.clone(), true);
    let created = unix_now();
    let (model_id, tools, choice, with_logprobs) =
        (plan.model_id, plan.tools, plan.choice, plan.params.logprobs.is_some());
    // A forced call stays held; an "auto" answer until it cannot be a call any more.
    let sniffs = choice == Choice::Auto;
    let mut mode = if choice == Choice::None { Mode::Text } else { Mode::Held };
    sse(move |tx| async move {
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
        let content = |text: &str, tokens: &[TokenLogprob]| {
            let logprobs = with_logprobs.then(|| logprobs_json(tokens));
            chunk(delta(json!({ "content": text }), logprobs, None), None)
        };
        if tx.send(chunk(delta(json!({ "role": "assistant", "content": "" }), None, None), None)).is_err() {
            return;
        }
        let arguments = |piece: &str| chunk(delta(call_arguments(0, piece), None, None), None);
        let (mut held, mut held_tokens) = (String::new(), Vec::new());
        let mut streaming: Option<Streaming> = None;
        while let Some(out) = rx.recv().await {
            let sent = match out {
                Out::Piece(piece, tokens) if mode == Mode::Text => tx.send(content(&piece, &tokens)),
                Out::Piece(piece, tokens) => {
                    held.push_str(&piece);
                    held_tokens.extend(tokens);
                    if sniffs && !could_be_call(&held) {
                        mode = Mode::Text;
                        tx.send(content(&std::mem::take(&mut held), &std::mem::take(&mut held_tokens)))
                    } else if sniffs {
                        Ok(())
                    } else {
                        // A forced call: the header once its name is known, then the arguments
                        // written so far (never the call's own closing brace).
                        let mut sent = Ok(());
                        if streaming.is_none()
                            && let Some((name, start)) = call_start(&held)
                        {
                            streaming = Some(Streaming { start, sent: start });
                            sent = tx.send(chunk(delta(call_header(0, &call_id(), &name), None, None), None));
                        }
                        if let Some(s) = streaming.as_mut() {
                            let piece = s.next(&held);
                            if !piece.is_empty() && sent.is_ok() {
                                sent = tx.send(arguments(piece));
                            }
                        }
                        sent
                    }
                }
                Out::Done(Ok(generation)) => {
                    let finish = if let Some(s) = streaming.as_mut() {
                        // The call's arguments went out as they came: the rest of them (a call
                        // cut short by max_tokens ends with "length").
                        let piece = s.next(&held);
                        if !piece.is_empty() {
                            let _ = tx.send(arguments(piece));
                        }
                        let complete = tools::parse_call(&generation.text, &tools).is_some();
                        if complete { "tool_calls" } else { generation.finish_reason.as_str() }
                    } else {
                        let (message, finish) = match mode {
                            // Text already went out: the answer is text, whatever it looks like.
                            Mode::Text => (Value::Null, generation.finish_reason.as_str()),
                            Mode::Held => answer(&generation, &tools, &choice),
                        };
                        if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
                            for d in call_deltas(calls) {
                                let _ = tx.send(chunk(delta(d, None, None), None));
                            }
                        } else if mode == Mode::Held && !generation.text.is_empty() {
                            let _ = tx.send(content(&generation.text, &held_tokens));
                        }
                        finish
                    };
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
    })
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
    fn a_forced_call_is_read_as_it_is_written() {
        assert_eq!(call_start("{\"name\": \"weath"), None, "the name is not complete");
        assert_eq!(call_start("{\"name\": \"weather\", \"argum"), None);
        assert_eq!(
            call_start("{\"name\": \"weather\", \"arguments\": "),
            None,
            "nothing of the arguments yet"
        );
        let text = " { \"name\" : \"we\\\"ather\" , \"arguments\" : {\"city\": \"O";
        let (name, start) = call_start(text).unwrap();
        assert_eq!((name.as_str(), &text[start..]), ("we\"ather", "{\"city\": \"O"));
        assert_eq!(
            call_start("{\"arguments\": {}, \"name\": \"weather\"}"),
            None,
            "another order waits for the end"
        );

        assert_eq!(value_end("{\"city\": \"O"), None);
        assert_eq!(value_end("{\"city\": \"Oslo\"}}"), Some(16), "not the call's own brace");
        assert_eq!(value_end("{\"a\": \"}{\\\"\", \"b\": [1, {\"c\": 2}]} "), Some(33));
    }

    #[test]
    fn an_answer_may_be_a_call_only_while_it_looks_like_one() {
        for maybe in [
            "",
            "  ",
            "<tool",
            "<tool_call>\n",
            "{",
            " {\"na",
            "{\"name\": \"get_weather\", \"argu",
            "{ \"arguments\"",
        ] {
            assert!(could_be_call(maybe), "{maybe:?}");
        }
        for text in ["Hello", "The", "<b>", "{\"answer\"", "{ 3", "<tool_call>hi", "[1]"] {
            assert!(!could_be_call(text), "{text:?}");
        }
    }

    #[test]
    fn calls_stream_as_name_then_argument_pieces() {
        let arguments = format!("{{\"city\": \"{}\"}}", "é".repeat(20));
        let call = json!({ "id": "call_1", "type": "function", "function": { "name": "f", "arguments": arguments } });
        let deltas = call_deltas(&[call]);
        assert_eq!(
            deltas[0],
            json!({ "tool_calls": [{ "index": 0, "id": "call_1", "type": "function",
                "function": { "name": "f", "arguments": "" } }] })
        );
        assert!(deltas.len() > 2, "{deltas:?}");
        let joined: String = deltas[1..]
            .iter()
            .map(|d| d["tool_calls"][0]["function"]["arguments"].as_str().unwrap())
            .collect();
        assert_eq!(joined, arguments);
        assert!(
            deltas[1..]
                .iter()
                .all(|d| d["tool_calls"][0]["index"] == 0 && d["tool_calls"][0].get("id").is_none())
        );
    }

    #[test]
    fn top_logprobs_is_bounded_and_needs_logprobs() {
        assert_eq!(logprobs(Some(true), Some(5)).unwrap(), Some(5));
        assert_eq!(logprobs(None, None).unwrap(), None);
        assert!(logprobs(Some(true), Some(21)).is_err());
        assert!(logprobs(Some(false), Some(2)).is_err());
    }
}
