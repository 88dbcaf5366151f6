-- Search columns: what the order search compares, lower case (and an order
-- number without its leading '#'), each in an index so that a search finds
-- the rows starting with the text typed without reading every order.
-- (A course key is searched as it is spelled, in enrollments_by_course.)
-- Generated columns: whatever writes the row, the column follows.
ALTER TABLE orders ADD COLUMN number_search TEXT GENERATED ALWAYS AS (LTRIM(LOWER(number), '#')) VIRTUAL;
ALTER TABLE orders ADD COLUMN buyer_email_search TEXT GENERATED ALWAYS AS (LOWER(buyer_email)) VIRTUAL;
ALTER TABLE enrollments ADD COLUMN email_search TEXT GENERATED ALWAYS AS (LOWER(email)) VIRTUAL;
CREATE INDEX orders_by_number_search ON orders (number_search);
CREATE INDEX orders_by_buyer_email_search ON orders (buyer_email_search);
CREATE INDEX orders_by_external_id ON orders (external_id);
CREATE INDEX enrollments_by_email_search ON enrollments (email_search);
