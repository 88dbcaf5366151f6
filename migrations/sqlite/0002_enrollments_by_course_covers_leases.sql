-- The claim's readiness question (waiting learners per course) and its pick of
-- a course's due items read only this index: no row lookups.
DROP INDEX enrollments_by_course;
CREATE INDEX enrollments_by_course ON enrollments (state, course_key, action, due_at, id, lease_until);
