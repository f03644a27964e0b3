#!/usr/bin/env bash
# test.sh - the whole test suite: a -Werror build run by ctest, then the same
# suite built with AddressSanitizer + UndefinedBehaviorSanitizer. The second
# build leaves MPI out (-DVAMOS_MPI=OFF): it proves that Vamos builds and
# works without it, and Open MPI's own allocations would fail LeakSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S . -B build -DVAMOS_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

cmake -S . -B build-asan -DVAMOS_WERROR=ON -DVAMOS_SANITIZE=ON -DVAMOS_MPI=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"
