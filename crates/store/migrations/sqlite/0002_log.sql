-- The transparency log: leaves (canonical JSON events), complete-subtree node hashes (so any
-- root or proof is O(log n) reads), and signed checkpoints. Append-only: no code updates or
-- deletes these rows (cargo xtask tidy checks), and these triggers refuse it at the engine.

CREATE TABLE log_leaves (
    idx       INTEGER NOT NULL PRIMARY KEY CHECK (idx >= 0),
    data      BLOB    NOT NULL,
    leaf_hash BLOB    NOT NULL CHECK (length(leaf_hash) = 32)
) STRICT;

CREATE TABLE log_nodes (
    level INTEGER NOT NULL CHECK (level >= 0 AND level < 64),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE log_checkpoints (
    size       INTEGER NOT NULL PRIMARY KEY CHECK (size >= 0),
    note       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TRIGGER log_leaves_append_only_update BEFORE UPDATE ON log_leaves
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER log_leaves_append_only_delete BEFORE DELETE ON log_leaves
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER log_nodes_append_only_update BEFORE UPDATE ON log_nodes
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER log_nodes_append_only_delete BEFORE DELETE ON log_nodes
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER log_checkpoints_append_only_update BEFORE UPDATE ON log_checkpoints
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER log_checkpoints_append_only_delete BEFORE DELETE ON log_checkpoints
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
