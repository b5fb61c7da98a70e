//! Every core trait can be held behind a pointer, and the provided methods work through it.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use modelforge_core::*;
use modelforge_testkit::sink::start_and_wait;

/// A stand-in model that echoes the rendered prompt's last line back, one word at a time.
struct Echo {
    info: ModelInfo,
}

impl LoadedModel for Echo {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn context_length(&self) -> u32 {
        64
    }
    fn tokenize(&self, text: &str, _add_special: bool) -> Result<Vec<u32>, BackendError> {
        Ok(text.split_whitespace().map(|w| w.len() as u32).collect())
    }
    fn render_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, BackendError> {
        let mut out: String = messages.iter().map(|m| format!("{}: {}\n", m.role, m.content)).collect();
        if add_generation_prompt {
            out.push_str("assistant:");
        }
        Ok(out)
    }
    fn generate(
        &self,
        prompt: &str,
        params: &GenerationParams,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<Generation, BackendError> {
        let line = prompt.lines().rev().nth(1).unwrap_or_default();
        let mut text = String::new();
        let mut finish_reason = FinishReason::Stop;
        for (i, word) in line.split_whitespace().enumerate() {
            if i as u32 == params.max_tokens {
                finish_reason = FinishReason::Length;
                break;
            }
            text.push_str(word);
            if on_piece(word).is_break() {
                finish_reason = FinishReason::Cancelled;
                break;
            }
        }
        let usage = Usage { prompt_tokens: self.count_tokens(prompt)? as u32, ..Usage::default() };
        Ok(Generation { text, finish_reason, usage })
    }
}

struct EchoBackend;

impl Backend for EchoBackend {
    fn name(&self) -> &str {
        "echo"
    }
    fn load(&self, path: &Path, _options: &LoadOptions) -> Result<Arc<dyn LoadedModel>, BackendError> {
        Ok(Arc::new(Echo {
            info: ModelInfo {
                path: path.to_owned(),
                format: ModelFormat::Gguf,
                name: "echo".into(),
                architecture: None,
                context_length: Some(64),
                quantization: None,
                chat_template: None,
                size_bytes: 0,
            },
        }))
    }
}

#[test]
fn backend_and_model_work_as_trait_objects() {
    let backend: Box<dyn Backend> = Box::new(EchoBackend);
    let model = backend.load(Path::new("x.gguf"), &LoadOptions::default()).unwrap();
    let mut pieces = Vec::new();
    let reply = model
        .chat(&[ChatMessage::user("hello there world")], &GenerationParams::greedy(), &mut |p| {
            pieces.push(p.to_owned());
            if pieces.len() == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap();
    assert_eq!(pieces, ["user:", "hello"]);
    assert_eq!(reply.finish_reason, FinishReason::Cancelled);
    assert_eq!(model.count_tokens("a bb ccc").unwrap(), 3);
}

#[test]
fn a_started_generation_reaches_its_sink_through_the_default_thread() {
    let model = EchoBackend.load(Path::new("x.gguf"), &LoadOptions::default()).unwrap();
    let prompt = model.render_chat(&[ChatMessage::user("one two three four")], true).unwrap();
    let all = vec!["user:", "one", "two", "three", "four"];
    for (stop_after, pieces, finish_reason) in
        [(10, all.clone(), FinishReason::Stop), (2, all[..2].to_vec(), FinishReason::Cancelled)]
    {
        let heard = start_and_wait(Arc::clone(&model), &prompt, GenerationParams::greedy(), stop_after);
        assert_eq!(heard.pieces, pieces);
        let generation = heard.result.unwrap();
        assert_eq!(generation.finish_reason, finish_reason);
        assert_eq!(generation.text, pieces.concat());
    }
}

struct NoMemories;
impl MemoryExtractor for NoMemories {
    fn name(&self) -> &str {
        "none"
    }
    fn extract(&self, _turn: &[ChatMessage], _existing: &[Memory]) -> Result<Vec<MemoryOp>, MemoryError> {
        Err(MemoryError::Extraction { reason: "nothing to say".into() })
    }
}

struct Unit;
impl Embedder for Unit {
    fn dimensions(&self) -> usize {
        2
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BackendError> {
        Ok(texts.iter().map(|_| vec![1.0, 0.0]).collect())
    }
}

struct EmptyHub;
impl ModelHub for EmptyHub {
    fn search(&self, _query: &str, _limit: usize) -> Result<Vec<RepoSummary>, HubError> {
        Ok(Vec::new())
    }
    fn list_files(&self, repo: &str) -> Result<Vec<RepoFile>, HubError> {
        Err(HubError::NotFound { what: "repository", name: repo.into() })
    }
    fn download(
        &self,
        _repo: &str,
        _file: &str,
        _on_progress: &mut dyn FnMut(Progress),
        cancel: &CancelToken,
    ) -> Result<PathBuf, HubError> {
        if cancel.is_cancelled() { Err(HubError::Cancelled) } else { Ok(PathBuf::new()) }
    }
    fn cached(&self) -> Result<Vec<CachedModel>, HubError> {
        Ok(Vec::new())
    }
    fn pull(
        &self,
        reference: &str,
        _on_progress: &mut dyn FnMut(Progress),
        _cancel: &CancelToken,
    ) -> Result<CachedModel, HubError> {
        Err(HubError::NotFound { what: "model", name: reference.into() })
    }
}

#[test]
fn the_other_traits_are_object_safe() {
    let extractor: Arc<dyn MemoryExtractor> = Arc::new(NoMemories);
    assert!(extractor.extract(&[], &[]).is_err());
    let embedder: Box<dyn Embedder> = Box::new(Unit);
    assert_eq!(embedder.embed(&["a", "b"]).unwrap().len(), 2);
    let hub: Box<dyn ModelHub> = Box::new(EmptyHub);
    let cancel = CancelToken::new();
    cancel.cancel();
    assert!(matches!(hub.download("a/b", "c", &mut |_| {}, &cancel), Err(HubError::Cancelled)));
    assert!(matches!(hub.pull("a/b", &mut |_| {}, &cancel), Err(HubError::NotFound { what: "model", .. })));
}

/// A store that refuses every call, naming the required method that refused: enough to see
/// which implementation a pointer dispatches to after an upcast.
struct Refusing;

fn refuse<T>(method: &str) -> Result<T, StoreError> {
    Err(StoreError::PermissionDenied { action: method.to_owned() })
}

/// The method a [`Refusing`] store names in its error.
fn refused_by<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::PermissionDenied { action }) => action,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

impl UserStore for Refusing {
    fn create_user(&self, _: &NewUser) -> Result<User, StoreError> {
        refuse("create_user")
    }
    fn login(&self, _: &str, _: &str) -> Result<User, StoreError> {
        refuse("login")
    }
    fn current_user(&self, _: &Actor) -> Result<User, StoreError> {
        refuse("current_user")
    }
    fn change_password(&self, _: &Actor, _: &str, _: &str) -> Result<(), StoreError> {
        refuse("change_password")
    }
    fn delete_user(&self, _: &Actor, _: UserId) -> Result<(), StoreError> {
        refuse("delete_user")
    }
    fn list_users(&self, _: &Actor, _: Page) -> Result<Vec<User>, StoreError> {
        refuse("list_users")
    }
    fn set_user_disabled(&self, _: &Actor, _: UserId, _: bool) -> Result<User, StoreError> {
        refuse("set_user_disabled")
    }
    fn set_user_role(&self, _: &Actor, _: UserId, _: UserRole) -> Result<User, StoreError> {
        refuse("set_user_role")
    }
    fn set_memory_enabled(&self, _: &Actor, _: UserId, _: bool) -> Result<User, StoreError> {
        refuse("set_memory_enabled")
    }
    fn registration_open(&self) -> Result<bool, StoreError> {
        refuse("registration_open")
    }
    fn set_registration_open(&self, _: &Actor, _: bool) -> Result<(), StoreError> {
        refuse("set_registration_open")
    }
}

impl TokenStore for Refusing {
    fn issue_token(&self, _: &Actor) -> Result<String, StoreError> {
        refuse("issue_token")
    }
    fn issue_tokens(&self, _: &Actor) -> Result<TokenPair, StoreError> {
        refuse("issue_tokens")
    }
    fn refresh(&self, _: &str) -> Result<TokenPair, StoreError> {
        refuse("refresh")
    }
    fn logout(&self, _: &str) -> Result<(), StoreError> {
        refuse("logout")
    }
    fn verify_token(&self, _: &str) -> Result<Actor, StoreError> {
        refuse("verify_token")
    }
    fn revoke_tokens(&self, _: &Actor, _: UserId) -> Result<(), StoreError> {
        refuse("revoke_tokens")
    }
}

impl ApiKeyStore for Refusing {
    fn create_api_key(&self, _: &Actor, _: &str) -> Result<CreatedApiKey, StoreError> {
        refuse("create_api_key")
    }
    fn list_api_keys(&self, _: &Actor) -> Result<Vec<ApiKey>, StoreError> {
        refuse("list_api_keys")
    }
    fn revoke_api_key(&self, _: &Actor, _: ApiKeyId) -> Result<(), StoreError> {
        refuse("revoke_api_key")
    }
    fn verify_api_key(&self, _: &str) -> Result<Actor, StoreError> {
        refuse("verify_api_key")
    }
}

impl ChatStore for Refusing {
    fn create_session_with(&self, _: &Actor, _: &NewSession) -> Result<Session, StoreError> {
        refuse("create_session_with")
    }
    fn list_sessions(&self, _: &Actor, _: &SessionQuery) -> Result<SessionPage, StoreError> {
        refuse("list_sessions")
    }
    fn get_session(&self, _: &Actor, _: SessionId) -> Result<Session, StoreError> {
        refuse("get_session")
    }
    fn update_session(&self, _: &Actor, _: SessionId, _: &SessionUpdate) -> Result<Session, StoreError> {
        refuse("update_session")
    }
    fn delete_session(&self, _: &Actor, _: SessionId) -> Result<(), StoreError> {
        refuse("delete_session")
    }
    fn append_message(
        &self,
        _: &Actor,
        _: SessionId,
        _: &ChatMessage,
        _: Option<u32>,
    ) -> Result<Message, StoreError> {
        refuse("append_message")
    }
    fn list_messages(&self, _: &Actor, _: SessionId) -> Result<Vec<Message>, StoreError> {
        refuse("list_messages")
    }
    fn list_messages_page(&self, _: &Actor, _: SessionId, _: Page) -> Result<MessagePage, StoreError> {
        refuse("list_messages_page")
    }
    fn delete_messages_after(&self, _: &Actor, _: SessionId, _: MessageId) -> Result<u64, StoreError> {
        refuse("delete_messages_after")
    }
    fn delete_messages_from(&self, _: &Actor, _: SessionId, _: MessageId) -> Result<u64, StoreError> {
        refuse("delete_messages_from")
    }
    fn save_session_summary(
        &self,
        _: &Actor,
        _: SessionId,
        _: MessageId,
        _: u64,
        _: &str,
    ) -> Result<SessionSummary, StoreError> {
        refuse("save_session_summary")
    }
    fn session_summary(&self, _: &Actor, _: SessionId) -> Result<Option<SessionSummary>, StoreError> {
        refuse("session_summary")
    }
}

impl MemoryStore for Refusing {
    fn add_memory_record(
        &self,
        _: &Actor,
        _: &NewMemory,
        _: &MemoryDetails,
    ) -> Result<MemoryRecord, StoreError> {
        refuse("add_memory_record")
    }
    fn list_memory_records(&self, _: &Actor) -> Result<Vec<MemoryRecord>, StoreError> {
        refuse("list_memory_records")
    }
    fn update_memory_record(
        &self,
        _: &Actor,
        _: MemoryId,
        _: &MemoryUpdate,
    ) -> Result<MemoryRecord, StoreError> {
        refuse("update_memory_record")
    }
    fn delete_memory(&self, _: &Actor, _: MemoryId) -> Result<(), StoreError> {
        refuse("delete_memory")
    }
}

impl ExportStore for Refusing {
    fn export_user_data(&self, _: &Actor) -> Result<UserExport, StoreError> {
        refuse("export_user_data")
    }
    fn import_user_data(&self, _: &Actor, _: &UserExport) -> Result<ImportSummary, StoreError> {
        refuse("import_user_data")
    }
}

#[test]
fn each_store_slice_is_object_safe_on_its_own() {
    let actor = Actor { user_id: UserId::new(), role: UserRole::User };
    let users: Box<dyn UserStore> = Box::new(Refusing);
    assert_eq!(refused_by(users.login("lina", "pw")), "login");
    let tokens: Box<dyn TokenStore> = Box::new(Refusing);
    assert_eq!(refused_by(tokens.verify_token("t")), "verify_token");
    let keys: Box<dyn ApiKeyStore> = Box::new(Refusing);
    assert_eq!(refused_by(keys.verify_api_key("mf_x")), "verify_api_key");
    let chats: Box<dyn ChatStore> = Box::new(Refusing);
    assert_eq!(refused_by(chats.create_session(&actor, "t")), "create_session_with");
    // The single-field session changes are provided, built on the one update call.
    let id = SessionId::new();
    assert_eq!(refused_by(chats.rename_session(&actor, id, "t")), "update_session");
    assert_eq!(refused_by(chats.set_session_pinned(&actor, id, true)), "update_session");
    assert_eq!(refused_by(chats.set_session_archived(&actor, id, true)), "update_session");
    assert_eq!(refused_by(chats.set_session_temporary(&actor, id, true)), "update_session");
    let memories: Box<dyn MemoryStore> = Box::new(Refusing);
    assert_eq!(refused_by(memories.list_memories(&actor)), "list_memory_records");
    let exports: Box<dyn ExportStore> = Box::new(Refusing);
    assert_eq!(refused_by(exports.export_json(&actor)), "export_user_data");
}

#[test]
fn the_whole_store_upcasts_to_each_slice() {
    let actor = Actor { user_id: UserId::new(), role: UserRole::User };
    let store: Arc<dyn SessionStore> = Arc::new(Refusing);
    // Every slice's methods, required and provided, are callable on the whole store.
    assert_eq!(refused_by(store.current_user(&actor)), "current_user");
    assert_eq!(refused_by(store.add_memory(&actor, &new_memory())), "add_memory_record");

    let users: Arc<dyn UserStore> = store.clone();
    assert_eq!(refused_by(users.list_users(&actor, Page::default())), "list_users");
    let tokens: Arc<dyn TokenStore> = store.clone();
    assert_eq!(refused_by(tokens.issue_tokens(&actor)), "issue_tokens");
    let keys: Arc<dyn ApiKeyStore> = store.clone();
    assert_eq!(refused_by(keys.create_api_key(&actor, "editor")), "create_api_key");
    let chats: Arc<dyn ChatStore> = store.clone();
    assert_eq!(refused_by(chats.list_messages(&actor, SessionId::new())), "list_messages");
    let memories: Arc<dyn MemoryStore> = store.clone();
    assert_eq!(refused_by(memories.update_memory(&actor, MemoryId::new(), "x")), "update_memory_record");
    let exports: Arc<dyn ExportStore> = store.clone();
    // The provided JSON import checks its bytes before reaching the implementation.
    assert!(matches!(
        exports.import_json(&actor, b"\xff"),
        Err(StoreError::InvalidInput { field: "import", .. })
    ));
    assert_eq!(refused_by(exports.import_json(&actor, &export_json())), "import_user_data");
    assert_eq!(Arc::strong_count(&store), 7, "the slices share the one store");
}

fn new_memory() -> NewMemory {
    NewMemory { kind: MemoryKind::Fact, content: "likes tea".into(), source_session_id: None }
}

/// A valid, empty export as JSON.
fn export_json() -> Vec<u8> {
    let user = User {
        id: UserId::new(),
        username: "lina".into(),
        email: None,
        role: UserRole::User,
        created_at: Default::default(),
        last_login: None,
        disabled: false,
        memory_enabled: true,
    };
    let export = UserExport {
        format_version: UserExport::FORMAT_VERSION,
        exported_at: Default::default(),
        user,
        sessions: Vec::new(),
        memories: Vec::new(),
    };
    serde_json::to_vec(&export).unwrap()
}
