-- Vaulted accounts (issue #17): one row per account, holding its secret sealed (envelope
-- encryption: a data key per secret, wrapped by the broker's KEK; never plaintext), the rotation
-- journal's state and the pending secret while a rotation is under way, and the checkout.
--
-- The journal's rule: the pending secret is written (and committed) before the target is
-- changed, and a secret is only ever dropped after a login has disproved it, so at every instant
-- this row holds a secret that opens the account (case L2).
CREATE TABLE vault_accounts (
    id                    TEXT PRIMARY KEY NOT NULL,
    target                TEXT NOT NULL,
    account               TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    exclusive             BOOLEAN NOT NULL,
    rules                 TEXT NOT NULL,           -- password rules (JSON)
    change_command        TEXT,                    -- ssh_password: a passwd-style command instead of chpasswd
    authorized_keys       TEXT,                    -- ssh_key: the file on the target that lists its key
    secret                TEXT NOT NULL,           -- sealed (paw-vault compact form), AAD = id + version
    version               BIGINT NOT NULL,
    pending_secret        TEXT,
    rotation_state        TEXT NOT NULL DEFAULT 'idle',
    rotation_owner        TEXT,                    -- the broker running it, until its lease ends
    rotation_lease_until  BIGINT,
    last_rotated_at       BIGINT,
    last_result           TEXT NOT NULL DEFAULT 'never',
    last_error            TEXT,
    failing_since         BIGINT,
    next_rotation_at      BIGINT,
    rotate_after_checkout BOOLEAN NOT NULL DEFAULT FALSE,
    holder_grant          TEXT,
    holder_user           TEXT,
    holder_until          BIGINT,
    created_at            BIGINT NOT NULL,
    UNIQUE (target, account)
);

-- Every step of every rotation, in order: what an auditor replays to see how a secret changed.
CREATE TABLE vault_rotation_log (
    id         BIGSERIAL PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES vault_accounts (id),
    at         BIGINT NOT NULL,
    from_state TEXT NOT NULL,
    event      TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX vault_rotation_log_by_account ON vault_rotation_log (account_id, id);
