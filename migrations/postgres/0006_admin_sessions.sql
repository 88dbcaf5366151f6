-- Admin sessions, so that several processes and restarts share them. A
-- session is found by the SHA-256 of its cookie's value, never the value.
CREATE TABLE admin_sessions (
    id_hash    TEXT   NOT NULL PRIMARY KEY,
    csrf       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX admin_sessions_by_expiry ON admin_sessions (expires_at);
