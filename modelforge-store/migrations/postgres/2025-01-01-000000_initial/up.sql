-- Ids are UUIDv7 strings (time-ordered). Timestamps are integer microseconds since the Unix
-- epoch (UTC), so ordering is exact and the same columns work as BIGINT on PostgreSQL.

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    username      TEXT    NOT NULL,
    -- Lowercased username: uniqueness is case-insensitive without relying on a collation
    -- that PostgreSQL lacks.
    username_key  TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    email         TEXT,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'user')),
    created_at    BIGINT  NOT NULL,
    last_login    BIGINT
);

CREATE TABLE sessions (
    id         TEXT   NOT NULL PRIMARY KEY,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX sessions_user_updated ON sessions (user_id, updated_at);

CREATE TABLE messages (
    id         TEXT   NOT NULL PRIMARY KEY,
    session_id TEXT   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role       TEXT   NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content    TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX messages_session_created ON messages (session_id, created_at, id);

CREATE TABLE memories (
    id                TEXT   NOT NULL PRIMARY KEY,
    user_id           TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind              TEXT   NOT NULL CHECK (kind IN ('profile', 'preference', 'fact')),
    content           TEXT   NOT NULL,
    source_session_id TEXT   REFERENCES sessions (id) ON DELETE SET NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX memories_user_created ON memories (user_id, created_at, id);
CREATE INDEX memories_source_session ON memories (source_session_id);
