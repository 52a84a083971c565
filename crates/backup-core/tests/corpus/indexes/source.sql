-- Indexes: unique, partial, expression, collated, descending, and ANALYZE statistics.
CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, name TEXT, age INTEGER, deleted_at TEXT);
CREATE UNIQUE INDEX people_email ON people (email COLLATE NOCASE);
CREATE INDEX people_live ON people (name) WHERE deleted_at IS NULL;
CREATE INDEX people_lower ON people (lower(name), age DESC);
CREATE INDEX people_json ON people (json_extract('{"a":1}', '$.a') + age);
CREATE TABLE tags (name TEXT, weight REAL);
CREATE INDEX tags_weight ON tags (weight DESC, name);
INSERT INTO people (email, name, age, deleted_at) VALUES
  ('a@x.org', 'Ann', 31, NULL), ('B@x.org', 'bob', 45, NULL), ('c@x.org', 'Cy', NULL, '2024-01-01'),
  ('d@x.org', 'ann', 31, NULL), ('e@x.org', 'Eve', 22, NULL);
INSERT INTO tags VALUES ('red', 1.0), ('green', 0.5), ('blue', NULL), ('red', 2.0);
DELETE FROM tags WHERE name = 'green';
ANALYZE;
CREATE TABLE codes (code TEXT UNIQUE, alt TEXT, UNIQUE (alt, code));
INSERT INTO codes VALUES ('a', 'x'), ('b', NULL), ('c', 'x');
