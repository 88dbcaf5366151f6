-- Times are Unix milliseconds (UTC); flags are 0 or 1; states are the text of the domain's enums.

CREATE TABLE orders (
    id           BIGSERIAL PRIMARY KEY,
    platform     TEXT   NOT NULL,
    shop         TEXT   NOT NULL,
    external_id  TEXT   NOT NULL,
    number       TEXT   NOT NULL,
    buyer_email  TEXT,
    paid         BIGINT NOT NULL,
    cancelled    BIGINT NOT NULL,
    state        TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (platform, shop, external_id)
);
CREATE INDEX orders_by_state ON orders (state, id);
CREATE INDEX orders_by_number ON orders (number);

CREATE TABLE requests (
    id             BIGSERIAL PRIMARY KEY,
    received_at    BIGINT NOT NULL,
    platform       TEXT   NOT NULL,
    method         TEXT   NOT NULL,
    endpoint       TEXT   NOT NULL,
    source_ip      TEXT,
    headers        TEXT   NOT NULL,
    body           BYTEA  NOT NULL,
    body_size      BIGINT NOT NULL,
    body_truncated BIGINT NOT NULL,
    http_status    BIGINT NOT NULL,
    outcome        TEXT   NOT NULL,
    reason         TEXT,
    shop           TEXT,
    topic          TEXT,
    webhook_id     TEXT,
    order_id       BIGINT REFERENCES orders (id)
);
CREATE INDEX requests_by_webhook_id ON requests (platform, shop, webhook_id);
CREATE INDEX requests_by_order ON requests (order_id);
CREATE INDEX requests_by_outcome ON requests (outcome, id);

CREATE TABLE enrollments (
    id                BIGSERIAL PRIMARY KEY,
    order_id          BIGINT NOT NULL REFERENCES orders (id),
    line_item_id      TEXT   NOT NULL,
    sku               TEXT   NOT NULL,
    course_key        TEXT,
    email             TEXT,
    action            TEXT   NOT NULL,
    state             TEXT   NOT NULL,
    reason            TEXT,
    attempts          BIGINT NOT NULL DEFAULT 0,
    due_at            BIGINT NOT NULL,
    claim_token       TEXT,
    lease_until       BIGINT,
    before_enrollment BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (order_id, line_item_id)
);
-- Matches the claim's WHERE state = 'pending' ... ORDER BY due_at, id.
CREATE INDEX enrollments_due ON enrollments (state, due_at, id);
CREATE INDEX enrollments_by_course ON enrollments (state, course_key, action, due_at, id);
CREATE INDEX enrollments_by_claim ON enrollments (claim_token);

CREATE TABLE attempts (
    id            BIGSERIAL PRIMARY KEY,
    enrollment_id BIGINT NOT NULL REFERENCES enrollments (id),
    at            BIGINT NOT NULL,
    action        TEXT   NOT NULL,
    http_status   BIGINT,
    outcome       TEXT   NOT NULL,
    detail        TEXT   NOT NULL,
    duration_ms   BIGINT NOT NULL,
    counted       BIGINT NOT NULL
);
CREATE INDEX attempts_by_enrollment ON attempts (enrollment_id, id);

-- One row: what every worker of every process must respect about the LMS.
CREATE TABLE lms_state (
    id            BIGINT PRIMARY KEY CHECK (id = 1),
    paused_until  BIGINT NOT NULL DEFAULT 0,
    misconfigured TEXT,
    probe_at      BIGINT NOT NULL DEFAULT 0
);
INSERT INTO lms_state (id) VALUES (1);

-- When each recent LMS request was started: the shared sliding-window rate limit.
CREATE TABLE lms_calls (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL
);
CREATE INDEX lms_calls_by_time ON lms_calls (at);
