#!/usr/bin/env bash
# bench/online.sh — the online export (issue 13, `[run] export = "online"`) against D1's export
# (`export = "d1"`), side by side on the same generated database. Not part of the test suite.
#
# Usage: bench/online.sh [--size 1GiB] [--runs 3] [--modes d1,online] [--sink fs|s3]
#                        [--seed 42] [--polls 2] [--export-mib-s 0] [--bin PATH]
#                        [--work DIR] [--seed-db-gb 2.4] [--seed-export-min 60]
#                        [--rtt-ms 150] [--keep]
#
#   --size      the database's size, as bytes of its D1 dump (default 1GiB; about 0.7 of that
#               as a SQLite file)
#   --runs      runs per mode, alternating d1 / online (default 3; medians are reported)
#   --modes     what to run, alternating in every run (default d1,online,reader):
#               d1, online, auto: `d1-backup run` with that `[run] export` (online and auto
#               are skipped, with a warning, when the binary does not know the key yet);
#               reader: the baseline, `d1-bench-online read` (every table through /raw in
#               ~1 MiB keyset pages, cells in the online export's exact form, nothing
#               written): the stand-in's cost
#   --sink      fs (default: d1-backup's fs sink, fsynced) or s3 (s3s-fs, as run.sh)
#   --seed      the generator's seed (default 42); the database is cached in --work
#   --polls     export polls answered `active` before `complete` (default 2; the poll
#               interval is the default config's 1000 ms)
#   --export-mib-s  make the stand-in's export also take size / RATE seconds (default 0:
#               the polls only). D1 itself exports at well under 1 MiB/s (seed model below).
#   --bin       measure this d1-backup binary instead of building the work tree's (release)
#   --work      scratch directory (default /tmp/d1-bench-online; the database is kept there)
#   --seed-db-gb, --seed-export-min   the seed model's database (2.4 GB) and D1's export
#               time for it (60 min: "D1 export API takes >60 min", seed deployment report)
#   --rtt-ms    the model's round trip per request to Cloudflare's API (default 150)
#   --budget    [cloudflare] requests_per_five_minutes for d1-backup (default: unset, i.e.
#               d1-backup's 900, paced at 3 requests/s after a burst of 10, which bounds
#               the online export's wall time; e.g. 1000000 to measure it unpaced)
#   --keep      leave the sink's data behind
#
# What it does (bench/README.md, "Online export"):
#   1. builds d1-backup (release; CARGO_TARGET_DIR is honoured) and bench/online
#      (d1-bench-online: generator, D1 dumper and D1 stand-in);
#   2. generates the database once (--work/data/db-SIZE-sSEED.sqlite) and its D1 dump (.sql),
#      serves both through the stand-in (/raw, /query, bookmark, info, list, export + signed
#      URL), which times and sizes every request;
#   3. runs `d1-backup run` with export = "d1" and export = "online" alternately, each under
#      /usr/bin/time, and reads the stand-in's counters after each run;
#   4. writes $WORK/online.csv (one row per run), $WORK/online.md (medians, per-run rows and
#      the seed model) and prints online.md; a stored dump that differs from D1's gets
#      $WORK/runs/MODE-RUN.diff (the first differing line from both).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE=1GiB RUNS=3 MODES=d1,online,reader SINK=fs SEED=42 POLLS=2 RATE=0 BIN="" WORK=/tmp/d1-bench-online
SEED_GB=2.4 SEED_MIN=60 RTT_MS=150 BUDGET="" KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --modes) MODES=$2; shift ;;
    --sink) SINK=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --polls) POLLS=$2; shift ;;
    --export-mib-s) RATE=$2; shift ;;
    --bin) BIN=$2; shift ;;
    --work) WORK=$2; shift ;;
    --seed-db-gb) SEED_GB=$2; shift ;;
    --seed-export-min) SEED_MIN=$2; shift ;;
    --rtt-ms) RTT_MS=$2; shift ;;
    --budget) BUDGET=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$SINK" in fs|s3) ;; *) echo "--sink is fs or s3" >&2; exit 2 ;; esac

