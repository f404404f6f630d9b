-- What a login leaves behind, shared by every server over this database: failures counted per
-- key (a principal and client address, or an address alone) and the last one-time-code step
-- each principal spent with its second factor (`factor`, a fingerprint of the secret: a new secret
-- starts afresh).
CREATE TABLE login_failures (
    key      TEXT    NOT NULL PRIMARY KEY,
    failures INTEGER NOT NULL CHECK (failures > 0),
    last_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX login_failures_by_last ON login_failures (last_at);

CREATE TABLE totp_steps (
    principal TEXT    NOT NULL PRIMARY KEY,
    factor    TEXT    NOT NULL,
    step      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
