#!/usr/bin/env python3
"""tether-transfer against a real tus server (@tus/server + @tus/file-store from npm).

    tus_interop.py PATH/TO/tether-transfer NODE_MODULES_DIR

A 64 MiB upload goes through a fault-injecting proxy that cuts connections in the middle of
PATCH bodies, and the tether-transfer process is killed with SIGKILL twice; each time the same
command runs again. At the end the server's file must have the source's SHA-256, and the bytes
the client sent (all attempts, as counted by the proxy) must stay within 1.2x the file size.
"""
import hashlib
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading

SIZE = 64 << 20


class Proxy:
    """Forwards 127.0.0.1:port to the server; counts client->server bytes; cuts the connection
    after `cut_after` bytes on the connections listed in `cuts` (by connection number)."""

    def __init__(self, target_port, cuts):
        self.target_port = target_port
        self.cuts = cuts
        self.sent = 0
        self.connections = 0
        self.cond = threading.Condition()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.cond:
                self.connections += 1
                n = self.connections
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            cut_after = self.cuts.get(n)
            threading.Thread(target=self.pump, args=(client, upstream, cut_after, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, client, None, False), daemon=True).start()

    def pump(self, src, dst, cut_after, count):
        moved = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if cut_after is not None and moved + len(data) > cut_after:
                    data = data[: max(0, cut_after - moved)]
                    if data:
                        dst.sendall(data)
                        self.add(len(data))
                    raise ConnectionAbortedError("cut")
                dst.sendall(data)
                moved += len(data)
                if count:
                    self.add(len(data))
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def add(self, n):
        with self.cond:
            self.sent += n
            self.cond.notify_all()

    def wait_sent(self, n, timeout):
        with self.cond:
            return self.cond.wait_for(lambda: self.sent >= n, timeout)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, node_modules = sys.argv[1], sys.argv[2]
    here = pathlib.Path(__file__).resolve().parent
    rng = random.Random(int(os.environ.get("TETHER_TUS_SEED", random.randrange(1 << 30))))
    with tempfile.TemporaryDirectory(prefix="tether-tus-interop-") as tmp:
        tmp = pathlib.Path(tmp)
        store = tmp / "store"
        store.mkdir()
        src = tmp / "src.bin"
        src.write_bytes(rng.randbytes(SIZE))
        expected = hashlib.sha256(src.read_bytes()).hexdigest()
        env = dict(os.environ, NODE_PATH=node_modules)
        server = subprocess.Popen(["node", str(here / "tus_server.js"), str(store)], stdout=subprocess.PIPE, env=env)
        try:
            line = server.stdout.readline().decode()
            if not line.startswith("PORT "):
                sys.exit(f"tus server did not start: {line!r}")
            # Cut three connections mid-body (connection numbers count every request's connection).
            proxy = Proxy(int(line.split()[1]), {4: 3 << 20, 7: 5 << 20, 11: 1 << 20})
            url = f"http://127.0.0.1:{proxy.port}/files"
            state = tmp / "state"
            cmd = [binary, "--state", str(state), "upload", url, str(src), "--id", "interop", "--protocol", "tus",
                   "--chunk-size", str(8 << 20)]
            for kill_at in (rng.randrange(10 << 20, 25 << 20), rng.randrange(35 << 20, 50 << 20)):
                p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                reached = proxy.wait_sent(kill_at, 120)
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=30)
                print(f"killed at {proxy.sent} bytes sent", file=sys.stderr)
                if not reached:
                    sys.exit("the upload made no progress before the kill")
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
            print(p.stderr.decode()[-2000:], file=sys.stderr)
            if p.returncode != 0:
                sys.exit(f"final run exited {p.returncode}: {p.stdout.decode()}")
            files = [f for f in store.iterdir() if not f.name.endswith(".json")]
            if len(files) != 1:
                sys.exit(f"expected one upload on the server, found {[f.name for f in files]}")
            got = hashlib.sha256(files[0].read_bytes()).hexdigest()
            ratio = proxy.sent / SIZE
            print(f"server file sha256 {got[:16]}..., expected {expected[:16]}...; "
                  f"bytes sent {proxy.sent} = {ratio:.3f}x; connections {proxy.connections}")
            if got != expected:
                sys.exit("FAIL: the server's file differs from the source")
            if ratio > 1.2:
                sys.exit(f"FAIL: sent {ratio:.3f}x the file size (limit 1.2x)")
            print("PASS")
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
