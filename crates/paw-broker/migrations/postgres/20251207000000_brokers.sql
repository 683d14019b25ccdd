-- Several brokers on one database (issue #14, cases I2 and I3). Each serving pawd process is a
-- row here with a lease it renews every few seconds; each session records the broker that
-- carries its connection. A broker whose lease has expired is gone: another ends its
-- sessions (`broker_lost`) once, and marks it reaped. A clean shutdown ends its own sessions
-- (`broker_shutdown`) and sets `stopped_at` itself.
CREATE TABLE brokers (
    id          TEXT PRIMARY KEY NOT NULL,
    host        TEXT NOT NULL,
    pid         BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    stopped_at  BIGINT,
    stop_reason TEXT
);
CREATE INDEX brokers_live ON brokers (lease_until) WHERE stopped_at IS NULL;

-- No foreign key: a session row outlives the broker rows that history keeps, and tools that
-- build the services without serving (tests, benches) claim sessions without registering.
ALTER TABLE session_tickets ADD COLUMN broker_id TEXT;
CREATE INDEX session_tickets_broker ON session_tickets (broker_id) WHERE recording_closed_at IS NULL;
