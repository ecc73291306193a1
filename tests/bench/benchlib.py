"""Shared helpers of the transfer benchmarks: timing a child process, hashing a file, writing
a file of incompressible test data, a local nginx."""
import hashlib
import os
import resource
import socket
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(nginx, tmp, www, log=None, log_format="$body_bytes_sent", limit_rate=None):
    """Debian's nginx serving `www` on a free 127.0.0.1 port, its working files under `tmp`;
    with `log`, an access log with one `log_format` line per request (default: the body bytes it
    sent); with `limit_rate` (e.g. "16m"), every connection capped at that many bytes per second.
    Returns (process, port)."""
    port = free_port()
    access = f"log_format bytes '{log_format}'; access_log {log} bytes;" if log else "access_log off;"
    limit = f"limit_rate {limit_rate};" if limit_rate else ""
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
daemon off; worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 256; }}
http {{
  {access} sendfile on; tcp_nopush on;
  client_body_temp_path {tmp}/b; proxy_temp_path {tmp}/p; fastcgi_temp_path {tmp}/f;
  uwsgi_temp_path {tmp}/u; scgi_temp_path {tmp}/s;
  server {{ listen 127.0.0.1:{port}; root {www}; {limit} }}
}}
""")
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp)], stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)  # waiting for a separate process to listen
    sys.exit("nginx did not start")
