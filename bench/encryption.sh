#!/usr/bin/env bash
# bench/encryption.sh — what `[encryption]` costs (issue 16): wall time and peak RSS of a
# backup of one SQLite database into the fs sink, plain and encrypted with age, without and
# with zstd, at two sizes (peak RSS must not grow with the size: the dump streams), beside
# the same work done by the standard tools (`sqlite3 .dump | zstd | age`). Not part of the
# test suite.
#
#   bench/encryption.sh [--sizes "100 400"] [--runs 3] [--work /tmp/d1-enc-bench] [--binary B]
#
# Sizes are MiB of SQL (about; the database is generated once per size with sqlite3 and kept
# in --work). Builds the release binary unless --binary is given. Needs sqlite3, zstd, age
# (apt-get install -y sqlite3 zstd age) and /usr/bin/time. Prints the machine, then a
# markdown table of medians.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SIZES="100 400" RUNS=3 WORK=/tmp/d1-enc-bench BIN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) SIZES="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --binary) BIN="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in sqlite3 zstd age age-keygen /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y sqlite3 zstd age time)" >&2; exit 2; }
done
if [ -z "$BIN" ]; then
  CARGO_INCREMENTAL=0 cargo build --quiet --release --manifest-path "$ROOT/Cargo.toml" -p d1-backup-cli
  BIN="$ROOT/target/release/d1-backup"
fi
mkdir -p "$WORK"
[ -f "$WORK/key.txt" ] || age-keygen -o "$WORK/key.txt" 2>/dev/null
PUB=$(age-keygen -y "$WORK/key.txt")

# A database of about $1 MiB of dump: rows of a few hundred bytes, half of them hex noise
# (so zstd has work that is not trivial).
make_db() {
  local mib=$1 db="$WORK/db-$1.sqlite"
  [ -f "$db" ] && return
  local rows=$((mib * 1024 * 1024 / 330))
  sqlite3 "$db" "CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, payload TEXT, blob BLOB);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
    INSERT INTO events SELECT i, 'kind-' || (i % 17), printf('{\"user\":%d,\"note\":\"event number %d of the bench\"}', i * 7, i), randomblob(64) FROM n;"
}

# One measured command: prints "seconds peak_kib".
measure() {
  sync
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/stderr.txt" || {
    cat "$WORK/stderr.txt" >&2; exit 1; }
  cat "$WORK/time.txt"
}

config() { # compression encryption(yes|no) size
  cat > "$WORK/c.toml" <<EOF
[sink]
kind = "fs"
path = "out"
[retention]
prune_after_run = false
[run]
compression = "$1"
$( [ "$2" = yes ] && printf '[encryption]\nrecipients = ["%s"]\n' "$PUB" )
[[accounts]]
name = "bench"
prefix = "bench"
databases = [{ name = "db", sqlite = "db-$3.sqlite" }]
EOF
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# machine: $(nproc) CPUs; $(free -g | awk '/Mem:/ {print $2 " GiB RAM"}'); load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ); $(git -C "$ROOT" rev-parse --short HEAD)"
echo
echo "| SQL MiB | what | wall s (median of $RUNS) | peak RSS MiB (max) | stored MiB |"
echo "|---|---|---|---|---|"
for size in $SIZES; do
  make_db "$size"
  for variant in "none no" "none yes" "zstd no" "zstd yes" "peer-zstd-age x"; do
    set -- $variant
    walls=() peak=0 stored=0
    for _ in $(seq "$RUNS"); do
      rm -rf "$WORK/out"
      if [ "$1" = peer-zstd-age ]; then
        read -r wall kib < <(measure bash -c "sqlite3 '$WORK/db-$size.sqlite' .dump | zstd -3 -T1 -q | age -r $PUB > '$WORK/peer.age'")
        stored=$(stat -c %s "$WORK/peer.age")
      else
        config "$1" "$2" "$size"
        read -r wall kib < <(measure "$BIN" -q run --config "$WORK/c.toml" --date 2026-01-01)
        stored=$(find "$WORK/out" -name 'db.sql*' -printf '%s\n')
      fi
      walls+=("$wall")
      [ "$kib" -gt "$peak" ] && peak=$kib
    done
    label=$([ "$1" = peer-zstd-age ] && echo 'sqlite3 .dump \| zstd -3 -T1 \| age (peers; RSS of the largest)' || echo "d1-backup compression=$1 encryption=$2")
    echo "| $size | $label | $(printf '%s\n' "${walls[@]}" | median) | $((peak / 1024)) | $((stored / 1024 / 1024)) |"
  done
done
# The last encrypted dump decrypts with the real age CLI into the SQL the manifest vouches for.
config zstd yes "${SIZES##* }"
rm -rf "$WORK/out"
"$BIN" -q run --config "$WORK/c.toml" --date 2026-01-01
obj=$(find "$WORK/out" -name 'db.sql.zst.age')
want=$(grep -o '"sql_sha256": "[0-9a-f]*"' "${obj%.sql.zst.age}.manifest.json" | cut -d'"' -f4)
got=$(age --decrypt -i "$WORK/key.txt" "$obj" | zstd -d -q | sha256sum | cut -d' ' -f1)
[ "$want" = "$got" ] && echo && echo "age --decrypt | zstd -d of the last backup matches its manifest's sql_sha256"
