#!/usr/bin/env bash
# bench/run.sh — d1-backup against its peers, and at scale. Not part of the test suite.
#
# Usage: bench/run.sh [--quick] [--size 1GiB] [--runs 5] [--big 4GiB|none] [--polls 2]
#                     [--only fs,s3,zstd,big,scale] [--bin PATH] [--before PATH]
#                     [--work DIR] [--keep]
#
#   --quick   256 MiB dumps, 3 runs, no 4 GiB run, a 40-database scale run (about 6 minutes;
#             the full default series takes about 25)
#   --size    the dump size for the series (default 1GiB)
#   --runs    runs per tool and size (default 5; medians are reported)
#   --big     a second, larger dump backed up once per sink to check that peak RSS does not
#             grow with size (default 4GiB; "none" skips it)
#   --polls   export polls answered `active` before `complete` (default 2; the poll interval
#             is the default config's 1000 ms)
#   --only    a comma-separated subset of the series
#   --bin     measure this d1-backup binary instead of building the work tree's (release)
#   --before  also measure this d1-backup binary (an earlier build), alternating with --bin
#             in every run: its rows are named d1b-fs@before, d1b-s3@before, d1b-zstd@before
#   --work    scratch directory (default /tmp/d1-bench; dumps are kept there between runs)
#   --keep    leave the servers' data behind
#
# What it does (details and how to read the output: bench/README.md):
#   1. builds d1-backup (release), bench/server (dump generator + lean D1 API emulation) and
#      bench/scale; installs s3s-fs 0.14.1 (cargo), rclone and zstd (apt) and awscli (pip) if
#      missing;
#   2. generates a synthetic dump of --size (realistic INSERT lines, deterministic) and a tiny
#      one, serves both through the emulated export API and signed URL, and starts s3s-fs;
#   3. runs, alternating within each run so both sides see the same load:
#        fs:   d1-backup (fs sink)            vs curl -o FILE, and curl -o FILE + sync FILE
#        s3:   d1-backup (s3 sink, s3s-fs)    vs rclone copyurl, and aws s3 cp of a local file
#        zstd: d1-backup (fs sink, [run] compression = "zstd") vs zstd -3 -T1 of the file
#      each on the big and on the tiny dump (same export polling), under /usr/bin/time;
#   4. the --big dump once per sink (peak RSS), then bench/scale (200 databases, 4 accounts,
#      concurrency 8; retention over 40 days);
#   5. writes $WORK/results.csv and prints the summary tables (bench/summarize.py).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE=1GiB RUNS=5 BIG=4GiB POLLS=2 ONLY=fs,s3,zstd,big,scale BIN="" BEFORE="" WORK=/tmp/d1-bench KEEP=0
SCALE_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) SIZE=256MiB RUNS=3 BIG=none SCALE_ARGS=(--databases 40 --days 35) ;;
    --size) SIZE=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --big) BIG=$2; shift ;;
    --polls) POLLS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --bin) BIN=$2; shift ;;
    --before) BEFORE=$2; shift ;;
    --work) WORK=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
wants() { [[ ",$ONLY," == *",$1,"* ]]; }

mkdir -p "$WORK"/{bin,data,out}
WORK=$(cd "$WORK" && pwd)
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- 1. builds and tools ------------------------------------------------------------------
if [ -z "$BIN" ]; then
  log "building d1-backup (release)"
  (cd "$ROOT" && cargo build --release --quiet -p d1-backup-cli)
  BIN="$ROOT/target/release/d1-backup"
fi
# A private copy, so a concurrent rebuild of the work tree cannot swap it mid-series.
cp "$BIN" "$WORK/bin/d1-backup"
D1B="$WORK/bin/d1-backup"
VARIANTS=("")
if [ -n "$BEFORE" ]; then cp "$BEFORE" "$WORK/bin/d1-backup@before"; VARIANTS+=("@before"); fi
log "building bench/server"
cargo build --release --quiet --manifest-path "$ROOT/bench/server/Cargo.toml" \
  --target-dir "$ROOT/bench/target"
SERVER="$ROOT/bench/target/release/d1-bench-server"
if wants scale; then
  log "building bench/scale (shares the workspace's target directory)"
  cargo build --release --quiet --manifest-path "$ROOT/bench/scale/Cargo.toml" \
    --target-dir "$ROOT/target"
