-- Live events shared between brokers (issue #14): each elevation event a broker sends to its
-- own SSE streams is also a row here, and every other broker on the database relays the rows
-- it did not write to its own streams. Best effort like the streams themselves (the audit log
-- is the record); rows older than a few minutes are pruned.
CREATE TABLE live_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    origin     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    audience   TEXT NOT NULL,
    event      TEXT NOT NULL
);
CREATE INDEX live_events_created ON live_events (created_at);
