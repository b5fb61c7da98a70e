//! User queries: registration, login bookkeeping, administration.

use diesel::prelude::*;
use diesel::{delete, insert_into, update};
use modelforge_core::{Actor, NewUser, Page, StoreError, User, UserId, UserRole};

use super::Conn;
use crate::db::errors::{db_error, is_unique_violation, while_};
use crate::db::rows::{CredentialsRow, NewUserRow, TokenStateRow, UserRow, now_micros, timestamp};
use crate::db::schema::users;

pub(super) fn not_found(id: UserId) -> StoreError {
    StoreError::NotFound { what: "user", id: id.to_string() }
}

/// The lookup key of a username: uniqueness and login ignore ASCII case.
fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// How many accounts exist.
pub(super) fn count(conn: &mut Conn) -> Result<i64, StoreError> {
    users::table.count().get_result(conn).map_err(while_("counting users"))
}

/// Inserts a validated user with an already computed hash and the role decided by the caller.
pub(super) fn insert(
    conn: &mut Conn,
    new_user: &NewUser,
    role: UserRole,
    password_hash: &str,
) -> Result<User, StoreError> {
    let id = UserId::new();
    let row = NewUserRow {
        id: id.to_string(),
        username: &new_user.username,
        username_key: username_key(&new_user.username),
        password_hash,
        email: new_user.email.as_deref(),
        role: role.as_str(),
        created_at: now_micros(),
    };
    insert_into(users::table).values(&row).execute(conn).map_err(|err| {
        if is_unique_violation(&err) {
            StoreError::Conflict { what: format!("username `{}`", new_user.username) }
        } else {
            db_error("inserting a user", err)
        }
    })?;
    Ok(User {
        id,
        username: new_user.username.clone(),
        email: new_user.email.clone(),
        role,
        created_at: timestamp(row.created_at)?,
        last_login: None,
        disabled: false,
        // The column's default.
        memory_enabled: true,
    })
}

/// The user with this (case-insensitive) name, their hash and throttling state, if any.
pub(super) fn credentials(conn: &mut Conn, username: &str) -> Result<Option<CredentialsRow>, StoreError> {
    users::table
        .filter(users::username_key.eq(username_key(username)))
        .select(CredentialsRow::as_select())
        .first(conn)
        .optional()
        .map_err(while_("looking up a user for login"))
}

/// The hash and throttling state of a user by id.
pub(super) fn credentials_by_id(conn: &mut Conn, id: UserId) -> Result<CredentialsRow, StoreError> {
    users::table
        .find(id.to_string())
        .select(CredentialsRow::as_select())
        .first(conn)
        .optional()
        .map_err(while_("loading a user's credentials"))?
        .ok_or_else(|| not_found(id))
}

/// Counts a failed login and sets the lock the caller computed; returns the new count.
pub(super) fn record_failure(
    conn: &mut Conn,
    id: UserId,
    locked_until: impl Fn(u32) -> Option<i64>,
) -> Result<u32, StoreError> {
    update(users::table.find(id.to_string()))
        .set(users::failed_logins.eq(users::failed_logins + 1))
        .execute(conn)
        .map_err(while_("counting a failed login"))?;
    let failures: i64 = users::table
        .find(id.to_string())
        .select(users::failed_logins)
        .first(conn)
        .map_err(while_("counting a failed login"))?;
    let failures = u32::try_from(failures).unwrap_or(u32::MAX);
    update(users::table.find(id.to_string()))
        .set(users::locked_until.eq(locked_until(failures)))
        .execute(conn)
        .map_err(while_("locking an account"))?;
    Ok(failures)
}

/// Records a successful login: clears the failure count and lock, sets `last_login`.
pub(super) fn record_login(conn: &mut Conn, id: UserId) -> Result<User, StoreError> {
    update(users::table.find(id.to_string()))
        .set((
            users::last_login.eq(now_micros()),
            users::failed_logins.eq(0),
            users::locked_until.eq(None::<i64>),
        ))
        .execute(conn)
        .map_err(while_("recording a login"))?;
    get(conn, id)
}

/// One user by id.
pub(super) fn get(conn: &mut Conn, id: UserId) -> Result<User, StoreError> {
    users::table
        .find(id.to_string())
        .select(UserRow::as_select())
        .first(conn)
        .optional()
        .map_err(while_("loading a user"))?
        .ok_or_else(|| not_found(id))?
        .into_user()
}

/// What token checks need about a user, if the user exists.
pub(super) fn token_state(conn: &mut Conn, id: UserId) -> Result<Option<TokenStateRow>, StoreError> {
    users::table
        .find(id.to_string())
        .select(TokenStateRow::as_select())
        .first(conn)
        .optional()
        .map_err(while_("checking a token's user"))
}