fi
command -v s3s-fs >/dev/null || { log "installing s3s-fs"; cargo install s3s-fs@0.14.1 --features binary --locked; }
apt_install() { apt-get update -qq >/dev/null && apt-get install -y -qq "$@" >/dev/null; }
command -v rclone >/dev/null || { log "installing rclone"; apt_install rclone; }
command -v aws >/dev/null || { log "installing awscli"; pip install -q awscli; }
command -v zstd >/dev/null || { log "installing zstd"; apt_install zstd; }

# --- 2. data and servers ------------------------------------------------------------------
gen() { # NAME SIZE
  local file="$WORK/data/$1.sql"
  [ -s "$file" ] || { log "generating $1 ($2)"; "$SERVER" gen --size "$2" --out "$file" >/dev/null; }
  echo "$file"
}
BIGDUMP=$(gen "dump-$SIZE" "$SIZE")
TINY=$(gen tiny 1KiB)
DBS=(--db "big=$BIGDUMP" --db "tiny=$TINY")
if [ "$BIG" != none ] && wants big; then
  HUGE=$(gen "dump-$BIG" "$BIG")
  DBS+=(--db "huge=$HUGE")
fi

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ "$KEEP" = 0 ]; then rm -rf "$WORK/s3data" "$WORK/fs-sink" "$WORK/out"; fi
}
trap cleanup EXIT

ACCOUNT=0123456789abcdef0123456789abcdef
export BENCH_CF_TOKEN=bench-token BENCH_S3_KEY=bench-key BENCH_S3_SECRET=bench-secret
"$SERVER" serve --account "$ACCOUNT" --token "$BENCH_CF_TOKEN" --polls "$POLLS" "${DBS[@]}" \
  > "$WORK/server.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q '^ready' "$WORK/server.out" 2>/dev/null && break; sleep 0.05; done
API=$(awk '/^api /{print $2}' "$WORK/server.out")
url() { awk -v n="$1" '$1 == "db" && $2 == n {print $5}' "$WORK/server.out"; }
uuid() { awk -v n="$1" '$1 == "db" && $2 == n {print $3}' "$WORK/server.out"; }

S3PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
S3=http://127.0.0.1:$S3PORT
rm -rf "$WORK/s3data"; mkdir -p "$WORK/s3data/bench"
s3s-fs --host 127.0.0.1 --port "$S3PORT" --access-key "$BENCH_S3_KEY" \
  --secret-key "$BENCH_S3_SECRET" "$WORK/s3data" > "$WORK/s3s.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "$S3" && break; sleep 0.05; done

config() { # KIND COMPRESSION
  local sink
  if [ "$1" = fs ]; then
    sink="kind = \"fs\"
path = \"$WORK/fs-sink\""
  else
    sink="kind = \"s3\"
bucket = \"bench\"
endpoint = \"$S3\"
region = \"us-east-1\"
access_key_id_env = \"BENCH_S3_KEY\"
secret_access_key_env = \"BENCH_S3_SECRET\""
  fi
  local dbs="{ name = \"big\", id = \"$(uuid big)\" }, { name = \"tiny\", id = \"$(uuid tiny)\" }"
  [ -n "$(uuid huge)" ] && dbs="$dbs, { name = \"huge\", id = \"$(uuid huge)\" }"
  cat <<EOF
[cloudflare]
api_base_url = "$API"

[sink]
$sink

[retention]
keep_days = 3650
min_keep = 1
prune_after_run = false

[run]
poll_interval_ms = 1000
compression = "$2"

[[accounts]]
name = "bench"
account_id = "$ACCOUNT"
token_env = "BENCH_CF_TOKEN"
prefix = "d1"
databases = [$dbs]
EOF
}
config fs none > "$WORK/fs.toml"
config s3 none > "$WORK/s3.toml"
config fs zstd > "$WORK/fs-zstd.toml"

export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other \
  RCLONE_CONFIG_BENCH_ENDPOINT=$S3 RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$BENCH_S3_KEY \
  RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$BENCH_S3_SECRET RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true
AWSENV=(env AWS_ACCESS_KEY_ID=$BENCH_S3_KEY AWS_SECRET_ACCESS_KEY=$BENCH_S3_SECRET AWS_DEFAULT_REGION=us-east-1)

