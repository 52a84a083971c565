-- Foreign keys in no dependency order: each child is created before its parent.
CREATE TABLE line_items (
  id INTEGER PRIMARY KEY,
  invoice_id INTEGER NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
  product_code TEXT REFERENCES products(code) DEFERRABLE INITIALLY DEFERRED
);
CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id));
CREATE TABLE customers (id INTEGER PRIMARY KEY, referred_by INTEGER REFERENCES customers(id), name TEXT);
CREATE TABLE products (code TEXT PRIMARY KEY, name TEXT) WITHOUT ROWID;
INSERT INTO customers VALUES (1, NULL, 'first'), (2, 1, 'second'), (3, 2, 'third');
INSERT INTO products VALUES ('W1', 'widget'), ('G1', 'gadget');
INSERT INTO invoices VALUES (10, 1), (11, 3), (12, NULL);
INSERT INTO line_items VALUES (1, 10, 'W1'), (2, 10, 'G1'), (3, 11, NULL), (4, 12, 'W1');
