-- Users and service accounts, one namespace, and the roles bound to them.
--
-- `epoch` rises with every change to what a principal may do; tokens carry the epoch they were
-- issued at and are refused once it moved. Passwords are Argon2id PHC strings and API keys hex
-- SHA-256; neither is ever stored in the clear.

CREATE TABLE principals (
    id                 TEXT    NOT NULL PRIMARY KEY,
    kind               TEXT    NOT NULL CHECK (kind IN ('user', 'service_account')),
    epoch              INTEGER NOT NULL CHECK (epoch >= 1),
    disabled           INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    password_hash      TEXT,
    totp_secret        TEXT,
    api_key_hash       TEXT,
    api_key_expires_at INTEGER,
    created_at         INTEGER NOT NULL
) STRICT;

CREATE TABLE role_bindings (
    principal TEXT NOT NULL REFERENCES principals (id),
    role      TEXT NOT NULL,
    PRIMARY KEY (principal, role)
) STRICT;
