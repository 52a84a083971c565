-- Rows whose INSERT is longer than D1's 100,000-byte statement limit: a 64 KiB blob (hex
-- doubles it) and a 150,000-character text. SQLite restores them; D1's import would not.
CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB, t TEXT);
INSERT INTO big VALUES (1, randomblob(65536), NULL);
INSERT INTO big VALUES (2, NULL, printf('%.*c', 150000, 'x'));
INSERT INTO big VALUES (3, randomblob(49000), 'just under the limit');
