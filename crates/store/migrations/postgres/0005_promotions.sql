-- Promotions: one digest moving from one stage's repository to the next stage's, and the
-- approvals bound to what was evaluated. A row that grants something (an approval) stores the
-- index of the log entry that recorded it, appended in the same transaction.

CREATE TABLE promotions (
    id              text COLLATE "C" NOT NULL PRIMARY KEY,
    source          text    NOT NULL,
    target          text    NOT NULL,
    digest          text    NOT NULL,
    tag             text,
    requester       text    NOT NULL,
    reason          text    NOT NULL,
    status          text    NOT NULL
        CHECK (status IN ('pending', 'promoted', 'denied', 'rejected', 'expired', 'cancelled')),
    policy_digest   text    NOT NULL,
    evidence_digest text    NOT NULL,
    -- The latest gate report, canonical JSON kept as it was given.
    report          text    NOT NULL,
    created_at      bigint  NOT NULL,
    updated_at      bigint  NOT NULL,
    closed_reason   text,
    release_digest  text,
    summary_digest  text,
    log_index       bigint,
    break_glass     boolean NOT NULL DEFAULT false
);

-- A request is idempotent per (digest, from, to, tag) while it is open or once it succeeded.
CREATE UNIQUE INDEX promotions_open_key ON promotions (source, digest, target, COALESCE(tag, ''))
    WHERE status IN ('pending', 'promoted');
CREATE INDEX promotions_by_target ON promotions (target, digest);
CREATE INDEX promotions_by_status ON promotions (status, created_at);

CREATE TABLE approvals (
    promotion       text COLLATE "C" NOT NULL REFERENCES promotions (id),
    approver        text COLLATE "C" NOT NULL,
    identity        text   NOT NULL,
    digest          text   NOT NULL,
    source          text   NOT NULL,
    target          text   NOT NULL,
    policy_digest   text   NOT NULL,
    evidence_digest text   NOT NULL,
    comment         text   NOT NULL,
    created_at      bigint NOT NULL,
    expires_at      bigint NOT NULL,
    -- Set by the commit that counted this approval.
    consumed_at     bigint,
    log_index       bigint,
    PRIMARY KEY (promotion, approver),
    -- Two accounts of one person approve once.
    UNIQUE (promotion, identity)
);
