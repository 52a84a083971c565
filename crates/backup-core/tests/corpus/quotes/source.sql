-- Quotes of every kind, and SQL syntax inside text.
CREATE TABLE quotes (id INTEGER PRIMARY KEY, v TEXT, note);
INSERT INTO quotes (id, v, note) VALUES
  (1, 'it''s', 'single quote'),
  (2, '''', 'only a single quote'),
  (3, '''''', 'two single quotes'),
  (4, 'say "hi"', 'double quotes'),
  (5, '"', 'only a double quote'),
  (6, '`backtick` [bracket]', 'other quote characters'),
  (7, 'a;b; c ;', 'semicolons'),
  (8, '-- not a comment', 'line comment marker'),
  (9, '/* not a comment */', 'block comment markers'),
  (10, '*/ /* -- ''', 'comment markers out of order'),
  (11, 'back\slash \\ \''' , 'backslashes'),
  (12, '? ?1 :name @x $y', 'parameter markers'),
  (13, 'END; END', 'keywords that end triggers'),
  (14, 'CREATE TRIGGER t BEGIN SELECT 1; END;', 'a trigger in text'),
  (15, 'x'' || ''y', 'concatenation inside text'),
  (16, char(39) || char(34) || char(96), 'quotes by char()'),
  (17, 'X''00''', 'a blob literal in text'),
  (18, 'NULL', 'the word NULL'),
  (19, 'replace(''a'',''b'',char(10))', 'a replace() call in text'),
  (20, '%_', 'LIKE wildcards');
INSERT INTO quotes (id, v, note) VALUES (21, 'quote in note', 'it''s "quoted"');
