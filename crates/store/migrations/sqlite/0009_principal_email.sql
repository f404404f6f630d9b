-- A user's email, when known: approvals count once per person, so two accounts with the same
-- email approve once.

ALTER TABLE principals ADD COLUMN email TEXT;
