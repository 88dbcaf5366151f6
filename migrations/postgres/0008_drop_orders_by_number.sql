-- An order is found by its number through orders_by_number_search (with or
-- without its '#', any case): the index on the number as sent is not needed.
DROP INDEX orders_by_number;