mkdir -p "$WORK"/{bin,data,runs}
WORK=$(cd "$WORK" && pwd)
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # user + system, in clock ticks

# --- 1. builds ----------------------------------------------------------------------------
if [ -z "$BIN" ]; then
  log "building d1-backup (release)"
  (cd "$ROOT" && cargo build --release --quiet -p d1-backup-cli)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/d1-backup"
fi
# A private copy, so a concurrent rebuild of the work tree cannot swap it mid-series.
cp "$BIN" "$WORK/bin/d1-backup"
D1B="$WORK/bin/d1-backup"
log "building bench/online"
cargo build --release --quiet --manifest-path "$ROOT/bench/online/Cargo.toml" \
  --target-dir "$ROOT/bench/target"
STANDIN="$ROOT/bench/target/release/d1-bench-online"
if [ "$SINK" = s3 ]; then
  command -v s3s-fs >/dev/null || { log "installing s3s-fs"; cargo install s3s-fs@0.14.1 --features binary --locked; }
fi

# --- 2. the database and the stand-in -----------------------------------------------------
DB="$WORK/data/db-$SIZE-s$SEED.sqlite"
DUMP="${DB%.sqlite}.sql"
if [ ! -s "$DB" ] || [ ! -s "$DUMP" ]; then
  log "generating the database ($SIZE of D1 dump, seed $SEED)"
  rm -f "$DB" "$DUMP"
  "$STANDIN" gen --size "$SIZE" --seed "$SEED" --out "$DB" --dump "$DUMP" >/dev/null
fi
DUMP_BYTES=$(stat -c %s "$DUMP")
DUMP_SHA=$(sha256sum "$DUMP" | cut -d' ' -f1)
log "database: $(stat -c %s "$DB") bytes of SQLite, $DUMP_BYTES bytes of D1 dump"

PIDS=()
cleanup() {
  # The stand-in prints its totals since the last reset (`stats {…}`) into standin.out.
  [ -n "${STATS:-}" ] && curl -s -o /dev/null -X POST "${STATS%/stats}/shutdown" || true
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ "$KEEP" = 0 ]; then rm -rf "$WORK/s3data" "$WORK/fs-sink"; fi
}
trap cleanup EXIT

ACCOUNT=0123456789abcdef0123456789abcdef
export BENCH_CF_TOKEN=bench-token BENCH_S3_KEY=bench-key BENCH_S3_SECRET=bench-secret
"$STANDIN" serve --account "$ACCOUNT" --token "$BENCH_CF_TOKEN" --polls "$POLLS" \
  --export-mib-s "$RATE" --log "$WORK/requests.csv" --db "big=$DB,$DUMP" \
  > "$WORK/standin.out" 2>&1 &
PIDS+=($!)
STANDIN_PID=$!
for _ in $(seq 100); do grep -q '^ready' "$WORK/standin.out" 2>/dev/null && break; sleep 0.05; done
grep -q '^ready' "$WORK/standin.out" || { cat "$WORK/standin.out" >&2; exit 1; }
API=$(awk '/^api /{print $2}' "$WORK/standin.out")
STATS=$(awk '/^stats /{print $2}' "$WORK/standin.out")
UUID=$(awk '$1 == "db" && $2 == "big" {print $3}' "$WORK/standin.out")

if [ "$SINK" = s3 ]; then
  S3PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  S3=http://127.0.0.1:$S3PORT
  rm -rf "$WORK/s3data"; mkdir -p "$WORK/s3data/bench"
  s3s-fs --host 127.0.0.1 --port "$S3PORT" --access-key "$BENCH_S3_KEY" \
    --secret-key "$BENCH_S3_SECRET" "$WORK/s3data" > "$WORK/s3s.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -s -o /dev/null "$S3" && break; sleep 0.05; done
  SINK_TOML="kind = \"s3\"
