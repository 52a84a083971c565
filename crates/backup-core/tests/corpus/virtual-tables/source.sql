-- Virtual tables other than FTS5: FTS4 with its own content, and an R*Tree.
CREATE VIRTUAL TABLE docs USING fts4(title, body, tokenize=porter);
INSERT INTO docs (docid, title, body) VALUES
  (1, 'Backups', 'restore drills every week'),
  (4, 'Quoting', 'it''s "fine"; -- really'),
  (9, 'Unicode', 'naïve café 漢字');
CREATE VIRTUAL TABLE boxes USING rtree(id, min_x, max_x, min_y, max_y);
INSERT INTO boxes VALUES (1, 0, 10, 0, 10), (2, -5.5, 5.25, 1e-3, 2e3), (10, 1, 1, 1, 1);
CREATE TABLE placed (id INTEGER PRIMARY KEY, box INTEGER, name TEXT);
INSERT INTO placed VALUES (1, 1, 'a'), (2, 10, 'b');
