//! One chat turn: memories in, reply out, history and new memories stored.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use modelforge_core::{
    Actor, ChatMessage, Generation, GenerationParams, LoadedModel, Memory, MemoryExtractor, Session,
    SessionId, SessionStore,
};
use modelforge_memory::{ContextBudget, ContextReport, ContextRequest, apply_ops, assemble_context};
use serde::Serialize;

/// The system prompt used when the caller gives none.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful assistant.";

/// How long a title made from the first message may be, in characters.
const TITLE_CHARS: usize = 60;

/// What a turn produced.
#[derive(Debug, Serialize)]
pub struct TurnOutcome {
    /// The session the turn belongs to.
    pub session_id: SessionId,
    /// The reply, finish reason and token usage.
    #[serde(flatten)]
    pub generation: Generation,
    /// What the prompt included and left out.
    pub context: ContextReport,
    /// Memories stored or updated from this turn.
    pub memories_learned: Vec<Memory>,
    /// The messages the model was given (system prompt with memories, then history).
    #[serde(skip)]
    pub prompt_messages: Vec<ChatMessage>,
}

/// The pieces a turn needs.
pub struct Turn<'a> {
    /// Where sessions, messages and memories live.
    pub store: &'a dyn SessionStore,
    /// The model that replies.
    pub model: &'a dyn LoadedModel,
    /// Reads new memories from the turn.
    pub extractor: &'a dyn MemoryExtractor,
    /// The system prompt.
    pub system_prompt: &'a str,
    /// Sampling settings.
    pub params: &'a GenerationParams,
    /// Where to keep each session's model state (KV cache) between runs, if anywhere: a
    /// later run that continues the session skips processing its history again.
    pub state_dir: Option<&'a Path>,
}

impl Turn<'_> {
    /// A new session titled after its first message.
    pub fn new_session(
        &self,
        actor: &Actor,
        first_message: &str,
    ) -> Result<Session, modelforge_core::StoreError> {
        self.store.create_session(actor, &title_from(first_message))
    }

    /// Runs one turn in `session`: stores the user's message, assembles the prompt from the
    /// user's memories and as much history as fits, streams the reply to `on_piece`, stores
    /// it, and learns memories from the exchange.
    pub fn run(
        &self,
        actor: &Actor,
        session: SessionId,
        user_text: &str,
        on_piece: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> anyhow::Result<TurnOutcome> {
        let store = self.store;
        let user_message = ChatMessage::user(user_text);
        // Stored before generating, so a failed generation loses nothing the user wrote.
        let user_tokens = self.model.count_tokens(user_text).ok().and_then(|n| u32::try_from(n).ok());
        store.append_message(actor, session, &user_message, user_tokens)?;
        let history: Vec<ChatMessage> =
            store.list_messages(actor, session)?.iter().map(ChatMessage::from).collect();
        let memories = store.list_memories(actor)?;
        let budget = ContextBudget::new(self.model.context_length(), self.params.max_tokens);
        let request =
            ContextRequest { system_prompt: self.system_prompt, memories: &memories, history: &history };
        let count = |text: &str| self.model.count_tokens(text).unwrap_or(text.len());
        let context = assemble_context(&request, &budget, &count)?;
        if !context.report.is_complete() {
            tracing::warn!("{}", context.report.summary());
        }
        let state_file = self.state_dir.map(|dir| state_file(dir, session));
        if let Some(file) = state_file.as_deref().filter(|f| f.exists()) {
            // A stale or foreign state is only a missed shortcut: the prompt is processed anew.
            match self.model.load_state(file) {
                Ok(tokens) => tracing::debug!(tokens, "restored the session's cached state"),
                Err(err) => tracing::warn!(%err, "ignoring the session's saved state"),
            }
        }
        let generation = self.model.chat(&context.messages, self.params, on_piece)?;
        let reply = ChatMessage::assistant(&generation.text);
        store.append_message(actor, session, &reply, Some(generation.usage.completion_tokens))?;
        if let Some(file) = &state_file {
            self.save_state(&context.messages, &generation.text, file);
        }
        let turn = [user_message, ChatMessage::assistant(&generation.text)];
        let ops = self.extractor.extract(&turn, &memories)?;
        let memories_learned = apply_ops(store, actor, Some(session), &ops)?;
        Ok(TurnOutcome {
            session_id: session,
            generation,
            context: context.report,
            memories_learned,
            prompt_messages: context.messages,
        })
    }
}

impl Turn<'_> {
    fn save_state(&self, prompt: &[ChatMessage], reply: &str, file: &Path) {
        let mut conversation = prompt.to_vec();
        conversation.push(ChatMessage::assistant(reply));
        let saved = self.model.render_chat(&conversation, false).and_then(|text| {
            if let Some(dir) = file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            self.model.save_state(&text, file)
        });
        match saved {
            Ok(tokens) => tracing::debug!(tokens, file = %file.display(), "saved the session's state"),
            Err(err) => tracing::debug!(%err, "the session's state was not saved"),
        }
    }
}

/// The state file of `session` under `dir`.
pub fn state_file(dir: &Path, session: SessionId) -> PathBuf {
    dir.join(format!("{session}.kv"))
}

/// Removes a session's saved state, if any (after the session is deleted).
pub fn remove_state(dir: &Path, session: SessionId) {
    let file = state_file(dir, session);
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(file.with_extension("kv.meta"));
}

/// The first line of a message, cut to a title's length.
pub fn title_from(message: &str) -> String {
    let line = message.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("New chat");
    let mut title: String = line.chars().take(TITLE_CHARS).collect();
    if line.chars().count() > TITLE_CHARS {
        title.push('…');
    }
    title
}

#[cfg(test)]
mod tests {
    use super::title_from;

    #[test]
    fn titles_come_from_the_first_line() {
        assert_eq!(title_from("\n  Hello there\nsecond"), "Hello there");
        assert_eq!(title_from(""), "New chat");
        let long = "x".repeat(100);
        assert_eq!(title_from(&long).chars().count(), 61);
    }
}