bucket = \"bench\"
endpoint = \"$S3\"
region = \"us-east-1\"
access_key_id_env = \"BENCH_S3_KEY\"
secret_access_key_env = \"BENCH_S3_SECRET\""
  SINK_DIR="$WORK/s3data/bench"
else
  SINK_TOML="kind = \"fs\"
path = \"$WORK/fs-sink\""
  SINK_DIR="$WORK/fs-sink"
fi

config() { # MODE ("" for the default, which is d1)
  local export_line=""
  [ -n "$1" ] && export_line="export = \"$1\""
  cat <<EOF
[cloudflare]
api_base_url = "$API"
$([ -n "$BUDGET" ] && echo "requests_per_five_minutes = $BUDGET")

[sink]
$SINK_TOML

[retention]
keep_days = 3650
min_keep = 1
prune_after_run = false

[run]
poll_interval_ms = 1000
compression = "none"
$export_line

[[accounts]]
name = "bench"
account_id = "$ACCOUNT"
token_env = "BENCH_CF_TOKEN"
prefix = "d1"
databases = [{ name = "big", id = "$UUID" }]
EOF
}
# d1 runs with the default (no key), so this driver measures today's binary too.
config "" > "$WORK/d1.toml"
config online > "$WORK/online.toml"
config auto > "$WORK/auto.toml"

WANT=()
for mode in ${MODES//,/ }; do
  case "$mode" in
    d1|reader) WANT+=("$mode") ;;
    online|auto)
      if "$D1B" --config "$WORK/$mode.toml" config check >"$WORK/$mode-check.out" 2>&1 \
         || "$D1B" run --help 2>/dev/null | grep -q -- '--export'; then
        WANT+=("$mode")
      else
        log "WARNING: this d1-backup does not know [run] export = \"$mode\" yet ($(grep -m1 -i 'export' "$WORK/$mode-check.out" || tail -1 "$WORK/$mode-check.out")); $mode runs skipped"
      fi ;;
    *) echo "unknown mode $mode (d1, online, auto, reader)" >&2; exit 2 ;;
  esac
done
[ ${#WANT[@]} -gt 0 ] || { log "nothing to run"; exit 1; }

# --- 3. measuring -------------------------------------------------------------------------
CSV="$WORK/online.csv"
echo "mode,run,wall_s,max_rss_kb,user_s,sys_s,load1,sql_bytes,stored_bytes,identical_to_d1_dump,api_requests,raw_requests,query_requests,api_bytes,largest_answer_bytes,longest_ms,longest_kind,longest_query_ms,longest_with_answer_ms,query_ms_total,export_requests,exports_completed,export_ms,downloads,download_bytes,rows_read,standin_cpu_s,dump_export,consistency" > "$CSV"
stat_fields() { # STATS_JSON -> CSV fields
  python3 -c '
import json, sys
s = json.loads(sys.argv[1])
print(",".join(str(x) for x in [s["api_requests"], s["raw"], s["query"], s["api_bytes"],
    s["largest_answer_bytes"], s["longest_ms"], s["longest_kind"], s["longest_query_ms"],
    s["longest_with_answer_ms"],
    s["query_ms_total"], s["export"], s["exports_completed"], s["export_ms"], s["download"], s["download_bytes"], s["rows_read"]]))' "$1"
}
for run in $(seq "$RUNS"); do
  # Rotate which mode goes first, so every mode sees the same drift in load.
  order=()
  for i in "${!WANT[@]}"; do order+=("${WANT[$(( (i + run - 1) % ${#WANT[@]} ))]}"); done
  for mode in "${order[@]}"; do
    rm -rf "$SINK_DIR"/d1 "$WORK/fs-sink"
    sync
    curl -s -o /dev/null "$STATS?reset=1"
    load=$(load1)
    ticks=$(cpu_ticks "$STANDIN_PID")
    report="$WORK/runs/$mode-$run.json"
    if [ "$mode" = reader ]; then
      cmd=("$STANDIN" read --api "$API" --account "$ACCOUNT" --token "$BENCH_CF_TOKEN" --db "$UUID")
    else
      cmd=("$D1B" -q --config "$WORK/$mode.toml" run --only bench/big --force --json)
    fi
    if ! /usr/bin/time -f '%e %M %U %S' -o "$WORK/time.out" "${cmd[@]}" \
         > "$report" 2> "$WORK/runs/$mode-$run.log"; then
      cat "$WORK/runs/$mode-$run.log" >&2; log "FAILED: $mode run $run"; exit 1
    fi
    read -r wall rss user sys < <(tail -1 "$WORK/time.out")
    stats=$(curl -s "$STATS?reset=1")
    standin_cpu=$(awk -v a="$ticks" -v b="$(cpu_ticks "$STANDIN_PID")" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b - a) / hz}')
    stored="" stored_bytes=0 identical=no dump_mode=n/a consistency=n/a
    if [ "$mode" = reader ]; then
      identical=n/a
    elif [ -d "$SINK_DIR" ]; then
      stored=$(find "$SINK_DIR" -type f -size +1k -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
      # The manifest's dump.export (absent before issue 13: d1) and dump.consistency.
      manifest=$(find "$SINK_DIR" -type f -name '*.manifest.json' | head -1)
      if [ -n "$manifest" ]; then
        read -r dump_mode consistency < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1])).get("dump", {})
