#!/usr/bin/env bash
# Writes the golden set the end-to-end tests compare against: synthetic models and the integer
# simulator's logits (python/halibit), one directory per model under $1. Skips models whose
# files are newer than the toolkit's sources.
set -euo pipefail
out=${1:?usage: make_golden.sh OUTDIR}
root="$(cd "$(dirname "$0")/.." && pwd)"
export PYTHONPATH="$root/python"
py=/usr/bin/python3

make_one() {  # name net precision [batch]
    local dir="$out/$1"
    if [ -f "$dir/logits.npy" ] && [ -z "$(find "$root/python/halibit" -newer "$dir/logits.npy" -name '*.py')" ]; then
        return
    fi
    mkdir -p "$dir"
    "$py" -m halibit.synthetic --net "$2" --precision "$3" -o "$dir/model.halibit" >/dev/null
    "$py" -m halibit.golden "$dir/model.halibit" "$dir" --batch "${4:-2}" >/dev/null
    echo "golden: $1"
}

for p in w1a1 w2a2 w2a2codebook w4a4 w8a8 mixed; do make_one "small_resnet_$p" small_resnet "$p"; done
make_one resnet18_w2a2 resnet18 w2a2 1
make_one resnet18_w1a1 resnet18 w1a1 1
