#!/usr/bin/env python3
"""online.csv (bench/online.sh) to Markdown: medians per export mode, every run, and the
seed model (the seed deployment's deferred 2.4 GB database: downtime with `d1` vs `online`).

Usage: online_summary.py online.csv [machine.txt] [--seed-db-gb 2.4] [--seed-export-min 60]
                         [--rtt-ms 150] [--budget 900]
"""

import argparse
import csv
import math
import statistics

MIB = 1 << 20
GIB = 1 << 30


def num(row, key):
    return float(row[key])


def secs(ms):
    """A duration for the tables: ms below 10 s."""
    if ms < 100:
        return f"{ms:.1f} ms"
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("machine", nargs="?")
    ap.add_argument("--seed-db-gb", type=float, default=2.4)
    ap.add_argument("--seed-export-min", type=float, default=60.0)
    ap.add_argument("--rtt-ms", type=float, default=150.0)
    ap.add_argument("--budget", type=float, default=900.0,
                    help="requests per 5 minutes per token (d1-backup's default budget)")
    a = ap.parse_args()

    rows = list(csv.DictReader(open(a.csv)))
    modes = [m for m in ("d1", "online", "auto", "reader") if any(r["mode"] == m for r in rows)]
    print("# Online export vs D1's export\n")
    if a.machine:
        for line in open(a.machine):
            print(f"- {line.strip()}")
        print()

    med = {}
    for m in modes:
        rs = [r for r in rows if r["mode"] == m]
        md = lambda k: statistics.median(num(r, k) for r in rs)  # noqa: E731
        sql = md("sql_bytes")
        # d1: the export blocks D1 for its whole duration; online: one query at a time;
        # auto: whichever it did (an export, pages, or both).
        blocked = statistics.median(
            max(num(r, "export_ms") if m in ("d1", "auto") else 0,
                num(r, "longest_query_ms") if m != "d1" else 0) for r in rs)
        busy = statistics.median(
            (num(r, "export_ms") if m in ("d1", "auto") else 0)
            + (num(r, "query_ms_total") if m != "d1" else 0) for r in rs)
        med[m] = dict(
            runs=len(rs), wall=md("wall_s"), rss=md("max_rss_kb") / 1024, sql=sql,
            api=md("api_requests"), raw=md("raw_requests") + md("query_requests"),
            largest=max(num(r, "largest_answer_bytes") for r in rs),
            blocked=blocked, busy=busy, cpu=md("user_s") + md("sys_s"),
            identical=sum(r["identical_to_d1_dump"] == "yes" for r in rs),
            exports=max(int(r["export_requests"]) for r in rs),
            standin=md("standin_cpu_s"),
            manifest=", ".join(sorted({f"{r.get('dump_export', '?')} / {r.get('consistency', '?')}"
                                       for r in rs})),
        )
    print("## Medians\n")
    print("| mode | runs | wall | SQL throughput | API requests | requests / GiB | SQL per request "
          "| peak RSS | CPU (user+sys) | stand-in CPU | export requests | D1 blocked at once | D1 busy in all "
          "| stored = D1's dump | manifest: export / consistency |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for m, s in med.items():
        per_gib = s["api"] / (s["sql"] / GIB)
        print(f"| `{m}` | {s['runs']} | {s['wall']:.2f} s | {s['sql'] / MIB / s['wall']:.1f} MiB/s "
              f"| {s['api']:.0f} ({s['raw']:.0f} queries) | {per_gib:.0f} "
              f"| {s['sql'] / s['api'] / MIB:.2f} MiB | {s['rss']:.0f} MiB | {s['cpu']:.2f} s "
              f"| {s['standin']:.2f} s "
              f"| {s['exports']}{' **(online must start none)**' if m == 'online' and s['exports'] else ''} "
              f"| {secs(s['blocked'])} | {secs(s['busy'])} "
              f"| {'n/a (writes nothing)' if m == 'reader' else str(s['identical']) + '/' + str(s['runs']) + ' byte-identical'} "
              f"| {s['manifest']}{' **(expected online)**' if m == 'online' and 'online /' not in s['manifest'] else ''} |")
    print()
    print("*D1 blocked at once*: `d1`, the export's duration on the stand-in (start to `complete`: "
          "the polls, and `--export-mib-s` if set; D1 serves no query meanwhile); `online`, the "
          "longest single `/raw` or `/query` request. *D1 busy in all*: the export's duration, or "
          "the sum of the query requests' durations. Requests count every API call (list, info, "
          "bookmark, schema, pages, export polls); signed-URL downloads are R2's and not counted. "
          "*SQL per request*: the dump's bytes over the API requests. *Stand-in CPU*: the "
          "stand-in's own user+system time during the run (`/proc`). *Manifest*: the stored manifest's `dump.export` (absent before issue 13: `d1`) and "
          "`dump.consistency`. *Export requests*: export "
          "starts and polls (the most in one run); `online` must make none. `reader`: the "
          "baseline (`d1-bench-online read`: every table through `/raw` in ~1 MiB keyset pages, "
          "cells in the online export's exact form, nothing parsed into SQL or written), what "
          "reading the database through the stand-in costs.\n")

    print("## Runs\n")
    print("| mode | run | wall s | peak RSS KiB | user+sys s | load | API requests | largest answer "
          "| longest request | export | stored bytes | = D1's dump |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| `{r['mode']}` | {r['run']} | {num(r, 'wall_s'):.2f} | {r['max_rss_kb']} "
              f"| {num(r, 'user_s') + num(r, 'sys_s'):.2f} | {r['load1']} | {r['api_requests']} "
              f"| {num(r, 'largest_answer_bytes') / MIB:.2f} MiB "
              f"| {num(r, 'longest_ms'):.0f} ms ({r['longest_kind']}) | {num(r, 'export_ms') / 1000:.2f} s "
              f"| {r['stored_bytes']} | {r['identical_to_d1_dump']} |")
    print()

    size = a.seed_db_gb * 1e9
    t_export = a.seed_export_min * 60
    rate = size / t_export
    print(f"## Seed model: `rto-nrt-db`, {a.seed_db_gb:g} GB\n")
    print(f"D1's export of it takes over {a.seed_export_min:.0f} min (seed deployment report), "
          f"so D1 exports at most {rate / 1e6:.2f} MB/s; the database serves no query for the "
          f"whole export.\n")
    print("| | `d1` | `online` |")
    print("|---|---:|---:|")
    o = med.get("online")
    if o is None:
        cells = ["(needs the online runs)"] * 6
    else:
        per_req = o["sql"] / o["api"]
        n = math.ceil(size / per_req)
        # Unpaced time per request: the CPU both sides spent (the measured wall time per
        # request also holds the request budget's pacing, 3 requests/s at 900 per 5 min).
        t_req = (o["cpu"] + o["standin"]) / o["api"]
        wall_rtt = n * (t_req + a.rtt_ms / 1000)
        floor = n / a.budget * 300
        slice_worst = o["largest"] / rate
        cells = [
            f"{n:,} (at {per_req / MIB:.2f} MiB each, as measured)",
            f"{secs(o['blocked'])} on the stand-in; at most {slice_worst:.1f} s if D1 "
            f"read a page ({o['largest'] / MIB:.2f} MiB answer) no faster than it exports",
            f"{o['busy'] / 1000 * size / o['sql']:.0f} s on the stand-in; at most "
            f"{t_export / 60:.0f} min at D1's export rate, in slices",
            f"{max(wall_rtt, floor) / 60:.1f} min: the request budget ({a.budget:.0f} per 5 min) "
            f"allows {n:,} requests in no less than {floor / 60:.1f} min; unpaced, {n:,} × "
            f"({t_req * 1000:.0f} ms of CPU, d1-backup and stand-in, + {a.rtt_ms:.0f} ms round "
            f"trip) = {wall_rtt / 60:.1f} min (measured here: {o['wall'] / o['api'] * 1000:.0f} ms "
            f"per request, pacing included)",
            f"{n / (size / GIB):.0f}",
            f"none: other queries wait at most one page ({secs(o['blocked'])} here)",
        ]
    print(f"| API requests | ~6 (list, schema, export start, polls) | {cells[0]} |")
    print(f"| longest single unavailability | **≥ {t_export / 60:.0f} min** (the whole export) | **{cells[1]}** |")
    print(f"| D1 busy in all | ≥ {t_export / 60:.0f} min | {cells[2]} |")
    print(f"| backup wall time | ≥ {t_export / 60:.0f} min + download | {cells[3]} |")
    print(f"| requests per GiB | — | {cells[4]} |")
    print(f"| downtime per night | ≥ {t_export / 60:.0f} min | {cells[5]} |")
    print()


if __name__ == "__main__":
    main()
