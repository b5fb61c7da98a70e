//! [`InMemoryStore`]: a test double of the store traits, for fast logic tests.
//!
//! It implements all six slices of [`SessionStore`](modelforge_core::SessionStore)
//! ([`UserStore`], [`TokenStore`], [`ApiKeyStore`], [`ChatStore`], [`MemoryStore`],
//! [`ExportStore`]) over plain maps behind one `Mutex`, so code built on the traits (a memory bank, a chat turn, a server
//! route) can be tested in microseconds and without a database. It keeps the semantics
//! callers depend on:
//!
//! - every call is scoped to the acting user: another user's session, message or memory is
//!   [`StoreError::NotFound`], exactly like a missing one;
//! - the first user is an admin, later users may not register as one, and admin calls check
//!   the role held in the store, not the one the [`Actor`] claims;
//! - `login` checks the password against a stored sha256 (never the plain text);
//! - access and refresh tokens are opaque strings that `verify_token` maps back to the actor;
//!   `refresh` rotates (a retired refresh token presented again revokes its family), `logout`
//!   revokes the family, and `revoke_tokens`, `change_password` and disabling end them all;
//! - API keys start with [`ApiKey::KEY_PREFIX`] and are kept as sha256 only; they verify to
//!   their owner with the current role (not while the owner is disabled), record their last
//!   use at most once a minute, and end when revoked, with `revoke_tokens` (not with
//!   `change_password`) or with their user;
//! - registration is open until an admin closes it, and `create_user` does not check it;
//! - `update_session` checks everything before changing anything, and only a new title moves
//!   `updated_at`;
//! - messages have strictly increasing `created_at` within a session, an untitled session
//!   takes its title from the first user message, and `delete_messages_after` also drops a
//!   summary whose `through_message` it deleted;
//! - sessions list pinned first, then most recently updated; memories list oldest first.
//!
//! What it does not model: login lockout and argon2's deliberate slowness, JWT signatures
//! and expiry (tokens never expire), the length limits on names, titles, models and contents
//! (blank ones are refused), and persistence. Tests of those belong to `modelforge-store`'s behaviour suite.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{TimeDelta, Utc};
use modelforge_core::{
    Actor, ApiKey, ApiKeyId, ApiKeyStore, ChatMessage, ChatStore, CreatedApiKey, ExportStore, ImportSummary,
    Memory, MemoryDetails, MemoryId, MemoryRecord, MemoryStore, MemoryUpdate, Message, MessageId,
    MessagePage, NewMemory, NewSession, NewUser, Page, Role, Session, SessionExport, SessionId, SessionPage,
    SessionQuery, SessionSummary, SessionUpdate, StoreError, TokenPair, TokenStore, User, UserExport, UserId,
    UserRole, UserStore,
};
use sha2::{Digest, Sha256};

/// Users, sessions, messages, memories and tokens in memory; see the [module docs](self).
///
/// ```
/// use std::sync::Arc;
/// use modelforge_core::{MemoryStore, NewUser, SessionStore, UserRole};
/// use modelforge_testkit::memory_store::InMemoryStore;
///
/// let store: Arc<dyn SessionStore> = Arc::new(InMemoryStore::new());
/// let new = NewUser { username: "lina".into(), password: "pw".into(), email: None, role: UserRole::User };
/// let actor = store.create_user(&new).unwrap().actor();
/// let memories: Arc<dyn MemoryStore> = store;
/// assert!(memories.list_memories(&actor).unwrap().is_empty());
/// ```
#[derive(Default)]
pub struct InMemoryStore {
    state: Mutex<State>,
}

impl InMemoryStore {
    /// An empty store: its first user becomes the admin.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves consistent maps: every method
        // checks before it changes anything.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Deletes the messages of `session` from `message` on, keeping `message` itself when
    /// `keep` is 1, and a summary only if it covers none of them.
    fn delete_messages(
        &self,
        actor: &Actor,
        session: SessionId,
        message: MessageId,
        keep: usize,
    ) -> Result<u64, StoreError> {
        let mut state = self.state();
        let chat = state.chat_mut(actor, session)?;
        let at = chat
            .messages
            .iter()
            .position(|m| m.id == message)
            .ok_or_else(|| not_found("message", message))?;
        let deleted = chat.messages.split_off(at + keep);
        if chat.summary.as_ref().is_some_and(|s| deleted.iter().any(|m| m.id == s.through_message)) {
            chat.summary = None;
        }
        chat.session.message_count = chat.messages.len() as u64;
        chat.session.last_message_preview = chat.messages.last().map(|m| preview(&m.content));
        chat.session.updated_at = Utc::now();
        Ok(deleted.len() as u64)
    }

    /// Changes one of the actor's sessions and returns it as changed.
    fn edit_session(
        &self,
        actor: &Actor,
        id: SessionId,
        edit: impl FnOnce(&mut Session),
    ) -> Result<Session, StoreError> {
        let mut state = self.state();
        let session = &mut state.chat_mut(actor, id)?.session;
        edit(session);
        Ok(session.clone())
    }
}

#[derive(Default)]
struct State {
    /// Oldest account first.
    accounts: Vec<Account>,
    chats: HashMap<SessionId, Chat>,
    /// Oldest first.
    memories: Vec<MemoryRecord>,
    /// Access token to its user and the user's token version when it was issued.
    access: HashMap<String, (UserId, u64)>,
    refresh: HashMap<String, Refresh>,
    /// Oldest first.
    api_keys: Vec<StoredApiKey>,
    /// Negated so that `Default` leaves registration open, as a new store has it.
    registration_closed: bool,
    /// Makes every token and token family distinct.
    minted: u64,
}

