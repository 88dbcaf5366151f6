-- Products: a bundle line item has one enrollment per course (its `part`), a
-- paid seat names its course `mode`, and a learner without an account waits
-- from `account_wait_since`. The identity becomes (order_id, line_item_id, part).
-- SQLite cannot drop a table's UNIQUE constraint, so the table is rebuilt.
-- Renaming a table rewrites the foreign keys that name it, so `attempts`
-- moves aside with it and is rebuilt too, pointing at the new table.
ALTER TABLE enrollments RENAME TO enrollments_old;
ALTER TABLE attempts RENAME TO attempts_old;

CREATE TABLE enrollments (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id           INTEGER NOT NULL REFERENCES orders (id),
    line_item_id       TEXT    NOT NULL,
    part               INTEGER NOT NULL DEFAULT 0,
    sku                TEXT    NOT NULL,
    course_key         TEXT,
    mode               TEXT,
    email              TEXT,
    action             TEXT    NOT NULL,
    state              TEXT    NOT NULL,
    reason             TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    due_at             INTEGER NOT NULL,
    claim_token        TEXT,
    lease_until        INTEGER,
    before_enrollment  INTEGER,
    account_wait_since INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (order_id, line_item_id, part)
);
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

INSERT INTO enrollments (id, order_id, line_item_id, sku, course_key, email, action, state, reason,
    attempts, due_at, claim_token, lease_until, before_enrollment, created_at, updated_at)
SELECT id, order_id, line_item_id, sku, course_key, email, action, state, reason,
    attempts, due_at, claim_token, lease_until, before_enrollment, created_at, updated_at
FROM enrollments_old;
INSERT INTO attempts (id, enrollment_id, at, action, http_status, outcome, detail, duration_ms, counted)
SELECT id, enrollment_id, at, action, http_status, outcome, detail, duration_ms, counted FROM attempts_old;
-- AUTOINCREMENT never hands out an id again, even one of a pruned row.
DELETE FROM sqlite_sequence WHERE name IN ('enrollments', 'attempts');
UPDATE sqlite_sequence SET name = 'enrollments' WHERE name = 'enrollments_old';
UPDATE sqlite_sequence SET name = 'attempts' WHERE name = 'attempts_old';

DROP TABLE attempts_old;
DROP TABLE enrollments_old;

-- Matches the claim's WHERE state = 'pending' ... ORDER BY due_at, id.
CREATE INDEX enrollments_due ON enrollments (state, due_at, id);
-- The claim's readiness question (waiting learners per course, action and
-- mode) and its pick of a group's due items read only this index.
CREATE INDEX enrollments_by_course ON enrollments (state, course_key, action, mode, due_at, id, lease_until);
CREATE INDEX enrollments_by_claim ON enrollments (claim_token);
CREATE INDEX attempts_by_enrollment ON attempts (enrollment_id, id);
