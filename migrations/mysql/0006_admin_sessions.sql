-- Admin sessions, so that several processes and restarts share them. A
-- session is found by the SHA-256 of its cookie's value, never the value.
CREATE TABLE admin_sessions (
    id_hash    CHAR(64)    NOT NULL PRIMARY KEY,
    csrf       VARCHAR(64) NOT NULL,
    created_at BIGINT      NOT NULL,
    expires_at BIGINT      NOT NULL,
    INDEX admin_sessions_by_expiry (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
