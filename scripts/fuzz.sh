#!/usr/bin/env bash
# fuzz.sh - build the libFuzzer harnesses with clang-19 and fuzz one or all.
#
#     scripts/fuzz.sh [--time SECONDS] [--jobs N] [HARNESS...]
#
# HARNESS is dsl, weights, translate, tunedb or request (default: all, one after the
# other). Each runs for SECONDS (default 600) from its corpus in
# tests/fuzz/corpus/HARNESS, with the sanitizers; new inputs that add
# coverage are merged back into that corpus (commit them), and a crash
# stops the run, leaving its input in build-fuzz/findings/HARNESS/.
# The log of each run is build-fuzz/fuzz-HARNESS.log.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=600 jobs=1
harnesses=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) secs="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    dsl|weights|translate|tunedb|request) harnesses+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown harness or option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#harnesses[@]} -gt 0 ] || harnesses=(dsl weights translate tunedb request)

if ! command -v clang-19 >/dev/null; then
  echo "fuzz.sh: installing clang-19 and libclang-rt-19-dev" >&2
  ${SUDO:-$( [ "$(id -u)" = 0 ] || echo sudo )} apt-get install -y -q clang-19 libclang-rt-19-dev >/dev/null
fi
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang-19 -DVAMOS_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target $(printf 'fuzz_%s ' "${harnesses[@]}")

export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1
for h in "${harnesses[@]}"; do
  corpus=tests/fuzz/corpus/$h new=build-fuzz/new/$h findings=build-fuzz/findings/$h
  mkdir -p "$new" "$findings"
  extra=()
  [ "$h" = dsl ] && extra=(tests/lang/bad)
  echo "fuzz.sh: $h for ${secs}s" >&2
  par=()   # -jobs writes each job's log as fuzz-N.log in the working directory: build-fuzz/
  [ "$jobs" -gt 1 ] && par=(-jobs="$jobs" -workers="$jobs")
  (cd build-fuzz && tests/fuzz/fuzz_"$h" ../"$new" ../"$corpus" "${extra[@]/#/../}" -max_total_time="$secs" \
    "${par[@]}" -timeout=10 -rss_limit_mb=4096 -max_len=16384 -artifact_prefix=../"$findings/" \
    -print_final_stats=1) >build-fuzz/fuzz-"$h".log 2>&1 ||
    { echo "fuzz.sh: $h found a problem: see build-fuzz/fuzz-$h.log and $findings/" >&2; exit 1; }
  # keep only inputs that add coverage over what the corpus has
  build-fuzz/tests/fuzz/fuzz_"$h" -merge=1 "$corpus" "$new" >>build-fuzz/fuzz-"$h".log 2>&1
  grep -E "stat::number_of_executed_units|cov: " build-fuzz/fuzz-"$h".log | tail -3 >&2
done
