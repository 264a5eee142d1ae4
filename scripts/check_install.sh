#!/usr/bin/env bash
# Installs the host build into a scratch prefix, builds examples/consumer against it with
# find_package(halibit), and checks the consumer's logits on a golden model against the
# simulator's; then the installed Python package (binding included) from the prefix alone.
# Usage: check_install.sh BUILD_DIR GOLDEN_MODEL_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
golden=$(cd "$2" && pwd)
root="$(cd "$(dirname "$0")/.." && pwd)"
prefix="$build/install-check/prefix"
rm -rf "$build/install-check"
cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S "$root/examples/consumer" -B "$build/install-check/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$build/install-check/consumer" >/dev/null
out=$("$build/install-check/consumer/classify_npy" "$golden/model.halibit" "$golden/input.npy")
echo "$out"
want=$(/usr/bin/python3 -c "
import numpy as np
l = np.load('$golden/logits.npy')
for n, row in enumerate(l):
    print(f'image {n}: class {int(row.argmax())}, logits ' + ' '.join(str(int(v)) for v in row))")
if [ "$out" != "$want" ]; then
    echo "check_install: the consumer's logits differ from the simulator's:" >&2
    echo "$want" >&2
    exit 1
fi
echo "check_install: out-of-tree consumer matches the simulator"
# The installed package, away from the source and build trees.
(cd "$build/install-check" && PYTHONPATH="$prefix/lib/python3/dist-packages" /usr/bin/python3 -c "
import numpy as np, halibit
assert halibit.__file__.startswith('$prefix'), halibit.__file__
logits = halibit.Session(halibit.Model('$golden/model.halibit')).run(np.load('$golden/input.npy'))
assert (logits == np.load('$golden/logits.npy')).all(), 'the installed binding differs from the simulator'
print('check_install: installed Python package matches the simulator')
")
