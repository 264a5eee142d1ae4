#!/usr/bin/env bash
# Writes the golden set the end-to-end tests compare against: synthetic models, briefly trained
# networks of halibit.archs (exported by halibit.fx_export) and the integer simulator's logits
# (python/halibit), one directory per model under $1. Skips models whose files are newer than
# the toolkit's sources.
set -euo pipefail
out=${1:?usage: make_golden.sh OUTDIR}
root="$(cd "$(dirname "$0")/.." && pwd)"
export PYTHONPATH="$root/python"
py=/usr/bin/python3

make_one() {  # name net precision [batch [synthetic's flags...]]
    local dir="$out/$1"
    if [ -f "$dir/logits.npy" ] && [ -z "$(find "$root/python/halibit" -newer "$dir/logits.npy" -name '*.py')" ]; then
        return
    fi
    mkdir -p "$dir"
    "$py" -m halibit.synthetic --net "$2" --precision "$3" "${@:5}" -o "$dir/model.halibit" >/dev/null
    "$py" -m halibit.golden "$dir/model.halibit" "$dir" --batch "${4:-2}" >/dev/null
    echo "golden: $1"
}

make_arch() {  # name arch: a network of halibit.archs, briefly trained, exported by halibit.fx_export
    local dir="$out/$1"
    if [ -f "$dir/logits.npy" ] && [ -z "$(find "$root/python/halibit" -newer "$dir/logits.npy" -name '*.py')" ]; then
        return
    fi
    mkdir -p "$dir"
    "$py" -m halibit.archs --arch "$2" -o "$dir/model.halibit" >/dev/null
    "$py" -m halibit.golden "$dir/model.halibit" "$dir" >/dev/null
    echo "golden: $1"
}

for p in w1a1 w2a2 w2a2codebook w4a4 w8a8 mixed; do make_one "small_resnet_$p" small_resnet "$p"; done
# Format version 3: int32 biases on the residual branches (read by add) and the fc.
make_one small_resnet_w2a2_bias small_resnet w2a2 2 --int32-bias
make_one resnet18_w2a2 resnet18 w2a2 1
make_one resnet18_w1a1 resnet18 w1a1 1
make_arch vgg_small vgg_small
make_arch resnet20_palquant_w2a2_g2 resnet20_palquant