struct StoredApiKey {
    record: ApiKey,
    key_sha256: [u8; 32],
}

struct Account {
    user: User,
    password_sha256: [u8; 32],
    /// Bumped to revoke every access token issued before.
    token_version: u64,
}

struct Chat {
    session: Session,
    messages: Vec<Message>,
    summary: Option<SessionSummary>,
}

struct Refresh {
    user: UserId,
    family: u64,
    used: bool,
    revoked: bool,
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn invalid(field: &'static str, reason: &str) -> StoreError {
    StoreError::InvalidInput { field, reason: reason.to_owned() }
}

fn refused(reason: &str) -> StoreError {
    StoreError::InvalidToken { reason: reason.to_owned() }
}

fn not_found(what: &'static str, id: impl ToString) -> StoreError {
    StoreError::NotFound { what, id: id.to_string() }
}

fn check_page(page: Page) -> Result<(), StoreError> {
    if page.limit == 0 || page.limit > Page::MAX_LIMIT {
        Err(invalid("limit", "out of range"))
    } else {
        Ok(())
    }
}

/// The items of `all` on `page`, and the next page if there are more.
fn paginate<T>(all: impl Iterator<Item = T>, page: Page) -> (Vec<T>, Option<Page>) {
    let mut items: Vec<T> = all.skip(page.offset as usize).take(page.limit as usize + 1).collect();
    let next = (items.len() > page.limit as usize).then(|| page.next());
    items.truncate(page.limit as usize);
    (items, next)
}

/// The first non-blank line, at most 60 characters.
fn auto_title(content: &str) -> String {
    content.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or("").chars().take(60).collect()
}

fn preview(content: &str) -> String {
    content.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(120).collect()
}

/// `None` (the default model) or a name that is not blank.
fn check_model(model: Option<&str>) -> Result<(), StoreError> {
    match model {
        Some(model) if model.trim().is_empty() => Err(invalid("model", "must not be blank")),
        _ => Ok(()),
    }
}

/// A key's last use is recorded at most this often, as in the real store.
const LAST_USE_RESOLUTION: TimeDelta = TimeDelta::minutes(1);

impl State {
    fn account(&self, id: UserId) -> Result<&Account, StoreError> {
        self.accounts.iter().find(|a| a.user.id == id).ok_or_else(|| not_found("user", id))
    }

    fn account_mut(&mut self, id: UserId) -> Result<&mut Account, StoreError> {
        self.accounts.iter_mut().find(|a| a.user.id == id).ok_or_else(|| not_found("user", id))
    }

    /// The actor's role as stored now: a hand-made admin `Actor` gains nothing.
    fn require_admin(&self, actor: &Actor, action: &str) -> Result<(), StoreError> {
        match self.account(actor.user_id) {
            Ok(a) if a.user.role == UserRole::Admin && !a.user.disabled => Ok(()),
            _ => Err(StoreError::PermissionDenied { action: format!("{action} (admins only)") }),
        }
    }

    fn require_self_or_admin(&self, actor: &Actor, user: UserId, action: &str) -> Result<(), StoreError> {
        if user == actor.user_id { Ok(()) } else { self.require_admin(actor, action) }
    }

    /// Fails if `target` is the only enabled admin, so the store never loses its last one.
    fn ensure_another_admin(&self, target: UserId, action: &str) -> Result<(), StoreError> {
        let enabled_admin = |a: &&Account| a.user.role == UserRole::Admin && !a.user.disabled;
        let target_is_one = self.accounts.iter().filter(enabled_admin).any(|a| a.user.id == target);
        if target_is_one && self.accounts.iter().filter(enabled_admin).count() == 1 {
            return Err(StoreError::PermissionDenied { action: format!("{action}: last enabled admin") });
        }
        Ok(())
    }

    fn chat(&self, actor: &Actor, id: SessionId) -> Result<&Chat, StoreError> {
        self.chats
            .get(&id)
            .filter(|c| c.session.user_id == actor.user_id)
            .ok_or_else(|| not_found("session", id))
    }

    fn chat_mut(&mut self, actor: &Actor, id: SessionId) -> Result<&mut Chat, StoreError> {
        let chat = self.chats.get_mut(&id).filter(|c| c.session.user_id == actor.user_id);
        chat.ok_or_else(|| not_found("session", id))
    }

    fn memory_mut(&mut self, actor: &Actor, id: MemoryId) -> Result<&mut MemoryRecord, StoreError> {
        let found = self.memories.iter_mut().find(|r| r.memory.id == id && r.memory.user_id == actor.user_id);
        found.ok_or_else(|| not_found("memory", id))
    }

    /// The user's current role and token version, if the account exists and is enabled.
    fn enabled(&self, user: UserId) -> Result<(UserRole, u64), StoreError> {
        let account = self.account(user)?;
        if account.user.disabled {
            return Err(StoreError::PermissionDenied {
                action: format!("issuing tokens for disabled user {user}"),
            });
        }
        Ok((account.user.role, account.token_version))
    }

    /// An opaque token: unique (a counter) and unguessable enough for a test (hashed).
    fn mint(&mut self, kind: &str, user: UserId) -> String {
        self.minted += 1;
        let digest = Sha256::digest(format!("{kind}:{}:{user}", self.minted).as_bytes());
        format!("{kind}-{digest:x}")
    }

    fn pair(&mut self, user: UserId, version: u64, family: u64) -> TokenPair {
        let access_token = self.mint("access", user);
        self.access.insert(access_token.clone(), (user, version));
        let refresh_token = self.mint("refresh", user);
        self.refresh.insert(refresh_token.clone(), Refresh { user, family, used: false, revoked: false });
        let now = Utc::now();
        TokenPair {
            access_token,
            access_expires_at: now + TimeDelta::minutes(15),
            refresh_token,
            refresh_expires_at: now + TimeDelta::days(30),
        }
    }

