-- The broker as witness of each workstation's local audit trail (case D3): the last
-- checkpoint it cosigned per trail origin. A new checkpoint of an origin is cosigned only if
-- the records uploaded with it lead from this one to its head, so a trail whose tail was cut
-- (or rewritten and re-hashed) can never be cosigned again. Times are Unix ms; the checkpoint
-- time is the workstation's clock, cosigned_at the broker's.
CREATE TABLE audit_checkpoints (
    origin       TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),  -- the origin belongs to this user
    device_key   TEXT NOT NULL,   -- base64url ed25519 device key that signed it
    seq          BIGINT NOT NULL,
    hash         TEXT NOT NULL,   -- hex, 32 bytes
    time_ms      BIGINT NOT NULL,
    checkpoint   TEXT NOT NULL,   -- base64url: the signed body, then the 64-byte signature
    cosignature  TEXT NOT NULL,   -- base64url: paw-audit Cosignature::to_bytes
    cosigned_at  BIGINT NOT NULL
);
CREATE INDEX audit_checkpoints_user ON audit_checkpoints (user_id);
