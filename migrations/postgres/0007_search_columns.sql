-- Search columns: what the order search compares, lower case (and an order
-- number without its leading '#'), each in an index so that a search finds
-- the rows starting with the text typed without reading every order.
-- (A course key is searched as it is spelled, in enrollments_by_course.) They
-- compare byte by byte (COLLATE "C"), so that a prefix is a range of the index.
-- Generated columns: whatever writes the row, the column follows.
ALTER TABLE orders ADD COLUMN number_search TEXT COLLATE "C" GENERATED ALWAYS AS (LTRIM(LOWER(number), '#')) STORED;
ALTER TABLE orders ADD COLUMN buyer_email_search TEXT COLLATE "C" GENERATED ALWAYS AS (LOWER(buyer_email)) STORED;
ALTER TABLE enrollments ADD COLUMN email_search TEXT COLLATE "C" GENERATED ALWAYS AS (LOWER(email)) STORED;
CREATE INDEX orders_by_number_search ON orders (number_search);
CREATE INDEX orders_by_buyer_email_search ON orders (buyer_email_search);
CREATE INDEX orders_by_external_id ON orders (external_id);
CREATE INDEX enrollments_by_email_search ON enrollments (email_search);
