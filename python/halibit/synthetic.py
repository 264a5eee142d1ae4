"""Command line: write a model file with synthetic weights.

    /usr/bin/python3 -m halibit.synthetic --net resnet18 --precision w2a2 [--seed 0] [--int32-bias] -o resnet18-w2a2.halibit

--int32-bias: every conv with an int32 output gets a bias (a format version 3 file).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from .modelfile import write_model
from .networks import NETWORKS, PRECISIONS, build


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m halibit.synthetic", description=__doc__.splitlines()[0])
    p.add_argument("--net", required=True, choices=sorted(NETWORKS))
    p.add_argument("--precision", required=True, choices=list(PRECISIONS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--int32-bias", action="store_true",
                   help="a bias on every conv with an int32 output (format version 3)")
    p.add_argument("-o", "--output", required=True, help="model file to write (*.halibit)")
    args = p.parse_args(argv)

    t0 = time.time()
    graph, tensors = build(args.net, args.precision, seed=args.seed, log=lambda m: print(m, flush=True),
                           int32_bias=args.int32_bias)
    write_model(args.output, graph, tensors)
    print(f"wrote {args.output}: {graph['name']}, {len(graph['layers'])} layers, "
          f"{os.path.getsize(args.output) / 1e6:.1f} MB ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
