#!/usr/bin/env python3
"""What persistence costs and what a crash costs, for tether-transfer against a local nginx.

    reliability.py PATH/TO/tether-transfer [--size-mib 256] [--kills 3] [--runs 3]
                   [--config NAME='ARGS'] ...

For each configuration (default: the built-in defaults, plus any `--config name='--opt v ...'`),
each run downloads a file of random bytes from nginx on 127.0.0.1, SIGKILLs tether-transfer
`--kills` times at random moments (when its partial file has grown to a random size), then lets
the same command finish; the file must end byte-identical. nginx's access log gives the body
bytes it sent: the ratio to the file size is what the crashes cost. A clean download under
strace counts fsync/fdatasync calls (per GiB). Prints one JSON line per configuration and a
Markdown table (medians of the runs).
"""
import argparse
import json
import os
import pathlib
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import sha256_file, start_nginx, write_random_file


def logged_bytes(log):
    """Body bytes in the access log so far (nginx writes a line when a request ends)."""
    if not log.exists():
        return 0
    return sum(int(x) for x in log.read_text().split())


def wait_for_log(log, expected_lines, limit=10.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if log.exists() and len(log.read_text().split()) >= expected_lines:
            return
        time.sleep(0.05)


def one_series(binary, extra, url, size, kills, tmp, log, rng, expected):
    state = tmp / "state"
    dest = tmp / "dest.bin"
    shutil.rmtree(state, ignore_errors=True)
    if dest.exists():
        dest.unlink()
    part = state / "rel.part"
    before_bytes, before_lines = logged_bytes(log), len(log.read_text().split()) if log.exists() else 0
    cmd = [binary, "--state", str(state), "download", url, str(dest), "--id", "rel"] + extra
    for k in range(kills):
        have = part.stat().st_size if part.exists() else 0
        target = have + rng.randint(size // (4 * kills), size // (kills + 1))
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if part.exists() and part.stat().st_size >= target:
                break
            time.sleep(0.002)
        if proc.poll() is not None:
            sys.exit("tether-transfer finished before it could be killed: use a larger --size-mib")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    if done.returncode != 0 or sha256_file(dest) != expected:
        sys.exit(f"the download did not end byte-identical: {done.stderr.decode()[-400:]}")
    requests = len(log.read_text().split()) - before_lines
    wait_for_log(log, before_lines + requests)
    return (logged_bytes(log) - before_bytes) / size


def fsyncs_per_gib(binary, extra, url, size, tmp):
    if not shutil.which("strace"):
        return None
    state, dest, out = tmp / "state-strace", tmp / "strace.bin", tmp / "strace.txt"
    shutil.rmtree(state, ignore_errors=True)
    subprocess.run(["strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", str(out), binary, "--state",
                    str(state), "download", url, str(dest), "--id", "s"] + extra,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600, check=True)
    calls = 0
    for row in out.read_text().splitlines():
        parts = row.split()
        if parts and parts[-1] in ("fsync", "fdatasync"):
            calls += int(parts[3])
    dest.unlink()
    return round(calls * (1 << 30) / size)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--config", action="append", default=[], help="NAME='--option value ...'")
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    a = ap.parse_args()
    if not os.path.exists(a.nginx):
        sys.exit("nginx not found (apt-get install nginx-light)")
    configs = [("defaults", [])] + [(c.split("=", 1)[0], shlex.split(c.split("=", 1)[1])) for c in a.config]
    size = a.size_mib << 20
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory(prefix="tether-reliability-") as tmp:
        tmp = pathlib.Path(tmp)
        os.chmod(tmp, 0o755)  # nginx's workers may run as another user
        www = tmp / "www"
        www.mkdir()
        write_random_file(www / "file.bin", a.size_mib)
        expected = sha256_file(www / "file.bin")
        log = tmp / "access.log"
        nginx, port = start_nginx(a.nginx, tmp, www, log)
        url = f"http://127.0.0.1:{port}/file.bin"
        rows = []
        try:
            ratios = {name: [] for name, _ in configs}
            for _ in range(a.runs):  # configurations alternate within each round
                for name, extra in configs:
                    ratios[name].append(one_series(a.binary, extra, url, size, a.kills, tmp, log, rng, expected))
            for name, extra in configs:
                med = statistics.median(ratios[name])
                per_kill = (med - 1) * a.size_mib / a.kills
                row = {"config": name, "args": " ".join(extra), "size_mib": a.size_mib, "kills": a.kills,
                       "fetched_ratio_median": round(med, 3), "fetched_ratios": [round(r, 3) for r in ratios[name]],
                       "refetched_mib_per_kill": round(per_kill, 1),
                       "fsyncs_per_gib": fsyncs_per_gib(a.binary, extra, url, size, tmp)}
                rows.append(row)
                print(json.dumps(row))
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    print(f"\n{a.size_mib} MiB, {a.kills} SIGKILLs per download, {a.runs} runs (medians)\n")
    print("| configuration | bytes fetched / file size | re-fetched per kill | fsyncs per GiB |")
    print("|---|--:|--:|--:|")
    for r in rows:
        label = r["config"] + (f" (`{r['args']}`)" if r["args"] else "")
        print(f"| {label} | {r['fetched_ratio_median']:.3f} | {r['refetched_mib_per_kill']} MiB | {r['fsyncs_per_gib']} |")


if __name__ == "__main__":
    main()
