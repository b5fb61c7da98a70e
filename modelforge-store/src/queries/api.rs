//! The [`SessionStore`] implementation: input rules and permission checks first, then the
//! queries in one transaction per call. Slow password hashing always runs outside any
//! transaction and without holding a connection.

use modelforge_core::{
    Actor, ChatMessage, ImportSummary, MemoryDetails, MemoryId, MemoryRecord, MemoryUpdate, Message,
    MessageId, MessagePage, NewMemory, NewSession, NewUser, Page, Session, SessionId, SessionPage,
    SessionQuery, SessionStore, SessionSummary, StoreError, TokenPair, User, UserExport, UserId, UserRole,
};
use tracing::field::Empty;

use super::{
    Conn, Store, lock_users, memories, messages, read_tx, sessions, summaries, tokens, transfer, users,
    write_tx,
};
use crate::db::rows::{now_micros, timestamp};
use crate::{limits, password, refresh};

impl Store {
    /// Runs `f` in a write transaction (behind the process's write lock on SQLite).
    fn write<T>(
        &self,
        context: &'static str,
        f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _writer = self.shared.writer();
        let mut conn = self.shared.conn()?;
        write_tx(&mut conn, context, f)
    }

    /// Runs `f` in a read transaction: several queries see one snapshot.
    fn read<T>(
        &self,
        context: &'static str,
        f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.shared.conn()?;
        read_tx(&mut conn, context, f)
    }

    /// Runs a single statement (or statements that need no common snapshot).
    fn query<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.shared.conn()?;
        f(&mut conn)
    }

    /// The user's current role and token version, if the account exists and is enabled.
    fn enabled_user(conn: &mut Conn, user: UserId) -> Result<(UserRole, i64), StoreError> {
        let state = users::token_state(conn, user)?.ok_or_else(|| users::not_found(user))?;
        if state.disabled {
            return Err(StoreError::PermissionDenied {
                action: format!("issuing tokens for disabled user {user}"),
            });
        }
        let role = state.role.parse().map_err(|_| crate::db::errors::corrupt("a user role", &state.role))?;
        Ok((role, state.token_version))
    }

    /// A new access token and a new refresh token in `family`.
    fn token_pair(
        &self,
        conn: &mut Conn,
        actor: Actor,
        token_version: i64,
        family_id: &str,
    ) -> Result<TokenPair, StoreError> {
        let now = now_micros();
        let ttl = i64::try_from(self.shared.options.refresh_token_ttl.as_micros()).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(ttl);
        let refresh_token = refresh::generate();
        tokens::insert(conn, actor.user_id, family_id, refresh::hash(&refresh_token), now, expires_at)?;
        let (access_token, access_expires_at) = self.shared.keys.issue(&actor, token_version)?;
        Ok(TokenPair {
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at: timestamp(expires_at)?,
        })
    }
}

