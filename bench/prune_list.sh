#!/usr/bin/env bash
# bench/prune_list.sh — what `prune --dry-run` and `list` cost over 1,000 databases × 35 days
# in the in-process S3 server (issue 15, item 3). Not part of the test suite.
#
#   bench/prune_list.sh [--before BINARY] [--release] [-- ARGS for d1-bench-prune-list]
#
# Builds bench/scale's `d1-bench-prune-list` into the workspace's target directory (debug
# unless --release, so it reuses the test builds) and runs it; with --before, runs an earlier
# build of the same binary first (built the same way at the earlier commit and copied aside).
# Prints markdown tables: wall time, requests (list pages + gets + heads), decision
# fingerprints. Prints the machine (nproc, free -g, load) first.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BEFORE="" PROFILE=debug FLAGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --before) BEFORE="$2"; shift 2 ;;
    --release) PROFILE=release FLAGS=(--release); shift ;;
    --) shift; break ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
CARGO_INCREMENTAL=0 cargo build --quiet "${FLAGS[@]}" --manifest-path "$ROOT/bench/scale/Cargo.toml" \
  --target-dir "$ROOT/target" --bin d1-bench-prune-list
echo "# machine: $(nproc) CPUs; $(free -g | awk '/Mem:/ {print $2 " GiB RAM"}'); load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
if [ -n "$BEFORE" ]; then
  echo "## before: $BEFORE"
  "$BEFORE" "$@"
fi
echo "## after: $(git -C "$ROOT" rev-parse --short HEAD)"
"$ROOT/target/$PROFILE/d1-bench-prune-list" "$@"
