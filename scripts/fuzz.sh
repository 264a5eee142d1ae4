#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/: model loader + Session, JPEG/PNG, IDX, .npy) with clang,
# AddressSanitizer and UndefinedBehaviorSanitizer, and runs each for a bounded time over its
# seed corpus (fuzz/corpus/<target>/), as many at once as there are cores.
#
#   scripts/fuzz.sh [seconds-per-target]        (default 60)
#
# A crash, a sanitizer report, an exception other than halibit::Error, an input slower than
# 10 s or an allocation over 2 GB fails the run; the input is kept in
# build-fuzz/fuzz/run-<target>/artifacts/ (replay: build-fuzz/fuzz/halibit_fuzz_<target> FILE).
# Like scripts/sanitize.sh it links the Halide kernels of the host build (scripts/build.sh).
# Build directory: build-fuzz/ (HALIBIT_FUZZ_DIR; HALIBIT_HOST_BUILD for the host build).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-60}
host=${HALIBIT_HOST_BUILD:-$root/build}
dir=${HALIBIT_FUZZ_DIR:-$root/build-fuzz}
jobs=$(nproc)
export PATH="$PATH:/usr/lib/llvm-14/bin"  # llvm-symbolizer, for readable sanitizer reports
targets=(model image idx npy)
start=$SECONDS

if [ ! -f "$host/runtime/generated/halibit_kernel_table.inc" ]; then
    echo "fuzz: no host build with kernels in $host (run scripts/build.sh first)" >&2
    exit 1
fi

cmake -S . -B "$dir" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHALIBIT_BUILD_TESTS=OFF -DHALIBIT_BUILD_BENCH=OFF \
    -DHALIBIT_BUILD_FUZZERS=ON -DHALIBIT_SANITIZE=address,undefined -DHALIBIT_KERNELS_FROM="$host" >/dev/null
ninja -C "$dir" -j "$jobs" "${targets[@]/#/halibit_fuzz_}" >/dev/null
echo "fuzz: built in $((SECONDS - start)) s; ${seconds} s per target, $jobs at a time"

export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

run() {  # target
    local t=$1 work="$dir/fuzz/run-$1"
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/artifacts"
    # New inputs go to run-<target>/corpus; the seeds in fuzz/corpus stay as they are.
    "$dir/fuzz/halibit_fuzz_$t" "$work/corpus" "fuzz/corpus/$t" -dict="fuzz/$t.dict" -max_total_time="$seconds" \
        -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/" >"$work/log" 2>&1
}

declare -A pid
status=0
finish() {  # target
    local t=$1 work="$dir/fuzz/run-$1" runs
    if wait "${pid[$t]}"; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
        echo "fuzz: $t: ${runs:-?} executions, no crash"
    else
        status=1
        echo "fuzz: $t: FAILED (log: $work/log, input: $(ls "$work/artifacts" | head -1))"
        grep -E "ERROR|SUMMARY|runtime error|fuzz_$t:|Test unit written" "$work/log" | head -20
    fi
}
running=()
for t in "${targets[@]}"; do
    run "$t" &
    pid[$t]=$!
    running+=("$t")
    if ((${#running[@]} >= jobs)); then
        finish "${running[0]}"
        running=("${running[@]:1}")
    fi
done
for t in "${running[@]}"; do finish "$t"; done

echo "fuzz: $([ $status = 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s"
exit $status
