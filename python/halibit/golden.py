"""Command line: golden vectors for the C++ tests.

    /usr/bin/python3 -m halibit.golden MODEL OUTDIR [--batch 2] [--seed 0]

writes OUTDIR/input.npy (uint8 [N, H, W, C], deterministic random images, halibit.images) and
OUTDIR/logits.npy (int32 [N, classes], from the integer simulator), and prints per tensor the
fraction of nonzero values. Fails (exit 1) if the logits are the same for every image.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from .images import random_images
from .modelfile import read_model
from .simulator import run


def golden(model_path, outdir, batch=2, seed=0, log=print):
    """Writes input.npy and logits.npy; returns (images, logits, activations)."""
    graph, tensors = read_model(model_path)
    H, W, C = graph["tensors"][graph["input"]["tensor"]]["shape"]
    images = random_images(batch, H, W, C, seed=seed)
    t0 = time.time()
    logits, acts = run(graph, tensors, images, return_all=True)
    elapsed = time.time() - t0
    os.makedirs(outdir, exist_ok=True)
    np.save(os.path.join(outdir, "input.npy"), images)
    np.save(os.path.join(outdir, "logits.npy"), logits)
    log(f"{graph['name']}: batch {batch}, simulated in {elapsed:.1f} s")
    log(f"{'tensor':<28} {'type':<9} {'shape':<16} nonzero  mean")
    for name, spec in graph["tensors"].items():
        a = acts[name]
        kind = f"codes{spec['bits']}" if spec["type"] == "codes" else "int32"
        log(f"{name:<28} {kind:<9} {str(spec['shape']):<16} {np.count_nonzero(a) / a.size:7.3f} {a.mean():9.2f}")
    top = np.argmax(logits, axis=1)
    log(f"logits: min {logits.min()}, max {logits.max()}, top-1 class per image {top.tolist()}")
    return images, logits, acts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m halibit.golden", description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("outdir")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.batch < 1:
        p.error("--batch must be >= 1")
    _, logits, _ = golden(args.model, args.outdir, args.batch, args.seed)
    if args.batch > 1 and (logits == logits[:1]).all():
        print("error: the logits are the same for every image", file=sys.stderr)
        return 1
    print(f"wrote {os.path.join(args.outdir, 'input.npy')} and {os.path.join(args.outdir, 'logits.npy')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