/// Invalidates every access token issued so far to the user.
pub(super) fn bump_token_version(conn: &mut Conn, id: UserId) -> Result<(), StoreError> {
    let changed = update(users::table.find(id.to_string()))
        .set(users::token_version.eq(users::token_version + 1))
        .execute(conn)
        .map_err(while_("revoking access tokens"))?;
    if changed == 0 { Err(not_found(id)) } else { Ok(()) }
}

/// Stores a new password hash.
pub(super) fn set_password_hash(conn: &mut Conn, id: UserId, hash: &str) -> Result<(), StoreError> {
    update(users::table.find(id.to_string()))
        .set(users::password_hash.eq(hash))
        .execute(conn)
        .map_err(while_("changing a password"))?;
    Ok(())
}

/// Fails unless the actor is, in the database, an enabled admin. The role in an [`Actor`] is
/// not trusted: anyone can build one.
pub(super) fn require_admin(conn: &mut Conn, actor: &Actor, action: &str) -> Result<(), StoreError> {
    let state = token_state(conn, actor.user_id)?;
    match state {
        Some(state) if state.role == UserRole::Admin.as_str() && !state.disabled => Ok(()),
        _ => Err(StoreError::PermissionDenied { action: format!("{action} (admins only)") }),
    }
}

/// Fails if `target` is the only enabled admin, so a store never loses its last admin.
pub(super) fn ensure_another_admin(conn: &mut Conn, target: UserId, action: &str) -> Result<(), StoreError> {
    let target_is_admin: bool = diesel::select(diesel::dsl::exists(
        users::table
            .filter(users::id.eq(target.to_string()))
            .filter(users::role.eq(UserRole::Admin.as_str()))
            .filter(users::disabled.eq(false)),
    ))
    .get_result(conn)
    .map_err(while_("checking admins"))?;
    if !target_is_admin {
        return Ok(());
    }
    let admins: i64 = users::table
        .filter(users::role.eq(UserRole::Admin.as_str()))
        .filter(users::disabled.eq(false))
        .count()
        .get_result(conn)
        .map_err(while_("counting admins"))?;
    if admins <= 1 {
        return Err(StoreError::PermissionDenied {
            action: format!("{action}: it is the last enabled admin (promote another user first)"),
        });
    }
    Ok(())
}

/// A page of all users, oldest account first.
pub(super) fn list(conn: &mut Conn, page: Page) -> Result<Vec<User>, StoreError> {
    let rows: Vec<UserRow> = users::table
        .order((users::created_at.asc(), users::id.asc()))
        .offset(page.offset as i64)
        .limit(i64::from(page.limit))
        .select(UserRow::as_select())
        .load(conn)
        .map_err(while_("listing users"))?;
    rows.into_iter().map(UserRow::into_user).collect()
}

/// Disables or enables a user.
pub(super) fn set_disabled(conn: &mut Conn, id: UserId, disabled: bool) -> Result<(), StoreError> {
    let changed = update(users::table.find(id.to_string()))
        .set(users::disabled.eq(disabled))
        .execute(conn)
        .map_err(while_("disabling a user"))?;
    if changed == 0 { Err(not_found(id)) } else { Ok(()) }
}

/// Switches memory on or off for a user.
pub(super) fn set_memory_enabled(conn: &mut Conn, id: UserId, enabled: bool) -> Result<(), StoreError> {
    let changed = update(users::table.find(id.to_string()))
        .set(users::memory_enabled.eq(enabled))
        .execute(conn)
        .map_err(while_("switching memory"))?;
    if changed == 0 { Err(not_found(id)) } else { Ok(()) }
}

/// Changes a user's role.
pub(super) fn set_role(conn: &mut Conn, id: UserId, role: UserRole) -> Result<(), StoreError> {
    let changed = update(users::table.find(id.to_string()))
        .set(users::role.eq(role.as_str()))
        .execute(conn)
        .map_err(while_("changing a role"))?;
    if changed == 0 { Err(not_found(id)) } else { Ok(()) }
}

/// Deletes a user; sessions, messages, memories and tokens go with it (`ON DELETE CASCADE`).
pub(super) fn remove(conn: &mut Conn, id: UserId) -> Result<(), StoreError> {
    let deleted =
        delete(users::table.find(id.to_string())).execute(conn).map_err(while_("deleting a user"))?;
    if deleted == 0 { Err(not_found(id)) } else { Ok(()) }
}
