-- Empty values are not NULL, in every affinity.
CREATE TABLE empties (id INTEGER PRIMARY KEY, t TEXT, b BLOB, i INTEGER, r REAL, n NUMERIC, u);
INSERT INTO empties (id, t, b, i, r, n, u) VALUES
  (1, '', X'', '', '', '', ''),
  (2, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, zeroblob(0), zeroblob(0), zeroblob(0), zeroblob(0), zeroblob(0), zeroblob(0)),
  (4, ' ', X'00', ' ', ' ', ' ', ' '),
  (5, 'NULL', 'NULL', 'null', 'Null', 'NULL', 'NULL');
CREATE TABLE "only nulls" (a, b);
INSERT INTO "only nulls" VALUES (NULL, NULL), (NULL, NULL);
CREATE TABLE "no rows" (a);
