-- Files moved through a session's SFTP (issue #18): one row per file, written in the same
-- transaction as its audit record, so a session's history lists its files and help-desk can
-- fetch a captured copy, checked against the SHA-256 taken when it was kept.
CREATE TABLE session_files (
    session_id       TEXT NOT NULL,
    n                BIGINT NOT NULL,          -- order within the session, from 1
    path             TEXT NOT NULL,            -- as resolved on the target
    direction        TEXT NOT NULL,            -- upload | download
    size             BIGINT NOT NULL,
    sha256           TEXT,                     -- of the bytes that passed; NULL when unknown
    outcome          TEXT NOT NULL,            -- success | failure | denied
    capture          TEXT,                     -- the copy's file name in the recording store
    capture_sha256   TEXT,
    capture_complete BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (session_id, n)
);
