-- Views over tables and over views, including one over a view created after it.
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total_cents INTEGER);
INSERT INTO orders VALUES (1, 'acme', 1999), (2, 'globex', 4500), (3, 'acme', 250);
CREATE VIEW totals AS
  SELECT customer, SUM(total_cents) AS cents, COUNT(*) AS n
  FROM orders GROUP BY customer;
CREATE VIEW top_customer AS SELECT customer FROM totals ORDER BY cents DESC LIMIT 1;
DROP VIEW totals;
CREATE VIEW totals AS
  SELECT customer, SUM(total_cents) AS cents, COUNT(*) AS n -- recreated; comment; kept
  FROM orders GROUP BY customer;
CREATE VIEW "with cte" AS
  WITH big AS (SELECT * FROM orders WHERE total_cents > 1000) SELECT count(*) AS n FROM big;
CREATE VIEW "columns named" (a, b) AS SELECT id, 'x;y' FROM orders;
