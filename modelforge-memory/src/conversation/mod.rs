//! [`Conversation`]: the chat turn with memory that the CLI, the server and the memory
//! evaluation all run, and any other app can embed.

mod serial;
mod types;

use std::sync::Arc;

use modelforge_core::{
    Actor, ChatMessage, ChatStore, GenerationParams, LoadedModel, Memory, MemoryExtractor, Message,
    MessageId, PieceCallback, Role, Session, SessionId, SessionSummary, StoreError, UserStore,
};

use crate::bank::{Learned, MemoryBank, RecallOptions};
use crate::context::{AssembledContext, ContextBudget, ContextRequest, assemble_context};
use crate::rules::RuleExtractor;
use crate::sources::{WEB_FAILED_RULES, WEB_RULES, WebReport, with_sources};
use crate::state::StateCache;
use crate::summary::summarize;
use serial::Sessions;
pub use types::{ChatError, ChatOptions, DEFAULT_SYSTEM_PROMPT, MemoryMode, TurnOptions, TurnOutcome};

/// A chat with memory over one model: each turn recalls what matters about the user,
/// assembles the prompt within the context (older turns summarized once), restores the
/// session's model state, streams the reply, and stores the user's message with the reply.
/// Learning new memories from a turn is a separate step ([`Conversation::learn`]) so the
/// caller picks the thread: the reply is never held up by it.
///
/// It holds its parts as `Arc`s of the core traits, so it lives in an `Arc` in a server's
/// state and is used from many threads at once. Turns of one session are serialised (two
/// requests on one session never interleave their messages: the second waits and sees the
/// first); turns of different sessions run concurrently, and a batching backend (llama.cpp's
/// scheduler) decodes them together.
///
/// What is stored: a finished turn stores the user's message and the reply. A turn stopped
/// midway ([`Conversation::stop`] or the callback returning `Break`) keeps what the user saw:
/// the message and the partial reply, with `FinishReason::Cancelled` in the outcome; stopped
/// before its first word, it stores nothing. A failed turn stores nothing (the caller still
/// holds the user's text), so a session never ends in a half-written exchange.
///
/// ```
/// use std::ops::ControlFlow;
/// use std::sync::Arc;
/// use modelforge_core::{GenerationParams, NewUser, UserRole, UserStore, ChatStore};
/// use modelforge_memory::{Conversation, MemoryBank};
/// use modelforge_testkit::echo_model::EchoModel;
/// use modelforge_testkit::memory_store::InMemoryStore;
///
/// let store = Arc::new(InMemoryStore::new());
/// let lina = store.create_user(&NewUser {
///     username: "lina".into(),
///     password: "a long enough password".into(),
///     email: None,
///     role: UserRole::User,
/// })?.actor();
/// let bank = Arc::new(MemoryBank::new(store.clone(), None));
/// let chat = Conversation::new(Arc::new(EchoModel::new()), store.clone(), store.clone(), bank);
///
/// let session = store.create_session(&lina, "")?.id;
/// let params = GenerationParams::greedy();
/// let outcome = chat.turn(&lina, session, "I'm allergic to peanuts.", &params, &mut |_| ControlFlow::Continue(()))?;
/// chat.learn(&lina, &outcome)?;
///
/// let later = store.create_session(&lina, "")?.id;
/// let outcome = chat.turn(&lina, later, "What should I cook tonight?", &params, &mut |_| ControlFlow::Continue(()))?;
/// assert!(outcome.memories.iter().any(|m| m.content.contains("peanut")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Conversation {
    model: Arc<dyn LoadedModel>,
    chats: Arc<dyn ChatStore>,
    users: Arc<dyn UserStore>,
    memory: Arc<MemoryBank>,
    extractors: Vec<Arc<dyn MemoryExtractor>>,
    state: Option<Arc<dyn StateCache>>,
    options: ChatOptions,
    sessions: Arc<Sessions>,
    #[cfg(feature = "web")]
    web: Option<Arc<crate::web::WebSearch>>,
}

