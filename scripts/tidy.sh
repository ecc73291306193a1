#!/usr/bin/env bash
# clang-tidy (.clang-tidy at the top: bug-finding checks, warnings are errors) over every
# translation unit of the library, the examples and the test fixtures, using the compile
# commands of a configured build directory.
#   scripts/tidy.sh build/dev
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/dev}
[ -f "$build/compile_commands.json" ] || { echo "no $build/compile_commands.json: configure with a preset first" >&2; exit 2; }
files=(src/*.cpp examples/*/*.cpp tests/fixtures/*.cpp)
printf '%s\n' "${files[@]}" |
  xargs -P "$(nproc)" -I{} sh -c 'clang-tidy --quiet -p "$0" "$1" 2>/dev/null || { echo "clang-tidy: $1 has findings" >&2; exit 255; }' "$build" {}
echo "clang-tidy: ${#files[@]} files clean"
