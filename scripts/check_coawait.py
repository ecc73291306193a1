#!/usr/bin/env python3
"""Keeps GCC 12's coroutine miscompilations out of tether's sources.

GCC 12 mishandles temporaries whose lifetime spans a suspension inside a `co_await`
full-expression: an aggregate or array built from a braced list (`f({7, "why"})`,
`f({{"k", v}})`: destroyed twice, or rejected as "array used as initializer"), a lambda
capturing by value (its closure destroyed twice), and the class-type result of a conditional
operator whose arms co_await (`x = c ? co_await a() : co_await b();`: freed twice). Both were reproduced under GCC 12.2 with
ASan (double free); Clang is correct, and std::string temporaries made from literals or by
concatenation are handled correctly by both. The rule in tether's code: such arguments are
bound to named variables before the `co_await`. This script finds every full-expression
containing `co_await` and reports those that build one (braced lists of any type are reported,
which is stricter than needed and keeps the rule simple).

  scripts/check_coawait.py [DIR...]      (default: include src examples tests)
  scripts/check_coawait.py --self-test   (the rule catches the known-bad forms, passes good ones)
Exit 1 with one line per finding, 0 when clean.
"""
import pathlib
import re
import sys

ROOTS = [a for a in sys.argv[1:] if not a.startswith("--")] or ["include", "src", "examples", "tests"]
SUFFIXES = {".hpp", ".ipp", ".cpp"}


def strip(text: str) -> str:
    """Comments and character literals blanked (same length); string literals kept as `"…"`."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif c == '"' and text.startswith('R"', i - 1):
            m = re.match(r'"([^(]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i) + len(m.group(1)) + 2
            out.append('"' + " " * (end - i - 2) + '"'); i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('"' + " " * (j - i - 1) + '"'); i = j + 1
        elif c == "'" and not (i > 0 and text[i - 1].isalnum()):
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            out.append(" " * (j - i + 1)); i = j + 1
        else:
            out.append(c); i += 1
    return "".join(out)


def full_expression(code: str, at: int) -> tuple[int, int]:
    """The statement around position `at`: from the previous `;`, `{` or `}` at depth 0 to the next `;`."""
    depth, start = 0, at
    while start > 0:
        c = code[start - 1]
        if c in ")]":
            depth += 1
        elif c in "([":
            if depth == 0:
                break
            depth -= 1
        elif c in ";{}" and depth == 0:
            break
        start -= 1
    depth, end = 0, at
    while end < len(code):
        c = code[end]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif c == ";" and depth == 0:
            break
        end += 1
    return start, end


LAMBDA_BODY = re.compile(r"(\)|\]|mutable|noexcept|->\s*[\w:<>, ]+)\s*$")


def findings(expr: str) -> list[str]:
    found = []
    # A lambda capturing anything by value is a closure with members: a class-type temporary.
    for m in re.finditer(r"\[([^\[\]]*)\]\s*(\(|\{|mutable)", expr):
        caps = [c.strip() for c in m.group(1).split(",") if c.strip()]
        if any(c != "&" and c != "this" and not c.startswith("&") for c in caps):
            found.append("a lambda capturing by value")
    # A co_await in an arm of the conditional operator: GCC 12 builds the result (a class
    # type here) as a temporary of the whole expression and frees it twice.
    if re.search(r"[?:]\s*co_await\b", expr):
        found.append("a co_await in an arm of ?:")
    # Braced lists that are not the body of a lambda or of a block.
    for m in re.finditer(r"\{", expr):
        before = expr[: m.start()]
        if LAMBDA_BODY.search(before):
            continue
        found.append("a braced initializer")
        break
    return found


def check_code(code: str):
    """(line, what) for each finding in one file's text."""
    code = strip(code)
    seen = set()
    for m in re.finditer(r"\bco_await\b", code):
        start, end = full_expression(code, m.start())
        if (start, end) in seen:
            continue
        seen.add((start, end))
        expr = code[m.start():end]
        if re.search(r"[?:]\s*co_await\b", code[start:end]) and not re.search(r"[?:]\s*co_await\b", expr):
            expr = code[start:end]
        # A lambda body passed to co_await is its own scope: its statements are checked alone.
        for what in sorted(set(findings(strip_lambda_bodies(expr)))):
            yield code.count("\n", 0, m.start()) + 1, what


BAD = [
    'co_await c.async_close({1000, "bye"}, nothrow);',
    'co_await c.async_close({}, nothrow);',
    'auto e = co_await call(j, {{"Upload-Length", n}}, res);',
    'n += co_await [s]() -> asio::awaitable<int> { co_return 1; }();',
    'co_await run([x = std::move(x)] { return x; });',
    'res = k == download ? co_await run_download(j) : co_await run_upload(j);',
]
GOOD = [
    'close_reason why{1000, "bye"};\nco_await c.async_close(why, nothrow);',
    'co_await c.async_send_text("a literal", nothrow);',
    'co_await f(std::string(a) + "b", std::to_string(n));',
    'co_await with_connection(j, url, [&](auto& s) -> asio::awaitable<int> { T t{1, 2}; co_return 0; });',
    'if (x) { co_await t.async_wait(nothrow); }',
]


def self_test() -> int:
    bad = [b for b in BAD if not list(check_code(b))]
    good = [g for g in GOOD if list(check_code(g))]
    for b in bad:
        print("self-test: not caught:", b)
    for g in good:
        print("self-test: wrongly caught:", g)
    print(f"self-test: {len(BAD) - len(bad)} of {len(BAD)} bad forms caught, "
          f"{len(GOOD) - len(good)} of {len(GOOD)} good forms passed")
    return 1 if bad or good else 0


def main() -> int:
    if "--self-test" in sys.argv:
        return self_test()
    problems = 0
    for root in ROOTS:
        for path in sorted(pathlib.Path(root).rglob("*")):
            if path.suffix not in SUFFIXES or not path.is_file():
                continue
            for line, what in check_code(path.read_text(encoding="utf-8")):
                print(f"{path}:{line}: {what} inside a co_await expression (bind it to a named variable first)")
                problems += 1
    print(f"check_coawait: {problems} finding(s)")
    return 1 if problems else 0


def strip_lambda_bodies(expr: str) -> str:
    """Removes the bodies of lambdas (their statements are checked on their own)."""
    out, i = [], 0
    while i < len(expr):
        if expr[i] == "{" and LAMBDA_BODY.search(expr[:i]):
            depth, j = 1, i + 1
            while j < len(expr) and depth:
                depth += {"{": 1, "}": -1}.get(expr[j], 0)
                j += 1
            out.append("{}")
            i = j
        else:
            out.append(expr[i]); i += 1
    return "".join(out)


if __name__ == "__main__":
    sys.exit(main())
