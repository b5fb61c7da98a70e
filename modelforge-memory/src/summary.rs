//! Summaries of the older part of a long conversation, made by the model itself.

use modelforge_core::{ChatMessage, GenerationParams, LoadedModel, MemoryError, Role};

const INSTRUCTIONS: &str = "Summarize the conversation below in a few short sentences. Keep names, \
numbers, decisions and what the user asked for; leave out small talk. Write only the summary.";

/// The most tokens a summary may have.
pub const SUMMARY_MAX_TOKENS: u32 = 200;

/// Summarizes `messages` with `model`, folding in `previous` (the summary of what came before
/// them). Messages that do not fit the model's context in one go are summarized in parts, each
/// part's summary carried into the next, so any length can be summarized; nothing is cut.
pub fn summarize(
    model: &dyn LoadedModel,
    previous: Option<&str>,
    messages: &[ChatMessage],
) -> Result<String, MemoryError> {
    let count = |text: &str| model.count_tokens(text).unwrap_or(text.len());
    // Room for the instructions, the running summary and the answer; the rest is transcript.
    let room =
        (model.context_length() as usize).saturating_sub(2 * SUMMARY_MAX_TOKENS as usize + 200).max(64);
    let mut summary = previous.map(str::to_owned);
    let mut part = String::new();
    let mut part_tokens = 0;
    for message in messages.iter().filter(|m| m.role != Role::System) {
        let who = if message.role == Role::User { "User" } else { "Assistant" };
        let mut line = format!("{who}: {}\n", message.content.trim());
        let mut tokens = count(&line);
        if tokens > room {
            // One message longer than the whole window: keep its start and say it was cut.
            let keep = line.chars().count() * room / tokens / 2;
            line = format!("{who}: {} [...]\n", message.content.chars().take(keep).collect::<String>());
            tokens = count(&line);
        }
        if part_tokens + tokens > room && !part.is_empty() {
            summary = Some(summarize_part(model, summary.as_deref(), &part)?);
            part.clear();
            part_tokens = 0;
        }
        part.push_str(&line);
        part_tokens += tokens;
    }
    if !part.is_empty() {
        summary = Some(summarize_part(model, summary.as_deref(), &part)?);
    }
    summary.ok_or_else(|| MemoryError::Summary { reason: "there was nothing to summarize".into() })
}

fn summarize_part(
    model: &dyn LoadedModel,
    previous: Option<&str>,
    transcript: &str,
) -> Result<String, MemoryError> {
    let mut request = String::new();
    if let Some(previous) = previous {
        request.push_str(&format!("Summary so far: {previous}\n\n"));
    }
    request.push_str(&format!("Conversation:\n{transcript}"));
    let messages = [ChatMessage::system(INSTRUCTIONS), ChatMessage::user(request)];
    let params = GenerationParams { max_tokens: SUMMARY_MAX_TOKENS, ..GenerationParams::greedy() };
    let generation = model.chat(&messages, &params, &mut |_| std::ops::ControlFlow::Continue(()))?;
    let text = generation.text.trim().to_owned();
    if text.is_empty() {
        return Err(MemoryError::Summary { reason: "the model wrote an empty summary".into() });
    }
    tracing::debug!(tokens = generation.usage.completion_tokens, "summarized part of a conversation");
    Ok(text)
}
