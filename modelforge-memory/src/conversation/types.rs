//! What a [`Conversation`](super::Conversation) is configured with and what it returns.

use modelforge_core::{
    BackendError, ChatMessage, Generation, Memory, MemoryError, Message, MessageId, SessionId, StoreError,
};
use serde::Serialize;

use crate::context::{ContextBudget, ContextError, ContextReport};
use crate::index::SearchOptions;
use crate::sources::{SourceRef, WebReport};

/// The system prompt used when the caller gives none.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful assistant.";

/// How a [`Conversation`](super::Conversation) builds each prompt.
///
/// ```
/// use modelforge_memory::ChatOptions;
/// let options = ChatOptions::default().with_system_prompt("Answer in French.").with_summary(false);
/// assert_eq!(options.memory_share, 0.25);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ChatOptions {
    /// Instructions for the model, first in every prompt.
    pub system_prompt: String,
    /// The most of the prompt budget memories may take, from 0 to 1.
    pub memory_share: f32,
    /// How memories compete for room when they do not all fit: the search hits taken (after
    /// what keeps the user safe, see [`MemoryBank::recall`](crate::MemoryBank::recall)).
    pub retrieval: SearchOptions,
    /// Replace older turns that no longer fit by a summary made by the model (kept in the
    /// store, remade only when more turns stop fitting). Without it they are left out, and
    /// the report says so.
    pub summarize: bool,
    /// Treat every session as temporary: memory is neither read nor written.
    pub temporary: bool,
}

impl Default for ChatOptions {
    /// The default system prompt, memories within 25% of the prompt, the top 5 search hits,
    /// summaries on, memory on.
    fn default() -> Self {
        Self {
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_owned(),
            memory_share: ContextBudget::DEFAULT_MEMORY_SHARE,
            retrieval: SearchOptions::default(),
            summarize: true,
            temporary: false,
        }
    }
}

impl ChatOptions {
    /// With another system prompt.
    pub fn with_system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system_prompt = prompt.into();
        self
    }

    /// With memories limited to `share` of the prompt budget.
    pub fn with_memory_share(mut self, share: f32) -> Self {
        self.memory_share = share;
        self
    }

    /// With at most `top_k` search hits among the memories.
    pub fn with_top_k(mut self, top_k: usize) -> Self {
        self.retrieval.top_k = top_k;
        self
    }

    /// With summaries of older turns on or off.
    pub fn with_summary(mut self, on: bool) -> Self {
        self.summarize = on;
        self
    }

    /// With every session treated as temporary (or not).
    pub fn with_temporary(mut self, temporary: bool) -> Self {
        self.temporary = temporary;
        self
    }
}

/// Settings of one turn, beside the conversation's [`ChatOptions`].
///
/// ```
/// use modelforge_memory::TurnOptions;
/// assert!(TurnOptions::default().with_web(true).web);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TurnOptions {
    /// Search the web and answer from the sources found (needs the `web` feature and
    /// [`Conversation::with_web`](super::Conversation)).
    pub web: bool,
}

impl TurnOptions {
    /// With web search on or off.
    pub fn with_web(mut self, web: bool) -> Self {
        self.web = web;
        self
    }
}

/// Whether a turn read and may write the user's memories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryMode {
    /// Memories are recalled and learned.
    On,
    /// The session (or the whole conversation) is temporary: memory is neither read nor
    /// written.
    Temporary,
    /// The user switched memory off.
    Off,
}

/// What a turn produced and stored.
#[derive(Clone, Debug, Serialize)]
pub struct TurnOutcome {
    /// The session the turn belongs to.
    pub session_id: SessionId,
    /// The user's message as stored; `None` when nothing was stored (a turn stopped before
    /// its first word).
    pub user_message: Option<Message>,
    /// The reply as stored; `None` when nothing was stored.
    pub reply: Option<Message>,
    /// The reply's text, finish reason and token usage.
    #[serde(flatten)]
    pub generation: Generation,
    /// What the prompt included, summarized and left out.
    pub context: ContextReport,
    /// Whether memory was used.
    pub memory: MemoryMode,
    /// The memories put into the prompt (those of `context.memories_used`).
    pub memories: Vec<Memory>,
    /// The web sources in the prompt, numbered as the reply cites them (empty without web
    /// search).
    pub sources: Vec<SourceRef>,
    /// What the web search did, when the turn asked for one.
    pub web: Option<WebReport>,
    /// The messages the model was given: the system prompt with memories and summary, then
    /// the history that fit.
    #[serde(skip)]
    pub prompt: Vec<ChatMessage>,
}

impl TurnOutcome {
    /// The user's message and the reply, when both were stored: what learning reads.
    pub fn exchange(&self) -> Option<[ChatMessage; 2]> {
        match (&self.user_message, &self.reply) {
            (Some(user), Some(reply)) => Some([ChatMessage::from(user), ChatMessage::from(reply)]),
            _ => None,
        }
    }
}

/// Why a turn failed. Nothing of a failed turn is stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// The store failed, or the session or message is not the acting user's
    /// ([`StoreError::NotFound`], exactly as for an id that does not exist).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The model failed, e.g. the prompt does not fit its context (the error gives the
    /// numbers).
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Recalling or learning memories failed.
    #[error(transparent)]
    Memory(MemoryError),
    /// The system prompt and the new message alone do not fit the context.
    #[error(transparent)]
    TooLong(#[from] ContextError),
    /// Regenerate on a session with no user message to answer.
    #[error("session {session} has no message to answer again")]
    NothingToRegenerate {
        /// The session.
        session: SessionId,
    },
    /// Web search was asked for, but this conversation has no search configured (or was
    /// built without the `web` feature).
    #[error(
        "web search is not configured: give a search service (e.g. --search-url or MODELFORGE_SEARCH_URL)"
    )]
    WebNotConfigured,
    /// Edit of a message that is not the user's (only the user's own words can be edited).
    #[error("message {message} is not a user message; only user messages can be edited")]
    NotAUserMessage {
        /// The message.
        message: MessageId,
    },
}

impl From<MemoryError> for ChatError {
    /// Store and model failures keep their own variants, so a caller maps "not found" or
    /// "too long" once, wherever they happened.
    fn from(err: MemoryError) -> Self {
        match err {
            MemoryError::Store(err) => Self::Store(err),
            MemoryError::Backend(err) => Self::Backend(err),
            other => Self::Memory(other),
        }
    }
}
