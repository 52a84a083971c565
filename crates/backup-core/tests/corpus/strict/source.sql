-- STRICT tables: every type, ANY keeping what it is given.
CREATE TABLE typed (
  id INTEGER PRIMARY KEY,
  i INT, n INTEGER, r REAL, t TEXT, b BLOB, a ANY
) STRICT;
INSERT INTO typed VALUES
  (1, 1, 9223372036854775807, 1.0, 'one', X'01', 1.0),
  (2, -9223372036854775808, 0, -0.0, '', X'', '1'),
  (3, NULL, NULL, 5e-324, NULL, NULL, X'00ff'),
  (4, 9007199254740993, -9007199254740993, 9e999, 'x' || char(10) || 'y', zeroblob(3), 9007199254740993),
  (5, 0, 0, 3, '3', X'33', 3.0),
  (6, 0, 0, -9e999, 'inf', X'', -0.0);
CREATE TABLE strict_wr (k TEXT PRIMARY KEY, v ANY) STRICT, WITHOUT ROWID;
INSERT INTO strict_wr VALUES ('a', 1), ('b', 1.0), ('c', '1'), ('d', X'31'), ('e', NULL);
