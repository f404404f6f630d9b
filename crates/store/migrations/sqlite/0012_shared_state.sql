-- State every server over this database shares. What a login leaves behind: failures counted per
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

-- What servers cache from the store (the trust root in force, roles defined through the API),
-- versioned: a trigger raises the version in the transaction of each change, so a server that
-- reads a version it has not loaded knows to reload.
CREATE TABLE cached_state (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;
INSERT INTO cached_state (id, version) VALUES (1, 1);
CREATE TRIGGER cached_state_on_root AFTER INSERT ON trust_roots
BEGIN
    UPDATE cached_state SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER cached_state_on_role AFTER INSERT ON roles
BEGIN
    UPDATE cached_state SET version = version + 1 WHERE id = 1;
END;
