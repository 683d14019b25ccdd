-- Identity: users, invites, security keys, device keys, WebAuthn challenges, token sessions.
-- Times are Unix milliseconds from the broker's clock. Tokens and invite codes are stored only
-- as SHA-256 (hex); the secret values exist only in the answer that hands them out.
CREATE TABLE users (
    id              TEXT PRIMARY KEY,   -- UUID, also the WebAuthn user handle
    name            TEXT NOT NULL UNIQUE,
    roles           TEXT NOT NULL,               -- JSON array of role names
    locked          BOOLEAN NOT NULL DEFAULT FALSE,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    last_failure_at BIGINT,
    created_at      BIGINT NOT NULL
);

CREATE TABLE invites (
    code_hash  TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL,
    roles      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE credentials (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    cred_id      TEXT NOT NULL UNIQUE,           -- base64url WebAuthn credential id
    name         TEXT NOT NULL,
    passkey_json TEXT NOT NULL,
    counter      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    locked_at    BIGINT                          -- counter regression: possible clone
);
CREATE INDEX credentials_user ON credentials (user_id);

CREATE TABLE device_keys (
    user_id    TEXT NOT NULL REFERENCES users (id),
    public_key TEXT NOT NULL,                    -- base64url ed25519, 32 bytes
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, public_key)
);

CREATE TABLE challenges (
    challenge   TEXT PRIMARY KEY,       -- base64url challenge bytes
    user_id     TEXT,                            -- NULL while enrolling (no user yet)
    purpose     TEXT NOT NULL,
    action_hash TEXT NOT NULL,                   -- base64url SHA-256 of the canonical action
    state_json  TEXT NOT NULL,
    context     TEXT NOT NULL,                   -- JSON: what the finish step needs besides state
    expires_at  BIGINT NOT NULL
);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,      -- also the refresh-token family id
    user_id      TEXT NOT NULL REFERENCES users (id),
    device_key   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    revoked_at   BIGINT
);

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    expires_at BIGINT NOT NULL
);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    created_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE proof_nonces (
    nonce   TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
CREATE INDEX proof_nonces_seen ON proof_nonces (seen_at);
