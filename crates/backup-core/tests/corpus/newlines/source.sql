-- Line breaks, and the literal backslash-n that wrangler's replace() wrapper would corrupt.
CREATE TABLE lines (id INTEGER PRIMARY KEY, v TEXT, u);
INSERT INTO lines (id, v, u) VALUES
  (1, 'a' || char(10) || 'b', 'LF'),
  (2, 'a' || char(13) || 'b', 'CR'),
  (3, 'a' || char(13, 10) || 'b', 'CRLF'),
  (4, char(10), 'only LF'),
  (5, char(13, 10, 13, 10), 'two CRLF'),
  (6, 'trailing' || char(10), 'trailing LF'),
  (7, char(10) || 'leading', 'leading LF'),
  (8, 'a\nb', 'literal backslash-n, no newline'),
  (9, 'C:\new' || char(10) || 'line', 'literal backslash-n next to a real newline'),
  (10, 'x\r' || char(13), 'literal backslash-r next to a real CR'),
  (11, '\n' || char(10) || '\r' || char(13) || '\\n', 'both, several times'),
  (12, 'tab' || char(9) || 'vt' || char(11) || 'ff' || char(12), 'other control characters'),
  (13, 'nul' || char(0) || 'inside', 'a NUL character'),
  (14, 'a' || char(10) || 'b', char(10));
INSERT INTO lines (id, v, u) VALUES (15, 'multi
line
literal', 'raw newlines in the source');