    fn revoke_refresh(&mut self, revoke: impl Fn(&Refresh) -> bool) {
        self.refresh.values_mut().filter(|r| revoke(r)).for_each(|r| r.revoked = true);
    }

    /// Ends every access and refresh token of `user`.
    fn revoke_all(&mut self, user: UserId) -> Result<(), StoreError> {
        self.account_mut(user)?.token_version += 1;
        self.revoke_refresh(|r| r.user == user);
        Ok(())
    }
}

impl UserStore for InMemoryStore {
    fn create_user(&self, new_user: &NewUser) -> Result<User, StoreError> {
        if new_user.username.trim().is_empty() || new_user.password.is_empty() {
            return Err(invalid("username", "username and password must not be empty"));
        }
        let mut state = self.state();
        if state.accounts.iter().any(|a| a.user.username.eq_ignore_ascii_case(&new_user.username)) {
            return Err(StoreError::Conflict { what: format!("username `{}`", new_user.username) });
        }
        let role = match (state.accounts.is_empty(), new_user.role) {
            (true, _) => UserRole::Admin,
            (false, UserRole::User) => UserRole::User,
            (false, UserRole::Admin) => {
                return Err(StoreError::PermissionDenied { action: "registering as an admin".to_owned() });
            }
        };
        let user = User {
            id: UserId::new(),
            username: new_user.username.clone(),
            email: new_user.email.clone(),
            role,
            created_at: Utc::now(),
            last_login: None,
            disabled: false,
            memory_enabled: true,
        };
        let password_sha256 = sha256(&new_user.password);
        state.accounts.push(Account { user: user.clone(), password_sha256, token_version: 0 });
        Ok(user)
    }

    fn login(&self, username: &str, password: &str) -> Result<User, StoreError> {
        let mut state = self.state();
        let account = state
            .accounts
            .iter_mut()
            .find(|a| a.user.username.eq_ignore_ascii_case(username))
            .filter(|a| a.password_sha256 == sha256(password))
            .ok_or(StoreError::InvalidCredentials)?;
        if account.user.disabled {
            return Err(StoreError::AccountDisabled { username: account.user.username.clone() });
        }
        account.user.last_login = Some(Utc::now());
        Ok(account.user.clone())
    }

    fn current_user(&self, actor: &Actor) -> Result<User, StoreError> {
        Ok(self.state().account(actor.user_id)?.user.clone())
    }

    fn change_password(&self, actor: &Actor, current: &str, new_password: &str) -> Result<(), StoreError> {
        if new_password.is_empty() {
            return Err(invalid("password", "must not be empty"));
        }
        let mut state = self.state();
        let account = state.account_mut(actor.user_id)?;
        if account.password_sha256 != sha256(current) {
            return Err(StoreError::InvalidCredentials);
        }
        account.password_sha256 = sha256(new_password);
        state.revoke_all(actor.user_id)
    }

    fn delete_user(&self, actor: &Actor, user: UserId) -> Result<(), StoreError> {
        let mut state = self.state();
        state.require_self_or_admin(actor, user, "deleting another user")?;
        state.ensure_another_admin(user, "deleting this account")?;
        state.account(user)?;
        state.accounts.retain(|a| a.user.id != user);
        state.chats.retain(|_, c| c.session.user_id != user);
        state.memories.retain(|r| r.memory.user_id != user);
        state.access.retain(|_, (owner, _)| *owner != user);
        state.refresh.retain(|_, r| r.user != user);
        state.api_keys.retain(|k| k.record.user_id != user);
        Ok(())
    }

    fn list_users(&self, actor: &Actor, page: Page) -> Result<Vec<User>, StoreError> {
        check_page(page)?;
        let state = self.state();
        state.require_admin(actor, "listing users")?;
        Ok(paginate(state.accounts.iter().map(|a| a.user.clone()), page).0)
    }

    fn set_user_disabled(&self, actor: &Actor, user: UserId, disabled: bool) -> Result<User, StoreError> {
        let mut state = self.state();
        state.require_admin(actor, "disabling users")?;
        if disabled {
            state.ensure_another_admin(user, "disabling this account")?;
            state.revoke_refresh(|r| r.user == user);
        }
        let account = state.account_mut(user)?;
        account.user.disabled = disabled;
        Ok(account.user.clone())
    }

    fn set_user_role(&self, actor: &Actor, user: UserId, role: UserRole) -> Result<User, StoreError> {
        let mut state = self.state();
        state.require_admin(actor, "changing roles")?;
        if role != UserRole::Admin {
            state.ensure_another_admin(user, "demoting this account")?;
        }
        let account = state.account_mut(user)?;
        account.user.role = role;
        Ok(account.user.clone())
    }

    fn set_memory_enabled(&self, actor: &Actor, user: UserId, enabled: bool) -> Result<User, StoreError> {
        let mut state = self.state();
        state.require_self_or_admin(actor, user, "switching another user's memory")?;
        let account = state.account_mut(user)?;
        account.user.memory_enabled = enabled;
        Ok(account.user.clone())
    }

    fn registration_open(&self) -> Result<bool, StoreError> {
        Ok(!self.state().registration_closed)
    }

