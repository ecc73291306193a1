#!/usr/bin/env python3
"""Segmented downloads: tether-transfer vs aria2c (and curl, one connection), from one loopback
nginx whose every connection is capped with `limit_rate` (as CDNs and object stores cap one
connection), in one run, clients alternating, medians reported.

    segmented_bench.py PATH/TO/tether-transfer [--size-mib 128] [--runs 3] [--limit-rate 16m]
                       [--connections 8] [--nginx PATH]

aria2c is run the way the issue measured it (`-x8 -s8`) and the way a demanding user tunes it
for a file this size (`-x8 -s8 -k1M`: without -k its 20 MiB minimum split can leave
connections unused). Neither aria2c nor curl syncs its file; tether's is durable when it
reports success, and every chunk it recorded was synced first. Reports, per client, wall time
and the connections it opened (nginx's access log: one line per request, with the
connection's serial number), and the ratio of throughputs tether/aria2c.
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from benchlib import median_wall, report, sha256_file, start_nginx, timed, write_random_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--size-mib", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--limit-rate", default="16m")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    args = ap.parse_args()
    if not shutil.which("aria2c"):
        sys.exit("aria2c not found (apt-get install aria2)")
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory(prefix="tether-segmented-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        os.chmod(tmp, 0o755)  # nginx's workers may run as another user
        www = tmp / "www"
        www.mkdir()
        src = www / "file.bin"
        write_random_file(src, args.size_mib)
        expected = sha256_file(src)
        log = tmp / "access.log"
        nginx, port = start_nginx(args.nginx, tmp, www, log, log_format="$connection $status $body_bytes_sent",
                                  limit_rate=args.limit_rate)
        url = f"http://127.0.0.1:{port}/file.bin"
        n = str(args.connections)
        clients = {
            "tether": lambda dest, run: [args.binary, "--state", str(tmp / f"state{run}"), "download", url, str(dest),
                                         "--id", "bench", "--connections", n],
            "aria2c -x8 -s8": lambda dest, run: ["aria2c", "-q", "-x8", "-s8", "-d", str(dest.parent), "-o",
                                                 dest.name, "--allow-overwrite=true", "--auto-file-renaming=false",
                                                 url],
            "aria2c -x8 -s8 -k1M": lambda dest, run: ["aria2c", "-q", "-x8", "-s8", "-k1M", "-d", str(dest.parent),
                                                      "-o", dest.name, "--allow-overwrite=true",
                                                      "--auto-file-renaming=false", url],
            "curl": lambda dest, run: ["curl", "-s", "-o", str(dest), url],
        }
        results = {k: [] for k in clients}
        connections = {k: [] for k in clients}
        try:
            for run in range(args.runs):
                for name, cmd in clients.items():
                    dest = tmp / "out" / "file.bin"
                    dest.parent.mkdir(exist_ok=True)
                    before = log.read_text().splitlines() if log.exists() else []
                    wall, cpu, _ = timed(cmd(dest, run))
                    if sha256_file(dest) != expected:
                        sys.exit(f"{name} produced the wrong content")
                    after = log.read_text().splitlines()
                    connections[name].append(len({line.split()[0] for line in after[len(before):]}))
                    results[name].append((wall, cpu))
                    dest.unlink()
            best = report(results, args.size_mib)
            med = {k: median_wall(v) for k, v in results.items()}
            summary = {"limit_rate": args.limit_rate, "connections_opened": connections,
                       "median_ratio_tether_vs_aria2c_x8_s8": round(med["aria2c -x8 -s8"] / med["tether"], 3),
                       "median_ratio_tether_vs_aria2c_x8_s8_k1M": round(med["aria2c -x8 -s8 -k1M"] / med["tether"], 3),
                       "median_ratio_tether_vs_curl": round(med["curl"] / med["tether"], 3),
                       "best_ratio_tether_vs_aria2c_x8_s8_k1M": round(best["aria2c -x8 -s8 -k1M"][0] / best["tether"][0], 3)}
            print(json.dumps(summary))
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)


if __name__ == "__main__":
    main()
