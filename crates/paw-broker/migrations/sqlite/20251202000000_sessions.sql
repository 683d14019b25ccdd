-- Brokered sessions (#5): a session ticket becomes a session when its one-time credential is
-- used. `used_at` makes the credential single-use (case C3); `end_reason` and
-- `recording_sha256` are what the history shows and the audit log repeats.
ALTER TABLE session_tickets ADD COLUMN used_at BIGINT;
ALTER TABLE session_tickets ADD COLUMN end_reason TEXT;
ALTER TABLE session_tickets ADD COLUMN recording_sha256 TEXT;
ALTER TABLE session_tickets ADD COLUMN recording_closed_at BIGINT;
