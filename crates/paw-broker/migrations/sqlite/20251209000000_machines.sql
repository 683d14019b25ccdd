-- Machine identities (issue #16, cases K1–K6). A machine is a row of `users` with kind
-- 'machine', so grants, sessions, step-ups and the audit name it like a person; this table
-- holds what only machines have. A machine has no roles and no security key: it proves
-- itself with an Ed25519 key (machine_keys), never with a stored shared secret.
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'human';

CREATE TABLE machines (
    user_id          TEXT PRIMARY KEY NOT NULL REFERENCES users (id),
    owner_id         TEXT REFERENCES users (id),  -- NULL once the owner is gone (K1)
    backup_owner     TEXT,                        -- a user name or group:NAME
    purpose          TEXT NOT NULL,
    environment      TEXT NOT NULL,
    labels           TEXT NOT NULL,               -- JSON object
    auth_kind        TEXT NOT NULL,               -- 'key' or 'oidc'
    oidc_issuer      TEXT,
    oidc_claims      TEXT NOT NULL,               -- JSON object: claim -> glob
    sources          TEXT NOT NULL,               -- JSON array of IPs / CIDRs; [] = any
    spec_sha256      TEXT NOT NULL,               -- what the creating step-up signed
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT,
    suspended_at     BIGINT,
    suspended_reason TEXT,
    last_used_at     BIGINT,
    last_source      TEXT
);
CREATE INDEX machines_owner ON machines (owner_id);

-- Registered keys and the per-session keys of workload-token logins. A key stops working at
-- retire_at: the end of the overlap window after a rotation (K4), or the end of the session
-- it was made for. Also listed in device_keys, which every request's device proof uses.
CREATE TABLE machine_keys (
    public_key   TEXT PRIMARY KEY NOT NULL,       -- base64url Ed25519
    machine_id   TEXT NOT NULL REFERENCES users (id),
    source       TEXT NOT NULL,                   -- 'key' or 'session'
    created_at   BIGINT NOT NULL,
    retire_at    BIGINT,
    last_used_at BIGINT
);
CREATE INDEX machine_keys_machine ON machine_keys (machine_id);

CREATE TABLE machine_join_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    machine_id TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

-- Where each machine logged in from, and how (K5): the inventory's new-source flag.
CREATE TABLE machine_sightings (
    machine_id TEXT NOT NULL REFERENCES users (id),
    source     TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    PRIMARY KEY (machine_id, source)
);

-- Workload tokens already exchanged (jti, per issuer): a token is good for one login.
CREATE TABLE workload_tokens_seen (
    issuer     TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
