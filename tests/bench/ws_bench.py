#!/usr/bin/env python3
"""Runs ws_echo_bench for tether, for the plain Beast baseline (tuned as a demanding Beast user
tunes it: 64 KiB write buffer, TCP_NODELAY) and for the raw-TCP ceiling (the same bytes through
the same server's raw echo), alternating, K times per case, and prints the medians of each with
their ratios. Single runs on a virtual machine vary by +-30 %: medians of alternating runs are
what is compared.

The echo server runs as its own process (`ws_echo_bench --serve 0`). With --layout split (the
default) the server is pinned to CPU 1 and each client to CPU 0 (taskset); with --layout same
both share CPU 0, as a client and server on one busy core would.

    ws_bench.py BUILD/tests/bench/ws_echo_bench [--runs K] [--cases 16:1,16:64,...] [--layout split|same] [--tls]

With --tls everything runs over TLS (wss://, and the ceiling over raw TLS): a throwaway P-256
certificate for 127.0.0.1 is made with `openssl req`, the server uses it and every client
trusts it (--ca) and verifies the server's name.

A case is SIZE:INFLIGHT; the message count is chosen so each run takes about a second. Reported
per client: msgs/s, p50 latency, client CPU per message (user + system of the client process)
and its peak resident memory (VmHWM); and the server's CPU per message and how busy it was (its
CPU time over the client run's wall time): near 1.0 the server, not the client, sets the rate.
The WebSocket clients' server unmasks and frames every message, streaming (what a read brings
goes back in one write, a partial frame's bytes too, as the raw echo does); the ceiling's only
echoes bytes, so at large sizes the WebSocket server saturates before the ceiling's does. Four more cases compare tether with Beast only (the
ceiling has no WebSocket handshake):
  connect  the median time of 1,000 connects (TCP, TLS with --tls, and the upgrade) one after
           another on one running event loop, as an application connects and reconnects,
           alternating; against Beast both bare and with the connect and upgrade timeouts
           tether has (beast-timeouts);
  connect-fresh  the same, each connect on an event loop of its own, made for it (a process
           starting pays this, and its caches start empty);
  idle     resident memory per idle connection, 1,000 of them (plain only: skipped with --tls);
  busy     peak resident memory of the process and msgs/s with 1 and with 100 connections busy
           at once, 1 KiB messages, 16 in flight on each."""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

DEFAULT_CASES = "16:1,16:64,1024:64,65536:16,1048576:4,connect,connect-fresh,idle,busy"
COUNTS = {16: 200000, 1024: 200000, 65536: 20000, 1048576: 1000}
CLIENTS = ("beast", "tether", "tcp")


def pinned(cpu, cmd):
    if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > cpu:
        return ["taskset", "-c", str(cpu)] + cmd
    return cmd


def run_json(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300, check=False)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-300:]}")
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def message_args(size, inflight):
    """The arguments of a SIZE:INFLIGHT case; the count makes a run take about a second."""
    count = COUNTS.get(size, 10000)
    if inflight == 1:
        count = min(count, 50000)
    return ["--size", str(size), "--count", str(count), "--inflight", str(inflight)]


