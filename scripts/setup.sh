#!/usr/bin/env bash
# Installs every Debian package the build, tests and benchmarks need. Idempotent: when all are
# installed it only checks and returns. `--peers` adds what bench/compare_peers.py needs
# (matplotlib for its plots).
set -euo pipefail

packages=(
    cmake ninja-build g++ make
    libhalide14-0-dev                       # Halide 14: generators, runtime, CMake helpers
    llvm-14                                 # llvm-as: the lookup16 bitcode lut_conv links (generators/lookup16/)
    libgtest-dev libbenchmark-dev           # tests, benchmarks
    libdnnl-dev libxnnpack-dev libpthreadpool-dev  # int8 peers in the kernel benchmark
    g++-aarch64-linux-gnu qemu-user         # the arm64 stage and its tests
    nlohmann-json3-dev libcli11-dev         # model graph JSON, the halibit command line
    python3-numpy python3-pytest            # the toolkit's exporter, simulator and its tests
    python3-onnx                            # halibit.convert / export_qonnx: ONNX and QONNX import and export
    python3-torchvision                     # the QDQ import test's ResNet-18 (and compare_peers)
    pybind11-dev python3-dev                # the Python binding of the runtime (halibit.Model, halibit.Session)
    python3-dask python3-distributed        # halibit.batch: classification on a Dask cluster
    python3-torch python3-pulp coinor-cbc   # training (LSQ, PalQuant) and HAWQ-V3 bit allocation (ILP)
    zlib1g-dev libjpeg62-turbo-dev libpng-dev  # IDX datasets, JPEG and PNG for eval and classify
    dataset-fashion-mnist                   # the training and evaluation data
    clang libclang-rt-14-dev                # libFuzzer targets and the ThreadSanitizer test
)

# node + npm for onnxruntime-node (the QDQ import test, compare_peers); a machine with another
# node distribution (nodesource's nodejs bundles npm and conflicts with Debian's) keeps its own.
command -v npm >/dev/null || packages+=(nodejs npm)

if [ "${1:-}" = "--peers" ]; then
    packages+=(python3-matplotlib)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "setup: all packages present"
fi
