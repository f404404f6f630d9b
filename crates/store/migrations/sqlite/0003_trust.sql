-- The trust root, every version kept, and the attestations verified at ingest.

CREATE TABLE trust_roots (
    version    INTEGER NOT NULL PRIMARY KEY CHECK (version >= 1),
    document   BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE attestations (
    repo_id        INTEGER NOT NULL REFERENCES repositories (id),
    manifest       TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    predicate_type TEXT    NOT NULL,
    envelope       BLOB    NOT NULL,
    verdict        TEXT    NOT NULL,
    root_version   INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (repo_id, manifest),
    FOREIGN KEY (repo_id, manifest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) STRICT;

CREATE INDEX attestations_by_subject ON attestations (repo_id, subject);
