#!/usr/bin/env bash
# The README's quickstart with [encryption] (issue 16): back up the example databases
# encrypted (one plain SQL, one zstd), check that no stored object holds plaintext SQL, decrypt
# with the real age CLI, check the SQL against the manifest, load it into sqlite3 and compare
# every table with the source; then d1-backup's own verify/restore with and without the key.
#
#   .ci/age-roundtrip.sh D1_BACKUP_BINARY
set -euo pipefail
BIN=$(realpath "$1")
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
for tool in age age-keygen zstd sqlite3; do
  command -v "$tool" >/dev/null || { echo "age-roundtrip: $tool is missing (apt-get install -y age zstd sqlite3)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
age-keygen -o "$work/key.txt" 2>/dev/null
public=$(age-keygen -y "$work/key.txt")
cat > "$work/encrypted.toml" <<TOML
[sink]
kind = "fs"
path = "backups"

[encryption]
recipients = ["$public"]

[[accounts]]
name = "local"
prefix = "local"
databases = [
  { name = "shop", sqlite = "$ROOT/examples/databases/shop.sqlite" },
  { name = "blog", sqlite = "$ROOT/examples/databases/blog.sqlite", compression = "zstd" },
]
TOML
"$BIN" -q run --config "$work/encrypted.toml"
if grep -rl -e "INSERT INTO" -e "CREATE TABLE" "$work/backups"; then
  echo "age-roundtrip: plaintext SQL found in the stored objects above" >&2; exit 1
fi
for db in shop blog; do
  object=$(ls "$work"/backups/local/*/"$db".sql*.age)
  manifest="$(dirname "$object")/$db.manifest.json"
  case "$object" in
    *.zst.age) age --decrypt -i "$work/key.txt" "$object" | zstd -d -q > "$work/$db.sql" ;;
    *) age --decrypt -i "$work/key.txt" "$object" > "$work/$db.sql" ;;
  esac
  want=$(grep -o '"sql_sha256": "[0-9a-f]*"' "$manifest" | cut -d'"' -f4)
  got=$(sha256sum "$work/$db.sql" | cut -d' ' -f1)
  [ "$want" = "$got" ] || { echo "age-roundtrip: $db: SQL $got, manifest says $want" >&2; exit 1; }
  sqlite3 "$work/$db.db" < "$work/$db.sql"
  source="$ROOT/examples/databases/$db.sqlite"
  tables=$(sqlite3 "$source" "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
  for table in $tables; do
    query="SELECT * FROM \"$table\" ORDER BY 1"
    if [ "$(sqlite3 "$source" "$query")" != "$(sqlite3 "$work/$db.db" "$query")" ]; then
      echo "age-roundtrip: $db.$table differs from its source after age --decrypt" >&2; exit 1
    fi
  done
  echo "age --decrypt of $(basename "$object") gives the manifest's SQL; every table equals the source ($(echo $tables | wc -w) tables)"
done
# d1-backup itself: refused without the identity (exit 2), fine with it.
set +e
"$BIN" -q verify --config "$work/encrypted.toml"; code=$?
set -e
[ "$code" = 2 ] || { echo "age-roundtrip: verify without an identity exited $code, not 2" >&2; exit 1; }
"$BIN" -q verify --config "$work/encrypted.toml" --identity "$work/key.txt"
"$BIN" -q restore --config "$work/encrypted.toml" --database blog --to-sqlite "$work/restored.db" --identity "$work/key.txt"
echo "d1-backup verify and restore: refused without the identity (exit 2), done with --identity"
