-- Stage freezes (lifted only by two distinct people), waivers requested and approved through
-- the API, and the follow-up reviews break-glass promotions leave open.

CREATE TABLE stage_freezes (
    stage        TEXT    NOT NULL PRIMARY KEY,
    reason       TEXT    NOT NULL,
    frozen_by    TEXT    NOT NULL,
    frozen_at    INTEGER NOT NULL,
    -- The first of the two people lifting it.
    unfreeze_by  TEXT,
    unfreeze_at  INTEGER
) STRICT;

CREATE TABLE waivers (
    id            TEXT    NOT NULL PRIMARY KEY,
    rule          TEXT    NOT NULL,
    vulnerability TEXT,
    component     TEXT,
    repository    TEXT    NOT NULL,
    justification TEXT    NOT NULL,
    requester     TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'denied', 'revoked')),
    approver      TEXT,
    created_at    INTEGER NOT NULL,
    decided_at    INTEGER,
    expires_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX waivers_by_status ON waivers (status, expires_at);

ALTER TABLE promotions ADD COLUMN break_glass INTEGER NOT NULL DEFAULT 0;

CREATE TABLE reviews (
    id         TEXT    NOT NULL PRIMARY KEY,
    promotion  TEXT    NOT NULL REFERENCES promotions (id),
    opened_at  INTEGER NOT NULL,
    closed_by  TEXT,
    closed_at  INTEGER,
    note       TEXT
) STRICT;
