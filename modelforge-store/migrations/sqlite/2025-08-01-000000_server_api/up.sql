-- What a multi-user HTTP server needs beside the chat data.

-- The model a session chats with, as the server names it; NULL for the server's default.
ALTER TABLE sessions ADD COLUMN model TEXT;

-- API keys for clients that cannot refresh a short-lived access token. Only the SHA-256 of
-- each key is kept, with a short prefix of it so the owner can tell keys apart. Revoking a
-- key deletes its row.
CREATE TABLE api_keys (
    id           TEXT   NOT NULL PRIMARY KEY,
    user_id      TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT   NOT NULL,
    prefix       TEXT   NOT NULL,
    key_hash     TEXT   NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
-- A user's keys, oldest first.
CREATE INDEX api_keys_user ON api_keys (user_id, created_at, id);

-- Installation-wide switches an admin sets, shared by every replica (e.g. whether registration
-- is open). A missing row means the switch's default.
CREATE TABLE settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
