//! Installation-wide settings: one row per switch an admin set, shared by every replica. A
//! missing row means the switch's default, so a new store needs no seeding.

use diesel::insert_into;
use diesel::prelude::*;
use diesel::upsert::excluded;
use modelforge_core::StoreError;

use super::Conn;
use crate::db::errors::{corrupt, while_};
use crate::db::schema::settings;

/// Whether people may register themselves; open by default.
pub(super) const REGISTRATION_OPEN: Flag = Flag { name: "registration_open", default: true };

/// A yes-or-no setting and its value when unset.
pub(super) struct Flag {
    name: &'static str,
    default: bool,
}

/// The flag's value.
pub(super) fn get(conn: &mut Conn, flag: &Flag) -> Result<bool, StoreError> {
    let value: Option<String> = settings::table
        .find(flag.name)
        .select(settings::value)
        .first(conn)
        .optional()
        .map_err(while_("reading a setting"))?;
    match value.as_deref() {
        None => Ok(flag.default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(corrupt(flag.name, other)),
    }
}

/// Sets the flag, whether or not it was set before.
pub(super) fn set(conn: &mut Conn, flag: &Flag, value: bool) -> Result<(), StoreError> {
    insert_into(settings::table)
        .values((settings::name.eq(flag.name), settings::value.eq(if value { "true" } else { "false" })))
        .on_conflict(settings::name)
        .do_update()
        .set(settings::value.eq(excluded(settings::value)))
        .execute(conn)
        .map_err(while_("changing a setting"))?;
    Ok(())
}
