#!/usr/bin/env python3
"""Summarizes bench/run.sh's results.csv as Markdown tables.

usage: summarize.py results.csv [machine.txt]

Wall times are medians over the runs; "marginal" is the median on the big dump minus the
median on the tiny dump with the same export polling, so the export's fixed wait (and each
tool's start-up) is not counted against either side. Peak RSS is the largest over the runs.
"""

import csv
import statistics
import sys
from collections import defaultdict

MIB = 1024 * 1024
BOUND_MIB = 16 * 4 + 32  # part size x parts in flight + 32 MiB, at the defaults


def load(path):
    rows = defaultdict(list)
    for row in csv.DictReader(open(path)):
        rows[(row["tool"], row["dump"])].append(row)
    return rows


def med(rows, field):
    return statistics.median(float(r[field]) for r in rows)


def cpu(rows):
    return statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in rows)


def main():
    rows = load(sys.argv[1])
    if len(sys.argv) > 2:
        print(open(sys.argv[2]).read().strip())
        print()
    loads = [float(r["load1"]) for rs in rows.values() for r in rs]
    if loads:
        print(f"load average (1 min) before each command: {min(loads):.2f}–{max(loads):.2f}, "
              f"median {statistics.median(loads):.2f}")
        print()
    tools = []
    for tool, dump in rows:
        if tool not in tools:
            tools.append(tool)
    marginal = {}
    print("| tool | dump | runs | median wall s (min–max) | marginal s | marginal MB/s | "
          "peak RSS MiB | median CPU s (user+sys) |")
    print("|---|---|---|---|---|---|---|---|")
    for tool in tools:
        big, tiny = rows.get((tool, "big")), rows.get((tool, "tiny"))
        if big and tiny:
            marginal[tool] = med(big, "wall_s") - med(tiny, "wall_s")
        for dump in ("big", "tiny", "huge"):
            rs = rows.get((tool, dump))
            if not rs:
                continue
            walls = [float(r["wall_s"]) for r in rs]
            rss = max(int(r["max_rss_kb"]) for r in rs) / 1024
            m, mbps = "", ""
            if dump == "big" and tool in marginal:
                m = f"{marginal[tool]:.2f}"
                mbps = f"{int(rs[0]['bytes']) / 1e6 / marginal[tool]:.0f}"
            print(f"| {tool} | {dump} ({int(rs[0]['bytes']) / MIB:.0f} MiB) | {len(rs)} | "
                  f"{statistics.median(walls):.2f} ({min(walls):.2f}–{max(walls):.2f}) | {m} | "
                  f"{mbps} | {rss:.0f} | {cpu(rs):.2f} |"
                  if dump != "tiny" else
                  f"| {tool} | tiny ({int(rs[0]['bytes'])} B) | {len(rs)} | "
                  f"{statistics.median(walls):.2f} ({min(walls):.2f}–{max(walls):.2f}) | | | "
                  f"{rss:.0f} | {cpu(rs):.2f} |")
    print()
    print("| target | measured | met |")
    print("|---|---|---|")

    def ratio(a, b, limit, label):
        if a in marginal and b in marginal and marginal[b] > 0:
            r = marginal[a] / marginal[b]
            print(f"| {label} ≤ {limit:.2f}× | {r:.2f}× ({marginal[a]:.2f} s / {marginal[b]:.2f} s "
                  f"marginal) | {'yes' if r <= limit else 'NO'} |")

    ratio("d1b-fs", "curl", 1.25, "fs: d1-backup / curl -o")
    ratio("d1b-fs", "curl+sync", 1.25, "fs: d1-backup / (curl -o + sync FILE)")
    ratio("d1b-s3", "rclone", 1.00, "S3: d1-backup / rclone copyurl")
    ratio("d1b-s3", "aws-cp", 1.05, "S3: d1-backup / aws s3 cp of the local file")
    for tool in ("d1b-fs", "d1b-s3", "d1b-fs@before", "d1b-s3@before"):
        for dump in ("big", "huge"):
            rs = rows.get((tool, dump))
            if rs:
                peak = max(int(r["max_rss_kb"]) for r in rs) / 1024
                size = int(rs[0]["bytes"]) / MIB
                print(f"| {tool} peak RSS at {size:.0f} MiB ≤ {BOUND_MIB} MiB | {peak:.0f} MiB | "
                      f"{'yes' if peak <= BOUND_MIB else 'NO'} |")
    if "d1b-zstd" in marginal:
        big = rows[("d1b-zstd", "big")]
        mbps = int(big[0]["bytes"]) / 1e6 / marginal["d1b-zstd"]
        ceiling = ""
        if "zstd-cli" in marginal:
            cli = int(big[0]["bytes"]) / 1e6 / marginal["zstd-cli"]
            ceiling = f" (zstd -3 -T1 CLI, file to file: {cli:.0f} MB/s)"
        print(f"| zstd through the pipeline ≥ 200 MB/s (SQL bytes / marginal wall) | "
              f"{mbps:.0f} MB/s{ceiling} | {'yes' if mbps >= 200 else 'NO'} |")

    befores = [t for t in tools if t.endswith("@before")]
    if befores:
        print()
        print("| before → after | marginal wall s | peak RSS MiB (big) | peak RSS MiB (huge) | "
              "median CPU s (big) |")
        print("|---|---|---|---|---|")
        for before in befores:
            after = before[: -len("@before")]

            def peak(tool, dump):
                rs = rows.get((tool, dump))
                return f"{max(int(r['max_rss_kb']) for r in rs) / 1024:.0f}" if rs else "–"

            def cpu_big(tool):
                rs = rows.get((tool, "big"))
                return f"{cpu(rs):.2f}" if rs else "–"

            wall = (f"{marginal[before]:.2f} → {marginal[after]:.2f}"
                    if before in marginal and after in marginal else "–")
            print(f"| {after} | {wall} | {peak(before, 'big')} → {peak(after, 'big')} | "
                  f"{peak(before, 'huge')} → {peak(after, 'huge')} | "
                  f"{cpu_big(before)} → {cpu_big(after)} |")


if __name__ == "__main__":
    main()
