//! Where a session's model state (its KV cache) waits between turns.
//!
//! Processing a long conversation again on every turn is the slowest part of a reply; a
//! backend that can save its state lets the next turn skip the common prefix. Where that state
//! lives is the application's choice: the CLI, a new process per message, keeps files under its
//! data directory ([`DirStateCache`]); a server whose backend already keeps recent prefixes warm
//! in memory needs none. The state is only ever a shortcut: a missing, stale or foreign state
//! costs time, never correctness, so the trait's methods report nothing but what they did.

use std::path::{Path, PathBuf};

use modelforge_core::{LoadedModel, SessionId};

/// Keeps and restores the model state of each session between turns.
pub trait StateCache: Send + Sync {
    /// Restores `session`'s saved state into `model`, if there is one that fits; returns how
    /// many tokens the next prompt can skip (0 when nothing was restored).
    fn restore(&self, model: &dyn LoadedModel, session: SessionId) -> usize;

    /// Saves `model`'s state for `conversation` (the rendered conversation so far, reply
    /// included) as `session`'s; returns how many tokens were saved (0 when the backend cannot).
    fn save(&self, model: &dyn LoadedModel, session: SessionId, conversation: &str) -> usize;

    /// Forgets `session`'s state (after the session is deleted).
    fn remove(&self, session: SessionId);
}

/// A [`StateCache`] of files in one directory, `{session}.kv`, made when first needed.
#[derive(Clone, Debug)]
pub struct DirStateCache {
    dir: PathBuf,
}

impl DirStateCache {
    /// A cache in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The file holding `session`'s state.
    pub fn file(&self, session: SessionId) -> PathBuf {
        self.dir.join(format!("{session}.kv"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl StateCache for DirStateCache {
    fn restore(&self, model: &dyn LoadedModel, session: SessionId) -> usize {
        let file = self.file(session);
        if !file.exists() {
            return 0;
        }
        match model.load_state(&file) {
            Ok(tokens) => {
                tracing::debug!(tokens, "restored the session's saved state");
                tokens
            }
            Err(err) => {
                tracing::debug!(%err, "ignoring the session's saved state");
                0
            }
        }
    }

    fn save(&self, model: &dyn LoadedModel, session: SessionId, conversation: &str) -> usize {
        let file = self.file(session);
        let _ = std::fs::create_dir_all(&self.dir);
        match model.save_state(conversation, &file) {
            Ok(tokens) => {
                tracing::debug!(tokens, file = %file.display(), "saved the session's state");
                tokens
            }
            Err(err) => {
                tracing::debug!(%err, "the session's state was not saved");
                0
            }
        }
    }

    fn remove(&self, session: SessionId) {
        let file = self.file(session);
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_file(file.with_extension("kv.meta"));
    }
}
