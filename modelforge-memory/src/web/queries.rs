//! Search queries written by the model: JSON under a grammar, so even a 135M model writes a
//! list of 1 to 3 short queries and nothing else.

use modelforge_core::{ChatMessage, GenerationParams, LoadedModel, Role};
use serde::Deserialize;

/// llama.cpp GBNF for the queries: `{"queries": [...]}` with one to three strings of 2 to 80
/// plain characters.
pub const QUERIES_GRAMMAR: &str = r#"root ::= "{" ws "\"queries\":" ws "[" ws query ( ws "," ws query ){0,2} ws "]" ws "}"
query ::= "\"" char{2,80} "\""
char ::= [^"\\\x00-\x1F]
ws ::= [ \n]{0,2}
"#;

const INSTRUCTIONS: &str = "You write web search queries. Given a conversation and the user's last \
message, write one to three short search queries that would find the facts needed to answer the last \
message, in the language of the message, with names and pronouns resolved from the conversation. \
Answer with JSON only.";

const EXAMPLE: (&str, &str) = (
    "Message: How tall is the Eiffel Tower, and when was it built?",
    r#"{"queries": ["Eiffel Tower height", "Eiffel Tower construction date"]}"#,
);

#[derive(Deserialize)]
struct Answer {
    queries: Vec<String>,
}

/// Up to `max` queries for `question` asked after `history`, or why the model could not write
/// them (a backend without grammar sampling, an answer that is not the JSON asked for).
pub fn write_queries(
    model: &dyn LoadedModel,
    history: &[ChatMessage],
    question: &str,
    max: usize,
) -> Result<Vec<String>, String> {
    let mut context = String::new();
    let said: Vec<&ChatMessage> = history.iter().filter(|m| m.role != Role::System).collect();
    for message in &said[said.len().saturating_sub(4)..] {
        let text: String = message.content.chars().take(300).collect();
        context.push_str(&format!("{}: {text}\n", message.role));
    }
    let asked = if context.is_empty() {
        format!("Message: {question}")
    } else {
        format!("Conversation so far:\n{context}\nMessage: {question}")
    };
    let messages = [
        ChatMessage::system(INSTRUCTIONS),
        ChatMessage::user(EXAMPLE.0),
        ChatMessage::assistant(EXAMPLE.1),
        ChatMessage::user(asked),
    ];
    let params = GenerationParams {
        max_tokens: 160,
        grammar: Some(QUERIES_GRAMMAR.to_owned()),
        ..GenerationParams::greedy()
    };
    let generation = model
        .chat(&messages, &params, &mut |_| std::ops::ControlFlow::Continue(()))
        .map_err(|err| format!("the model could not write search queries: {err}"))?;
    let answer: Answer = serde_json::from_str(generation.text.trim())
        .map_err(|err| format!("the model's search queries are not the JSON asked for ({err})"))?;
    let mut queries: Vec<String> = Vec::new();
    for query in answer.queries {
        let query = query.trim().to_owned();
        if !query.is_empty() && !queries.iter().any(|q| q.eq_ignore_ascii_case(&query)) {
            queries.push(query);
        }
    }
    queries.truncate(max.max(1));
    if queries.is_empty() {
        return Err("the model wrote no search query".to_owned());
    }
    Ok(queries)
}
