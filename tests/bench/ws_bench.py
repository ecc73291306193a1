#!/usr/bin/env python3
"""Runs ws_echo_bench for tether and for the plain Beast baseline, alternating, K times per case,
and prints the median msgs/s and p50 latency of each with their ratios (single runs on a
virtual machine vary by +-30 %, so medians of alternating runs are what is compared).

    ws_bench.py BUILD/tests/bench/ws_echo_bench [--runs K] [--cases 16:64,1024:64,...]

A case is SIZE:INFLIGHT; the message count is chosen so each run takes about a second."""
import argparse
import json
import statistics
import subprocess
import sys

DEFAULT_CASES = "16:1,16:64,1024:64,65536:16,1048576:4"
COUNTS = {16: 200000, 1024: 200000, 65536: 20000, 1048576: 1000}


def run(binary, client, size, inflight):
    count = COUNTS.get(size, 10000)
    if inflight == 1:
        count = min(count, 50000)
    cmd = [binary, "--client", client, "--size", str(size), "--count", str(count), "--inflight", str(inflight)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300, check=False)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-300:]}")
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cases", default=DEFAULT_CASES)
    a = ap.parse_args()
    for case in a.cases.split(","):
        size, inflight = (int(x) for x in case.split(":"))
        res = {"beast": [], "tether": []}
        for _ in range(a.runs):
            for client in ("beast", "tether"):
                res[client].append(run(a.binary, client, size, inflight))
        med = {c: (statistics.median(r["msgs_per_s"] for r in runs), statistics.median(r["p50_us"] for r in runs))
               for c, runs in res.items()}
        print(json.dumps({
            "size": size, "inflight": inflight, "runs": a.runs,
            "beast_msgs_per_s": round(med["beast"][0]), "tether_msgs_per_s": round(med["tether"][0]),
            "ratio_msgs_per_s": round(med["tether"][0] / med["beast"][0], 2),
            "beast_p50_us": med["beast"][1], "tether_p50_us": med["tether"][1],
            "ratio_p50": round(med["tether"][1] / med["beast"][1], 3),
        }), flush=True)


if __name__ == "__main__":
    main()
