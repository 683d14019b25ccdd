-- Commands held in a live session for the user's own step-up or another person's approval
-- (issue #15, J3/J4). The session's broker waits on the row; any broker on the database
-- decides it, so a hold survives the app talking to another broker. A row is decided once:
-- `state` moves from `pending` to `released`, `refused` or `expired` and never back.
CREATE TABLE command_holds (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL,
    grant_id    TEXT NOT NULL,
    user_name   TEXT NOT NULL,
    person      TEXT NOT NULL,
    entitlement TEXT NOT NULL,
    target      TEXT NOT NULL,
    command     TEXT NOT NULL,
    line        TEXT NOT NULL,
    needs       TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    decided_by  TEXT,
    decided_at  BIGINT
);
CREATE INDEX command_holds_pending ON command_holds (state, expires_at);
