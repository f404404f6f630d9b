-- Users and service accounts, one namespace, the roles bound to them, the changes to them that
-- wait for approval, and the roles defined through the API.
--
-- `epoch` rises with every change to what a principal may do; tokens carry the epoch they were
-- issued at and are refused once it moved. Passwords are Argon2id PHC strings, API keys and
-- enrollment tokens hex SHA-256; none is ever stored in the clear.

CREATE TABLE principals (
    id                    text COLLATE "C" NOT NULL PRIMARY KEY,
    kind                  text    NOT NULL CHECK (kind IN ('user', 'service_account')),
    epoch                 bigint  NOT NULL CHECK (epoch >= 1),
    disabled              boolean NOT NULL,
    password_hash         text,
    totp_secret           text,
    api_key_hash          text,
    api_key_expires_at    bigint,
    created_at            bigint  NOT NULL,
    -- Approvals count once per person, compared by this e-mail.
    email                 text,
    enrollment_hash       text,
    enrollment_expires_at bigint
);

CREATE TABLE role_bindings (
    principal text COLLATE "C" NOT NULL REFERENCES principals (id),
    role      text COLLATE "C" NOT NULL,
    PRIMARY KEY (principal, role)
);

-- Changes that wait for approval: just-in-time roles (for a while), and privileged changes an
-- access admin asks for that take a second one (bind, unbind, disable, reset), which last for
-- good (no duration).
CREATE TABLE access_grants (
    id            text COLLATE "C" NOT NULL PRIMARY KEY,
    kind          text   NOT NULL CHECK (kind IN ('jit', 'bind', 'unbind', 'disable', 'reset')),
    principal     text COLLATE "C" NOT NULL REFERENCES principals (id),
    requested_by  text COLLATE "C" NOT NULL REFERENCES principals (id),
    approved_by   text,
    role          text   NOT NULL,
    reason        text   NOT NULL,
    duration_secs bigint NOT NULL CHECK (duration_secs > 0 OR kind <> 'jit'),
    status        text   NOT NULL CHECK (status IN ('pending', 'active', 'revoked', 'denied')),
    requested_at  bigint NOT NULL,
    decided_by    text,
    decided_at    bigint,
    expires_at    bigint
);

CREATE INDEX access_grants_by_principal ON access_grants (principal, status);

-- A role is defined once; its definition is the JSON that was validated (compiled to Cedar)
-- before it was stored, kept as it was given.
CREATE TABLE roles (
    name       text COLLATE "C" NOT NULL PRIMARY KEY,
    definition text   NOT NULL,
    created_at bigint NOT NULL
);
