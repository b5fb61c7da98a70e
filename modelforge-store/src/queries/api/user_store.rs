//! [`UserStore`] for the store: registration, login, the administration of accounts and the
//! registration switch. Password hashing and verification (argon2, deliberately slow) run
//! before or after the transactions, never inside one.

use modelforge_core::{Actor, NewUser, Page, StoreError, User, UserId, UserRole, UserStore};
use tracing::field::Empty;

use super::super::{Store, lock_users, settings, tokens, users};
use super::whole_secs;
use crate::db::rows::now_micros;
use crate::{limits, password};

impl UserStore for Store {
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
        // API keys stay (see the trait's docs): scripts holding them should survive a new
        // password.
        self.write("changing a password", |conn| {
            users::set_password_hash(conn, actor.user_id, &hash)?;
            users::bump_token_version(conn, actor.user_id)?;
            tokens::revoke_user(conn, actor.user_id, now_micros())
        })?;
        self.shared.token_states.forget(actor.user_id);
        tracing::info!("changed a password and revoked its tokens");
        Ok(())
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
        self.shared.token_states.forget(user);
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
        .inspect(|_| self.shared.token_states.forget(user))
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
        .inspect(|_| self.shared.token_states.forget(user))
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

    #[tracing::instrument(level = "debug", skip_all)]
    fn registration_open(&self) -> Result<bool, StoreError> {
        self.query(|conn| settings::get(conn, &settings::REGISTRATION_OPEN))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, open = open))]
    fn set_registration_open(&self, actor: &Actor, open: bool) -> Result<(), StoreError> {
        self.write("opening or closing registration", |conn| {
            users::require_admin(conn, actor, "opening or closing registration")?;
            settings::set(conn, &settings::REGISTRATION_OPEN, open)
        })?;
        tracing::info!(open, "switched registration");
        Ok(())
    }
}