    fn set_registration_open(&self, actor: &Actor, open: bool) -> Result<(), StoreError> {
        let mut state = self.state();
        state.require_admin(actor, "opening or closing registration")?;
        state.registration_closed = !open;
        Ok(())
    }
}

impl TokenStore for InMemoryStore {
    fn issue_token(&self, actor: &Actor) -> Result<String, StoreError> {
        let mut state = self.state();
        let (_, version) = state.enabled(actor.user_id)?;
        let token = state.mint("access", actor.user_id);
        state.access.insert(token.clone(), (actor.user_id, version));
        Ok(token)
    }

    fn issue_tokens(&self, actor: &Actor) -> Result<TokenPair, StoreError> {
        let mut state = self.state();
        let (_, version) = state.enabled(actor.user_id)?;
        // A new login starts a new family; the counter makes it distinct.
        state.minted += 1;
        let family = state.minted;
        Ok(state.pair(actor.user_id, version, family))
    }

    fn refresh(&self, refresh_token: &str) -> Result<TokenPair, StoreError> {
        let mut state = self.state();
        let token = state.refresh.get_mut(refresh_token).ok_or_else(|| refused("unknown refresh token"))?;
        if token.revoked {
            return Err(refused("refresh token has been revoked"));
        }
        let (user, family, reused) = (token.user, token.family, token.used);
        token.used = true;
        if reused {
            // A retired token presented again was copied: the whole login goes.
            state.revoke_refresh(|r| r.family == family);
            return Err(refused("refresh token was already used; all tokens of this login are revoked"));
        }
        let (_, version) = state.enabled(user).map_err(|_| refused("the account is disabled or gone"))?;
        Ok(state.pair(user, version, family))
    }

    /// Like the real store, revokes the refresh family only: access tokens already issued
    /// keep verifying (the real ones until they expire, these until revoked).
    fn logout(&self, refresh_token: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        let family = state.refresh.get(refresh_token).ok_or_else(|| refused("unknown refresh token"))?.family;
        state.revoke_refresh(|r| r.family == family);
        Ok(())
    }

    fn verify_token(&self, token: &str) -> Result<Actor, StoreError> {
        let state = self.state();
        let &(user_id, version) = state.access.get(token).ok_or_else(|| refused("unknown token"))?;
        let account = state.account(user_id).map_err(|_| refused("the token's user no longer exists"))?;
        if account.user.disabled {
            return Err(refused("the account is disabled"));
        }
        if account.token_version != version {
            return Err(refused("the token has been revoked"));
        }
        Ok(Actor { user_id, role: account.user.role })
    }

    fn revoke_tokens(&self, actor: &Actor, user: UserId) -> Result<(), StoreError> {
        let mut state = self.state();
        state.require_self_or_admin(actor, user, "revoking another user's tokens")?;
        state.revoke_all(user)?;
        state.api_keys.retain(|k| k.record.user_id != user);
        Ok(())
    }
}

impl ChatStore for InMemoryStore {
    fn create_session_with(&self, actor: &Actor, new: &NewSession) -> Result<Session, StoreError> {
        check_model(new.model.as_deref())?;
        let mut state = self.state();
        state.account(actor.user_id)?;
        let now = Utc::now();
        let session = Session {
            id: SessionId::new(),
            user_id: actor.user_id,
            title: new.title.clone(),
            created_at: now,
            updated_at: now,
            message_count: 0,
            last_message_preview: None,
            pinned: false,
            archived: false,
            temporary: new.temporary,
            model: new.model.clone(),
        };
        let chat = Chat { session: session.clone(), messages: Vec::new(), summary: None };
        state.chats.insert(session.id, chat);
        Ok(session)
    }

    fn list_sessions(&self, actor: &Actor, query: &SessionQuery) -> Result<SessionPage, StoreError> {
        check_page(query.page)?;
        let state = self.state();
        let needle = query.search.as_deref().map(str::to_ascii_lowercase);
        let matches = |text: &str| needle.as_ref().is_none_or(|n| text.to_ascii_lowercase().contains(n));
        let mut found: Vec<&Session> = (state.chats.values())
            .filter(|c| c.session.user_id == actor.user_id && c.session.archived == query.archived)
            .filter(|c| query.pinned.is_none_or(|pinned| c.session.pinned == pinned))
            .filter(|c| matches(&c.session.title) || c.messages.iter().any(|m| matches(&m.content)))
            .map(|c| &c.session)
            .collect();
        found.sort_by_key(|s| Reverse((s.pinned, s.updated_at, s.id)));
        let (sessions, next) = paginate(found.into_iter().cloned(), query.page);
        Ok(SessionPage { sessions, next })
    }

    fn get_session(&self, actor: &Actor, id: SessionId) -> Result<Session, StoreError> {
        Ok(self.state().chat(actor, id)?.session.clone())
    }

    fn update_session(
        &self,
        actor: &Actor,
        id: SessionId,
        update: &SessionUpdate,
    ) -> Result<Session, StoreError> {
        if update.title.as_ref().is_some_and(|title| title.trim().is_empty()) {
            return Err(invalid("title", "must not be blank"));
        }
        if let Some(model) = &update.model {
            check_model(model.as_deref())?;
        }
        self.edit_session(actor, id, |session| {
            if let Some(title) = &update.title {
                session.title = title.clone();
                session.updated_at = Utc::now();
            }
            session.pinned = update.pinned.unwrap_or(session.pinned);
            session.archived = update.archived.unwrap_or(session.archived);
            session.temporary = update.temporary.unwrap_or(session.temporary);
            if let Some(model) = &update.model {
                session.model = model.clone();
            }
        })
    }

    fn delete_session(&self, actor: &Actor, id: SessionId) -> Result<(), StoreError> {
        let mut state = self.state();
        state.chat(actor, id)?;
        state.chats.remove(&id);
        Ok(())
    }

