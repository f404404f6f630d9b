-- What a login leaves behind, shared by every server over this database: failures counted per
-- key (a principal and client address, or an address alone) and the last one-time-code step
-- each principal spent with its second factor (`factor`, a fingerprint of the secret: a new
-- secret starts afresh). Keys are short (names are bounded), so they are their own key.

CREATE TABLE login_failures (
    key      text   NOT NULL PRIMARY KEY,
    failures bigint NOT NULL CHECK (failures > 0),
    last_at  bigint NOT NULL
);

CREATE INDEX login_failures_by_last ON login_failures (last_at);

CREATE TABLE totp_steps (
    principal text   NOT NULL PRIMARY KEY,
    factor    text   NOT NULL,
    step      bigint NOT NULL
);
