-- Generated columns, STORED and VIRTUAL, chained, indexed, and in a STRICT table.
CREATE TABLE items (
  id INTEGER PRIMARY KEY,
  qty INTEGER NOT NULL,
  unit_cents INTEGER NOT NULL,
  total_cents INTEGER GENERATED ALWAYS AS (qty * unit_cents) STORED,
  label TEXT AS ('item ' || id || ': ' || total_cents) VIRTUAL,
  big INTEGER AS (total_cents > 1000),
  note TEXT
);
CREATE INDEX items_total ON items (total_cents);
CREATE INDEX items_big ON items (big) WHERE big;
INSERT INTO items (id, qty, unit_cents, note) VALUES (1, 2, 1999, 'a'), (2, 1, 4500, NULL), (3, 10, 1, 'c');
CREATE TABLE strict_gen (
  id INTEGER PRIMARY KEY,
  a REAL NOT NULL,
  b REAL GENERATED ALWAYS AS (a * 2) STORED,
  c TEXT GENERATED ALWAYS AS (printf('%.3f', a)) VIRTUAL
) STRICT;
INSERT INTO strict_gen (id, a) VALUES (1, 1.5), (2, -0.0), (3, 9e999);
CREATE TABLE gen_first (g AS (x + 1), x INTEGER);
INSERT INTO gen_first (x) VALUES (1), (2);