/// What a refresh attempt found; errors that must not roll back the transaction (a detected
/// reuse revokes the family, and that revocation has to be committed).
enum Refreshed {
    Pair(TokenPair),
    Refused(&'static str),
}

fn refused(reason: &str) -> StoreError {
    StoreError::InvalidToken { reason: reason.to_owned() }
}

/// Seconds, rounded up, at least 1.
fn whole_secs(micros: i64) -> u64 {
    u64::try_from(micros).unwrap_or(0).div_ceil(1_000_000).max(1)
}

fn check_memory_update(change: &MemoryUpdate) -> Result<(), StoreError> {
    if let Some(content) = &change.content {
        limits::check_memory(content)?;
    }
    if let Some(confidence) = change.confidence {
        limits::check_confidence(confidence)?;
    }
    if let Some(Some(embedding)) = &change.embedding {
        limits::check_embedding(embedding)?;
    }
    Ok(())
}

fn check_details(details: &MemoryDetails) -> Result<(), StoreError> {
    limits::check_confidence(details.confidence)?;
    details.embedding.as_deref().map_or(Ok(()), limits::check_embedding)
}

/// Every value of an export passes the same rules as the calls that would have created it.
fn check_export(export: &UserExport) -> Result<(), StoreError> {
    if export.format_version != UserExport::FORMAT_VERSION {
        return Err(StoreError::InvalidInput {
            field: "import",
            reason: format!(
                "format version {} is not supported (expected {})",
                export.format_version,
                UserExport::FORMAT_VERSION
            ),
        });
    }
    for entry in &export.sessions {
        limits::check_title(&entry.session.title)?;
        for message in &entry.messages {
            limits::check_message(&message.content)?;
        }
    }
    for record in &export.memories {
        limits::check_memory(&record.memory.content)?;
        check_details(&MemoryDetails { confidence: record.confidence, embedding: record.embedding.clone() })?;
    }
    Ok(())
}

impl SessionStore for Store {
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = Empty))]
    fn create_user(&self, new_user: &NewUser) -> Result<User, StoreError> {
        limits::check_username(&new_user.username)?;
        limits::check_password(&new_user.password)?;
        limits::check_email(new_user.email.as_deref())?;
        // Hash before taking a connection: argon2 is deliberately slow.
        let hash = password::hash_password(&new_user.password)?;
        let user = self.write("creating a user", |conn| {
            // Counting and inserting under one lock, so two first registrations cannot both
            // become admin.
            lock_users(conn)?;
            let role = match (users::count(conn)?, new_user.role) {
                (0, _) => UserRole::Admin,
                (_, UserRole::User) => UserRole::User,
                (_, UserRole::Admin) => {
                    return Err(StoreError::PermissionDenied {
                        action: "registering as an admin (an admin can promote the account later)".to_owned(),
                    });
                }
            };
            users::insert(conn, new_user, role, &hash)
        })?;
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        tracing::info!(role = %user.role, "created a user");
        Ok(user)
    }

    // The attempted username is not recorded: people sometimes type a password into it.
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = Empty))]
    fn login(&self, username: &str, password: &str) -> Result<User, StoreError> {
        if password.len() > limits::PASSWORD_MAX_BYTES {
            return Err(StoreError::InvalidCredentials);
        }
        // The connection goes back to the pool before the slow verification.
        let Some(found) = self.query(|conn| users::credentials(conn, username))? else {
            password::verify_dummy(password);
            tracing::debug!("login refused");
            return Err(StoreError::InvalidCredentials);
        };
        let failed_attempts = u32::try_from(found.failed_logins).unwrap_or(u32::MAX);
        let user = found.user.into_user()?;
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        let now = now_micros();
        if let Some(until) = found.locked_until.filter(|&until| until > now) {
            tracing::info!("login refused: account locked");
            return Err(StoreError::AccountLocked {
                username: user.username,
                failed_attempts,
                retry_after_secs: whole_secs(until - now),
            });
        }
        if !password::verify_password(password, &found.password_hash)? {
            let policy = self.shared.options.lockout;
            let lock_until = |failures: u32| {
                policy
                    .delay_after(failures)
                    .map(|delay| now_micros().saturating_add(delay.as_micros() as i64))
            };
            let failures = self
                .write("counting a failed login", |conn| users::record_failure(conn, user.id, lock_until))?;
            tracing::debug!(failures, "login refused");
            return Err(match policy.delay_after(failures) {
                Some(delay) => StoreError::AccountLocked {
                    username: user.username,
                    failed_attempts: failures,
                    retry_after_secs: delay.as_secs().max(1),
                },
                None => StoreError::InvalidCredentials,
            });
        }
        if user.disabled {
            return Err(StoreError::AccountDisabled { username: user.username });
        }
        self.write("recording a login", |conn| users::record_login(conn, user.id))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn issue_token(&self, actor: &Actor) -> Result<String, StoreError> {
        let (role, version) = self.query(|conn| Self::enabled_user(conn, actor.user_id))?;
        let (token, _) = self.shared.keys.issue(&Actor { user_id: actor.user_id, role }, version)?;
        Ok(token)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn issue_tokens(&self, actor: &Actor) -> Result<TokenPair, StoreError> {
        self.write("issuing tokens", |conn| {
            let (role, version) = Self::enabled_user(conn, actor.user_id)?;
            let family = uuid::Uuid::now_v7().to_string();
            self.token_pair(conn, Actor { user_id: actor.user_id, role }, version, &family)
        })
    }

    #[tracing::instrument(level = "debug", skip_all)]
    fn refresh(&self, refresh_token: &str) -> Result<TokenPair, StoreError> {
        if refresh_token.len() > refresh::MAX_TOKEN_BYTES {
            return Err(refused("refresh token is too long"));
        }
        let hash = refresh::hash(refresh_token);
        let outcome = self.write("refreshing tokens", |conn| {
            let now = now_micros();
            let Some(row) = tokens::find(conn, &hash)? else {
                return Ok(Refreshed::Refused("unknown refresh token"));
            };
            if row.revoked_at.is_some() {
                return Ok(Refreshed::Refused("refresh token has been revoked"));
            }
            // A retired token presented again was copied: whoever holds its successor may be
            // an attacker or the user, so every token of the login goes.
            if row.used_at.is_some() || !tokens::mark_used(conn, &row.id, now)? {
                tokens::revoke_family(conn, &row.family_id, now)?;
                tracing::warn!(user_id = %row.user_id, "refresh token reuse: revoked its family");
                return Ok(Refreshed::Refused(
                    "refresh token was already used; all tokens of this login are revoked",
                ));
            }
            if row.expires_at <= now {
                return Ok(Refreshed::Refused("refresh token has expired"));
            }
            let user: UserId =
                row.user_id.parse().map_err(|_| crate::db::errors::corrupt("a user id", &row.user_id))?;
            let Some(state) = users::token_state(conn, user)? else {
                return Ok(Refreshed::Refused("the token's user no longer exists"));
            };
            if state.disabled {
                return Ok(Refreshed::Refused("the account is disabled"));
            }
            let role =
                state.role.parse().map_err(|_| crate::db::errors::corrupt("a user role", &state.role))?;
            Ok(Refreshed::Pair(self.token_pair(
                conn,
                Actor { user_id: user, role },
                state.token_version,
                &row.family_id,
            )?))
        })?;
        match outcome {
            Refreshed::Pair(pair) => Ok(pair),
            Refreshed::Refused(reason) => Err(refused(reason)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    fn logout(&self, refresh_token: &str) -> Result<(), StoreError> {
        if refresh_token.len() > refresh::MAX_TOKEN_BYTES {
            return Err(refused("refresh token is too long"));
        }
        let hash = refresh::hash(refresh_token);
        self.write("logging out", |conn| {
            let row = tokens::find(conn, &hash)?.ok_or_else(|| refused("unknown refresh token"))?;
            tokens::revoke_family(conn, &row.family_id, now_micros())
        })
    }

    /// Also checks that the user still exists, is enabled and has not revoked the token, and
    /// takes the role from the database, so a role change applies to tokens already issued.
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = Empty))]
    fn verify_token(&self, token: &str) -> Result<Actor, StoreError> {
        let claimed = self.shared.keys.verify(token)?;
        let user_id = claimed.actor.user_id;
        tracing::Span::current().record("user_id", tracing::field::display(user_id));
        let state = self
            .query(|conn| users::token_state(conn, user_id))?
            .ok_or_else(|| refused("the token's user no longer exists"))?;
        if state.disabled {
            return Err(refused("the account is disabled"));
        }
        if state.token_version != claimed.token_version {
            return Err(refused("the token has been revoked"));
        }
        let role = state.role.parse().map_err(|_| crate::db::errors::corrupt("a user role", &state.role))?;
        Ok(Actor { user_id, role })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn current_user(&self, actor: &Actor) -> Result<User, StoreError> {
        self.query(|conn| users::get(conn, actor.user_id))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn change_password(
        &self,
        actor: &Actor,
        current_password: &str,
        new_password: &str,
    ) -> Result<(), StoreError> {
        limits::check_password(new_password)?;
        let found = self.query(|conn| users::credentials_by_id(conn, actor.user_id))?;
        if current_password.len() > limits::PASSWORD_MAX_BYTES
            || !password::verify_password(current_password, &found.password_hash)?
        {
            return Err(StoreError::InvalidCredentials);
        }
        let hash = password::hash_password(new_password)?;
        self.write("changing a password", |conn| {
            users::set_password_hash(conn, actor.user_id, &hash)?;
            users::bump_token_version(conn, actor.user_id)?;
            tokens::revoke_user(conn, actor.user_id, now_micros())
        })?;
        tracing::info!("changed a password and revoked its tokens");
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, target = %user))]
    fn revoke_tokens(&self, actor: &Actor, user: UserId) -> Result<(), StoreError> {
        self.write("revoking tokens", |conn| {
            if user != actor.user_id {
                users::require_admin(conn, actor, "revoking another user's tokens")?;
            }
            users::bump_token_version(conn, user)?;
            tokens::revoke_user(conn, user, now_micros())
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, target = %user))]
    fn delete_user(&self, actor: &Actor, user: UserId) -> Result<(), StoreError> {
        self.write("deleting a user", |conn| {
            if user != actor.user_id {
                users::require_admin(conn, actor, "deleting another user")?;
            }
            lock_users(conn)?;
            users::ensure_another_admin(conn, user, "deleting this account")?;
            users::remove(conn, user)
        })?;
        tracing::info!("deleted a user and all their data");
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn list_users(&self, actor: &Actor, page: Page) -> Result<Vec<User>, StoreError> {
        limits::check_page(page)?;
        self.read("listing users", |conn| {
            users::require_admin(conn, actor, "listing users")?;
            users::list(conn, page)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, target = %user))]
    fn set_user_disabled(&self, actor: &Actor, user: UserId, disabled: bool) -> Result<User, StoreError> {
        self.write("disabling a user", |conn| {
            users::require_admin(conn, actor, "disabling users")?;
            if disabled {
                lock_users(conn)?;
                users::ensure_another_admin(conn, user, "disabling this account")?;
                tokens::revoke_user(conn, user, now_micros())?;
            }
            users::set_disabled(conn, user, disabled)?;
            users::get(conn, user)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, target = %user))]
    fn set_user_role(&self, actor: &Actor, user: UserId, role: UserRole) -> Result<User, StoreError> {
        self.write("changing a role", |conn| {
            users::require_admin(conn, actor, "changing roles")?;
            if role != UserRole::Admin {
                lock_users(conn)?;
                users::ensure_another_admin(conn, user, "demoting this account")?;
            }
            users::set_role(conn, user, role)?;
            users::get(conn, user)
        })
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(user_id = %actor.user_id, target = %user, enabled = enabled)
    )]
    fn set_memory_enabled(&self, actor: &Actor, user: UserId, enabled: bool) -> Result<User, StoreError> {
        self.write("switching memory", |conn| {
            if user != actor.user_id {
                users::require_admin(conn, actor, "switching another user's memory")?;
            }
            users::set_memory_enabled(conn, user, enabled)?;
            users::get(conn, user)
        })
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(user_id = %actor.user_id, session_id = Empty, temporary = new.temporary)
    )]
    fn create_session_with(&self, actor: &Actor, new: &NewSession) -> Result<Session, StoreError> {
        limits::check_title(&new.title)?;
        let session = self.write("creating a session", |conn| sessions::insert(conn, actor.user_id, new))?;
        tracing::Span::current().record("session_id", tracing::field::display(session.id));
        Ok(session)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn list_sessions(&self, actor: &Actor, query: &SessionQuery) -> Result<SessionPage, StoreError> {
        limits::check_page(query.page)?;
        if let Some(search) = &query.search {
            limits::check_search(search)?;
        }
        self.query(|conn| sessions::list(conn, actor.user_id, query))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %id))]
    fn get_session(&self, actor: &Actor, id: SessionId) -> Result<Session, StoreError> {
        self.query(|conn| sessions::get(conn, actor.user_id, id))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %id))]
    fn rename_session(&self, actor: &Actor, id: SessionId, title: &str) -> Result<Session, StoreError> {
        limits::check_new_title(title)?;
        self.write("renaming a session", |conn| sessions::rename(conn, actor.user_id, id, title))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %id))]
    fn set_session_pinned(&self, actor: &Actor, id: SessionId, pinned: bool) -> Result<Session, StoreError> {
        self.write("pinning a session", |conn| sessions::set_pinned(conn, actor.user_id, id, pinned))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %id))]
    fn set_session_archived(
        &self,
        actor: &Actor,
        id: SessionId,
        archived: bool,
    ) -> Result<Session, StoreError> {
        self.write("archiving a session", |conn| sessions::set_archived(conn, actor.user_id, id, archived))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(user_id = %actor.user_id, session_id = %id, temporary = temporary)
    )]
    fn set_session_temporary(
        &self,
        actor: &Actor,
        id: SessionId,
        temporary: bool,
    ) -> Result<Session, StoreError> {
        self.write("making a session temporary", |conn| {
            sessions::set_temporary(conn, actor.user_id, id, temporary)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %id))]
    fn delete_session(&self, actor: &Actor, id: SessionId) -> Result<(), StoreError> {
        self.write("deleting a session", |conn| sessions::remove(conn, actor.user_id, id))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(user_id = %actor.user_id, session_id = %session, role = %message.role, bytes = message.content.len())
    )]
    fn append_message(
        &self,
        actor: &Actor,
        session: SessionId,
        message: &ChatMessage,
        token_count: Option<u32>,
    ) -> Result<Message, StoreError> {
        limits::check_message(&message.content)?;
        self.write("appending a message", |conn| {
            messages::append(conn, actor.user_id, session, message, token_count)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %session))]
    fn list_messages(&self, actor: &Actor, session: SessionId) -> Result<Vec<Message>, StoreError> {
        self.read("listing messages", |conn| {
            if !sessions::exists(conn, actor.user_id, session)? {
                return Err(sessions::not_found(session));
            }
            messages::all(conn, session)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %session))]
    fn list_messages_page(
        &self,
        actor: &Actor,
        session: SessionId,
        page: Page,
    ) -> Result<MessagePage, StoreError> {
        limits::check_page(page)?;
        self.read("listing messages", |conn| {
            if !sessions::exists(conn, actor.user_id, session)? {
                return Err(sessions::not_found(session));
            }
            messages::page(conn, session, page)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %session))]
    fn delete_messages_after(
        &self,
        actor: &Actor,
        session: SessionId,
        message: MessageId,
    ) -> Result<u64, StoreError> {
        self.write("deleting messages", |conn| messages::delete_after(conn, actor.user_id, session, message))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            user_id = %actor.user_id,
            session_id = %session,
            covered_messages = covered_messages,
            bytes = content.len()
        )
    )]
    fn save_session_summary(
        &self,
        actor: &Actor,
        session: SessionId,
        through_message: MessageId,
        covered_messages: u64,
        content: &str,
    ) -> Result<SessionSummary, StoreError> {
        limits::check_summary(content)?;
        let covered = limits::check_covered_messages(covered_messages)?;
        self.write("saving a session summary", |conn| {
            summaries::save(conn, actor.user_id, session, through_message, covered, content)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %session))]
    fn session_summary(
        &self,
        actor: &Actor,
        session: SessionId,
    ) -> Result<Option<SessionSummary>, StoreError> {
        self.read("loading a session summary", |conn| summaries::get(conn, actor.user_id, session))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, kind = memory.kind.as_str()))]
    fn add_memory_record(
        &self,
        actor: &Actor,
        memory: &NewMemory,
        details: &MemoryDetails,
    ) -> Result<MemoryRecord, StoreError> {
        limits::check_memory(&memory.content)?;
        check_details(details)?;
        self.write("adding a memory", |conn| memories::insert(conn, actor.user_id, memory, details))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn list_memory_records(&self, actor: &Actor) -> Result<Vec<MemoryRecord>, StoreError> {
        self.query(|conn| memories::list(conn, actor.user_id))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, memory_id = %id))]
    fn update_memory_record(
        &self,
        actor: &Actor,
        id: MemoryId,
        update: &MemoryUpdate,
    ) -> Result<MemoryRecord, StoreError> {
        check_memory_update(update)?;
        self.write("updating a memory", |conn| memories::apply_update(conn, actor.user_id, id, update))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, memory_id = %id))]
    fn delete_memory(&self, actor: &Actor, id: MemoryId) -> Result<(), StoreError> {
        self.write("deleting a memory", |conn| memories::remove(conn, actor.user_id, id))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn export_user_data(&self, actor: &Actor) -> Result<UserExport, StoreError> {
        self.read("exporting a user's data", |conn| transfer::export(conn, actor.user_id))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn import_user_data(&self, actor: &Actor, export: &UserExport) -> Result<ImportSummary, StoreError> {
        check_export(export)?;
        let summary =
            self.write("importing a user's data", |conn| transfer::import(conn, actor.user_id, export))?;
        tracing::info!(
            sessions = summary.sessions,
            messages = summary.messages,
            memories = summary.memories,
            "imported data"
        );
        Ok(summary)
    }
}
