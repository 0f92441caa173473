-- 0001: principals, keys and the change log that Watch reads.
-- Times are UTC text of fixed width ("2006-01-02T15:04:05.000000000Z"), so that text order
-- is time order. Lists are JSON arrays, maps JSON objects.

CREATE TABLE principals (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL DEFAULT '',
    scopes        TEXT NOT NULL DEFAULT '[]',
    rate_limit    TEXT NOT NULL DEFAULT '[]',
    metadata      TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    disabled_at   TEXT,
    -- A deleted principal stays, so that its id is never taken again.
    deleted_at    TEXT
) STRICT;

CREATE TABLE keys (
    id           TEXT PRIMARY KEY,
    principal_id TEXT NOT NULL REFERENCES principals (id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL DEFAULT '',
    hash         BLOB NOT NULL UNIQUE,
    scopes       TEXT NOT NULL DEFAULT '[]',
    rate_limit   TEXT NOT NULL DEFAULT '[]',
    metadata     TEXT NOT NULL DEFAULT '{}',
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT,
    usage_count  INTEGER NOT NULL DEFAULT 0,
    legacy       INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX keys_principal_id ON keys (principal_id, created_at, id);
CREATE INDEX keys_created_at ON keys (created_at, id);

-- changes records every commit that can deny access, for Watch in this and other processes.
-- AUTOINCREMENT: a seq is never reused after rows are pruned.
CREATE TABLE changes (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    principal_id TEXT NOT NULL,
    key_id       TEXT NOT NULL DEFAULT '',
    at           TEXT NOT NULL
) STRICT;

CREATE INDEX changes_at ON changes (at);
