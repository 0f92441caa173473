-- 0001: principals, keys and the audit log. Change events are not stored: writers send
-- NOTIFY keygate_changes in their transaction and Watch LISTENs.

-- Ids compare byte by byte (COLLATE "C"), whatever the database's collation: listings
-- are ordered by id and paged by it.
CREATE TABLE principals (
    id            text COLLATE "C" PRIMARY KEY,
    display_name  text NOT NULL DEFAULT '',
    password_hash text NOT NULL DEFAULT '',
    scopes        text[] NOT NULL DEFAULT '{}',
    rate_limit    text[] NOT NULL DEFAULT '{}',
    metadata      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    disabled_at   timestamptz,
    -- A deleted principal stays, so that its id is never taken again.
    deleted_at    timestamptz
);

CREATE TABLE keys (
    id           uuid PRIMARY KEY,
    principal_id text COLLATE "C" NOT NULL REFERENCES principals (id),
    name         text NOT NULL,
    prefix       text NOT NULL DEFAULT '',
    hash         bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    scopes       text[] NOT NULL DEFAULT '{}',
    rate_limit   text[] NOT NULL DEFAULT '{}',
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    usage_count  bigint NOT NULL DEFAULT 0,
    legacy       boolean NOT NULL DEFAULT false
);

CREATE INDEX keys_principal_id ON keys (principal_id, created_at, id);
CREATE INDEX keys_created_at ON keys (created_at, id);

-- audit records every write, in the writer's transaction. It never holds a secret.
CREATE TABLE audit (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL,
    principal_id text COLLATE "C" NOT NULL DEFAULT '',
    key_id       text NOT NULL DEFAULT '',
    detail       text NOT NULL DEFAULT ''
);

CREATE INDEX audit_principal_id ON audit (principal_id, id);
