-- Sign-in throttling (case N1): failed logins and step-ups per source address and per
-- (user, source address), shared by every broker on the database. `blocked_until` is the
-- earliest time the next attempt under this key is verified at all; earlier ones get 429.
CREATE TABLE signin_throttle (
    key             TEXT PRIMARY KEY,      -- "s|<ip>" or "u|<user name>|<ip>"
    failures        BIGINT NOT NULL,       -- counted since failures were last forgotten
    last_failure_at BIGINT NOT NULL,
    blocked_until   BIGINT NOT NULL
);
