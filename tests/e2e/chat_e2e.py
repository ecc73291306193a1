#!/usr/bin/env python3
"""End-to-end: the real chat_server and two chat_client processes over stdin/stdout pipes.

A line from one client appears at the other; the server is killed (SIGKILL) and restarted on
the same port; both clients reconnect; a line typed during the outage arrives after it, once.
Every wait is bounded; exits non-zero on the first failed expectation.

usage: chat_e2e.py CHAT_SERVER CHAT_CLIENT
"""
import os
import queue
import signal
import subprocess
import sys
import threading
import time

server_bin, client_bin = sys.argv[1], sys.argv[2]
procs = []


def fail(msg):
    print("FAIL:", msg, flush=True)
    for p in procs:
        p.kill()
    sys.exit(1)


class Proc:
    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1)
        procs.append(self.p)
        self.lines = []
        self.q = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.q.put(line.rstrip("\n"))

    def send(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def expect(self, pred, what, timeout=15):
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if pred(line):
                return line
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.lines.append(line)
            if pred(line):
                return line
        fail(f"{what} (saw: {self.lines[-8:]})")


def start_server(port):
    s = Proc([server_bin, "--port", str(port)])
    line = s.expect(lambda l: l.startswith("listening on "), "server listening")
    return s, int(line.split()[-1])


server, port = start_server(0)
url = f"ws://127.0.0.1:{port}/chat"
alice = Proc([client_bin, "--url", url, "--name", "alice"])
bob = Proc([client_bin, "--url", url, "--name", "bob"])
alice.expect(lambda l: l == "* connected", "alice connected")
bob.expect(lambda l: l == "* connected", "bob connected")
bob.expect(lambda l: "online:" in l and "bob" in l, "bob sees who is online")

alice.send("hello bob")
bob.expect(lambda l: l.endswith("] alice: hello bob"), "bob receives alice's line")
alice.expect(lambda l: "hello bob" in l and "(delivered #" in l, "alice sees her line delivered")

server.p.send_signal(signal.SIGKILL)
server.p.wait(timeout=5)
alice.expect(lambda l: l.startswith("* reconnecting in "), "alice reports reconnecting")
bob.expect(lambda l: l.startswith("* reconnecting in "), "bob reports reconnecting")

alice.send("typed during the outage")
alice.expect(lambda l: "(pending) typed during the outage" in l, "alice shows the line as pending")

server, port2 = start_server(port)
if port2 != port:
    fail(f"server restarted on {port2}, wanted {port}")
alice.expect(lambda l: l == "* connected" and alice.lines.count("* connected") >= 2, "alice reconnects", 20)
bob.expect(lambda l: l == "* connected" and bob.lines.count("* connected") >= 2, "bob reconnects", 20)
bob.expect(lambda l: l.endswith("] alice: typed during the outage"), "the outage line arrives at bob", 20)
alice.expect(lambda l: "typed during the outage" in l and "(delivered #" in l, "alice sees it delivered", 20)

# Once: give any duplicate time to show up behind a marker line, then count.
alice.send("marker")
bob.expect(lambda l: l.endswith("] alice: marker"), "marker arrives")
dups = [l for l in bob.lines if l.endswith("] alice: typed during the outage")]
if len(dups) != 1:
    fail(f"outage line arrived {len(dups)} times")

alice.send("/quit")
bob.send("/quit")
for p in (alice.p, bob.p):
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        fail("a client did not exit after /quit")
server.p.terminate()
server.p.wait(timeout=5)
print("chat e2e: 1 passed, 0 failed", flush=True)
