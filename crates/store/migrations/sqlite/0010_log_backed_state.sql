-- State backed by the log: every row that grants something (an approval, an active waiver, a
-- freeze lift and the request before it) stores the index of the log entry that recorded it,
-- appended in the same transaction. The engine counts the row only if that entry says the same,
-- so a row typed into this database counts for nothing. A lifted freeze stays stored.

ALTER TABLE approvals ADD COLUMN log_index INTEGER;

ALTER TABLE waivers ADD COLUMN log_index INTEGER;

ALTER TABLE stage_freezes ADD COLUMN unfreeze_index INTEGER;
ALTER TABLE stage_freezes ADD COLUMN lifted_by TEXT;
ALTER TABLE stage_freezes ADD COLUMN lift_index INTEGER;
