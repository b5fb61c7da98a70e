//! Turning diesel failures into [`StoreError`]s that say what was being done.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use modelforge_core::StoreError;

/// A diesel error while doing `context`.
pub(crate) fn db_error(context: impl Into<String>, err: DieselError) -> StoreError {
    StoreError::Database { context: context.into(), source: Box::new(err) }
}

/// A closure for `map_err` that reports a diesel error while doing `context`.
pub(crate) fn while_(context: &'static str) -> impl FnOnce(DieselError) -> StoreError {
    move |err| db_error(context, err)
}

/// Whether an insert collided with a unique index.
pub(crate) fn is_unique_violation(err: &DieselError) -> bool {
    matches!(err, DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
}

/// Whether an insert referred to a row that does not exist.
pub(crate) fn is_foreign_key_violation(err: &DieselError) -> bool {
    matches!(err, DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _))
}

/// A value read back from the database that does not decode: the row is corrupt.
pub(crate) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Database {
        context: format!("decoding {what}"),
        source: format!("unexpected stored value `{value}`").into(),
    }
}

/// The error type inside a transaction: a [`StoreError`] raised by our code, or a diesel
/// error from `BEGIN`, `COMMIT` or `ROLLBACK` (diesel requires `From<diesel::Error>`).
pub(crate) enum TxError {
    Store(StoreError),
    Diesel(DieselError),
}

impl From<DieselError> for TxError {
    fn from(err: DieselError) -> Self {
        TxError::Diesel(err)
    }
}

impl TxError {
    /// The caller's error, or the transaction's own failure while doing `context`.
    pub(crate) fn into_store(self, context: &'static str) -> StoreError {
        match self {
            TxError::Store(err) => err,
            TxError::Diesel(err) => db_error(context, err),
        }
    }
}
