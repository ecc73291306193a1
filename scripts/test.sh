#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the dependencies, builds out of tree
# (build/<preset>) and runs ctest. Presets run in order; default: dev (Clang, warnings as
# errors), then gcc-asan (GCC: Debug, warnings as errors, ASan+UBSan, benches built: the whole
# suite under ASan+UBSan), then tsan (Clang, ThreadSanitizer), then fuzz (Clang: only the
# libFuzzer targets, ASan+UBSan, each run from its corpus); clang-tidy after the dev build. The
# package tests (find_package, add_subdirectory, pkg-config) run in dev (Clang) and in the gcc
# preset. CI's time budget leaves out gcc and asan (the suite under Clang's ASan+UBSan, which
# gcc-asan covers for the same code); run them by hand.
#   scripts/test.sh                 # dev gcc-asan tsan fuzz
#   scripts/test.sh gcc             # GCC Debug with the package tests (find_package, add_subdirectory, pkg-config)
#   scripts/test.sh asan            # the whole suite under Clang's ASan+UBSan, fuzzers included
#   scripts/test.sh dev             # one preset
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
tether_install_deps --with-interop

presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(dev gcc-asan tsan fuzz)
jobs=$(nproc)
for preset in "${presets[@]}"; do
  start=$(date +%s)
  echo "== $preset: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "== $preset: test"
  ctest --preset "$preset" -j "$jobs"
  log="build/$preset/Testing/Temporary/LastTest.log"
  if [ -f "$log" ] && grep -q "Testing: fuzz\." "$log"; then
    echo "== $preset: fuzz statistics"
    awk '/Testing: fuzz\./ {name = $3} /stat::number_of_executed_units/ {n = $2}
         /stat::average_exec_per_sec/ {printf "%s: %s executions, %s/s\n", name, n, $2}' "$log"
  fi
  if [ "$preset" = dev ]; then
    echo "== clang-tidy"
    scripts/tidy.sh build/dev
  fi
  echo "== $preset: done in $(( $(date +%s) - start )) s"
done
# The command-line contracts other tools rely on, when their smoke checks sit beside the repo.
if [ -x ../shared/contracts/run_all.sh ]; then
  echo "== contract smoke checks"
  ../shared/contracts/run_all.sh "build/${presets[0]}"
fi
