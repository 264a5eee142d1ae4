#!/usr/bin/env bash
# Sanitizer builds (issue 6, docs/RELIABILITY.md):
#  1. the runtime, reference, `halibit` command line and C++ tests with AddressSanitizer and
#     UndefinedBehaviorSanitizer (-fno-sanitize-recover=all: any report fails the test), then the
#     ctest suite in that build (golden networks, malformed model files, CLI error paths, ...)
#     and `halibit eval` / `halibit classify` with the shipped models;
#  2. the concurrency test (one Model, four threads with their own Sessions) with
#     ThreadSanitizer, compiled with clang: GCC's function multi-versioning in runtime/src/glue.cpp
#     (ifunc resolvers, run by the dynamic loader before the TSan runtime is up) crashes a GCC
#     TSan binary at startup; clang builds do not use it.
# The Halide kernels are not generated again: both builds link the kernel libraries of the host
# build (HALIBIT_KERNELS_FROM), which stay uninstrumented. So the host build must exist
# (scripts/build.sh). Build directories: build-asan/ and build-tsan/ (HALIBIT_ASAN_DIR,
# HALIBIT_TSAN_DIR; HALIBIT_HOST_BUILD for the host build).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
host=${HALIBIT_HOST_BUILD:-$root/build}
asan=${HALIBIT_ASAN_DIR:-$root/build-asan}
tsan=${HALIBIT_TSAN_DIR:-$root/build-tsan}
jobs=$(nproc)
export PATH="$PATH:/usr/lib/llvm-14/bin"  # llvm-symbolizer, for readable sanitizer reports
start=$SECONDS

if [ ! -f "$host/runtime/generated/halibit_kernel_table.inc" ]; then
    echo "sanitize: no host build with kernels in $host (run scripts/build.sh first)" >&2
    exit 1
fi

# -O1 with line tables: half the compile time of -O2 -g (the ASan + UBSan build of the tests is
# most of this script's time), and assertions stay on.
configure() {  # dir sanitizers [cmake args...]
    local dir=$1 sanitizers=$2
    shift 2
    cmake -S . -B "$dir" -G Ninja "$@" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
        -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DHALIBIT_BUILD_BENCH=OFF -DHALIBIT_KERNELS_FROM="$host" \
        -DHALIBIT_SANITIZE="$sanitizers" >/dev/null
}

# Any report is an error; leaks too. The uninstrumented Halide kernels are not checked.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

status=0

echo "sanitize: AddressSanitizer + UndefinedBehaviorSanitizer build in $asan"
configure "$asan" address,undefined
ninja -C "$asan" -j "$jobs" >/dev/null
# The golden fixture (scripts/make_golden.sh) skips models that are up to date: reuse the host's.
if [ -d "$host/golden" ] && [ ! -d "$asan/golden" ]; then cp -a "$host/golden" "$asan/golden"; fi
# Not run here: codegen (inspects the host build's assembly), install (an uninstrumented
# consumer cannot link the instrumented library), python (no C++).
(cd "$asan" && ctest --output-on-failure -j "$jobs" -LE 'codegen|install|python') || status=1
# The shipped models through the instrumented command line (ctest shipped_models, excluded
# above with the python label, runs all 10,000 test images on every ISA): eval on the first
# 1,000 Fashion-MNIST test images (gzip IDX), classify on the sample JPEGs.
for m in models/fashion-*.halibit; do
    [ -f "$m" ] || continue
    if [ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
        "$asan/apps/halibit" eval "$m" --limit 1000 >/dev/null || { echo "sanitize: halibit eval $m failed"; status=1; }
    fi
    "$asan/apps/halibit" classify "$m" models/samples/*.jpg >/dev/null || { echo "sanitize: halibit classify $m failed"; status=1; }
done

echo "sanitize: ThreadSanitizer build in $tsan"
configure "$tsan" thread -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
ninja -C "$tsan" -j "$jobs" halibit_test_concurrency >/dev/null
# Halide's runtime (linked from the host build, uninstrumented) synchronises its thread pool
# with its own locks built on atomics, which TSan cannot see; TSan does see the pthread calls
# of Halide's parking lot (a mutex initialised by one session's thread, locked by another's
# after a hand-off through those locks) and reports a race that is not one. Reports whose stack
# is inside Halide's runtime are suppressed; halibit's own code is not.
printf '%s\n' 'race:Halide::Runtime::Internal::' >"$tsan/tsan.supp"
export TSAN_OPTIONS="$TSAN_OPTIONS:suppressions=$tsan/tsan.supp"
HALIBIT_GOLDEN_DIR="$asan/golden" "$tsan/tests/halibit_test_concurrency" --gtest_repeat=20 --gtest_brief=1 || status=1

echo "sanitize: $([ $status = 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s"
exit $status
