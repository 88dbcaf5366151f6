-- Times are Unix milliseconds (UTC); flags are 0 or 1; states are the text of the domain's enums.

CREATE TABLE orders (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    platform     TEXT    NOT NULL,
    shop         TEXT    NOT NULL,
    external_id  TEXT    NOT NULL,
    number       TEXT    NOT NULL,
    buyer_email  TEXT,
    paid         INTEGER NOT NULL,
    cancelled    INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (platform, shop, external_id)
);
CREATE INDEX orders_by_state ON orders (state, id);
CREATE INDEX orders_by_number ON orders (number);

CREATE TABLE requests (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at    INTEGER NOT NULL,
    platform       TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    endpoint       TEXT    NOT NULL,
    source_ip      TEXT,
    headers        TEXT    NOT NULL,
    body           BLOB    NOT NULL,
    body_size      INTEGER NOT NULL,
    body_truncated INTEGER NOT NULL,
    http_status    INTEGER NOT NULL,
    outcome        TEXT    NOT NULL,
    reason         TEXT,
    shop           TEXT,
    topic          TEXT,
    webhook_id     TEXT,
    order_id       INTEGER REFERENCES orders (id)
);
CREATE INDEX requests_by_webhook_id ON requests (platform, shop, webhook_id);
CREATE INDEX requests_by_order ON requests (order_id);
CREATE INDEX requests_by_outcome ON requests (outcome, id);

CREATE TABLE enrollments (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id          INTEGER NOT NULL REFERENCES orders (id),
    line_item_id      TEXT    NOT NULL,
    sku               TEXT    NOT NULL,
    course_key        TEXT,
    email             TEXT,
    action            TEXT    NOT NULL,
    state             TEXT    NOT NULL,
    reason            TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    due_at            INTEGER NOT NULL,
    claim_token       TEXT,
    lease_until       INTEGER,
    before_enrollment INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (order_id, line_item_id)
);
-- Matches the claim's WHERE state = 'pending' ... ORDER BY due_at, id.
CREATE INDEX enrollments_due ON enrollments (state, due_at, id);
CREATE INDEX enrollments_by_course ON enrollments (state, course_key, action, due_at, id);
CREATE INDEX enrollments_by_claim ON enrollments (claim_token);

CREATE TABLE attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    enrollment_id INTEGER NOT NULL REFERENCES enrollments (id),
    at            INTEGER NOT NULL,
    action        TEXT    NOT NULL,
    http_status   INTEGER,
    outcome       TEXT    NOT NULL,
    detail        TEXT    NOT NULL,
    duration_ms   INTEGER NOT NULL,
    counted       INTEGER NOT NULL
);
CREATE INDEX attempts_by_enrollment ON attempts (enrollment_id, id);

-- One row: what every worker of every process must respect about the LMS.
CREATE TABLE lms_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    paused_until  INTEGER NOT NULL DEFAULT 0,
    misconfigured TEXT,
    probe_at      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO lms_state (id) VALUES (1);

-- When each recent LMS request was started: the shared sliding-window rate limit.
CREATE TABLE lms_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL
);
CREATE INDEX lms_calls_by_time ON lms_calls (at);
