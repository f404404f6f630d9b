-- The trust root, every version kept, and the attestations verified at ingest.

CREATE TABLE trust_roots (
    version    bigint NOT NULL PRIMARY KEY CHECK (version >= 1),
    document   bytea  NOT NULL,
    created_at bigint NOT NULL
);

CREATE TABLE attestations (
    repo_id        bigint NOT NULL REFERENCES repositories (id),
    manifest       text COLLATE "C" NOT NULL,
    subject        text COLLATE "C" NOT NULL,
    predicate_type text   NOT NULL,
    -- The DSSE envelope exactly as pushed.
    envelope       bytea  NOT NULL,
    -- The verdict at ingest: {"trusted", "signers", "reasons", "root_version"}.
    verdict        jsonb  NOT NULL,
    root_version   bigint NOT NULL,
    created_at     bigint NOT NULL,
    PRIMARY KEY (repo_id, manifest),
    FOREIGN KEY (repo_id, manifest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
);

CREATE INDEX attestations_by_subject ON attestations (repo_id, subject);
