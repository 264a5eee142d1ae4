#!/usr/bin/env bash
# The main job until the classification demo lands: set up, build, and print the kernel
# benchmark summary (halibit kernels vs oneDNN and XNNPACK int8 on ResNet-18 layers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
# The fastest of 3 randomly interleaved repetitions per benchmark (docs/RESULTS.md says why).
build/bench/halibit-bench-kernels --benchmark_filter='threads:1$' --benchmark_min_time=0.03 \
    --benchmark_repetitions=3 --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true "$@"
