-- AUTOINCREMENT: sqlite_sequence is kept, including a value above max(id).
CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL);
CREATE TABLE "quoted seq" (id INTEGER PRIMARY KEY AUTOINCREMENT, v);
CREATE TABLE never_used (id INTEGER PRIMARY KEY AUTOINCREMENT, v);
INSERT INTO jobs (name) VALUES ('a'), ('b'), ('c'), ('d'), ('e');
DELETE FROM jobs WHERE id IN (2, 5);
INSERT INTO jobs (id, name) VALUES (100, 'jump');
DELETE FROM jobs WHERE id = 100;
INSERT INTO "quoted seq" (v) VALUES (1), (2);
UPDATE sqlite_sequence SET seq = 1000 WHERE name = 'quoted seq';
