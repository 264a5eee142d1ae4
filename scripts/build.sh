#!/usr/bin/env bash
# Builds halibit: the host (x86) build in build/, then, with --arm64, the aarch64 cross build in
# build-arm64/ whose generators come from the host build.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build -j "$jobs"

if [ "${1:-}" = "--arm64" ]; then
    cmake -S . -B build-arm64 -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64.cmake \
        -DHalideHelpers_DIR=/usr/lib/x86_64-linux-gnu/cmake/HalideHelpers14 \
        -Dhalibit-halide_generators_ROOT="$PWD/build" >/dev/null
    ninja -C build-arm64 -j "$jobs"
fi
