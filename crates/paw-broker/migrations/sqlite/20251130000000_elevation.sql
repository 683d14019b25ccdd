-- Elevation: requests that become grants, approvers' decisions, break-glass reviews, one-time
-- session tickets, and the broker's hash-linked audit log. Times are Unix ms from the broker's
-- clock. Grant state names are paw-policy's.
CREATE TABLE grants (
    id             TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id),
    user_name      TEXT NOT NULL,
    person         TEXT NOT NULL,              -- who the account belongs to (separation of duties)
    entitlement    TEXT NOT NULL,
    target_kind    TEXT NOT NULL,
    target         TEXT NOT NULL,
    role           TEXT NOT NULL,
    duration_secs  BIGINT NOT NULL,
    justification  TEXT NOT NULL,
    ticket         TEXT,
    start_at       BIGINT,                     -- requested start; NULL = when approved
    break_glass    BOOLEAN NOT NULL DEFAULT FALSE,
    credential_id  TEXT NOT NULL,              -- the security key that signed the request
    state          TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    starts_at      BIGINT,
    ends_at        BIGINT,
    ended_at       BIGINT,
    end_reason     TEXT,
    warned         BIGINT NOT NULL DEFAULT 0   -- bit 1: 5 min warning sent, bit 2: 1 min
);
CREATE INDEX grants_user ON grants (user_id, created_at);
CREATE INDEX grants_state ON grants (state);
CREATE INDEX grants_credential ON grants (credential_id);

CREATE TABLE decisions (
    grant_id    TEXT NOT NULL REFERENCES grants (id),
    approver_id TEXT NOT NULL REFERENCES users (id),
    approver    TEXT NOT NULL,
    person      TEXT NOT NULL,
    approve     BOOLEAN NOT NULL,
    comment     TEXT NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (grant_id, person)             -- one decision per person, whatever the account
);

CREATE TABLE reviews (
    grant_id    TEXT NOT NULL REFERENCES grants (id),
    reviewer_id TEXT NOT NULL REFERENCES users (id),
    reviewer    TEXT NOT NULL,
    person      TEXT NOT NULL,
    comment     TEXT NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (grant_id, person)
);

CREATE TABLE session_tickets (
    id          TEXT PRIMARY KEY NOT NULL,     -- session id
    grant_id    TEXT NOT NULL REFERENCES grants (id),
    ticket_hash TEXT NOT NULL UNIQUE,          -- SHA-256 of the one-time ticket
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    ended_at    BIGINT
);
CREATE INDEX session_tickets_grant ON session_tickets (grant_id);

ALTER TABLE users ADD COLUMN disabled_at BIGINT;

-- The authoritative audit log: one hash-linked chain (paw-audit). `audit_head` is one row,
-- locked first by every transaction that appends, so appends are serialised and the chain
-- cannot fork.
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY NOT NULL,
    time_ms   BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL,                   -- JSON
    prev_hash TEXT NOT NULL,                   -- hex
    hash      TEXT NOT NULL                    -- hex
);
CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY NOT NULL,
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
-- The empty chain: seq 0 and paw-audit's genesis value, SHA-256("paw-audit-genesis-v1\0")
-- (a unit test checks this constant against paw-audit).
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, 'c064d5d8897f4dcc213ffe0778875a315a5269995b307c4d411a19cef5b1061f');
