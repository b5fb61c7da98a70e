-- Accounts: disabling, login throttling, and revocation of access tokens (a token carries the
-- token_version it was issued under; bumping it invalidates every older token).
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN failed_logins BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until BIGINT;
ALTER TABLE users ADD COLUMN token_version BIGINT NOT NULL DEFAULT 0;

-- Refresh tokens: only the SHA-256 of each token is kept. Rotation retires a token (used_at)
-- and issues the next one in the same family; reuse of a retired token revokes the family.
CREATE TABLE refresh_tokens (
    id         TEXT   NOT NULL PRIMARY KEY,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  TEXT   NOT NULL,
    token_hash TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Sessions keep their list columns up to date on every append, so a page of the session list
-- is one indexed range scan, however many sessions and messages a user has.
ALTER TABLE sessions ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sessions ADD COLUMN archived BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sessions ADD COLUMN message_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN last_message_at BIGINT;
ALTER TABLE sessions ADD COLUMN last_message_preview TEXT;
UPDATE sessions SET
    message_count = (SELECT COUNT(*) FROM messages WHERE messages.session_id = sessions.id),
    last_message_at = (SELECT MAX(created_at) FROM messages WHERE messages.session_id = sessions.id),
    last_message_preview = (
        SELECT substr(content, 1, 120) FROM messages WHERE messages.session_id = sessions.id
        ORDER BY created_at DESC, id DESC LIMIT 1
    );
DROP INDEX sessions_user_updated;
CREATE INDEX sessions_user_list ON sessions (user_id, archived, pinned, updated_at, id);

ALTER TABLE messages ADD COLUMN token_count BIGINT;

-- Embeddings are little-endian f32 values, 4 bytes each.
ALTER TABLE memories ADD COLUMN confidence REAL NOT NULL DEFAULT 1.0;
ALTER TABLE memories ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE memories ADD COLUMN embedding BYTEA;
UPDATE memories SET updated_at = created_at;
