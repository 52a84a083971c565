-- FTS5: its own content (with rowid gaps and options), external content kept in sync by
-- triggers, and settings (pgsz, rank) that the dump must replay.
CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL);
INSERT INTO articles VALUES
  (1, 'Backups 101', 'Always test your restores.'),
  (2, 'SQLite internals', 'Pages, B-trees and the WAL; checkpoints too.'),
  (5, 'Café crème', 'Diacritics: é è ê ë, naïve résumé.'),
  (9, 'Quotes', 'it''s "quoted" and -- not a comment');
CREATE VIRTUAL TABLE articles_fts USING fts5(
  title, body,
  content='articles', content_rowid='id',
  tokenize='unicode61 remove_diacritics 2'
);
INSERT INTO articles_fts(articles_fts) VALUES ('rebuild');
CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN
  INSERT INTO articles_fts(rowid, title, body) VALUES (NEW.id, NEW.title, NEW.body);
END;
CREATE TRIGGER articles_ad AFTER DELETE ON articles BEGIN
  INSERT INTO articles_fts(articles_fts, rowid, title, body) VALUES ('delete', OLD.id, OLD.title, OLD.body);
END;
INSERT INTO articles VALUES (12, 'Restore drills', 'Restore into a scratch database every week.');
DELETE FROM articles WHERE id = 1;
CREATE VIRTUAL TABLE notes USING fts5(note, tag UNINDEXED, prefix='2 3', tokenize='porter');
INSERT INTO notes (rowid, note, tag) VALUES
  (3, 'remember to rotate the API token', 'ops'),
  (7, 'retention keeps 30 daily backups', 'policy'),
  (8, 'l''export échoue avec les tables virtuelles', 'fr'),
  (20, 'running runners ran; tokens tokenized', NULL);
DELETE FROM notes WHERE rowid = 7;
INSERT INTO notes (notes, rank) VALUES ('pgsz', 8000);
INSERT INTO notes (notes, rank) VALUES ('rank', 'bm25(10.0, 5.0)');
CREATE VIRTUAL TABLE "odd ""fts"" name" USING fts5("body text", detail=column, columnsize=0);
INSERT INTO "odd ""fts"" name" (rowid, "body text") VALUES (1, 'quoted names work too'), (2, 'columns without sizes');
