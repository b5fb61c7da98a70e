//! One chat turn: relevant memories and as much history as fits in, reply out, history stored;
//! then, as a separate step the caller may run in the background, new memories learned.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use modelforge_core::{
    Actor, ChatMessage, Generation, GenerationParams, LoadedModel, Memory, MemoryExtractor, MemoryKind,
    Message, NewSession, Session, SessionId, SessionStore, SessionSummary,
};
use modelforge_memory::{
    AssembledContext, ContextBudget, ContextReport, ContextRequest, Learned, MemoryBank, SearchOptions,
    assemble_context, summarize,
};
use serde::Serialize;

/// The system prompt used when the caller gives none.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful assistant.";

/// How long a title made from the first message may be, in characters.
const TITLE_CHARS: usize = 60;

/// Whether a turn read and may write the user's memories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryMode {
    /// Memories are searched and learned.
    On,
    /// The session is temporary: memory is neither read nor written.
    Temporary,
    /// The user switched memory off.
    Off,
}

/// What a turn produced.
#[derive(Debug, Serialize)]
pub struct TurnOutcome {
    /// The session the turn belongs to.
    pub session_id: SessionId,
    /// The reply, finish reason and token usage.
    #[serde(flatten)]
    pub generation: Generation,
    /// What the prompt included, summarized and left out.
    pub context: ContextReport,
    /// Whether memory was used.
    pub memory: MemoryMode,
    /// The user's message and the reply, as stored: what [`Turn::learn`] reads.
    #[serde(skip)]
    pub exchange: [ChatMessage; 2],
    /// The messages the model was given (system prompt with memories, then history).
    #[serde(skip)]
    pub prompt_messages: Vec<ChatMessage>,
}

/// The pieces a turn needs.
pub struct Turn<'a> {
    /// Where sessions and messages live.
    pub store: &'a dyn SessionStore,
    /// The model that replies (and summarizes old turns).
    pub model: &'a dyn LoadedModel,
    /// The user's memories: searched for each message, and where learning writes.
    pub memory: &'a MemoryBank,
    /// What reads new memories from a finished turn (rules, the model, or both).
    pub extractors: &'a [&'a dyn MemoryExtractor],
    /// Which memories are relevant enough to inject.
    pub retrieval: SearchOptions,
    /// The share of the prompt budget memories may take.
    pub memory_share: f32,
    /// Whether older turns that no longer fit are replaced by a summary made by the model
    /// (kept in the store, remade only when more turns stop fitting). Without it they are
    /// left out, and the report says so.
    pub summarize: bool,
    /// The system prompt.
    pub system_prompt: &'a str,
    /// Sampling settings.
    pub params: &'a GenerationParams,
    /// Where to keep each session's model state (KV cache) between runs, if anywhere: a
    /// later run that continues the session skips processing its history again.
    pub state_dir: Option<&'a Path>,
}