# --- 3. measuring -------------------------------------------------------------------------
CSV="$WORK/results.csv"
echo "tool,dump,run,wall_s,max_rss_kb,user_s,sys_s,load1,bytes" > "$CSV"
load1() { cut -d' ' -f1 /proc/loadavg; }
measure() { # TOOL DUMP RUN BYTES -- COMMAND...
  local tool=$1 dump=$2 run=$3 bytes=$4; shift 5
  sync   # what the previous command left dirty is not written back during this one
  local load; load=$(load1)
  if ! /usr/bin/time -f '%e %M %U %S' -o "$WORK/time.out" "$@" > "$WORK/cmd.out" 2>&1; then
    cat "$WORK/cmd.out" >&2; log "FAILED: $tool $dump"; exit 1
  fi
  read -r wall rss user sys < <(tail -1 "$WORK/time.out")
  echo "$tool,$dump,$run,$wall,$rss,$user,$sys,$load,$bytes" >> "$CSV"
  printf '  %-12s %-5s run %s: %6.2f s, %7d KiB peak, %5.2f+%5.2f CPU-s (load %s)\n' \
    "$tool" "$dump" "$run" "$wall" "$rss" "$user" "$sys" "$load" >&2
}
d1b() { echo "$D1B$3" -q --config "$WORK/$1" run --only "bench/$2" --force; }
size_of() { stat -c %s "$1"; }

for run in $(seq "$RUNS"); do
  log "run $run/$RUNS (load $(load1))"
  for dump in big tiny; do
    file=$BIGDUMP; [ "$dump" = tiny ] && file=$TINY
    bytes=$(size_of "$file")
    if wants fs; then
      for v in "${VARIANTS[@]}"; do
        rm -rf "$WORK/fs-sink"
        measure "d1b-fs$v" "$dump" "$run" "$bytes" -- $(d1b fs.toml "$dump" "$v")
      done
      rm -f "$WORK/out/curl.sql"
      measure curl "$dump" "$run" "$bytes" -- curl -sS -o "$WORK/out/curl.sql" "$(url "$dump")"
      rm -f "$WORK/out/curl.sql"
      measure curl+sync "$dump" "$run" "$bytes" -- bash -c 'curl -sS -o "$2" "$1" && sync "$2"' - "$(url "$dump")" "$WORK/out/curl.sql"
      rm -f "$WORK/out/curl.sql"; rm -rf "$WORK/fs-sink"
    fi
    if wants s3; then
      for v in "${VARIANTS[@]}"; do
        measure "d1b-s3$v" "$dump" "$run" "$bytes" -- $(d1b s3.toml "$dump" "$v")
      done
      measure rclone "$dump" "$run" "$bytes" -- env -u AWS_CA_BUNDLE rclone copyurl "$(url "$dump")" "bench:bench/peer/rclone-$dump.sql"
      measure aws-cp "$dump" "$run" "$bytes" -- "${AWSENV[@]}" aws --endpoint-url "$S3" s3 cp --quiet "$file" "s3://bench/peer/aws-$dump.sql"
    fi
    if wants zstd; then
      for v in "${VARIANTS[@]}"; do
        measure "d1b-zstd$v" "$dump" "$run" "$bytes" -- $(d1b fs-zstd.toml "$dump" "$v")
        rm -rf "$WORK/fs-sink"
      done
      # The ceiling: zstd's own CLI, single-threaded, at d1-backup's level (3), file to file.
      measure zstd-cli "$dump" "$run" "$bytes" -- zstd -3 -T1 -q -f -o "$WORK/out/cli.zst" "$file"
      rm -f "$WORK/out/cli.zst"
    fi
  done
done

if [ "$BIG" != none ] && wants big; then
  bytes=$(size_of "$HUGE")
  log "the $BIG dump, once per sink (load $(load1))"
  for v in "${VARIANTS[@]}"; do
    measure "d1b-fs$v" huge 1 "$bytes" -- $(d1b fs.toml huge "$v")
    rm -rf "$WORK/fs-sink"
    measure "d1b-s3$v" huge 1 "$bytes" -- $(d1b s3.toml huge "$v")
    rm -rf "$WORK/s3data/bench/d1"
  done
fi
cat "$WORK/server.out" | grep -v '^db\|^api\|^ready' >&2 || true

# --- 4. scale -----------------------------------------------------------------------------
if wants scale; then
  log "scale: bench/scale ${SCALE_ARGS[*]} (load $(load1))"
  "$ROOT/target/release/d1-bench-scale" "${SCALE_ARGS[@]}" | tee "$WORK/scale.md"
fi

# --- 5. summary ---------------------------------------------------------------------------
{
  echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/^Mem/{print $2}') GiB RAM, kernel $(uname -r); $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "d1-backup: $("$D1B" --version 2>/dev/null || echo '?') ($(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- crates || echo ', with uncommitted changes'))"
} > "$WORK/machine.txt"
python3 "$ROOT/bench/summarize.py" "$CSV" "$WORK/machine.txt" | tee "$WORK/summary.md"
