#!/usr/bin/env bash
# bench/import_batches.sh — how big should one restore batch (= one D1 import) be?
#
# Measures `wrangler d1 execute demo --local --file F --yes` (wrangler's local D1:
# workerd + its bundled SQLite, fully offline) on single batch files of realistic
# D1-dump rows, each into a fresh local database, and prints a table:
#   size MiB | statements | wall s | MiB/s | peak workerd RSS MiB | peak node RSS MiB | ok | load1
# plus the fixed per-import overhead (a ~10 KB file, imported 3 times).
#
# Usage:   bash bench/import_batches.sh [SIZE_MIB ...]      (default: 4 16 64 128)
# Env:     BENCH_DIR   scratch dir (default: mktemp -d). Removed on exit if this script
#                      created it, unless KEEP=1; an existing BENCH_DIR is left alone
#                      (put a `tools` symlink to an existing npm install there to skip it).
#          WRANGLER_VERSION (default 4.164.0, installed with node@22 from npm;
#                            set to 4.86.0 to use the system Node 20 instead)
#          REPEAT      runs per size (default 1)
# Needs:   npm (registry access), python3, procps. Timing: date +%s.%N around the command.
# Time:    on 2 cores, ~2 s per import plus ~2 ms per statement (4 MiB ~27 s, 64 MiB ~6.5 min,
#          128 MiB ~15 min): local `d1 execute --file` sends every statement through
#          miniflare's node->workerd proxy (one synchronous `db.prepare` call each), then runs
#          them all as one `db.batch` (one transaction). So its speed is per statement and
#          says little about real D1's import speed; its memory is the useful figure.
#
# Batch file format (what d1-backup's restore produces, D1's dump format):
#   PRAGMA defer_foreign_keys=TRUE;
#   CREATE TABLE events (...);          -- first/only file of a table; here: every file,
#                                       -- since each run uses a fresh database
#   INSERT INTO "events" ("id","account","kind","payload","created_at") VALUES(...);
# Rows are ~200-400 bytes (payload is a JSON-ish text of random length), one per line.
#
# Peak RSS: a background loop samples the RSS of every process named `workerd`
# (`ps -o rss= -C workerd`, summed) every 0.2 s; the maximum is reported. workerd is
# where D1's SQLite runs. The wrangler (node) process itself is reported separately
# as the peak summed RSS of processes named `node` under this run.
set -euo pipefail

