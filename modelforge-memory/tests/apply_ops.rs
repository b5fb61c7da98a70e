//! `apply_ops` against a small in-memory `SessionStore` double, and the whole loop: extract,
//! apply, extract again from what the store now holds.

use std::sync::Mutex;

use chrono::Utc;
use modelforge_core::{
    Actor, ChatMessage, ImportSummary, Memory, MemoryDetails, MemoryError, MemoryExtractor, MemoryId,
    MemoryKind, MemoryOp, MemoryRecord, MemoryUpdate, Message, MessageId, MessagePage, NewMemory, NewUser,
    Page, Session, SessionId, SessionPage, SessionQuery, SessionStore, StoreError, TokenPair, User,
    UserExport, UserId, UserRole,
};
use modelforge_memory::{RuleExtractor, apply_ops};

/// Keeps memories in a vector, scoped by the acting user like a real store. Everything but
/// memories is refused.
#[derive(Default)]
struct MemoryOnlyStore {
    memories: Mutex<Vec<Memory>>,
}

fn unsupported<T>(what: &str) -> Result<T, StoreError> {
    Err(StoreError::PermissionDenied { action: format!("{what} (not in this test double)") })
}

fn not_found(id: MemoryId) -> StoreError {
    StoreError::NotFound { what: "memory", id: id.to_string() }
}

impl SessionStore for MemoryOnlyStore {
    fn create_user(&self, _: &NewUser) -> Result<User, StoreError> {
        unsupported("create_user")
    }
    fn login(&self, _: &str, _: &str) -> Result<User, StoreError> {
        unsupported("login")
    }
    fn issue_token(&self, _: &Actor) -> Result<String, StoreError> {
        unsupported("issue_token")
    }
    fn verify_token(&self, _: &str) -> Result<Actor, StoreError> {
        unsupported("verify_token")
    }
    fn current_user(&self, _: &Actor) -> Result<User, StoreError> {
        unsupported("current_user")
    }
    fn create_session(&self, _: &Actor, _: &str) -> Result<Session, StoreError> {
        unsupported("create_session")
    }
    fn issue_tokens(&self, _: &Actor) -> Result<TokenPair, StoreError> {
        unsupported("issue_tokens")
    }
    fn refresh(&self, _: &str) -> Result<TokenPair, StoreError> {
        unsupported("refresh")
    }
    fn logout(&self, _: &str) -> Result<(), StoreError> {
        unsupported("logout")
    }
    fn change_password(&self, _: &Actor, _: &str, _: &str) -> Result<(), StoreError> {
        unsupported("change_password")
    }
    fn revoke_tokens(&self, _: &Actor, _: UserId) -> Result<(), StoreError> {
        unsupported("revoke_tokens")
    }
    fn delete_user(&self, _: &Actor, _: UserId) -> Result<(), StoreError> {
        unsupported("delete_user")
    }
    fn list_users(&self, _: &Actor, _: Page) -> Result<Vec<User>, StoreError> {
        unsupported("list_users")
    }
    fn set_user_disabled(&self, _: &Actor, _: UserId, _: bool) -> Result<User, StoreError> {
        unsupported("set_user_disabled")
    }
    fn set_user_role(&self, _: &Actor, _: UserId, _: UserRole) -> Result<User, StoreError> {
        unsupported("set_user_role")
    }
    fn list_sessions(&self, _: &Actor, _: &SessionQuery) -> Result<SessionPage, StoreError> {
        unsupported("list_sessions")
    }
    fn set_session_pinned(&self, _: &Actor, _: SessionId, _: bool) -> Result<Session, StoreError> {
        unsupported("set_session_pinned")
    }
    fn set_session_archived(&self, _: &Actor, _: SessionId, _: bool) -> Result<Session, StoreError> {
        unsupported("set_session_archived")
    }
    fn list_messages_page(&self, _: &Actor, _: SessionId, _: Page) -> Result<MessagePage, StoreError> {
        unsupported("list_messages_page")
    }
    fn delete_messages_after(&self, _: &Actor, _: SessionId, _: MessageId) -> Result<u64, StoreError> {
        unsupported("delete_messages_after")
    }
    fn add_memory_record(
        &self,
        _: &Actor,
        _: &NewMemory,
        _: &MemoryDetails,
    ) -> Result<MemoryRecord, StoreError> {
        unsupported("add_memory_record")
    }
    fn list_memory_records(&self, _: &Actor) -> Result<Vec<MemoryRecord>, StoreError> {
        unsupported("list_memory_records")
    }
    fn update_memory_record(
        &self,
        _: &Actor,
        _: MemoryId,
        _: &MemoryUpdate,
    ) -> Result<MemoryRecord, StoreError> {
        unsupported("update_memory_record")
    }
    fn export_user_data(&self, _: &Actor) -> Result<UserExport, StoreError> {
        unsupported("export_user_data")
    }
    fn import_user_data(&self, _: &Actor, _: &UserExport) -> Result<ImportSummary, StoreError> {
        unsupported("import_user_data")
    }
    fn get_session(&self, _: &Actor, _: SessionId) -> Result<Session, StoreError> {
        unsupported("get_session")
    }
    fn rename_session(&self, _: &Actor, _: SessionId, _: &str) -> Result<Session, StoreError> {
        unsupported("rename_session")
    }
    fn delete_session(&self, _: &Actor, _: SessionId) -> Result<(), StoreError> {
        unsupported("delete_session")
    }
    fn append_message(
        &self,
        _: &Actor,
        _: SessionId,
        _: &ChatMessage,
        _: Option<u32>,
    ) -> Result<Message, StoreError> {
        unsupported("append_message")
    }
    fn list_messages(&self, _: &Actor, _: SessionId) -> Result<Vec<Message>, StoreError> {
        unsupported("list_messages")
    }

