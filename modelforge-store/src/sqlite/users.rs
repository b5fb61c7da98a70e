//! User queries.

use diesel::prelude::*;
use diesel::{SqliteConnection, insert_into, update};
use modelforge_core::{NewUser, StoreError, User, UserId, UserRole};

use super::errors::{db_error, is_unique_violation, while_, write_transaction};
use super::rows::{NewUserRow, UserRow, now_micros, timestamp};
use super::schema::users;

/// The lookup key of a username: uniqueness and login ignore ASCII case.
pub(super) fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// Inserts a validated user with an already computed hash. The first user becomes an admin;
/// counting and inserting share one write transaction so two first registrations cannot both
/// win.
pub(super) fn insert(
    conn: &mut SqliteConnection,
    new_user: &NewUser,
    password_hash: &str,
) -> Result<User, StoreError> {
    write_transaction(conn, "creating a user", |conn| {
        let existing: i64 = users::table.count().get_result(conn).map_err(while_("counting users"))?;
        let role = if existing == 0 { UserRole::Admin } else { new_user.role };
        let id = UserId::new();
        let row = NewUserRow {
            id: id.to_string(),
            username: &new_user.username,
            username_key: username_key(&new_user.username),
            password_hash,
            email: new_user.email.as_deref(),
            role: role.as_str(),
            created_at: now_micros(),
            last_login: None,
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
        })
    })
}

/// The user with this (case-insensitive) name and their password hash, if any.
pub(super) fn find_credentials(
    conn: &mut SqliteConnection,
    username: &str,
) -> Result<Option<(UserRow, String)>, StoreError> {
    users::table
        .filter(users::username_key.eq(username_key(username)))
        .select((UserRow::as_select(), users::password_hash))
        .first(conn)
        .optional()
        .map_err(while_("looking up a user for login"))
}

/// Records a successful login and returns the updated user.
pub(super) fn record_login(conn: &mut SqliteConnection, id: UserId) -> Result<User, StoreError> {
    write_transaction(conn, "recording a login", |conn| {
        update(users::table.find(id.to_string()))
            .set(users::last_login.eq(now_micros()))
            .execute(conn)
            .map_err(while_("recording a login"))?;
        get(conn, id)
    })
}

/// One user by id.
pub(super) fn get(conn: &mut SqliteConnection, id: UserId) -> Result<User, StoreError> {
    users::table
        .find(id.to_string())
        .select(UserRow::as_select())
        .first(conn)
        .optional()
        .map_err(while_("loading a user"))?
        .ok_or_else(|| StoreError::NotFound { what: "user", id: id.to_string() })?
        .into_user()
}