impl Turn<'_> {
    /// A new session titled after its first message; a temporary one neither reads nor
    /// writes memory.
    pub fn new_session(
        &self,
        actor: &Actor,
        first_message: &str,
        temporary: bool,
    ) -> Result<Session, modelforge_core::StoreError> {
        self.store.create_session_with(actor, &NewSession { title: title_from(first_message), temporary })
    }

    /// Runs one turn in `session`: stores the user's message, assembles the prompt from the
    /// memories relevant to it and as much history as fits (older turns summarized if
    /// enabled), streams the reply to `on_piece` and stores it. Learning from the turn is
    /// [`Turn::learn`], so the reply is never held up by it.
    pub fn run(
        &self,
        actor: &Actor,
        session: SessionId,
        user_text: &str,
        on_piece: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> anyhow::Result<TurnOutcome> {
        let store = self.store;
        let memory = self.memory_mode(actor, session)?;
        let user_message = ChatMessage::user(user_text);
        // Stored before generating, so a failed generation loses nothing the user wrote.
        let user_tokens = self.model.count_tokens(user_text).ok().and_then(|n| u32::try_from(n).ok());
        store.append_message(actor, session, &user_message, user_tokens)?;
        let memories = if memory == MemoryMode::On {
            self.relevant_memories(actor, session, user_text)?
        } else {
            Vec::new()
        };
        let AssembledContext { messages, report } = self.assemble(actor, session, &memories)?;
        if !report.is_complete() {
            tracing::warn!("{}", report.summary());
        }
        let state_file = self.state_dir.map(|dir| state_file(dir, session));
        if let Some(file) = state_file.as_deref().filter(|f| f.exists()) {
            // A stale or foreign state is only a missed shortcut: the prompt is processed anew.
            match self.model.load_state(file) {
                Ok(tokens) => tracing::debug!(tokens, "restored the session's cached state"),
                Err(err) => tracing::warn!(%err, "ignoring the session's saved state"),
            }
        }
        let generation = self.model.chat(&messages, self.params, on_piece)?;
        let reply = ChatMessage::assistant(&generation.text);
        store.append_message(actor, session, &reply, Some(generation.usage.completion_tokens))?;
        if let Some(file) = &state_file {
            self.save_state(&messages, &generation.text, file);
        }
        Ok(TurnOutcome {
            session_id: session,
            generation,
            context: report,
            memory,
            exchange: [user_message, reply],
            prompt_messages: messages,
        })
    }

    /// Learns from a finished turn with the extractors (nothing in a temporary session or
    /// with memory off). Extractors that fail are reported in [`Learned::failures`]; the turn
    /// itself is already stored.
    pub fn learn(&self, actor: &Actor, outcome: &TurnOutcome) -> anyhow::Result<Learned> {
        if outcome.memory != MemoryMode::On {
            return Ok(Learned::default());
        }
        Ok(self.memory.learn(actor, Some(outcome.session_id), &outcome.exchange, self.extractors)?)
    }

    /// The memories found for `text`, most relevant first, then (while there is room for
    /// `top_k`) the user's profile: who they are matters to almost any reply, even to a
    /// message that names nothing ("What do you know about me?"). Memories learned in this
    /// session are left out: the session's own history already says them, and adding them
    /// would change the system prompt and void the conversation's cached prefix.
    fn relevant_memories(
        &self,
        actor: &Actor,
        session: SessionId,
        text: &str,
    ) -> anyhow::Result<Vec<Memory>> {
        let from_elsewhere = |m: &Memory| m.source_session_id != Some(session);
        let options = SearchOptions { top_k: self.retrieval.top_k * 2, ..self.retrieval };
        let hits = self.memory.search(actor, text, &options)?;
        let mut memories: Vec<Memory> =
            hits.into_iter().map(|hit| hit.memory).filter(from_elsewhere).collect();
        memories.truncate(self.retrieval.top_k);
        if memories.len() < self.retrieval.top_k {
            let mut profile: Vec<Memory> = self
                .memory
                .memories(actor)?
                .into_iter()
                .filter(|m| m.kind == MemoryKind::Profile && from_elsewhere(m))
                .filter(|m| !memories.iter().any(|k| k.id == m.id))
                .collect();
            profile.sort_by_key(|m| std::cmp::Reverse(m.created_at));
            profile.truncate(self.retrieval.top_k - memories.len());
            memories.extend(profile);
        }
        Ok(memories)
    }

    fn memory_mode(&self, actor: &Actor, session: SessionId) -> anyhow::Result<MemoryMode> {
        if self.store.get_session(actor, session)?.temporary {
            Ok(MemoryMode::Temporary)
        } else if !self.store.current_user(actor)?.memory_enabled {
            Ok(MemoryMode::Off)
        } else {
            Ok(MemoryMode::On)
        }
    }

    /// The prompt's messages. History that does not fit is summarized (when enabled) with
    /// room to spare, so the summary is remade only every few turns; the summary is kept in
    /// the store.
    fn assemble(
        &self,
        actor: &Actor,
        session: SessionId,
        memories: &[Memory],
    ) -> anyhow::Result<AssembledContext> {
        let all: Vec<Message> = self.store.list_messages(actor, session)?;
        let budget = ContextBudget::new(self.model.context_length(), self.params.max_tokens)
            .with_memory_share(self.memory_share);
        let count = |text: &str| self.model.count_tokens(text).unwrap_or(text.len());
        // The context with `summary` standing for the messages it covers, and where the rest
        // starts.
        let with_summary = |summary: Option<&SessionSummary>| -> anyhow::Result<(AssembledContext, usize)> {
            let start =
                summary.and_then(|s| all.iter().position(|m| m.id == s.through_message)).map_or(0, |i| i + 1);
            let history: Vec<ChatMessage> = all[start..].iter().map(ChatMessage::from).collect();
            let request = ContextRequest {
                system_prompt: self.system_prompt,
                memories,
                summary: summary.map(|s| s.content.as_str()),
                summarized_messages: start,
                history: &history,
            };
            Ok((assemble_context(&request, &budget, &count)?, start))
        };
        let cached = if self.summarize { self.store.session_summary(actor, session)? } else { None };
        let (context, start) = with_summary(cached.as_ref())?;
        let dropped = context.report.history_left_out;
        if !self.summarize || dropped == 0 {
            return Ok(context);
        }
        // Summarize what was dropped and half of what was kept, so the next turns fit too.
        let kept_older = context.report.history_used.saturating_sub(1);
        let upto = (start + dropped + kept_older / 2).min(all.len() - 1);
        let previous = cached.as_ref().map(|s| s.content.as_str());
        let to_summarize: Vec<ChatMessage> = all[start..upto].iter().map(ChatMessage::from).collect();
        let text = match summarize(self.model, previous, &to_summarize) {
            Ok(text) => text,
            Err(err) => {
                tracing::warn!(%err, "could not summarize older turns; leaving them out");
                return Ok(context);
            }
        };
        let saved = self.store.save_session_summary(actor, session, all[upto - 1].id, upto as u64, &text)?;
        tracing::debug!(messages = upto, "summarized older turns");
        Ok(with_summary(Some(&saved))?.0)
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