def cpu_seconds(pid):
    """A process's CPU time (user + system) so far, in seconds (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alternating(a, clients, url, args):
    """Runs `args` for each of `clients` in turn, a.runs rounds; each client's JSON lines, with
    the server's CPU seconds over the run (server_cpu_s) and the run's wall time (wall_s)."""
    res = {c: [] for c in clients}
    for _ in range(a.runs):
        for client in clients:
            cpu0, t0 = cpu_seconds(a.server_pid), time.monotonic()
            r = run_json(pinned(0, [a.binary, "--url", url, "--client", client] + args))
            r["server_cpu_s"], r["wall_s"] = cpu_seconds(a.server_pid) - cpu0, time.monotonic() - t0
            res[client].append(r)
    return res


def tether_and_beast(a, url, extra, args, keys, clients=("beast", "tether")):
    """Runs `args` for Beast and tether (or `clients`) alternating a.runs times; the medians of
    `keys` for each, keyed CLIENT_KEY."""
    res = alternating(a, clients, url, args + extra)
    out = {}
    for c, runs in res.items():
        for k in keys:
            out[f"{c}_{k}"] = statistics.median(r[k] for r in runs)
    return out


def special_case(a, case, url, extra):
    """The connect, idle and busy cases; None when a case is skipped."""
    out = {"case": case, "runs": a.runs, "layout": a.layout, "tls": a.tls, "io_hint": a.io_hint}
    if case in ("connect", "connect-fresh"):
        # beast-timeouts: the baseline with the connect and upgrade timeouts tether has.
        flag = "--connects" if case == "connect" else "--connects-fresh"
        out.update(tether_and_beast(a, url, extra, [flag, "1000"], ["median_connect_us"],
                                    ("beast", "beast-timeouts", "tether")))
        out["ratio_connect_tether_to_beast"] = round(out["tether_median_connect_us"] / out["beast_median_connect_us"], 2)
        out["ratio_connect_tether_to_beast_timeouts"] = round(
            out["tether_median_connect_us"] / out["beast-timeouts_median_connect_us"], 2)
    elif case == "idle":
        if a.tls:
            return None
        out.update(tether_and_beast(a, url, extra, ["--idle", "1000"], ["per_connection_kib"]))
    elif case == "busy":
        for n in (1, 100):
            got = tether_and_beast(a, url, extra, ["--size", "1024", "--count", "200000", "--inflight", "16",
                                                   "--connections", str(n)], ["peak_rss_kib", "msgs_per_s"])
            out.update({f"{k}_{n}_connections": v for k, v in got.items()})
    else:
        sys.exit(f"unknown case {case}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cases", default=DEFAULT_CASES)
    ap.add_argument("--layout", choices=("split", "same"), default="split")
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--io-hint", choices=("1", "unsafe-io"), default="1",
                    help="every client's io_context concurrency hint (unsafe-io: one thread promised to Asio)")
    a = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="ws-bench-")
    server_extra, client_extra = [], []
    if a.tls:
        cert, key = os.path.join(tmp.name, "cert.pem"), os.path.join(tmp.name, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1", "-days", "1"], check=True, capture_output=True)
        server_extra = ["--tls-cert", cert, "--tls-key", key]
        client_extra = ["--ca", cert]
    client_extra += ["--io-hint", a.io_hint]
    server = subprocess.Popen(pinned(1 if a.layout == "split" else 0, [a.binary, "--serve", "0"] + server_extra),
                              stdout=subprocess.PIPE, text=True)
    a.server_pid = server.pid  # taskset executes the server in its own process
    try:
        port = int(server.stdout.readline().strip())
        url = f"{'wss' if a.tls else 'ws'}://127.0.0.1:{port}/"
        for case in a.cases.split(","):
            if ":" not in case:
                special = special_case(a, case, url, client_extra)
                if special:
                    print(json.dumps(special), flush=True)
                continue
            size, inflight = (int(x) for x in case.split(":"))
            res = alternating(a, CLIENTS, url, message_args(size, inflight) + client_extra)

            def med(client, key):
                return statistics.median(r[key] for r in res[client])

            out = {"size": size, "inflight": inflight, "runs": a.runs, "layout": a.layout, "tls": a.tls,
                   "io_hint": a.io_hint}
            for c in CLIENTS:
                out[f"{c}_msgs_per_s"] = round(med(c, "msgs_per_s"))
                out[f"{c}_p50_us"] = med(c, "p50_us")
                out[f"{c}_cpu_us_per_msg"] = round(med(c, "cpu_us_per_msg"), 3)
                out[f"{c}_peak_rss_kib"] = round(med(c, "peak_rss_kib"))
                out[f"{c}_server_cpu_us_per_msg"] = round(
                    statistics.median(r["server_cpu_s"] * 1e6 / r["count"] for r in res[c]), 3)
                out[f"{c}_server_busy"] = round(statistics.median(r["server_cpu_s"] / r["wall_s"] for r in res[c]), 2)
            out["ratio_tether_to_beast"] = round(med("tether", "msgs_per_s") / med("beast", "msgs_per_s"), 2)
            out["ratio_tcp_ceiling_to_beast"] = round(med("tcp", "msgs_per_s") / med("beast", "msgs_per_s"), 2)
            out["ratio_tether_to_tcp_ceiling"] = round(med("tether", "msgs_per_s") / med("tcp", "msgs_per_s"), 2)
            out["ratio_p50_tether_to_beast"] = round(med("tether", "p50_us") / med("beast", "p50_us"), 3)
            print(json.dumps(out), flush=True)
    finally:
        server.kill()
        server.wait()
        tmp.cleanup()


if __name__ == "__main__":
    main()
