//! [`ExportStore`] for the store: a user's data out as one snapshot, and back in all or
//! nothing after every value passed the same rules as the calls that would have created it.

use modelforge_core::{Actor, ExportStore, ImportSummary, StoreError, UserExport};

use super::super::{Store, transfer};
use super::check_export;

impl ExportStore for Store {
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
