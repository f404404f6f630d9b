-- One-time enrollment tokens: a user sets their own password and second factor.
ALTER TABLE principals ADD COLUMN enrollment_hash TEXT;
ALTER TABLE principals ADD COLUMN enrollment_expires_at INTEGER;

-- Grants become changes that wait for approval: just-in-time roles as before, and privileged
-- changes an access admin asks for that take a second one (bind, unbind, disable, reset), which
-- last for good (no duration). SQLite cannot drop a CHECK, so the table is rebuilt.
CREATE TABLE access_grants_new (
    id            TEXT    NOT NULL PRIMARY KEY,
    principal     TEXT    NOT NULL REFERENCES principals (id),
    role          TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    duration_secs INTEGER NOT NULL CHECK (duration_secs > 0 OR kind <> 'jit'),
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'revoked', 'denied')),
    requested_at  INTEGER NOT NULL,
    decided_by    TEXT,
    decided_at    INTEGER,
    expires_at    INTEGER,
    kind          TEXT    NOT NULL DEFAULT 'jit' CHECK (kind IN ('jit', 'bind', 'unbind', 'disable', 'reset')),
    requested_by  TEXT    NOT NULL REFERENCES principals (id),
    approved_by   TEXT
) STRICT;

INSERT INTO access_grants_new
    (id, principal, role, reason, duration_secs, status, requested_at, decided_by, decided_at, expires_at, kind,
     requested_by, approved_by)
SELECT id, principal, role, reason, duration_secs, status, requested_at, decided_by, decided_at, expires_at, 'jit',
       principal, NULL
FROM access_grants;

DROP TABLE access_grants;
ALTER TABLE access_grants_new RENAME TO access_grants;
CREATE INDEX access_grants_by_principal ON access_grants (principal, status);
