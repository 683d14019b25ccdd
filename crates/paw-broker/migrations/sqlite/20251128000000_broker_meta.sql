-- Facts about this broker instance (instance_id, …), one row per key.
CREATE TABLE broker_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
