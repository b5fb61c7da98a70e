//! Refresh token rows: only hashes are stored.

use diesel::prelude::*;
use diesel::{insert_into, update};
use modelforge_core::{StoreError, UserId};

use super::Conn;
use crate::db::errors::while_;
use crate::db::rows::RefreshTokenRow;
use crate::db::schema::refresh_tokens;

/// Stores the hash of a new refresh token in `family`.
pub(super) fn insert(
    conn: &mut Conn,
    user: UserId,
    family_id: &str,
    token_hash: String,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    let row = RefreshTokenRow {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user.to_string(),
        family_id: family_id.to_owned(),
        token_hash,
        created_at: now,
        expires_at,
        used_at: None,
        revoked_at: None,
    };
    insert_into(refresh_tokens::table)
        .values(&row)
        .execute(conn)
        .map_err(while_("storing a refresh token"))?;
    Ok(())
}

/// The token with this hash, if any.
pub(super) fn find(conn: &mut Conn, token_hash: &str) -> Result<Option<RefreshTokenRow>, StoreError> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()
        .map_err(while_("looking up a refresh token"))
}

/// Retires a token if it is still live. `false` means another request used or revoked it
/// first: a conditional update, so two concurrent refreshes cannot both succeed.
pub(super) fn mark_used(conn: &mut Conn, id: &str, now: i64) -> Result<bool, StoreError> {
    let changed = update(
        refresh_tokens::table
            .filter(refresh_tokens::id.eq(id))
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(now))
    .execute(conn)
    .map_err(while_("rotating a refresh token"))?;
    Ok(changed == 1)
}

/// Revokes every token of a family.
pub(super) fn revoke_family(conn: &mut Conn, family_id: &str, now: i64) -> Result<(), StoreError> {
    update(refresh_tokens::table.filter(refresh_tokens::family_id.eq(family_id)))
        .filter(refresh_tokens::revoked_at.is_null())
        .set(refresh_tokens::revoked_at.eq(now))
        .execute(conn)
        .map_err(while_("revoking a refresh token family"))?;
    Ok(())
}

/// Revokes every token of a user.
pub(super) fn revoke_user(conn: &mut Conn, user: UserId, now: i64) -> Result<(), StoreError> {
    update(refresh_tokens::table.filter(refresh_tokens::user_id.eq(user.to_string())))
        .filter(refresh_tokens::revoked_at.is_null())
        .set(refresh_tokens::revoked_at.eq(now))
        .execute(conn)
        .map_err(while_("revoking a user's refresh tokens"))?;
    Ok(())
}
