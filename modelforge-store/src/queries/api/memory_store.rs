//! [`MemoryStore`] for the store: a user's memories, checked (content, confidence,
//! embedding) before they reach the database.

use modelforge_core::{
    Actor, MemoryDetails, MemoryId, MemoryRecord, MemoryStore, MemoryUpdate, NewMemory, StoreError,
};

use super::super::{Store, memories};
use super::{check_details, check_memory_update};
use crate::limits;

impl MemoryStore for Store {
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
}
