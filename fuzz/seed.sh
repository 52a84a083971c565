#!/bin/sh
# Fills fuzz/corpus/<target>/ (not committed) with the seeds: the hand-written ones in
# fuzz/seeds/, the wrangler fixture dumps and the restore corpus's SQL, the example configs.
# Run from anywhere; existing corpus files are kept.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
for target in config d1_response dump_reader; do
    mkdir -p "$root/fuzz/corpus/$target"
    cp "$root/fuzz/seeds/$target/"* "$root/fuzz/corpus/$target/" 2>/dev/null || true
done
cp "$root"/examples/*.toml "$root/fuzz/corpus/config/"
for dump in "$root"/crates/backup-core/tests/fixtures/wrangler/*/export*.sql; do
    case_dir=$(basename "$(dirname "$dump")")
    cp "$dump" "$root/fuzz/corpus/dump_reader/$case_dir-$(basename "$dump")"
done
for source in "$root"/crates/backup-core/tests/corpus/*/source.sql; do
    cp "$source" "$root/fuzz/corpus/dump_reader/corpus-$(basename "$(dirname "$source")").sql"
done
