-- WITHOUT ROWID tables: composite, DESC and collated keys.
CREATE TABLE settings (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  value ANY,
  PRIMARY KEY (scope, key DESC)
) WITHOUT ROWID;
CREATE TABLE words (word TEXT PRIMARY KEY COLLATE NOCASE, n INTEGER) WITHOUT ROWID;
CREATE TABLE pairs (a INTEGER, b BLOB, c REAL, PRIMARY KEY (b, a DESC)) WITHOUT ROWID;
CREATE TABLE rtrimmed (k TEXT COLLATE RTRIM PRIMARY KEY, v) WITHOUT ROWID;
INSERT INTO settings VALUES
  ('app', 'theme', 'dark'), ('app', 'page_size', 50), ('app', 'ratio', 0.75),
  ('user:1', 'lang', 'fr'), ('app', 'zz_last', NULL), ('app', 'aa_first', X'01');
INSERT INTO words VALUES ('apple', 1), ('Banana', 2), ('cherry', 3), ('DATE', 4), ('Éclair', 5);
INSERT INTO pairs VALUES (1, X'00', 1.5), (2, X'00', 2.5), (1, X'ff', -0.0), (3, X'', 9e999);
INSERT INTO rtrimmed VALUES ('a', 1), ('b ', 2), ('c  ', 3);
