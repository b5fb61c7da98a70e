-- Memory controls. A temporary session neither reads nor writes the user's memories, and a user
-- can switch memory off altogether; the store only records both switches.
ALTER TABLE sessions ADD COLUMN temporary BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN memory_enabled BOOLEAN NOT NULL DEFAULT TRUE;

-- At most one cached summary per session, of its messages up to and including through_message.
-- It goes with its session, and with through_message: deleting the messages after an earlier
-- one (to regenerate a reply) drops a summary that covered them.
CREATE TABLE session_summaries (
    session_id       TEXT   NOT NULL PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    through_message  TEXT   NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    content          TEXT   NOT NULL,
    covered_messages BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);
-- Deleting a message looks up the summaries that refer to it.
CREATE INDEX session_summaries_through_message ON session_summaries (through_message);
