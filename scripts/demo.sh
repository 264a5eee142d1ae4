#!/usr/bin/env bash
# The main job: set up, build, and classify the bundled sample images (models/samples/, one
# Fashion-MNIST test image per class) with the bundled trained 2-bit model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build/apps/halibit classify models/fashion-w2a2.halibit models/samples/*.jpg "$@"