SIZES=("$@")
[ ${#SIZES[@]} -eq 0 ] && SIZES=(4 16 64 128)
WRANGLER_VERSION=${WRANGLER_VERSION:-4.164.0}
REPEAT=${REPEAT:-1}

CREATED=0
if [ -n "${BENCH_DIR:-}" ]; then
  [ -d "$BENCH_DIR" ] || CREATED=1
  mkdir -p "$BENCH_DIR"; WORK=$(cd "$BENCH_DIR" && pwd)
else
  WORK=$(mktemp -d /tmp/d1-import-bench.XXXXXX); CREATED=1
fi
SAMPLER_PID=""
cleanup() {
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
  if [ "${KEEP:-0}" != 1 ] && [ "$CREATED" = 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

export WRANGLER_SEND_METRICS=false CI=1

# ---- install -------------------------------------------------------------------
TOOLS="$WORK/tools"
mkdir -p "$TOOLS"
if [ ! -x "$TOOLS/node_modules/.bin/wrangler" ]; then
  echo "installing wrangler@$WRANGLER_VERSION ..." >&2
  if [ "$WRANGLER_VERSION" = 4.86.0 ]; then
    (cd "$TOOLS" && npm install --no-audit --no-fund "wrangler@$WRANGLER_VERSION" >install.log 2>&1)
  else
    (cd "$TOOLS" && npm install --no-audit --no-fund "wrangler@$WRANGLER_VERSION" node@22 >install.log 2>&1)
  fi
fi
export PATH="$TOOLS/node_modules/.bin:$PATH"
WRANGLER="$TOOLS/node_modules/.bin/wrangler"
echo "node $(node --version), wrangler $("$WRANGLER" --version | tail -1)," \
  "workerd $(node -p "require('$TOOLS/node_modules/workerd/package.json').version")" >&2

# ---- generator -----------------------------------------------------------------
cat >"$WORK/gen.py" <<'PY'
import random, sys
out, size_mib = sys.argv[1], float(sys.argv[2])
target = int(size_mib * 1024 * 1024)
rnd = random.Random(14)
kinds = ["login", "logout", "purchase", "refund", "page_view", "signup", "api_call", "error"]
words = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray").split()
n = 0
with open(out, "w") as f:
    w = f.write
    w("PRAGMA defer_foreign_keys=TRUE;\n")
    w("CREATE TABLE events (id INTEGER PRIMARY KEY, account TEXT, kind TEXT, payload TEXT, created_at INTEGER);\n")
    written = f.tell()
    while written < target:
        n += 1
        note = " ".join(rnd.choice(words) for _ in range(rnd.randint(8, 30)))
        if rnd.random() < 0.1:
            note += " it''s"      # a quoted quote, as the dumper writes it
        payload = '{"ip":"10.%d.%d.%d","ua":"Mozilla/5.0 (X11; Linux x86_64)","note":"%s","n":%d}' % (
            rnd.randrange(256), rnd.randrange(256), rnd.randrange(256), note, rnd.randrange(10**6))
        line = ('INSERT INTO "events" ("id","account","kind","payload","created_at") '
                "VALUES(%d,'acct-%06d','%s','%s',%d);\n" % (
                    n, rnd.randrange(10**6), rnd.choice(kinds), payload, 1700000000 + n))
        w(line)
        written += len(line)
print(n)
PY

# ---- one import ----------------------------------------------------------------
# run_one FILE -> prints "wall_s peak_workerd_kib peak_node_kib ok"
run_one() {
  local file=$1 run="$WORK/run" peakf="$WORK/peak" t0 t1 rc
  rm -rf "$run"; mkdir -p "$run"
  cat >"$run/wrangler.toml" <<'TOML'
name = "d1bench"
compatibility_date = "2024-09-23"

[[d1_databases]]
binding = "DB"
database_name = "demo"
database_id = "00000000-0000-0000-0000-000000000000"
TOML
  echo "0 0" >"$peakf"
  (
    pw=0; pn=0
    while :; do
      w=$(ps -o rss= -C workerd 2>/dev/null | awk '{s+=$1} END{print s+0}')
      n=$(ps -o rss= -C node 2>/dev/null | awk '{s+=$1} END{print s+0}')
      [ "$w" -gt "$pw" ] && pw=$w
      [ "$n" -gt "$pn" ] && pn=$n
      echo "$pw $pn" >"$peakf.tmp" && mv "$peakf.tmp" "$peakf"
      sleep 0.2
    done
  ) &
  SAMPLER_PID=$!
  t0=$(date +%s.%N)
  set +e
  (cd "$run" && "$WRANGLER" d1 execute demo --local --file "$file" --yes >"$run/out.log" 2>&1)
  rc=$?
  set -e
  t1=$(date +%s.%N)
  sleep 0.3
  kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true
  SAMPLER_PID=""
  local ok=no
  if [ $rc -eq 0 ]; then ok=yes; else cp "$run/out.log" "$WORK/fail-$(basename "$file").log"; fi
  read -r pw pn <"$peakf"
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') $pw $pn $ok"
}

if pgrep -x workerd >/dev/null; then
  echo "warning: another workerd is running; its RSS would be counted" >&2
fi

# ---- fixed overhead: a ~10 KB file, 3 times ----------------------------------------
python3 "$WORK/gen.py" "$WORK/tiny.sql" 0.01 >"$WORK/tiny.n"
echo "tiny file: $(stat -c %s "$WORK/tiny.sql") bytes, $(cat "$WORK/tiny.n") INSERTs" >&2
tiny=()
for i in 1 2 3; do
  r=$(run_one "$WORK/tiny.sql"); tiny+=("$(echo "$r" | cut -d' ' -f1)")
  echo "tiny run $i: wall ${r%% *} s (wall peakWorkerdKiB peakNodeKiB ok: $r)" >&2
done

# ---- the sizes -------------------------------------------------------------------
printf '\n%-8s %-10s %-8s %-7s %-18s %-14s %-4s %s\n' "MiB" "stmts" "wall_s" "MiB/s" "peak_workerd_MiB" "peak_node_MiB" "ok" "load1"
for s in "${SIZES[@]}"; do
  f="$WORK/batch-$s.sql"
  n=$(python3 "$WORK/gen.py" "$f" "$s")
  stmts=$((n + 2))   # INSERTs + PRAGMA + CREATE TABLE
  for ((k = 1; k <= REPEAT; k++)); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    read -r wall pw pn ok <<<"$(run_one "$f")"
    printf '%-8s %-10s %-8s %-7s %-18s %-14s %-4s %s\n' "$s" "$stmts" "$wall" \
      "$(awk -v s="$s" -v w="$wall" 'BEGIN{printf "%.2f", s/w}')" \
      "$((pw / 1024))" "$((pn / 1024))" "$ok" "$load"
  done
  rm -f "$f"
done
printf '\nfixed per-import overhead (~10 KB file, 3 runs): %s s\n' "${tiny[*]}"
