//! Replies being written, decoupled from whoever reads them.
//!
//! A reply belongs to its session, not to the HTTP request that asked for it: generation runs
//! on the blocking pool and writes into a [`Reply`]; the request that started it, and any
//! reader who reconnects (`GET /api/sessions/{id}/stream`), follow it. A reader that goes
//! away stops nothing: the reply is finished and stored, which is what a person who reloads
//! the page expects.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::response::sse::{Event, KeepAlive, Sse};
use modelforge_core::{SessionId, UserId};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;

use super::ApiError;

/// The replies being written, one per session at most.
#[derive(Default)]
pub struct Replies {
    writing: Mutex<HashMap<SessionId, Arc<Reply>>>,
    /// Set when the server is stopping: running replies finish, new ones are refused.
    closed: AtomicBool,
}

/// One reply: the text so far and how it ended.
pub struct Reply {
    owner: UserId,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    text: String,
    /// The `done` event's data, once finished.
    done: Option<Value>,
    /// How the turn failed, if it did.
    error: Option<ApiError>,
}

impl Replies {
    /// Registers a new reply for `session`; a session already writing one is a conflict (the
    /// one-reply-at-a-time rule a person sees in every chat page).
    pub fn start(&self, session: SessionId, owner: UserId) -> Result<Arc<Reply>, ApiError> {
        let mut writing = lock(&self.writing);
        if self.is_closed() {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is stopping; send the message again in a moment",
            ));
        }
        if writing.contains_key(&session) {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "reply_in_progress",
                format!(
                    "a reply is being written in session {session}; follow it at /api/sessions/{session}/stream or stop it"
                ),
            ));
        }
        let reply = Arc::new(Reply { owner, state: Mutex::default(), changed: watch::channel(0).0 });
        writing.insert(session, Arc::clone(&reply));
        Ok(reply)
    }

    /// The reply being written in `session`, if `user` owns it.
    pub fn get(&self, session: SessionId, user: UserId) -> Option<Arc<Reply>> {
        lock(&self.writing).get(&session).filter(|r| r.owner == user).cloned()
    }

    /// Forgets `session`'s reply once it is finished and stored.
    pub fn end(&self, session: SessionId) {
        lock(&self.writing).remove(&session);
    }

    /// Refuses new replies from now on (the server is stopping); running ones go on.
    pub fn close(&self) {
        // Under the lock, so no reply can start between the flag and a caller's `is_empty`.
        let _writing = lock(&self.writing);
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// How many replies are being written.
    pub fn len(&self) -> usize {
        lock(&self.writing).len()
    }

    /// Whether no reply is being written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Reply {
    /// Appends a piece of the reply.
    pub fn push(&self, piece: &str) {
        lock(&self.state).text.push_str(piece);
        self.changed.send_modify(|v| *v += 1);
    }

    /// Ends the reply with the `done` event's data.
    pub fn finish(&self, done: Value) {
        lock(&self.state).done = Some(done);
        self.changed.send_modify(|v| *v += 1);
    }

    /// Ends the reply with an error.
    pub fn fail(&self, error: ApiError) {
        lock(&self.state).error = Some(error);
        self.changed.send_modify(|v| *v += 1);
    }

    /// Waits until the reply has its first piece or has ended; an error before any text is
    /// returned, so the request can answer it with its own status instead of a stream.
    pub async fn started(&self) -> Result<(), ApiError> {
        let mut changed = self.changed.subscribe();
        loop {
            changed.borrow_and_update();
            {
                let state = lock(&self.state);
                if let Some(error) = state.error.as_ref().filter(|_| state.text.is_empty()) {
                    return Err(error.clone());
                }
                if !state.text.is_empty() || state.done.is_some() || state.error.is_some() {
                    return Ok(());
                }
            }
            if changed.changed().await.is_err() {
                return Ok(());
            }
        }
    }

    /// The reply from its start, then live, as server-sent events: `piece` with
    /// `{"text": ...}`, then one `done` (or `error`).
    pub fn follow(self: Arc<Self>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut changed = self.changed.subscribe();
            let mut sent = 0;
            loop {
                changed.borrow_and_update();
                let (text, done, error) = {
                    let state = lock(&self.state);
                    (state.text[sent..].to_owned(), state.done.clone(), state.error.clone())
                };
                sent += text.len();
                if !text.is_empty() && tx.send(event("piece", json!({ "text": text }))).await.is_err() {
                    return; // the reader left; the reply goes on without them
                }
                if let Some(done) = done {
                    let _ = tx.send(event("done", done)).await;
                    return;
                }
                if let Some(error) = error {
                    let _ = tx.send(event("error", error.body())).await;
                    return;
                }
                if changed.changed().await.is_err() {
                    return;
                }
            }
        });
        Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default())
    }
}

fn event(name: &str, data: Value) -> Result<Event, Infallible> {
    Ok(Event::default().event(name).data(data.to_string()))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
