"""Shared helpers of the transfer benchmarks: timing a child process, hashing a file, writing
a file of incompressible test data."""
import hashlib
import os
import resource
import subprocess
import sys
import time


def timed(cmd):
    """Runs `cmd`; returns (wall seconds, CPU seconds of the child, the completed process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return wall, cpu, proc


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_random_file(path, mib):
    with open(path, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(mib):
            f.write(block[i % 251:] + block[:i % 251])


def median_wall(runs):
    walls = sorted(w for w, _ in runs)
    return walls[len(walls) // 2]


def report(results, mib):
    """Prints one JSON line per client (its best run by wall time, and the median wall time:
    page-cache first-touch costs on a virtual machine make single runs noisy); returns the best
    runs."""
    import json
    best = {k: min(v, key=lambda x: x[0]) for k, v in results.items()}
    for k, (wall, cpu) in best.items():
        print(json.dumps({"client": k, "mib": mib, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                          "median_wall_s": round(median_wall(results[k]), 3), "mib_per_s": round(mib / wall, 1),
                          "runs": [[round(a, 3), round(b, 3)] for a, b in results[k]]}))
    return best