/// What a reply is generated from, and what storing it changes.
struct Pending<'a> {
    session: &'a Session,
    /// The stored messages before the one being answered.
    history: Vec<Message>,
    /// The message being answered: new text, or a stored message (regenerate).
    question: Question,
    /// Messages to delete before the new ones are stored (an edit, a regenerate).
    replaces: Replace,
}

enum Question {
    New(String),
    Stored(Message),
}

enum Replace {
    Nothing,
    /// Everything after this message (the old reply of a regenerate).
    After(MessageId),
    /// This message and everything after it (an edited message).
    From(MessageId),
}

impl Conversation {
    /// A conversation over `model`, storing sessions in `chats`, reading the memory switch
    /// from `users` and memories from `memory`, learning with the rule extractor. A whole
    /// store (`Arc<dyn SessionStore>` or a concrete one) passes as both stores.
    pub fn new(
        model: Arc<dyn LoadedModel>,
        chats: Arc<dyn ChatStore>,
        users: Arc<dyn UserStore>,
        memory: Arc<MemoryBank>,
    ) -> Self {
        Self {
            model,
            chats,
            users,
            memory,
            extractors: vec![Arc::new(RuleExtractor::new())],
            state: None,
            options: ChatOptions::default(),
            sessions: Arc::default(),
            #[cfg(feature = "web")]
            web: None,
        }
    }

    /// With these options.
    pub fn with_options(mut self, options: ChatOptions) -> Self {
        self.options = options;
        self
    }

    /// Learning with these extractors instead of the rules alone (e.g. the rules and an
    /// [`LlmExtractor`](crate::LlmExtractor)); none turns learning off.
    pub fn with_extractors(mut self, extractors: Vec<Arc<dyn MemoryExtractor>>) -> Self {
        self.extractors = extractors;
        self
    }

    /// Keeping each session's model state in `cache` between turns.
    pub fn with_state_cache(mut self, cache: Arc<dyn StateCache>) -> Self {
        self.state = Some(cache);
        self
    }

    /// The same conversation over another model, sharing everything else, the one-turn-per-
    /// session rule included: a server with several models holds one per model.
    pub fn for_model(&self, model: Arc<dyn LoadedModel>) -> Self {
        Self {
            model,
            chats: Arc::clone(&self.chats),
            users: Arc::clone(&self.users),
            memory: Arc::clone(&self.memory),
            extractors: self.extractors.clone(),
            state: self.state.clone(),
            options: self.options.clone(),
            sessions: Arc::clone(&self.sessions),
            #[cfg(feature = "web")]
            web: self.web.clone(),
        }
    }

    /// Answering turns that ask for it ([`TurnOptions::web`]) from web sources found by `web`.
    #[cfg(feature = "web")]
    pub fn with_web(mut self, web: Arc<crate::web::WebSearch>) -> Self {
        self.web = Some(web);
        self
    }

    /// Whether turns can search the web.
    pub fn has_web(&self) -> bool {
        #[cfg(feature = "web")]
        return self.web.is_some();
        #[cfg(not(feature = "web"))]
        false
    }

    /// The model that replies.
    pub fn model(&self) -> &Arc<dyn LoadedModel> {
        &self.model
    }

    /// The options in effect.
    pub fn options(&self) -> &ChatOptions {
        &self.options
    }

    /// The memory bank turns recall from and learn into.
    pub fn memory(&self) -> &Arc<MemoryBank> {
        &self.memory
    }