    fn add_memory(&self, actor: &Actor, memory: &NewMemory) -> Result<Memory, StoreError> {
        let stored = Memory {
            id: MemoryId::new(),
            user_id: actor.user_id,
            kind: memory.kind,
            content: memory.content.clone(),
            source_session_id: memory.source_session_id,
            created_at: Utc::now(),
        };
        self.memories.lock().unwrap().push(stored.clone());
        Ok(stored)
    }

    fn list_memories(&self, actor: &Actor) -> Result<Vec<Memory>, StoreError> {
        Ok(self.memories.lock().unwrap().iter().filter(|m| m.user_id == actor.user_id).cloned().collect())
    }

    fn update_memory(&self, actor: &Actor, id: MemoryId, content: &str) -> Result<Memory, StoreError> {
        let mut memories = self.memories.lock().unwrap();
        let memory = memories
            .iter_mut()
            .find(|m| m.id == id && m.user_id == actor.user_id)
            .ok_or_else(|| not_found(id))?;
        memory.content = content.to_owned();
        Ok(memory.clone())
    }

    fn delete_memory(&self, actor: &Actor, id: MemoryId) -> Result<(), StoreError> {
        let mut memories = self.memories.lock().unwrap();
        let before = memories.len();
        memories.retain(|m| !(m.id == id && m.user_id == actor.user_id));
        if memories.len() == before { Err(not_found(id)) } else { Ok(()) }
    }
}

fn actor() -> Actor {
    Actor { user_id: UserId::new(), role: UserRole::User }
}

#[test]
fn adds_updates_and_deletes_and_returns_what_changed() {
    let store = MemoryOnlyStore::default();
    let lina = actor();
    let session = SessionId::new();
    let added = apply_ops(
        &store,
        &lina,
        Some(session),
        &[
            MemoryOp::Add { kind: MemoryKind::Profile, content: "The user lives in Lyon.".into() },
            MemoryOp::Add { kind: MemoryKind::Preference, content: "The user likes jazz.".into() },
        ],
    )
    .unwrap();
    assert_eq!(added.len(), 2);
    assert_eq!(added[0].content, "The user lives in Lyon.");
    assert_eq!(added[0].kind, MemoryKind::Profile);
    assert_eq!(added[0].source_session_id, Some(session));
    assert_eq!(added[0].user_id, lina.user_id);

    let changed = apply_ops(
        &store,
        &lina,
        None,
        &[
            MemoryOp::Update { id: added[0].id, content: "The user lives in Paris.".into() },
            MemoryOp::Delete { id: added[1].id },
        ],
    )
    .unwrap();
    assert_eq!(changed.len(), 1, "deletions return nothing");
    assert_eq!(changed[0].id, added[0].id);
    assert_eq!(changed[0].content, "The user lives in Paris.");

    let left = store.list_memories(&lina).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].content, "The user lives in Paris.");
}

#[test]
fn store_errors_come_back_as_memory_errors() {
    let store = MemoryOnlyStore::default();
    let owner = actor();
    let mine = apply_ops(
        &store,
        &owner,
        None,
        &[MemoryOp::Add { kind: MemoryKind::Fact, content: "The user has a cat.".into() }],
    )
    .unwrap();

    // Another user cannot touch it: the store scopes by actor and says "not found".
    let err = apply_ops(&store, &actor(), None, &[MemoryOp::Delete { id: mine[0].id }]).unwrap_err();
    assert!(matches!(err, MemoryError::Store(StoreError::NotFound { what: "memory", .. })), "{err}");
    assert_eq!(store.list_memories(&owner).unwrap(), mine);
}

#[test]
fn extract_apply_extract_keeps_one_memory_per_slot() {
    let store = MemoryOnlyStore::default();
    let lina = actor();
    let extractor = RuleExtractor::new();
    let say = |text: &str| {
        let existing = store.list_memories(&lina).unwrap();
        let ops = extractor.extract(&[ChatMessage::user(text)], &existing).unwrap();
        apply_ops(&store, &lina, None, &ops).unwrap();
        ops.len()
    };

    assert_eq!(say("My name is Lina and I live in Lyon."), 2);
    assert_eq!(say("My name is Lina and I live in Lyon."), 0, "nothing new the second time");
    assert_eq!(say("I moved to Paris."), 1);

    let mut contents: Vec<String> =
        store.list_memories(&lina).unwrap().into_iter().map(|m| m.content).collect();
    contents.sort();
    assert_eq!(contents, ["The user lives in Paris.", "The user's name is Lina."]);
}
