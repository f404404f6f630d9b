-- The registry's metadata: blobs, their links into repositories, manifests, tags, uploads.
-- Small blobs and every manifest live inline; large blobs live in the blob store by digest.

CREATE TABLE blobs (
    digest         TEXT    NOT NULL PRIMARY KEY,
    size           INTEGER NOT NULL CHECK (size >= 0),
    inline_data    BLOB,
    quarantined_at INTEGER,
    created_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE repositories (
    id         INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE repo_blobs (
    repo_id    INTEGER NOT NULL REFERENCES repositories (id),
    digest     TEXT    NOT NULL REFERENCES blobs (digest),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
) STRICT, WITHOUT ROWID;

CREATE TABLE manifests (
    repo_id       INTEGER NOT NULL REFERENCES repositories (id),
    digest        TEXT    NOT NULL,
    media_type    TEXT    NOT NULL,
    body          BLOB    NOT NULL,
    artifact_type TEXT,
    subject       TEXT,
    annotations   TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
) STRICT;

CREATE INDEX manifests_by_subject ON manifests (repo_id, subject) WHERE subject IS NOT NULL;

CREATE TABLE tags (
    repo_id    INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    digest     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, name),
    FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) STRICT;

CREATE TABLE uploads (
    id         TEXT    NOT NULL PRIMARY KEY,
    repo       TEXT    NOT NULL,
    client     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX uploads_by_client ON uploads (client);
CREATE INDEX uploads_by_updated ON uploads (updated_at);
