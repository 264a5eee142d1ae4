"""Command line: write sample JPEGs from the Fashion-MNIST test set (models/samples/).

    /usr/bin/python3 -m halibit.samples -o models/samples

One image per class: the first test image of that class, as a 28x28 grayscale JPEG (quality 95)
named <test index>-<label>.jpg. Needs PIL (Debian's python3-pil); running models does not.
"""
from __future__ import annotations

import argparse
import os
import re
import sys

from . import fashion_mnist


def slug(label: str) -> str:
    """'T-shirt/top' -> 't-shirt-top': a label as it appears in a sample's file name."""
    return re.sub(r"[^a-z]+", "-", label.lower()).strip("-")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m halibit.samples", description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", required=True, help="directory to write the JPEGs to")
    p.add_argument("--data", default=fashion_mnist.DEFAULT_DIR)
    args = p.parse_args(argv)
    from PIL import Image

    images, labels = fashion_mnist.load("t10k", args.data)
    os.makedirs(args.output, exist_ok=True)
    for cls, label in enumerate(fashion_mnist.LABELS):
        i = int((labels == cls).nonzero()[0][0])
        path = os.path.join(args.output, f"{i:04d}-{slug(label)}.jpg")
        Image.fromarray(images[i, :, :, 0], mode="L").save(path, quality=95)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
