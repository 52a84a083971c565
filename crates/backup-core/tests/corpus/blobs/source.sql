-- Blobs: empty, every byte value, zeroblob, and blobs in columns of every affinity.
CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB, t TEXT, i INTEGER, r REAL, u);
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 255)
INSERT INTO blobs (id, b) SELECT i + 1, unhex(printf('%02x', i)) FROM n;
INSERT INTO blobs (id, b, t, i, r, u) VALUES
  (1000, X'', X'', X'', X'', X''),
  (1001, zeroblob(1000), zeroblob(3), zeroblob(1), zeroblob(2), zeroblob(4)),
  (1002, X'000102', X'00', X'3432', X'312e35', X'ff'),
  (1003, NULL, X'68656c6c6f', NULL, NULL, X'0a0d27');
INSERT INTO blobs (id, b)
  SELECT 2000, unhex(group_concat(printf('%02x', i), '')) FROM
    (WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 255) SELECT i FROM n);
INSERT INTO blobs (id, b) VALUES (2001, randomblob(4096));
