#!/usr/bin/env python3
"""tether-transfer upload vs curl -T, to the same loopback server, in one run.

    upload_bench.py PATH/TO/tether-transfer NODE_MODULES [--size-mib N] [--runs K]

NODE_MODULES holds @tus/server and @tus/file-store (the build's tus interop directory, or
`npm install --prefix DIR @tus/server@1 @tus/file-store@1`). upload_server.js answers a plain
PUT and tus on one port. Times K runs of each client (alternating, the source in the page
cache): `curl -T` (PUT), `tether-transfer upload --protocol put`, and tus at the default chunk
size, with its connections kept alive (the default) and with a new connection per request
(`--max-idle 0`, as before connection reuse). Prints one JSON line per client (best wall time,
CPU time of the child) and one summary line: tether PUT vs curl, tus vs curl with and without
reuse, the overhead of tus against tether's own PUT, and the connections each tether client
opened and reused (from its result line).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from benchlib import median_wall, report, sha256_file, timed, write_random_file

HERE = pathlib.Path(__file__).resolve().parent




def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("node_modules")
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tether-upload-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        store = tmp / "store"
        (store / "tus").mkdir(parents=True)
        src = tmp / "src.bin"
        write_random_file(src, args.size_mib)
        expected = sha256_file(src)
        server = subprocess.Popen(["node", str(HERE / "upload_server.js"), str(store)], stdout=subprocess.PIPE,
                                  env=dict(os.environ, NODE_PATH=args.node_modules))
        try:
            line = server.stdout.readline().decode()
            if not line.startswith("PORT "):
                sys.exit("the upload server did not start")
            base = f"http://127.0.0.1:{int(line.split()[1])}"
            results = {"curl -T": [], "tether put": [], "tether tus": [], "tether tus, no reuse": []}
            connections = {}
            for run in range(args.runs):
                wall, cpu, _ = timed(["curl", "-s", "-f", "-T", str(src), f"{base}/put/curl{run}"])
                results["curl -T"].append((wall, cpu))
                if sha256_file(store / f"put-curl{run}") != expected:
                    sys.exit("curl's upload arrived damaged")
                (store / f"put-curl{run}").unlink()
                wall, cpu, proc = timed([args.binary, "--state", str(tmp / f"sp{run}"), "upload",
                                         f"{base}/put/tether{run}", str(src), "--id", "p", "--protocol", "put"])
                if json.loads(proc.stdout.decode().strip().splitlines()[-1])["outcome"] != "success" or \
                        sha256_file(store / f"put-tether{run}") != expected:
                    sys.exit("tether's PUT arrived damaged")
                (store / f"put-tether{run}").unlink()
                results["tether put"].append((wall, cpu))
                for name, extra in (("tether tus", []), ("tether tus, no reuse", ["--max-idle", "0"])):
                    wall, cpu, proc = timed([args.binary, "--state", str(tmp / f"st{run}{len(extra)}"), "upload",
                                             f"{base}/files/", str(src), "--id", "t", "--protocol", "tus"] + extra)
                    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
                    if result["outcome"] != "success":
                        sys.exit("tether's tus upload failed")
                    stored = [p for p in (store / "tus").iterdir() if p.suffix != ".json"]
                    if len(stored) != 1 or sha256_file(stored[0]) != expected:
                        sys.exit("tether's tus upload arrived damaged")
                    for p in (store / "tus").iterdir():
                        p.unlink()
                    results[name].append((wall, cpu))
                    connections[name] = {"opened": result["connections_opened"],
                                         "reused": result["connections_reused"]}
            mib = float(args.size_mib)
            best = report(results, mib)
            print(json.dumps({
                "throughput_ratio_tether_put_vs_curl": round(best["curl -T"][0] / best["tether put"][0], 3),
                "throughput_ratio_tether_tus_vs_curl": round(best["curl -T"][0] / best["tether tus"][0], 3),
                "throughput_ratio_tether_tus_no_reuse_vs_curl":
                    round(best["curl -T"][0] / best["tether tus, no reuse"][0], 3),
                "median_ratio_tether_tus_vs_curl":
                    round(median_wall(results["curl -T"]) / median_wall(results["tether tus"]), 3),
                "median_ratio_tether_tus_no_reuse_vs_curl":
                    round(median_wall(results["curl -T"]) / median_wall(results["tether tus, no reuse"]), 3),
                "tether_connections": connections,
                "tus_overhead_vs_put": round(best["tether tus"][0] / best["tether put"][0] - 1, 3),
                "cpu_ratio_tether_put_vs_curl": round(best["tether put"][1] / max(best["curl -T"][1], 1e-9), 3)}))
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
