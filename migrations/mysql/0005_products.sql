-- Products: a bundle line item has one enrollment per course (its `part`), a
-- paid seat names its course `mode`, and a learner without an account waits
-- from `account_wait_since`. The identity becomes (order_id, line_item_id, part).
-- The claim's readiness question (waiting learners per course, action and
-- mode) and its pick of a group's due items read only enrollments_by_course.
ALTER TABLE enrollments
    ADD COLUMN part BIGINT NOT NULL DEFAULT 0 AFTER line_item_id,
    ADD COLUMN mode VARCHAR(64) AFTER course_key,
    ADD COLUMN account_wait_since BIGINT AFTER before_enrollment,
    ADD UNIQUE KEY enrollments_part (order_id, line_item_id, part),
    DROP INDEX enrollments_identity,
    DROP INDEX enrollments_by_course,
    ADD INDEX enrollments_by_course (state, course_key, action, mode, due_at, id, lease_until);
