#!/usr/bin/env python3
"""tether-transfer download vs curl -o, from the same loopback nginx, in one run.

    transfer_bench.py PATH/TO/tether-transfer [--size-mib N] [--runs K] [--nginx PATH]
                      [--tether-args '--max-unsynced 8388608 ...']

Serves a file of random bytes with nginx (Debian's) on 127.0.0.1, then times K runs of each
client (alternating, page cache warm for the source), reporting wall time, CPU time (user+sys
of the child) and throughput, and the ratio tether/curl, both against plain `curl -o` (its file
only in the page cache when it exits) and against curl followed by an fdatasync of its file
(durable, as tether's is when it reports success). Prints one JSON line per client and
one summary line. Checkpoint cost: the fsyncs tether made are counted with strace when
available, else derived from the checkpoint size.
"""
import argparse
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import tempfile

from benchlib import median_wall, report, sha256_file, start_nginx, timed, write_random_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--tether-args", default="", help="extra options for tether-transfer")
    args = ap.parse_args()
    extra = shlex.split(args.tether_args)
    if not os.path.exists(args.nginx):
        sys.exit("nginx not found (apt-get install nginx-light)")
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory(prefix="tether-transfer-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        os.chmod(tmp, 0o755)  # nginx's workers may run as another user
        www = tmp / "www"
        www.mkdir()
        src = www / "file.bin"
        write_random_file(src, args.size_mib)
        expected = sha256_file(src)
        nginx, port = start_nginx(args.nginx, tmp, www)
        url = f"http://127.0.0.1:{port}/file.bin"
        try:
            # curl writes into the page cache and leaves; tether's file is on disk when it says
            # so. "curl+sync" (curl, then fdatasync of its file) is the like-for-like baseline.
            results = {"curl": [], "curl+sync": [], "tether": []}
            strace = shutil.which("strace")
            for run in range(args.runs):
                dest = tmp / "curl.bin"
                wall, cpu, _ = timed(["curl", "-s", "-o", str(dest), url])
                results["curl"].append((wall, cpu))
                dest.unlink()
                wall, cpu, _ = timed(["sh", "-c", f"curl -s -o '{dest}' '{url}' && sync -d '{dest}'"])
                results["curl+sync"].append((wall, cpu))
                dest.unlink()
                state = tmp / f"state{run}"
                dest = tmp / "tether.bin"
                wall, cpu, proc = timed([args.binary, "--state", str(state), "download", url, str(dest),
                                         "--id", "bench"] + extra)
                line = json.loads(proc.stdout.decode().strip().splitlines()[-1])
                if line["outcome"] != "success" or sha256_file(dest) != expected:
                    sys.exit("tether-transfer produced the wrong content")
                results["tether"].append((wall, cpu))
                dest.unlink()
            fsyncs = None
            if strace:
                state = tmp / "state-strace"
                dest = tmp / "tether.bin"
                out = subprocess.run(["strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", str(tmp / "st"),
                                      args.binary, "--state", str(state), "download", url, str(dest), "--id", "s"]
                                     + extra,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
                fsyncs = 0
                for row in (tmp / "st").read_text().splitlines():
                    parts = row.split()
                    if parts and parts[-1] in ("fsync", "fdatasync"):
                        fsyncs += int(parts[3])
            mib = size / (1 << 20)
            best = report(results, mib)
            summary = {"throughput_ratio_tether_vs_curl": round(best["curl"][0] / best["tether"][0], 3),
                       "throughput_ratio_tether_vs_curl_sync": round(best["curl+sync"][0] / best["tether"][0], 3),
                       "median_ratio_tether_vs_curl": round(median_wall(results["curl"]) / median_wall(results["tether"]), 3),
                       "median_ratio_tether_vs_curl_sync":
                           round(median_wall(results["curl+sync"]) / median_wall(results["tether"]), 3),
                       "cpu_ratio_tether_vs_curl": round(best["tether"][1] / max(best["curl"][1], 1e-9), 3)}
            if fsyncs is not None:
                summary["fsyncs_per_gib"] = round(fsyncs * 1024 / mib)
            print(json.dumps(summary))
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)


if __name__ == "__main__":
    main()
