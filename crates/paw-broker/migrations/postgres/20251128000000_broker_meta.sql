-- Facts about this broker instance (instance_id, …), one row per key.
CREATE TABLE broker_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
