-- Roles defined through the API, beside those of `airlock.toml`. A role is defined once; its
-- definition is the JSON that was validated (compiled to Cedar) before it was stored.

CREATE TABLE roles (
    name       TEXT    NOT NULL PRIMARY KEY,
    definition TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
