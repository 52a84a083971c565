PRAGMA defer_foreign_keys=TRUE;
CREATE TABLE "r" ("x" REAL, [y] BLOB, `z`);
INSERT INTO "r" ("x","y","z") VALUES(Infinity,X'00ff',replace('a\nb','\n',char(10)));
INSERT INTO r VALUES(9e999,NULL,-9e999); /* trailing */
CREATE INDEX i ON r(x);