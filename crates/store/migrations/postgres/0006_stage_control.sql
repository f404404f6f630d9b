-- Stage freezes (lifted only by two distinct people), waivers requested and approved through
-- the API, and the follow-up reviews break-glass promotions leave open. Each row that grants
-- something (a freeze lift and the request before it, an active waiver) stores the index of the
-- log entry that recorded it; a lifted freeze stays stored.

CREATE TABLE stage_freezes (
    stage          text COLLATE "C" NOT NULL PRIMARY KEY,
    reason         text   NOT NULL,
    frozen_by      text   NOT NULL,
    frozen_at      bigint NOT NULL,
    -- The first of the two people lifting it.
    unfreeze_by    text,
    unfreeze_at    bigint,
    unfreeze_index bigint,
    -- The second, once it is lifted.
    lifted_by      text,
    lift_index     bigint
);

CREATE TABLE waivers (
    id            text COLLATE "C" NOT NULL PRIMARY KEY,
    rule          text   NOT NULL,
    vulnerability text,
    component     text,
    repository    text   NOT NULL,
    justification text   NOT NULL,
    requester     text   NOT NULL,
    status        text   NOT NULL CHECK (status IN ('pending', 'active', 'denied', 'revoked')),
    approver      text,
    created_at    bigint NOT NULL,
    decided_at    bigint,
    expires_at    bigint NOT NULL,
    log_index     bigint
);

CREATE INDEX waivers_by_status ON waivers (status, expires_at);

CREATE TABLE reviews (
    id        text COLLATE "C" NOT NULL PRIMARY KEY,
    promotion text COLLATE "C" NOT NULL REFERENCES promotions (id),
    opened_at bigint NOT NULL,
    closed_by text,
    closed_at bigint,
    note      text
);
