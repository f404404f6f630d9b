-- Promotions: one digest moving from one stage's repository to the next stage's, the approvals
-- bound to what was evaluated, and who pushed each manifest (for separation of duties).

ALTER TABLE manifests ADD COLUMN pushed_by TEXT;

CREATE TABLE promotions (
    id              TEXT    NOT NULL PRIMARY KEY,
    source          TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    digest          TEXT    NOT NULL,
    tag             TEXT,
    requester       TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    status          TEXT    NOT NULL
        CHECK (status IN ('pending', 'promoted', 'denied', 'rejected', 'expired', 'cancelled')),
    policy_digest   TEXT    NOT NULL,
    evidence_digest TEXT    NOT NULL,
    report          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    closed_reason   TEXT,
    release_digest  TEXT,
    summary_digest  TEXT,
    log_index       INTEGER
) STRICT;

-- A request is idempotent per (digest, from, to, tag) while it is open or once it succeeded.
CREATE UNIQUE INDEX promotions_open_key ON promotions (source, digest, target, COALESCE(tag, ''))
    WHERE status IN ('pending', 'promoted');
CREATE INDEX promotions_by_target ON promotions (target, digest);
CREATE INDEX promotions_by_status ON promotions (status, created_at);

CREATE TABLE approvals (
    promotion       TEXT    NOT NULL REFERENCES promotions (id),
    approver        TEXT    NOT NULL,
    identity        TEXT    NOT NULL,
    digest          TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    policy_digest   TEXT    NOT NULL,
    evidence_digest TEXT    NOT NULL,
    comment         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    -- Set by the commit that counted this approval.
    consumed_at     INTEGER,
    PRIMARY KEY (promotion, approver),
    -- Two accounts of one person (the same OIDC subject or email) approve once.
    UNIQUE (promotion, identity)
) STRICT;