    fn append_message(
        &self,
        actor: &Actor,
        session: SessionId,
        message: &ChatMessage,
        token_count: Option<u32>,
    ) -> Result<Message, StoreError> {
        let mut state = self.state();
        let chat = state.chat_mut(actor, session)?;
        // Strictly after the newest message even within one clock tick: time order is
        // insertion order, as in the real store.
        let now = Utc::now();
        let created_at =
            chat.messages.last().map_or(now, |m| now.max(m.created_at + TimeDelta::microseconds(1)));
        let stored = Message {
            id: MessageId::new(),
            session_id: session,
            role: message.role,
            content: message.content.clone(),
            token_count,
            created_at,
        };
        let s = &mut chat.session;
        if s.title.is_empty() && message.role == Role::User {
            s.title = auto_title(&message.content);
        }
        s.message_count += 1;
        s.last_message_preview = Some(preview(&message.content));
        s.updated_at = created_at;
        chat.messages.push(stored.clone());
        Ok(stored)
    }

    fn list_messages(&self, actor: &Actor, session: SessionId) -> Result<Vec<Message>, StoreError> {
        Ok(self.state().chat(actor, session)?.messages.clone())
    }

    fn list_messages_page(
        &self,
        actor: &Actor,
        session: SessionId,
        page: Page,
    ) -> Result<MessagePage, StoreError> {
        check_page(page)?;
        let state = self.state();
        let (messages, next) = paginate(state.chat(actor, session)?.messages.iter().cloned(), page);
        Ok(MessagePage { messages, next })
    }

    fn delete_messages_after(
        &self,
        actor: &Actor,
        session: SessionId,
        message: MessageId,
    ) -> Result<u64, StoreError> {
        self.delete_messages(actor, session, message, 1)
    }

    fn delete_messages_from(
        &self,
        actor: &Actor,
        session: SessionId,
        message: MessageId,
    ) -> Result<u64, StoreError> {
        self.delete_messages(actor, session, message, 0)
    }

    fn save_session_summary(
        &self,
        actor: &Actor,
        session: SessionId,
        through_message: MessageId,
        covered_messages: u64,
        content: &str,
    ) -> Result<SessionSummary, StoreError> {
        if covered_messages == 0 {
            return Err(invalid("covered_messages", "must be at least 1"));
        }
        let mut state = self.state();
        let chat = state.chat_mut(actor, session)?;
        if !chat.messages.iter().any(|m| m.id == through_message) {
            return Err(not_found("message", through_message));
        }
        let summary = SessionSummary {
            session_id: session,
            through_message,
            content: content.to_owned(),
            covered_messages,
            created_at: Utc::now(),
        };
        chat.summary = Some(summary.clone());
        Ok(summary)
    }

    fn session_summary(
        &self,
        actor: &Actor,
        session: SessionId,
    ) -> Result<Option<SessionSummary>, StoreError> {
        Ok(self.state().chat(actor, session)?.summary.clone())
    }
}

impl ApiKeyStore for InMemoryStore {
    fn create_api_key(&self, actor: &Actor, name: &str) -> Result<CreatedApiKey, StoreError> {
        if name.trim().is_empty() {
            return Err(invalid("name", "must not be blank"));
        }
        let mut state = self.state();
        if state.account(actor.user_id)?.user.disabled {
            return Err(StoreError::PermissionDenied { action: "creating an API key".to_owned() });
        }
        let id = ApiKeyId::new();
        // The counter makes it unique, the fresh id's random bits unguessable enough for a test.
        state.minted += 1;
        let digest = Sha256::digest(format!("api-key:{}:{id}", state.minted).as_bytes());
        let secret = format!("{}{digest:x}", ApiKey::KEY_PREFIX);
        let record = ApiKey {
            id,
            user_id: actor.user_id,
            name: name.to_owned(),
            prefix: secret.chars().take(ApiKey::KEY_PREFIX.len() + 8).collect(),
            created_at: Utc::now(),
            last_used_at: None,
        };
        state.api_keys.push(StoredApiKey { record: record.clone(), key_sha256: sha256(&secret) });
        Ok(CreatedApiKey { api_key: record, secret })
    }

    fn list_api_keys(&self, actor: &Actor) -> Result<Vec<ApiKey>, StoreError> {
        let state = self.state();
        let own = state.api_keys.iter().filter(|k| k.record.user_id == actor.user_id);
        Ok(own.map(|k| k.record.clone()).collect())
    }

    fn revoke_api_key(&self, actor: &Actor, id: ApiKeyId) -> Result<(), StoreError> {
        let mut state = self.state();
        let at = state.api_keys.iter().position(|k| k.record.id == id && k.record.user_id == actor.user_id);
        state.api_keys.remove(at.ok_or_else(|| not_found("api key", id))?);
        Ok(())
    }

    fn verify_api_key(&self, key: &str) -> Result<Actor, StoreError> {
        let mut state = self.state();
        let hash = sha256(key);
        let at = state.api_keys.iter().position(|k| k.key_sha256 == hash);
        let at = at.ok_or_else(|| refused("unknown or revoked API key"))?;
        let user_id = state.api_keys[at].record.user_id;
        let account = state.account(user_id).map_err(|_| refused("unknown or revoked API key"))?;
        if account.user.disabled {
            return Err(refused("the account is disabled"));
        }
        let role = account.user.role;
        let now = Utc::now();
        let record = &mut state.api_keys[at].record;
        if record.last_used_at.is_none_or(|last| now - last >= LAST_USE_RESOLUTION) {
            record.last_used_at = Some(now);
        }
        Ok(Actor { user_id, role })
    }
}

impl MemoryStore for InMemoryStore {
    fn add_memory_record(
        &self,
        actor: &Actor,
        memory: &NewMemory,
        details: &MemoryDetails,
    ) -> Result<MemoryRecord, StoreError> {
        if memory.content.trim().is_empty() {
            return Err(invalid("content", "must not be blank"));
        }
        let mut state = self.state();
        state.account(actor.user_id)?;
        let now = Utc::now();
        let record = MemoryRecord {
            memory: Memory {
                id: MemoryId::new(),
                user_id: actor.user_id,
                kind: memory.kind,
                content: memory.content.clone(),
                source_session_id: memory.source_session_id,
                created_at: now,
            },
            confidence: details.confidence,
            updated_at: now,
            embedding: details.embedding.clone(),
        };
        state.memories.push(record.clone());
        Ok(record)
    }

