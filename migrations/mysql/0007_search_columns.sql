-- Search columns: what the order search compares, lower case (and an order
-- number without its leading '#'), each in an index so that a search finds
-- the rows starting with the text typed without reading every order. The
-- tables' binary collation makes a prefix a range of the index. (A course
-- key is searched as it is spelled, in enrollments_by_course.)
-- Generated columns: whatever writes the row, the column follows.
ALTER TABLE orders
    ADD COLUMN number_search VARCHAR(191) AS (TRIM(LEADING '#' FROM LOWER(number))) VIRTUAL,
    ADD COLUMN buyer_email_search VARCHAR(320) AS (LOWER(buyer_email)) VIRTUAL,
    ADD INDEX orders_by_number_search (number_search),
    ADD INDEX orders_by_buyer_email_search (buyer_email_search),
    ADD INDEX orders_by_external_id (external_id);
ALTER TABLE enrollments
    ADD COLUMN email_search VARCHAR(320) AS (LOWER(email)) VIRTUAL,
    ADD INDEX enrollments_by_email_search (email_search);
