-- The transparency log: leaves (canonical JSON events), complete-subtree node hashes (so any
-- root or proof is O(log n) reads), and signed checkpoints. Append-only: no code updates,
-- deletes or truncates these tables (cargo xtask tidy checks), and these triggers refuse it in
-- the database, for every statement whatever rows it touches.
--
-- Appends from every replica serialize on one transaction-scoped advisory lock (the log's
-- sequencer, taken first by every write transaction), so the leaves stay contiguous from 0 and
-- the stored size is `max(idx) + 1`.

CREATE TABLE log_leaves (
    idx       bigint NOT NULL PRIMARY KEY CHECK (idx >= 0),
    data      bytea  NOT NULL,
    leaf_hash bytea  NOT NULL CHECK (octet_length(leaf_hash) = 32)
);

CREATE TABLE log_nodes (
    level smallint NOT NULL CHECK (level >= 0 AND level < 64),
    idx   bigint   NOT NULL CHECK (idx >= 0),
    hash  bytea    NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE TABLE log_checkpoints (
    size       bigint NOT NULL PRIMARY KEY CHECK (size >= 0),
    note       text   NOT NULL,
    created_at bigint NOT NULL
);

CREATE FUNCTION log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the transparency log is append-only: % on `%` refused', TG_OP, TG_TABLE_NAME;
END
$$;

CREATE TRIGGER log_leaves_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON log_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION log_append_only();
CREATE TRIGGER log_nodes_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON log_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION log_append_only();
CREATE TRIGGER log_checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON log_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION log_append_only();