    fn list_memory_records(&self, actor: &Actor) -> Result<Vec<MemoryRecord>, StoreError> {
        let state = self.state();
        Ok(state.memories.iter().filter(|r| r.memory.user_id == actor.user_id).cloned().collect())
    }

    fn update_memory_record(
        &self,
        actor: &Actor,
        id: MemoryId,
        update: &MemoryUpdate,
    ) -> Result<MemoryRecord, StoreError> {
        let mut state = self.state();
        let record = state.memory_mut(actor, id)?;
        if let Some(kind) = update.kind {
            record.memory.kind = kind;
        }
        if let Some(content) = &update.content {
            record.memory.content = content.clone();
        }
        if let Some(confidence) = update.confidence {
            record.confidence = confidence;
        }
        if let Some(embedding) = &update.embedding {
            record.embedding = embedding.clone();
        }
        record.updated_at = Utc::now();
        Ok(record.clone())
    }

    fn delete_memory(&self, actor: &Actor, id: MemoryId) -> Result<(), StoreError> {
        let mut state = self.state();
        state.memory_mut(actor, id)?;
        state.memories.retain(|r| r.memory.id != id);
        Ok(())
    }
}

impl ExportStore for InMemoryStore {
    fn export_user_data(&self, actor: &Actor) -> Result<UserExport, StoreError> {
        let state = self.state();
        let user = state.account(actor.user_id)?.user.clone();
        let mut chats: Vec<&Chat> = state.chats.values().filter(|c| c.session.user_id == user.id).collect();
        chats.sort_by_key(|c| (c.session.created_at, c.session.id));
        let sessions = chats
            .into_iter()
            .map(|c| SessionExport { session: c.session.clone(), messages: c.messages.clone() })
            .collect();
        let memories = state.memories.iter().filter(|r| r.memory.user_id == user.id).cloned().collect();
        Ok(UserExport {
            format_version: UserExport::FORMAT_VERSION,
            exported_at: Utc::now(),
            user,
            sessions,
            memories,
        })
    }

