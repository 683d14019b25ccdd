-- How far each HTTP sink of the audit stream (`[audit] stream_url`, a SIEM endpoint) has
-- acknowledged the broker's log, so a restart resumes after the last acknowledged record: no
-- gap, and nothing sent twice unless an acknowledgement itself was lost. (The file sink keeps
-- its position in the file: its last line.)
CREATE TABLE audit_stream (
    sink       TEXT PRIMARY KEY,  -- the endpoint URL
    acked_seq  BIGINT NOT NULL,   -- last audit_log.seq the sink acknowledged
    acked_at   BIGINT NOT NULL    -- Unix ms
);
