//! API key queries. Keys are found by the hash of the key (to verify) or by id and owner (to
//! revoke), so another user's key id matches no row.

use diesel::prelude::*;
use diesel::{delete, insert_into, update};
use modelforge_core::{ApiKey, ApiKeyId, StoreError, UserId};

use super::Conn;
use crate::db::errors::{db_error, is_foreign_key_violation, while_};
use crate::db::rows::{ApiKeyOwnerRow, ApiKeyRow};
use crate::db::schema::{api_keys, users};

pub(super) fn not_found(id: ApiKeyId) -> StoreError {
    StoreError::NotFound { what: "api key", id: id.to_string() }
}

/// Stores a new key's record and the SHA-256 of the key, the only form the database sees.
pub(super) fn insert(conn: &mut Conn, row: &ApiKeyRow, key_hash: &str) -> Result<(), StoreError> {
    let values = (row, api_keys::key_hash.eq(key_hash));
    insert_into(api_keys::table).values(values).execute(conn).map_err(|err| {
        if is_foreign_key_violation(&err) {
            StoreError::NotFound { what: "user", id: row.user_id.clone() }
        } else {
            db_error("storing an API key", err)
        }
    })?;
    Ok(())
}

/// The owner's keys, oldest first.
pub(super) fn list(conn: &mut Conn, owner: UserId) -> Result<Vec<ApiKey>, StoreError> {
    let rows: Vec<ApiKeyRow> = api_keys::table
        .filter(api_keys::user_id.eq(owner.to_string()))
        .order((api_keys::created_at.asc(), api_keys::id.asc()))
        .select(ApiKeyRow::as_select())
        .load(conn)
        .map_err(while_("listing API keys"))?;
    rows.into_iter().map(ApiKeyRow::into_api_key).collect()
}

/// The key with this hash and the state of its owner, if the key exists.
pub(super) fn find(conn: &mut Conn, key_hash: &str) -> Result<Option<ApiKeyOwnerRow>, StoreError> {
    api_keys::table
        .inner_join(users::table)
        .filter(api_keys::key_hash.eq(key_hash))
        .select((api_keys::id, api_keys::last_used_at, users::id, users::role, users::disabled))
        .first(conn)
        .optional()
        .map_err(while_("looking up an API key"))
}

/// Records a use at `now` unless one at or after `stale_before` is already recorded: a
/// conditional update, so concurrent verifications write it once.
pub(super) fn record_use(conn: &mut Conn, id: &str, now: i64, stale_before: i64) -> Result<(), StoreError> {
    update(
        api_keys::table
            .filter(api_keys::id.eq(id))
            .filter(api_keys::last_used_at.is_null().or(api_keys::last_used_at.lt(stale_before))),
    )
    .set(api_keys::last_used_at.eq(now))
    .execute(conn)
    .map_err(while_("recording an API key's use"))?;
    Ok(())
}

/// Deletes one of the owner's keys.
pub(super) fn remove(conn: &mut Conn, owner: UserId, id: ApiKeyId) -> Result<(), StoreError> {
    let deleted = delete(
        api_keys::table
            .filter(api_keys::id.eq(id.to_string()))
            .filter(api_keys::user_id.eq(owner.to_string())),
    )
    .execute(conn)
    .map_err(while_("revoking an API key"))?;
    if deleted == 0 { Err(not_found(id)) } else { Ok(()) }
}

/// Deletes every key of a user.
pub(super) fn remove_all(conn: &mut Conn, user: UserId) -> Result<(), StoreError> {
    delete(api_keys::table.filter(api_keys::user_id.eq(user.to_string())))
        .execute(conn)
        .map_err(while_("revoking a user's API keys"))?;
    Ok(())
}
