-- Just-in-time elevation: a principal asks for a role for a while, another principal approves,
-- and the role is theirs until `expires_at` or an earlier revocation.

CREATE TABLE access_grants (
    id            TEXT    NOT NULL PRIMARY KEY,
    principal     TEXT    NOT NULL REFERENCES principals (id),
    role          TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    duration_secs INTEGER NOT NULL CHECK (duration_secs > 0),
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'revoked', 'denied')),
    requested_at  INTEGER NOT NULL,
    decided_by    TEXT,
    decided_at    INTEGER,
    expires_at    INTEGER
) STRICT;

CREATE INDEX access_grants_by_principal ON access_grants (principal, status);
