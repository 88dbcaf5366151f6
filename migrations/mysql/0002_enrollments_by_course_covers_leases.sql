-- The claim's readiness question (waiting learners per course) and its pick of
-- a course's due items read only this index: no row lookups.
ALTER TABLE enrollments
    DROP INDEX enrollments_by_course,
    ADD INDEX enrollments_by_course (state, course_key, action, due_at, id, lease_until);
