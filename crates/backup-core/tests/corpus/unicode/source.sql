-- Text beyond ASCII, and text that is not UTF-8 at all.
CREATE TABLE texts (id INTEGER PRIMARY KEY, v TEXT, u);
INSERT INTO texts (id, v, u) VALUES
  (1, '😀🎉👨‍👩‍👧‍👦', 'emoji, ZWJ sequence'),
  (2, '漢字かなカナ한국어', 'CJK'),
  (3, 'e' || char(769) || ' n' || char(771), 'combining marks'),
  (4, 'é', 'precomposed'),
  (5, 'line' || char(8232) || 'sep' || char(8233) || 'para', 'U+2028 U+2029'),
  (6, char(65279) || 'bom', 'BOM at the start of a value'),
  (7, 'zero' || char(8203) || 'width', 'ZWSP'),
  (8, 'עברית العربية', 'right to left'),
  (9, char(1114111), 'the last code point'),
  (10, CAST(X'ff00c3' AS TEXT), 'invalid UTF-8 with a NUL'),
  (11, CAST(X'c328' AS TEXT), 'a broken two-byte sequence'),
  (12, CAST(X'eda080' AS TEXT), 'an encoded surrogate'),
  (13, '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', 'astral plane letters');
CREATE TABLE "表_données" ("ключ" INTEGER PRIMARY KEY, "値" TEXT);
INSERT INTO "表_données" VALUES (1, 'ü'), (2, '🦀');
