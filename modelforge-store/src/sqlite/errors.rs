//! Turning diesel failures into [`StoreError`]s that say what was being done.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{Connection, SqliteConnection};
use modelforge_core::StoreError;

/// A diesel error while doing `context`.
pub(super) fn db_error(context: impl Into<String>, err: DieselError) -> StoreError {
    StoreError::Database { context: context.into(), source: Box::new(err) }
}

/// A closure for `map_err` that reports a diesel error while doing `context`.
pub(super) fn while_(context: &'static str) -> impl FnOnce(DieselError) -> StoreError {
    move |err| db_error(context, err)
}

/// Whether an insert collided with a unique index.
pub(super) fn is_unique_violation(err: &DieselError) -> bool {
    matches!(err, DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
}

/// Whether an insert referred to a row that does not exist.
pub(super) fn is_foreign_key_violation(err: &DieselError) -> bool {
    matches!(err, DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _))
}

/// A value read back from the database that does not decode: the row is corrupt.
pub(super) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Database {
        context: format!("decoding {what}"),
        source: format!("unexpected stored value `{value}`").into(),
    }
}

/// The error type inside a transaction: a [`StoreError`] raised by our code, or a diesel
/// error from `BEGIN`, `COMMIT` or `ROLLBACK` (diesel requires `From<diesel::Error>`).
enum TxError {
    Store(StoreError),
    Diesel(DieselError),
}

impl From<DieselError> for TxError {
    fn from(err: DieselError) -> Self {
        TxError::Diesel(err)
    }
}

/// Runs `f` in a write transaction, rolled back if it fails.
///
/// `BEGIN IMMEDIATE` takes the write lock up front, so a concurrent writer waits out the busy
/// timeout instead of failing on a read-to-write lock upgrade.
pub(super) fn write_transaction<T>(
    conn: &mut SqliteConnection,
    context: &'static str,
    f: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.immediate_transaction(|conn| f(conn).map_err(TxError::Store)).map_err(|err| match err {
        TxError::Store(err) => err,
        TxError::Diesel(err) => db_error(context, err),
    })
}

/// Runs `f` in a read transaction, so several queries see one consistent snapshot.
pub(super) fn read_transaction<T>(
    conn: &mut SqliteConnection,
    context: &'static str,
    f: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.transaction(|conn| f(conn).map_err(TxError::Store)).map_err(|err| match err {
        TxError::Store(err) => err,
        TxError::Diesel(err) => db_error(context, err),
    })
}
