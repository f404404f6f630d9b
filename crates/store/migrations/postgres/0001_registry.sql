-- The registry's metadata: blobs, their links into repositories, manifests, tags, uploads.
-- Small blobs and every manifest live inline; large blobs live in the blob store by digest.
--
-- Conventions of every PostgreSQL migration: a time is `bigint` milliseconds since the Unix
-- epoch (the ports' `Timestamp`, every value of which round-trips; `timestamptz` cannot hold
-- them all); bytes are `bytea`; names, ids and digests that are listed in order or paged with
-- `>` are `COLLATE "C"`, so their order is bytewise whatever the database's locale.

CREATE TABLE blobs (
    digest         text COLLATE "C" NOT NULL PRIMARY KEY,
    size           bigint NOT NULL CHECK (size >= 0),
    inline_data    bytea,
    quarantined_at bigint,
    created_at     bigint NOT NULL
);

CREATE TABLE repositories (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text COLLATE "C" NOT NULL UNIQUE,
    created_at bigint NOT NULL
);

CREATE TABLE repo_blobs (
    repo_id    bigint NOT NULL REFERENCES repositories (id),
    digest     text COLLATE "C" NOT NULL REFERENCES blobs (digest),
    created_at bigint NOT NULL,
    PRIMARY KEY (repo_id, digest)
);

CREATE TABLE manifests (
    repo_id       bigint NOT NULL REFERENCES repositories (id),
    digest        text COLLATE "C" NOT NULL,
    media_type    text   NOT NULL,
    body          bytea  NOT NULL,
    artifact_type text,
    subject       text COLLATE "C",
    -- The annotations as a JSON object, kept as received for the referrers API.
    annotations   text   NOT NULL,
    created_at    bigint NOT NULL,
    -- Who pushed it (for separation of duties); a promotion copies it.
    pushed_by     text,
    PRIMARY KEY (repo_id, digest)
);

CREATE INDEX manifests_by_subject ON manifests (repo_id, subject) WHERE subject IS NOT NULL;

CREATE TABLE tags (
    repo_id    bigint NOT NULL,
    name       text COLLATE "C" NOT NULL,
    digest     text COLLATE "C" NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (repo_id, name),
    FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
);

CREATE INDEX tags_by_digest ON tags (repo_id, digest);

CREATE TABLE uploads (
    id         text   NOT NULL PRIMARY KEY,
    repo       text   NOT NULL,
    client     text   NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
);

CREATE INDEX uploads_by_client ON uploads (client);
CREATE INDEX uploads_by_updated ON uploads (updated_at);