    /// Answers `text` in `session`, streaming the reply to `on_piece` (return `Break` to stop),
    /// and stores the user's message and the reply.
    pub fn turn(
        &self,
        actor: &Actor,
        session: SessionId,
        text: &str,
        params: &GenerationParams,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<TurnOutcome, ChatError> {
        self.turn_with(actor, session, text, params, &TurnOptions::default(), on_piece)
    }

    /// Like [`turn`](Self::turn), with settings of this turn alone (e.g. web search).
    pub fn turn_with(
        &self,
        actor: &Actor,
        session: SessionId,
        text: &str,
        params: &GenerationParams,
        turn: &TurnOptions,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<TurnOutcome, ChatError> {
        self.run(actor, session, params, turn, on_piece, |history| {
            Ok((history, Question::New(text.to_owned()), Replace::Nothing))
        })
    }

    /// Drops the last reply of `session` and answers its last user message again. The old
    /// reply is replaced only once the new one exists: stopped before its first word, the
    /// session stays as it was.
    pub fn regenerate(
        &self,
        actor: &Actor,
        session: SessionId,
        params: &GenerationParams,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<TurnOutcome, ChatError> {
        self.run(actor, session, params, &TurnOptions::default(), on_piece, |mut history| {
            let last_user = history.iter().rposition(|m| m.role == Role::User);
            history.truncate(last_user.map_or(0, |i| i + 1));
            let question = history.pop().ok_or(ChatError::NothingToRegenerate { session })?;
            let replaces = Replace::After(question.id);
            Ok((history, Question::Stored(question), replaces))
        })
    }

    /// Replaces the user message `message` of `session` by `text`, drops everything that
    /// followed it, and answers again. Nothing changes until the new reply exists.
    pub fn edit(
        &self,
        actor: &Actor,
        session: SessionId,
        message: MessageId,
        text: &str,
        params: &GenerationParams,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<TurnOutcome, ChatError> {
        self.edit_with(actor, session, message, text, params, &TurnOptions::default(), on_piece)
    }

    /// Like [`edit`](Self::edit), with settings of this turn alone (e.g. web search).
    #[allow(clippy::too_many_arguments)]
    pub fn edit_with(
        &self,
        actor: &Actor,
        session: SessionId,
        message: MessageId,
        text: &str,
        params: &GenerationParams,
        turn: &TurnOptions,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<TurnOutcome, ChatError> {
        self.run(actor, session, params, turn, on_piece, |mut history| {
            let at = history.iter().position(|m| m.id == message).ok_or_else(|| {
                ChatError::Store(StoreError::NotFound { what: "message", id: message.to_string() })
            })?;
            if history[at].role != Role::User {
                return Err(ChatError::NotAUserMessage { message });
            }
            history.truncate(at);
            Ok((history, Question::New(text.to_owned()), Replace::From(message)))
        })
    }

    /// Waits for the session's turn, reads its history, lets `plan` say what to answer and
    /// what the answer replaces, and answers.
    fn run(
        &self,
        actor: &Actor,
        session: SessionId,
        params: &GenerationParams,
        turn: &TurnOptions,
        on_piece: &mut PieceCallback<'_>,
        plan: impl FnOnce(Vec<Message>) -> Result<(Vec<Message>, Question, Replace), ChatError>,
    ) -> Result<TurnOutcome, ChatError> {
        let guard = self.sessions.begin(session, actor.user_id);
        let session = self.chats.get_session(actor, session)?;
        let (history, question, replaces) = plan(self.chats.list_messages(actor, session.id)?)?;
        let pending = Pending { session: &session, history, question, replaces };
        if turn.web && !self.has_web() {
            return Err(ChatError::WebNotConfigured);
        }
        self.answer(actor, pending, params, turn, &guard.cancel, on_piece)
    }

    /// Stops the turn running on `session`, if the acting user runs one there; whether one was
    /// stopped. The turn ends as if its callback had returned `Break`.
    pub fn stop(&self, actor: &Actor, session: SessionId) -> bool {
        self.sessions.stop(session, actor.user_id)
    }

    /// Learns new memories from a finished turn with the extractors: nothing in a temporary
    /// session, with memory off, or when the turn stored nothing. Extractors that fail are
    /// reported in [`Learned::failures`]; the turn itself is already stored.
    pub fn learn(&self, actor: &Actor, outcome: &TurnOutcome) -> Result<Learned, ChatError> {
        let Some(exchange) = outcome.exchange().filter(|_| outcome.memory == MemoryMode::On) else {
            return Ok(Learned::default());
        };
        let extractors: Vec<&dyn MemoryExtractor> = self.extractors.iter().map(|e| &**e).collect();
        Ok(self.memory.learn(actor, Some(outcome.session_id), &exchange, &extractors)?)
    }

    /// Forgets the saved model state of a session (call it after deleting the session).
    pub fn forget_state(&self, session: SessionId) {
        if let Some(cache) = &self.state {
            cache.remove(session);
        }
    }

    fn answer(
        &self,
        actor: &Actor,
        pending: Pending<'_>,
        params: &GenerationParams,
        turn: &TurnOptions,
        cancel: &modelforge_core::CancelToken,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<TurnOutcome, ChatError> {
        let session = pending.session.id;
        let memory = self.memory_mode(actor, pending.session)?;
        let question = match &pending.question {
            Question::New(text) => ChatMessage::user(text.as_str()),
            Question::Stored(message) => ChatMessage::from(message),
        };
        let budget = ContextBudget::new(self.model.context_length(), params.max_tokens)
            .with_memory_share(self.options.memory_share);
        let memories = match memory {
            MemoryMode::On => {
                let options = RecallOptions {
                    search: self.options.retrieval,
                    budget_tokens: budget.memory_budget() as usize,
                    exclude_session: Some(session),
                };
                self.memory.recall(actor, &question.content, &options, &|t| self.count(t))?
            }
            _ => Vec::new(),
        };
        let web = self.research(turn, &pending.history, &question.content);
        let mut system_prompt = self.options.system_prompt.clone();
        let (mut asked, mut sources, mut left_out) = (question.clone(), Vec::new(), 0);
        if let Some((found, report, share)) = &web {
            let rules = if report.error.is_some() { WEB_FAILED_RULES } else { WEB_RULES };
            system_prompt = if system_prompt.is_empty() {
                rules.to_owned()
            } else {
                format!("{system_prompt}\n\n{rules}")
            };
            let limit = (budget.prompt_budget() as f32 * share.clamp(0.0, 1.0)) as usize
                + self.count(&question.content);
            let (text, used) = with_sources(&question.content, found, limit, &|t| self.count(t));
            (asked, left_out) = (ChatMessage::user(text), found.len() - used.len());
            sources = used;
        }
        let mut context = self.assemble(actor, &pending, &asked, &system_prompt, &memories, &budget)?;
        (context.report.sources_used, context.report.sources_left_out) = (sources.len(), left_out);
        if let Some(cache) = &self.state {
            cache.restore(&*self.model, session);
        }
        let prompt = self.model.render_chat(&context.messages, true)?;
        let generation = self.model.generate_cancellable(&prompt, params, cancel, on_piece)?;

        let (user_message, reply) = if generation.text.is_empty() && cancel_or_break(&generation) {
            (None, None)
        } else {
            self.store_exchange(actor, &pending, &question, &generation)?
        };
        if let (Some(cache), Some(_)) = (&self.state, &reply) {
            let mut conversation = context.messages.clone();
            conversation.push(ChatMessage::assistant(generation.text.as_str()));
            if let Ok(text) = self.model.render_chat(&conversation, false) {
                cache.save(&*self.model, session, &text);
            }
        }
        let memories =
            memories.into_iter().filter(|m| context.report.memories_used.contains(&m.id)).collect();
        Ok(TurnOutcome {
            session_id: session,
            user_message,
            reply,
            generation,
            context: context.report,
            memory,
            memories,
            web: web.map(|(_, mut report, _)| {
                report.sources = sources.clone();
                report.sources_left_out = left_out;
                report
            }),
            sources,
            prompt: context.messages,
        })
    }

    /// Stores the exchange: the old messages it replaces go first, then the user's message
    /// (unless it is already stored) and the reply.
    fn store_exchange(
        &self,
        actor: &Actor,
        pending: &Pending<'_>,
        question: &ChatMessage,
        generation: &modelforge_core::Generation,
    ) -> Result<(Option<Message>, Option<Message>), ChatError> {
        let session = pending.session.id;
        match pending.replaces {
            Replace::Nothing => {}
            Replace::After(id) => {
                self.chats.delete_messages_after(actor, session, id)?;
            }
            Replace::From(id) => {
                self.chats.delete_messages_from(actor, session, id)?;
            }
        }
        let user = match &pending.question {
            Question::Stored(message) => message.clone(),
            Question::New(_) => {
                let tokens = u32::try_from(self.count(&question.content)).ok();
                self.chats.append_message(actor, session, question, tokens)?
            }
        };
        let reply = ChatMessage::assistant(generation.text.as_str());
        let reply =
            self.chats.append_message(actor, session, &reply, Some(generation.usage.completion_tokens))?;
        Ok((Some(user), Some(reply)))
    }

    /// The web search of a turn that asks for one: the sources found, the report and the
    /// sources' share of the budget.
    fn research(
        &self,
        turn: &TurnOptions,
        history: &[Message],
        question: &str,
    ) -> Option<(Vec<crate::sources::Source>, WebReport, f32)> {
        if !turn.web {
            return None;
        }
        #[cfg(feature = "web")]
        if let Some(web) = &self.web {
            let history: Vec<ChatMessage> = history.iter().map(ChatMessage::from).collect();
            let found = web.research(&*self.model, &history, question);
            tracing::debug!(summary = %found.report.summary(), "web search");
            return Some((found.sources, found.report, web.options().share));
        }
        let _ = (history, question);
        None
    }

    fn memory_mode(&self, actor: &Actor, session: &Session) -> Result<MemoryMode, ChatError> {
        Ok(if self.options.temporary || session.temporary {
            MemoryMode::Temporary
        } else if !self.users.current_user(actor)?.memory_enabled {
            MemoryMode::Off
        } else {
            MemoryMode::On
        })
    }

    fn count(&self, text: &str) -> usize {
        self.model.count_tokens(text).unwrap_or(text.len())
    }

    /// The prompt's messages. History that does not fit is summarized (when enabled) with
    /// room to spare, so the summary is remade only every few turns; the summary is kept in
    /// the store.
    fn assemble(
        &self,
        actor: &Actor,
        pending: &Pending<'_>,
        question: &ChatMessage,
        system_prompt: &str,
        memories: &[Memory],
        budget: &ContextBudget,
    ) -> Result<AssembledContext, ChatError> {
        let stored = &pending.history;
        let session = pending.session.id;
        let count = |text: &str| self.count(text);
        // The context with `summary` standing for the messages it covers, and where the rest
        // starts.
        let with_summary =
            |summary: Option<&SessionSummary>| -> Result<(AssembledContext, usize), ChatError> {
                let start = summary
                    .and_then(|s| stored.iter().position(|m| m.id == s.through_message))
                    .map_or(0, |i| i + 1);
                let mut history: Vec<ChatMessage> = stored[start..].iter().map(ChatMessage::from).collect();
                history.push(question.clone());
                let request = ContextRequest {
                    system_prompt,
                    memories,
                    summary: summary.map(|s| s.content.as_str()),
                    summarized_messages: start,
                    history: &history,
                };
                Ok((assemble_context(&request, budget, &count)?, start))
            };
        // A summary of messages an edit is about to drop does not describe this history.
        let cached = if self.options.summarize {
            let summary = self.chats.session_summary(actor, session)?;
            summary.filter(|s| stored.iter().any(|m| m.id == s.through_message))
        } else {
            None
        };
        let (context, start) = with_summary(cached.as_ref())?;
        let dropped = context.report.history_left_out;
        if !self.options.summarize || dropped == 0 {
            return Ok(context);
        }
        // Summarize what was dropped and half of what was kept, so the next turns fit too.
        // `history_used` counts the question, which is never summarized.
        let kept_older = context.report.history_used.saturating_sub(1);
        let upto = (start + dropped + kept_older / 2).min(stored.len());
        let previous = cached.as_ref().map(|s| s.content.as_str());
        let to_summarize: Vec<ChatMessage> = stored[start..upto].iter().map(ChatMessage::from).collect();
        let text = match summarize(&*self.model, previous, &to_summarize) {
            Ok(text) => text,
            Err(err) => {
                tracing::warn!(%err, "could not summarize older turns; leaving them out");
                return Ok(context);
            }
        };
        let saved =
            self.chats.save_session_summary(actor, session, stored[upto - 1].id, upto as u64, &text)?;
        tracing::debug!(messages = upto, "summarized older turns");
        Ok(with_summary(Some(&saved))?.0)
    }
}

fn cancel_or_break(generation: &modelforge_core::Generation) -> bool {
    generation.finish_reason == modelforge_core::FinishReason::Cancelled
}
