-- Which credential each machine logged in with, so one credential (a workload token's issuer and
-- subject, or a key) seen for machines of different environments is flagged (NHI9 reuse). The
-- credential column holds a public name only: `oidc:ISSUER#SUBJECT` or `key:PUBLIC_KEY`.
CREATE TABLE machine_credentials_seen (
    credential  TEXT NOT NULL,
    machine_id  TEXT NOT NULL REFERENCES users (id),
    environment TEXT NOT NULL,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    PRIMARY KEY (credential, machine_id)
);
CREATE INDEX machine_credentials_seen_by_credential ON machine_credentials_seen (credential, environment);
