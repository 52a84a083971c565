-- Reserved words and quoted names for tables, columns, indexes, triggers and views.
CREATE TABLE "order" ("select" INTEGER PRIMARY KEY, "from" TEXT, "where" REAL, "group" BLOB);
CREATE TABLE [table] ([column] TEXT, [index] INTEGER);
CREATE TABLE `values` (`key` TEXT PRIMARY KEY, `default` ANY) WITHOUT ROWID;
CREATE TABLE 'single''quoted' ('it''s' TEXT);
CREATE TABLE "with ""double"" quotes" ("a ""b"" c" TEXT, "semi;colon" TEXT, "dash--dash" TEXT);
CREATE TABLE "space name" ("col with space" TEXT, "UPPER" TEXT, "MiXeD" TEXT);
CREATE TABLE "CREATE TRIGGER" ("END" TEXT, "BEGIN" TEXT);
CREATE TABLE "1starts with digit" ("2col" INTEGER);
CREATE TABLE "dot.name" ("a.b" TEXT);
CREATE TABLE "emoji 🦀" ("ключ" TEXT, "列" TEXT);
INSERT INTO "order" VALUES (1, 'a', 1.5, X'01'), (2, 'b', NULL, NULL);
INSERT INTO [table] VALUES ('c', 1), ('d', 2);
INSERT INTO `values` VALUES ('k1', 1), ('k2', 'two'), ('k3', 3.5);
INSERT INTO 'single''quoted' VALUES ('yes');
INSERT INTO "with ""double"" quotes" VALUES ('1', '2', '3');
INSERT INTO "space name" VALUES ('x', 'Y', 'z');
INSERT INTO "CREATE TRIGGER" VALUES ('END;', 'BEGIN');
INSERT INTO "1starts with digit" VALUES (1);
INSERT INTO "dot.name" VALUES ('dotted');
INSERT INTO "emoji 🦀" VALUES ('crab', '蟹');
CREATE INDEX "index ""quoted""" ON "order" ("from");
CREATE INDEX [idx on table] ON [table] ([index] DESC);
CREATE VIEW "view of ""order""" AS SELECT "select", "from" FROM "order";
CREATE TRIGGER "trigger; with semicolon" AFTER INSERT ON "CREATE TRIGGER" BEGIN
  INSERT INTO "dot.name" ("a.b") VALUES (NEW."END" || ';');
END;