    /// Under one lock, and nothing can fail after the first insert: all or nothing.
    fn import_user_data(&self, actor: &Actor, export: &UserExport) -> Result<ImportSummary, StoreError> {
        if export.format_version != UserExport::FORMAT_VERSION {
            return Err(invalid("import", "unsupported format version"));
        }
        let mut state = self.state();
        state.account(actor.user_id)?;
        let mut summary = ImportSummary::default();
        let mut new_ids = HashMap::new();
        for entry in &export.sessions {
            let id = SessionId::new();
            new_ids.insert(entry.session.id, id);
            let mut messages = entry.messages.clone();
            messages.sort_by_key(|m| m.created_at);
            for m in &mut messages {
                (m.id, m.session_id) = (MessageId::new(), id);
            }
            for i in 1..messages.len() {
                let after = messages[i - 1].created_at + TimeDelta::microseconds(1);
                messages[i].created_at = messages[i].created_at.max(after);
            }
            let session = Session {
                id,
                user_id: actor.user_id,
                message_count: messages.len() as u64,
                last_message_preview: messages.last().map(|m| preview(&m.content)),
                ..entry.session.clone()
            };
            summary.sessions += 1;
            summary.messages += messages.len() as u64;
            state.chats.insert(id, Chat { session, messages, summary: None });
        }
        for record in &export.memories {
            let mut record = record.clone();
            record.memory.id = MemoryId::new();
            record.memory.user_id = actor.user_id;
            // A source session that is not part of the export is gone: unlink it.
            record.memory.source_session_id =
                record.memory.source_session_id.and_then(|s| new_ids.get(&s).copied());
            state.memories.push(record);
            summary.memories += 1;
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use modelforge_core::{MemoryKind, SessionStore};

    use super::*;

    fn register(store: &InMemoryStore, name: &str) -> Actor {
        let new = NewUser {
            username: name.into(),
            password: format!("pw of {name}"),
            email: None,
            role: UserRole::User,
        };
        store.create_user(&new).unwrap().actor()
    }

    fn fact(content: &str) -> NewMemory {
        NewMemory { kind: MemoryKind::Fact, content: content.into(), source_session_id: None }
    }

    #[test]
    fn the_first_user_is_admin_and_later_ones_cannot_claim_it() {
        let store = InMemoryStore::new();
        let admin = register(&store, "ada");
        let lina = register(&store, "lina");
        assert_eq!((admin.role, lina.role), (UserRole::Admin, UserRole::User));
        let claim =
            NewUser { username: "eve".into(), password: "x".into(), email: None, role: UserRole::Admin };
        assert!(matches!(store.create_user(&claim), Err(StoreError::PermissionDenied { .. })));
        // A hand-made admin actor is checked against the stored role.
        let forged = Actor { role: UserRole::Admin, ..lina };
        assert!(matches!(
            store.list_users(&forged, Page::default()),
            Err(StoreError::PermissionDenied { .. })
        ));
        assert_eq!(store.list_users(&admin, Page::default()).unwrap().len(), 2);
        assert!(store.delete_user(&admin, admin.user_id).is_err(), "the last admin stays");
    }

    #[test]
    fn login_checks_the_password() {
        let store = InMemoryStore::new();
        register(&store, "lina");
        assert!(matches!(store.login("lina", "wrong"), Err(StoreError::InvalidCredentials)));
        assert!(matches!(store.login("nobody", "pw of lina"), Err(StoreError::InvalidCredentials)));
        assert!(store.login("LINA", "pw of lina").unwrap().last_login.is_some());
    }

    #[test]
    fn another_users_ids_are_not_found() {
        let store = InMemoryStore::new();
        let (lina, omar) = (register(&store, "lina"), register(&store, "omar"));
        let session = store.create_session(&lina, "Trip").unwrap();
        let memory = store.add_memory(&lina, &fact("Lina likes tea.")).unwrap();
        let not_found = |r: Result<_, StoreError>| matches!(r, Err(StoreError::NotFound { .. }));
        assert!(not_found(store.get_session(&omar, session.id).map(drop)));
        assert!(not_found(store.list_messages(&omar, session.id).map(drop)));
        assert!(not_found(store.delete_session(&omar, session.id)));
        assert!(not_found(store.update_memory(&omar, memory.id, "mine now").map(drop)));
        assert!(not_found(store.delete_memory(&omar, memory.id)));
        assert!(store.list_memories(&omar).unwrap().is_empty());
        assert!(store.list_sessions(&omar, &SessionQuery::default()).unwrap().sessions.is_empty());
        assert_eq!(store.list_memories(&lina).unwrap(), [memory]);
    }

    #[test]
    fn messages_are_in_strict_time_order_and_name_the_session() {
        let store = InMemoryStore::new();
        let lina = register(&store, "lina");
        let session = store.create_session(&lina, "").unwrap();
        store.append_message(&lina, session.id, &ChatMessage::assistant("Hello!"), None).unwrap();
        let question =
            "\n  Where should I go in May? I like mountains and quiet villages, and trains.\nThanks";
        store.append_message(&lina, session.id, &ChatMessage::user(question), Some(9)).unwrap();
        for i in 0..50 {
            store.append_message(&lina, session.id, &ChatMessage::user(format!("{i}")), None).unwrap();
        }
        let messages = store.list_messages(&lina, session.id).unwrap();
        assert!(messages.windows(2).all(|w| w[0].created_at < w[1].created_at));
        let session = store.get_session(&lina, session.id).unwrap();
        assert_eq!(session.title, "Where should I go in May? I like mountains and quiet village");
        assert_eq!(session.message_count, 52);
    }

    #[test]
    fn delete_messages_after_drops_later_messages_and_a_summary_of_them() {
        let store = InMemoryStore::new();
        let lina = register(&store, "lina");
        let s = store.create_session(&lina, "t").unwrap().id;
        let ids: Vec<_> = (0..4)
            .map(|i| store.append_message(&lina, s, &ChatMessage::user(format!("m{i}")), None).unwrap().id)
            .collect();
        store.save_session_summary(&lina, s, ids[0], 1, "first").unwrap();
        assert_eq!(store.delete_messages_after(&lina, s, ids[2]).unwrap(), 1);
        assert!(store.session_summary(&lina, s).unwrap().is_some(), "a summary of older messages stays");
        store.save_session_summary(&lina, s, ids[2], 3, "three").unwrap();
        assert_eq!(store.delete_messages_after(&lina, s, ids[0]).unwrap(), 2);
        assert_eq!(store.session_summary(&lina, s).unwrap(), None);
        let session = store.get_session(&lina, s).unwrap();
        assert_eq!((session.message_count, session.last_message_preview.as_deref()), (1, Some("m0")));
    }

    #[test]
    fn sessions_list_pinned_first_then_newest_with_search_and_archive() {
        let store = InMemoryStore::new();
        let lina = register(&store, "lina");
        let ids: Vec<_> = ["a", "b", "c"].map(|t| store.create_session(&lina, t).unwrap().id).into();
        store.append_message(&lina, ids[0], &ChatMessage::user("about Lyon"), None).unwrap();
        store.set_session_pinned(&lina, ids[1], true).unwrap();
        store.set_session_archived(&lina, ids[2], true).unwrap();
        let titles = |query: SessionQuery| -> Vec<String> {
            store.list_sessions(&lina, &query).unwrap().sessions.into_iter().map(|s| s.title).collect()
        };
        assert_eq!(titles(SessionQuery::default()), ["b", "a"]);
        assert_eq!(titles(SessionQuery { archived: true, ..SessionQuery::default() }), ["c"]);
        assert_eq!(titles(SessionQuery { search: Some("LYON".into()), ..SessionQuery::default() }), ["a"]);
        let first =
            store.list_sessions(&lina, &SessionQuery { page: Page::first(1), ..SessionQuery::default() });
        assert_eq!(first.unwrap().next, Some(Page { offset: 1, limit: 1 }));
    }

    #[test]
    fn tokens_map_back_rotate_and_revoke() {
        let store = InMemoryStore::new();
        let lina = register(&store, "lina");
        let pair = store.issue_tokens(&lina).unwrap();
        assert_eq!(store.verify_token(&pair.access_token).unwrap(), lina);
        let next = store.refresh(&pair.refresh_token).unwrap();
        assert!(store.refresh(&pair.refresh_token).is_err(), "a retired refresh token is refused");
        assert!(store.refresh(&next.refresh_token).is_err(), "and its reuse revoked the family");
        let again = store.issue_tokens(&lina).unwrap();
        store.logout(&again.refresh_token).unwrap();
        assert!(matches!(store.refresh(&again.refresh_token), Err(StoreError::InvalidToken { .. })));
        store.revoke_tokens(&lina, lina.user_id).unwrap();
        assert!(store.verify_token(&again.access_token).is_err());
    }

    #[test]
    fn export_and_import_copy_with_new_ids() {
        let store = InMemoryStore::new();
        let (lina, omar) = (register(&store, "lina"), register(&store, "omar"));
        let s = store.create_session(&lina, "Trip").unwrap().id;
        store.append_message(&lina, s, &ChatMessage::user("hi"), None).unwrap();
        let source = NewMemory { source_session_id: Some(s), ..fact("Lina likes tea.") };
        store.add_memory(&lina, &source).unwrap();
        let json = store.export_json(&lina).unwrap();
        let summary = store.import_json(&omar, &json).unwrap();
        assert_eq!((summary.sessions, summary.messages, summary.memories), (1, 1, 1));
        let copied = store.list_sessions(&omar, &SessionQuery::default()).unwrap().sessions;
        assert_ne!(copied[0].id, s);
        let memory = &store.list_memories(&omar).unwrap()[0];
        assert_eq!(memory.source_session_id, Some(copied[0].id));
    }

    #[test]
    fn one_update_changes_several_settings_and_only_a_title_moves_updated_at() {
        let store = InMemoryStore::new();
        let (lina, omar) = (register(&store, "lina"), register(&store, "omar"));
        let new = NewSession { model: Some("qwen".into()), ..NewSession::default() };
        let session = store.create_session_with(&lina, &new).unwrap();
        assert_eq!(session.model.as_deref(), Some("qwen"));
        let change = SessionUpdate { pinned: Some(true), model: Some(None), ..SessionUpdate::default() };
        let changed = store.update_session(&lina, session.id, &change).unwrap();
        assert!(changed.pinned && changed.model.is_none() && changed.updated_at == session.updated_at);
        let renamed = store.rename_session(&lina, session.id, "Trip").unwrap();
        assert!(renamed.updated_at >= session.updated_at && renamed.pinned);
        let blank =
            SessionUpdate { title: Some(" ".into()), archived: Some(true), ..SessionUpdate::default() };
        assert!(matches!(
            store.update_session(&lina, session.id, &blank),
            Err(StoreError::InvalidInput { .. })
        ));
        assert!(!store.get_session(&lina, session.id).unwrap().archived, "a refused update changes nothing");
        let foreign = store.update_session(&omar, session.id, &SessionUpdate::default());
        assert!(matches!(foreign, Err(StoreError::NotFound { what: "session", .. })));
        let unpinned = SessionQuery { pinned: Some(false), ..SessionQuery::default() };
        assert!(store.list_sessions(&lina, &unpinned).unwrap().sessions.is_empty());
    }

    #[test]
    fn api_keys_verify_until_revoked_and_survive_a_password_change() {
        let store = InMemoryStore::new();
        let (admin, lina) = (register(&store, "ada"), register(&store, "lina"));
        let created = store.create_api_key(&lina, "editor").unwrap();
        assert!(created.secret.starts_with(&created.api_key.prefix));
        assert!(!format!("{created:?}").contains(&created.secret));
        assert_eq!(store.verify_api_key(&created.secret).unwrap(), lina);
        let listed = store.list_api_keys(&lina).unwrap();
        assert!(listed[0].last_used_at.is_some() && store.list_api_keys(&admin).unwrap().is_empty());
        store.change_password(&lina, "pw of lina", "new pw").unwrap();
        assert_eq!(store.verify_api_key(&created.secret).unwrap(), lina, "a new password keeps keys");
        let foreign = store.revoke_api_key(&admin, created.api_key.id);
        assert!(matches!(foreign, Err(StoreError::NotFound { what: "api key", .. })));
        store.revoke_tokens(&admin, lina.user_id).unwrap();
        assert!(matches!(store.verify_api_key(&created.secret), Err(StoreError::InvalidToken { .. })));
        let again = store.create_api_key(&lina, "again").unwrap();
        store.revoke_api_key(&lina, again.api_key.id).unwrap();
        assert!(
            store.verify_api_key(&again.secret).is_err() && store.list_api_keys(&lina).unwrap().is_empty()
        );
    }

    #[test]
    fn registration_is_open_until_an_admin_closes_it() {
        let store = InMemoryStore::new();
        assert!(store.registration_open().unwrap());
        let (admin, lina) = (register(&store, "ada"), register(&store, "lina"));
        let forged = Actor { role: UserRole::Admin, ..lina };
        assert!(matches!(
            store.set_registration_open(&forged, false),
            Err(StoreError::PermissionDenied { .. })
        ));
        store.set_registration_open(&admin, false).unwrap();
        assert!(!store.registration_open().unwrap());
        register(&store, "omar");
    }

    #[test]
    fn it_serves_as_the_whole_store_and_as_each_slice() {
        let store: Arc<dyn SessionStore> = Arc::new(InMemoryStore::new());
        let lina = store.create_user(&NewUser {
            username: "lina".into(),
            password: "pw".into(),
            email: None,
            role: UserRole::User,
        });
        let actor = lina.unwrap().actor();
        let memories: Arc<dyn MemoryStore> = store.clone();
        memories.add_memory(&actor, &fact("Lina likes tea.")).unwrap();
        assert_eq!(store.list_memories(&actor).unwrap().len(), 1);
    }
}
