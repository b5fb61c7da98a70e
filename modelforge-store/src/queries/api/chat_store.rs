//! [`ChatStore`] for the store: sessions with their messages and summaries, every query
//! filtered by the acting user.

use modelforge_core::{
    Actor, ChatMessage, ChatStore, Message, MessageId, MessagePage, NewSession, Page, Session, SessionId,
    SessionPage, SessionQuery, SessionSummary, SessionUpdate, StoreError,
};
use tracing::field::Empty;

use super::super::{Store, messages, sessions, summaries};
use super::{check_new_session, check_session_update};
use crate::limits;

impl ChatStore for Store {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(user_id = %actor.user_id, session_id = Empty, temporary = new.temporary)
    )]
    fn create_session_with(&self, actor: &Actor, new: &NewSession) -> Result<Session, StoreError> {
        check_new_session(new)?;
        let session = self.write("creating a session", |conn| sessions::insert(conn, actor.user_id, new))?;
        tracing::Span::current().record("session_id", tracing::field::display(session.id));
        Ok(session)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn list_sessions(&self, actor: &Actor, query: &SessionQuery) -> Result<SessionPage, StoreError> {
        limits::check_page(query.page)?;
        if let Some(search) = &query.search {
            limits::check_search(search)?;
        }
        self.query(|conn| sessions::list(conn, actor.user_id, query))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %id))]
    fn get_session(&self, actor: &Actor, id: SessionId) -> Result<Session, StoreError> {
        self.query(|conn| sessions::get(conn, actor.user_id, id))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %id))]
    fn update_session(
        &self,
        actor: &Actor,
        id: SessionId,
        update: &SessionUpdate,
    ) -> Result<Session, StoreError> {
        check_session_update(update)?;
        self.write("updating a session", |conn| sessions::apply_update(conn, actor.user_id, id, update))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %id))]
    fn delete_session(&self, actor: &Actor, id: SessionId) -> Result<(), StoreError> {
        self.write("deleting a session", |conn| sessions::remove(conn, actor.user_id, id))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(user_id = %actor.user_id, session_id = %session, role = %message.role, bytes = message.content.len())
    )]
    fn append_message(
        &self,
        actor: &Actor,
        session: SessionId,
        message: &ChatMessage,
        token_count: Option<u32>,
    ) -> Result<Message, StoreError> {
        limits::check_message(&message.content)?;
        limits::check_message_role(message.role)?;
        self.write("appending a message", |conn| {
            messages::append(conn, actor.user_id, session, message, token_count)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %session))]
    fn list_messages(&self, actor: &Actor, session: SessionId) -> Result<Vec<Message>, StoreError> {
        self.read("listing messages", |conn| {
            if !sessions::exists(conn, actor.user_id, session)? {
                return Err(sessions::not_found(session));
            }
            messages::all(conn, session)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %session))]
    fn list_messages_page(
        &self,
        actor: &Actor,
        session: SessionId,
        page: Page,
    ) -> Result<MessagePage, StoreError> {
        limits::check_page(page)?;
        self.read("listing messages", |conn| {
            if !sessions::exists(conn, actor.user_id, session)? {
                return Err(sessions::not_found(session));
            }
            messages::page(conn, session, page)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %session))]
    fn delete_messages_after(
        &self,
        actor: &Actor,
        session: SessionId,
        message: MessageId,
    ) -> Result<u64, StoreError> {
        self.write("deleting messages", |conn| {
            messages::delete_after(conn, actor.user_id, session, message, false)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %session))]
    fn delete_messages_from(
        &self,
        actor: &Actor,
        session: SessionId,
        message: MessageId,
    ) -> Result<u64, StoreError> {
        self.write("deleting messages", |conn| {
            messages::delete_after(conn, actor.user_id, session, message, true)
        })
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            user_id = %actor.user_id,
            session_id = %session,
            covered_messages = covered_messages,
            bytes = content.len()
        )
    )]
    fn save_session_summary(
        &self,
        actor: &Actor,
        session: SessionId,
        through_message: MessageId,
        covered_messages: u64,
        content: &str,
    ) -> Result<SessionSummary, StoreError> {
        limits::check_summary(content)?;
        let covered = limits::check_covered_messages(covered_messages)?;
        self.write("saving a session summary", |conn| {
            summaries::save(conn, actor.user_id, session, through_message, covered, content)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, session_id = %session))]
    fn session_summary(
        &self,
        actor: &Actor,
        session: SessionId,
    ) -> Result<Option<SessionSummary>, StoreError> {
        self.read("loading a session summary", |conn| summaries::get(conn, actor.user_id, session))
    }
}
