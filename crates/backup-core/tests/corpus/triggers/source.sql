-- Triggers: bodies with `;`, CASE … END, text holding END;, WHEN clauses, and INSTEAD OF
-- triggers on views (the dump writes every trigger before every view, so these come first).
CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL DEFAULT 0, status TEXT);
CREATE TABLE audit (id INTEGER PRIMARY KEY, msg TEXT);
CREATE TRIGGER accounts_ai AFTER INSERT ON accounts
BEGIN
  INSERT INTO audit (msg) VALUES ('inserted; id=' || NEW.id);
  UPDATE accounts SET status = CASE WHEN NEW.balance < 0 THEN 'overdrawn' ELSE 'ok' END
    WHERE id = NEW.id;
END;
CREATE TRIGGER accounts_bu BEFORE UPDATE OF balance ON accounts
WHEN NEW.balance < -1000
BEGIN
  SELECT RAISE(ABORT, 'limit; END;');
END;
CREATE TRIGGER "audit END;" AFTER DELETE ON accounts BEGIN
  INSERT INTO audit (msg) VALUES ('END; deleted ' || OLD.id); /* END; */ -- END;
END;
INSERT INTO accounts (balance) VALUES (10), (-5), (0);
DELETE FROM accounts WHERE id = 3;
CREATE VIEW old_view AS SELECT id, balance FROM accounts;
CREATE TRIGGER old_view_insert INSTEAD OF INSERT ON old_view
BEGIN
  INSERT INTO accounts (id, balance) VALUES (NEW.id, NEW.balance);
END;
CREATE VIEW rich AS SELECT id, balance FROM accounts WHERE balance > 0;
CREATE TRIGGER rich_update INSTEAD OF UPDATE OF balance ON rich
BEGIN
  UPDATE accounts SET balance = NEW.balance WHERE id = OLD.id;
  INSERT INTO audit (msg) VALUES ('rich; ' || NEW.balance);
END;
-- Dropping a view drops its triggers; the recreated view gets a new one.
DROP VIEW rich;
CREATE VIEW rich AS SELECT id, balance FROM accounts WHERE balance > 1;
CREATE TRIGGER rich_update2 INSTEAD OF UPDATE OF balance ON rich BEGIN SELECT 1; END;
