//! One turn at a time per session: a busy flag and a stop button for each session in use.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use modelforge_core::{CancelToken, SessionId, UserId};

/// The sessions with a turn running or waiting. An entry lives while a turn holds or awaits
/// it, so the map never grows with the number of sessions ever used.
#[derive(Default)]
pub(crate) struct Sessions {
    slots: Mutex<HashMap<SessionId, Arc<Slot>>>,
}

/// One session's state: who runs a turn on it, and the token that stops that turn.
#[derive(Default)]
struct Slot {
    running: Mutex<Option<(UserId, CancelToken)>>,
    done: Condvar,
}

/// The right to run a turn on a session; the next waiting turn starts when it is dropped.
pub(crate) struct TurnGuard<'a> {
    sessions: &'a Sessions,
    session: SessionId,
    slot: Arc<Slot>,
    /// Stops this turn's generation; cancelled by [`Sessions::stop`].
    pub(crate) cancel: CancelToken,
}

impl Sessions {
    /// Waits until no other turn runs on `session`, then holds it for `user`.
    pub(crate) fn begin(&self, session: SessionId, user: UserId) -> TurnGuard<'_> {
        let slot = Arc::clone(lock(&self.slots).entry(session).or_default());
        let cancel = CancelToken::new();
        let mut running = lock(&slot.running);
        while running.is_some() {
            running = slot.done.wait(running).unwrap_or_else(PoisonError::into_inner);
        }
        *running = Some((user, cancel.clone()));
        drop(running);
        TurnGuard { sessions: self, session, slot, cancel }
    }

    /// Stops the turn running on `session` if `user` runs it; whether one was stopped.
    pub(crate) fn stop(&self, session: SessionId, user: UserId) -> bool {
        let Some(slot) = lock(&self.slots).get(&session).cloned() else { return false };
        let running = lock(&slot.running);
        match running.as_ref() {
            Some((owner, cancel)) if *owner == user => {
                cancel.cancel();
                true
            }
            _ => false,
        }
    }
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        let mut slots = lock(&self.sessions.slots);
        *lock(&self.slot.running) = None;
        self.slot.done.notify_one();
        // Only the map and this guard hold the slot: no turn waits for this session.
        if Arc::strong_count(&self.slot) == 2 {
            slots.remove(&self.session);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
