-- Times are Unix milliseconds (UTC); flags are 0 or 1; states are the text of the domain's enums.
-- Runs on MySQL 8 and MariaDB 10.6+. Indexed text is VARCHAR so that keys fit InnoDB's limit.

CREATE TABLE orders (
    id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    platform     VARCHAR(32)  NOT NULL,
    shop         VARCHAR(255) NOT NULL,
    external_id  VARCHAR(191) NOT NULL,
    number       VARCHAR(191) NOT NULL,
    buyer_email  VARCHAR(320),
    paid         BIGINT       NOT NULL,
    cancelled    BIGINT       NOT NULL,
    state        VARCHAR(32)  NOT NULL,
    created_at   BIGINT       NOT NULL,
    updated_at   BIGINT       NOT NULL,
    UNIQUE KEY orders_identity (platform, shop, external_id),
    KEY orders_by_state (state, id),
    KEY orders_by_number (number)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE requests (
    id             BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    received_at    BIGINT       NOT NULL,
    platform       VARCHAR(32)  NOT NULL,
    method         VARCHAR(16)  NOT NULL,
    endpoint       VARCHAR(255) NOT NULL,
    source_ip      VARCHAR(64),
    headers        MEDIUMTEXT   NOT NULL,
    body           LONGBLOB     NOT NULL,
    body_size      BIGINT       NOT NULL,
    body_truncated BIGINT       NOT NULL,
    http_status    BIGINT       NOT NULL,
    outcome        VARCHAR(32)  NOT NULL,
    reason         VARCHAR(2000),
    shop           VARCHAR(255),
    topic          VARCHAR(255),
    webhook_id     VARCHAR(255),
    order_id       BIGINT,
    KEY requests_by_webhook_id (platform, shop, webhook_id),
    KEY requests_by_order (order_id),
    KEY requests_by_outcome (outcome, id),
    CONSTRAINT requests_order FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE enrollments (
    id                BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    order_id          BIGINT       NOT NULL,
    line_item_id      VARCHAR(191) NOT NULL,
    sku               VARCHAR(512) NOT NULL,
    course_key        VARCHAR(255),
    email             VARCHAR(320),
    action            VARCHAR(16)  NOT NULL,
    state             VARCHAR(32)  NOT NULL,
    reason            VARCHAR(2000),
    attempts          BIGINT       NOT NULL DEFAULT 0,
    due_at            BIGINT       NOT NULL,
    claim_token       VARCHAR(64),
    lease_until       BIGINT,
    before_enrollment BIGINT,
    created_at        BIGINT       NOT NULL,
    updated_at        BIGINT       NOT NULL,
    UNIQUE KEY enrollments_identity (order_id, line_item_id),
    -- Matches the claim's WHERE state = 'pending' ... ORDER BY due_at, id.
    KEY enrollments_due (state, due_at, id),
    KEY enrollments_by_course (state, course_key, action, due_at, id),
    KEY enrollments_by_claim (claim_token),
    CONSTRAINT enrollments_order FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE attempts (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    enrollment_id BIGINT       NOT NULL,
    at            BIGINT       NOT NULL,
    action        VARCHAR(16)  NOT NULL,
    http_status   BIGINT,
    outcome       VARCHAR(32)  NOT NULL,
    detail        VARCHAR(4000) NOT NULL,
    duration_ms   BIGINT       NOT NULL,
    counted       BIGINT       NOT NULL,
    KEY attempts_by_enrollment (enrollment_id, id),
    CONSTRAINT attempts_enrollment FOREIGN KEY (enrollment_id) REFERENCES enrollments (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row: what every worker of every process must respect about the LMS.
CREATE TABLE lms_state (
    id            BIGINT NOT NULL PRIMARY KEY,
    paused_until  BIGINT NOT NULL DEFAULT 0,
    misconfigured VARCHAR(2000),
    probe_at      BIGINT NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
INSERT INTO lms_state (id) VALUES (1);

-- When each recent LMS request was started: the shared sliding-window rate limit.
CREATE TABLE lms_calls (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at BIGINT NOT NULL,
    KEY lms_calls_by_time (at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
