#!/usr/bin/env bash
# Trains and exports every model shipped in models/ (docs/models.md), on CPU, from Debian's
# Fashion-MNIST: about 1.5 hours on 2 cores. `scripts/train_models.sh w2a2 w1a1` redoes some
# steps (all but fp32 start from models/fashion-fp32.pt). THREADS=n sets torch's threads
# (default 2). Each model's training summary (per-epoch loss and accuracy, float and integer
# top-1) is models/fashion-<step>.json; logs go to build/train/. The HAWQ step measures latency
# with build/apps/halibit (scripts/build.sh first).
set -euo pipefail
cd "$(dirname "$0")/.."
out=models
logs=build/train
mkdir -p "$logs"
train() {  # name, arguments...
    local name=$1
    shift
    echo "== $name: python3 -m halibit.train $*"
    PYTHONPATH=python /usr/bin/python3 -m halibit.train "$@" --threads "${THREADS:-2}" --summary "$out/fashion-$name.json" \
        2>"$logs/$name.progress" \
        | tee "$logs/$name.log"
}

for STEP in ${@:-fp32 w8a8 w4a4 w2a2 w2a2-codebook w1a1 palquant hawq}; do
    case $STEP in
    fp32) train fp32 --precision fp32 --epochs 15 --lr 0.1 --save $out/fashion-fp32.pt ;;
    w8a8) train w8a8 --precision w8a8 --init $out/fashion-fp32.pt --epochs 1 --lr 0.005 -o $out/fashion-w8a8.halibit ;;
    w4a4) train w4a4 --precision w4a4 --init $out/fashion-fp32.pt --epochs 1 --lr 0.01 -o $out/fashion-w4a4.halibit ;;
    w2a2) train w2a2 --precision w2a2 --init $out/fashion-fp32.pt --epochs 2 --lr 0.02 -o $out/fashion-w2a2.halibit ;;
    w2a2-codebook) train w2a2-codebook --precision w2a2codebook --init $out/fashion-fp32.pt --epochs 2 --lr 0.02 \
                       -o $out/fashion-w2a2-codebook.halibit ;;
    w1a1) train w1a1 --precision w1a1 --init $out/fashion-fp32.pt --epochs 3 --lr 0.05 -o $out/fashion-w1a1.halibit ;;
    palquant) train palquant --precision w2a2 --groups 2 --init $out/fashion-fp32.pt --epochs 3 --lr 0.02 \
                  -o $out/fashion-palquant-w2a2-g2.halibit ;;
    hawq)
        echo "== hawq: python3 -m halibit.hawq --bits 2,3,4,8 --budget size=w4a4"
        PYTHONPATH=python /usr/bin/python3 -m halibit.hawq --init $out/fashion-fp32.pt --bits 2,3,4,8 --budget size=w4a4 \
            --latency-from build/apps/halibit -o $out/fashion-hawq-mixed.plan.json | tee "$logs/hawq-plan.log"
        plan=$(/usr/bin/python3 -c "import json; print(json.load(open('$out/fashion-hawq-mixed.plan.json'))['plan'])")
        train hawq --precision "$plan" --init $out/fashion-fp32.pt --epochs 1 --lr 0.01 -o $out/fashion-hawq-mixed.halibit
        ;;
    *) echo "train_models.sh: unknown step '$STEP' (fp32 w8a8 w4a4 w2a2 w2a2-codebook w1a1 palquant hawq)" >&2; exit 2 ;;
    esac
done
