#!/usr/bin/env python3
"""What including a tether header costs a user's translation unit.

For each public header, one TU that includes only it is compiled with `-fsyntax-only`, and so is
the floor: a TU with just the Asio/Boost headers any asynchronous API needs
(any_completion_handler, any_io_executor, async_result, deferred, error_code). Runs alternate
(floor, header, floor, header, ...) and the medians are reported, with the ratio to the floor,
the preprocessed size, and whether OpenSSL, Beast or Boost.URL was pulled in.

  tests/bench/header_cost.py [--cxx clang++] [--runs 5] [--headers tether/ws/client.hpp,...]
Prints a Markdown table; exit 0.
"""
import argparse
import pathlib
import statistics
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
FLOOR = """#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/system/error_code.hpp>
"""
HEAVY = {"OpenSSL": "/openssl/", "Beast": "/boost/beast/", "Boost.URL": "/boost/url/"}


def public_headers():
    base = ROOT / "include"
    for p in sorted(base.rglob("*.hpp")):
        rel = p.relative_to(base).as_posix()
        if "/impl/" in rel or "/detail/" in rel or rel.endswith("src.hpp"):
            continue
        yield rel


def compile_seconds(cxx, tu):
    start = time.perf_counter()
    subprocess.run([cxx, "-std=c++20", "-fsyntax-only", f"-I{ROOT / 'include'}", tu], check=True)
    return time.perf_counter() - start


def facts(cxx, tu):
    pre = subprocess.run([cxx, "-std=c++20", "-E", f"-I{ROOT / 'include'}", tu], check=True,
                         capture_output=True, text=True).stdout
    deps = subprocess.run([cxx, "-std=c++20", "-M", f"-I{ROOT / 'include'}", tu], check=True,
                          capture_output=True, text=True).stdout
    heavy = [name for name, marker in HEAVY.items() if marker in deps]
    return pre.count("\n"), heavy


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cxx", default="clang++")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--headers", default="")
    a = ap.parse_args()
    headers = [h for h in a.headers.split(",") if h] or list(public_headers())
    with tempfile.TemporaryDirectory() as tmp:
        floor_tu = pathlib.Path(tmp) / "floor.cpp"
        floor_tu.write_text(FLOOR)
        rows = []
        floor_all = []
        for h in headers:
            tu = pathlib.Path(tmp) / (h.replace("/", "_") + ".cpp")
            tu.write_text(f"#include <{h}>\n")
            floor_t, head_t = [], []
            for _ in range(a.runs):
                floor_t.append(compile_seconds(a.cxx, floor_tu))
                head_t.append(compile_seconds(a.cxx, tu))
            floor_all += floor_t
            lines, heavy = facts(a.cxx, tu)
            f, t = statistics.median(floor_t), statistics.median(head_t)
            rows.append((h, t, f, t / f, lines, heavy))
        floor_lines, _ = facts(a.cxx, floor_tu)
    print(f"{a.cxx}, {a.runs} alternating runs each; floor (Asio API headers): "
          f"median {statistics.median(floor_all):.2f} s, {floor_lines} preprocessed lines\n")
    print("| header | seconds | floor (same runs) | ratio | preprocessed lines | heavy headers |")
    print("|---|--:|--:|--:|--:|---|")
    for h, t, f, r, lines, heavy in rows:
        print(f"| `{h}` | {t:.2f} | {f:.2f} | {r:.2f}x | {lines} | {', '.join(heavy) or 'none'} |")


if __name__ == "__main__":
    main()
