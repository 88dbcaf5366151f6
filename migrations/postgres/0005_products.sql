-- Products: a bundle line item has one enrollment per course (its `part`), a
-- paid seat names its course `mode`, and a learner without an account waits
-- from `account_wait_since`. The identity becomes (order_id, line_item_id, part).
ALTER TABLE enrollments
    ADD COLUMN part BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN mode TEXT,
    ADD COLUMN account_wait_since BIGINT;
ALTER TABLE enrollments DROP CONSTRAINT enrollments_order_id_line_item_id_key;
ALTER TABLE enrollments ADD CONSTRAINT enrollments_identity UNIQUE (order_id, line_item_id, part);
-- The claim's readiness question (waiting learners per course, action and
-- mode) and its pick of a group's due items read only this index.
DROP INDEX enrollments_by_course;
CREATE INDEX enrollments_by_course ON enrollments (state, course_key, action, mode, due_at, id, lease_until);
