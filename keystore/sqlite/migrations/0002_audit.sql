-- 0002: the audit log. Every write of principals and keys adds one row in its own
-- transaction; rows are never changed or deleted by the store. Detail never holds a secret.
-- AUTOINCREMENT: ids only grow, so "newest first" is "id descending" and a cursor is an id.

CREATE TABLE audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    key_id       TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX audit_principal_id ON audit (principal_id, id);