print(d.get("export") or "d1", d.get("consistency") or "snapshot")' "$manifest")
      fi
    fi
    if [ -n "$stored" ]; then
      stored_bytes=$(stat -c %s "$stored")
      if [ "$(sha256sum "$stored" | cut -d' ' -f1)" = "$DUMP_SHA" ]; then
        identical=yes
      else
        # Where it first differs from D1's dump, with that line from both (for the lead).
        line=$(cmp "$DUMP" "$stored" 2>&1 | sed -n 's/.*line \([0-9]*\).*/\1/p' | head -1)
        { cmp "$DUMP" "$stored" 2>&1 | head -1
          if [ -n "$line" ]; then
            echo "--- D1's dump, line $line:"; sed -n "${line}p" "$DUMP" | cut -c1-2000
            echo "--- stored ($mode), line $line:"; sed -n "${line}p" "$stored" | cut -c1-2000
          fi; } > "$WORK/runs/$mode-$run.diff"
      fi
    fi
    echo "$mode,$run,$wall,$rss,$user,$sys,$load,$DUMP_BYTES,$stored_bytes,$identical,$(stat_fields "$stats"),$standin_cpu,$dump_mode,$consistency" >> "$CSV"
    printf '  %-7s run %s: %7.2f s, %7d KiB peak, %6.2f+%5.2f CPU-s, %s (load %s)\n' \
      "$mode" "$run" "$wall" "$rss" "$user" "$sys" \
      "$(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print("{} API requests, longest {:.0f} ms ({}), export {:.0f} ms".format(s["api_requests"], s["longest_ms"], s["longest_kind"], s["export_ms"]))' "$stats")" \
      "$load" >&2
  done
done

# --- 4. summary ---------------------------------------------------------------------------
{
  echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/^Mem/{print $2}') GiB RAM, kernel $(uname -r); $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "d1-backup: $("$D1B" --version 2>/dev/null || echo '?') ($(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- crates || echo ', with uncommitted changes'))"
  echo "database: $(stat -c %s "$DB") bytes of SQLite, $DUMP_BYTES bytes of D1 dump (size $SIZE, seed $SEED); sink $SINK; polls $POLLS; stand-in export rate ${RATE} MiB/s (0: polls only); request budget ${BUDGET:-900 (default)} per 5 min"
} > "$WORK/machine.txt"
python3 "$ROOT/bench/online_summary.py" "$CSV" "$WORK/machine.txt" \
  --seed-db-gb "$SEED_GB" --seed-export-min "$SEED_MIN" --rtt-ms "$RTT_MS" \
  --budget "${BUDGET:-900}" | tee "$WORK/online.md"
