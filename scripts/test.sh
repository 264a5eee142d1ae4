#!/usr/bin/env bash
# Sets everything up, builds host and arm64, and runs the whole test suite: x86 (avx512, avx2,
# scalar) and arm64 under qemu, then the sanitizer builds (ASan + UBSan ctest, TSan concurrency
# test) and 60 s of each libFuzzer target (docs/RELIABILITY.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh --arm64
status=0
(cd build && ctest --output-on-failure -j "$(nproc)") || status=1
(cd build-arm64 && ctest --output-on-failure -j "$(nproc)") || status=1
scripts/sanitize.sh || status=1
scripts/fuzz.sh 60 || status=1
exit $status
