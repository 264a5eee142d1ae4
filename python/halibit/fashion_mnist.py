"""Fashion-MNIST from Debian's `dataset-fashion-mnist` (IDX files, gzip-compressed or not).

IDX: big-endian magic 0x0000 08 <ndim>, then ndim uint32 sizes, then uint8 data.
"""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
          "Ankle boot"]
MEAN = (0.2860,)
STD = (0.3530,)


def read_idx(path: str) -> np.ndarray:
    """The uint8 array of an IDX file (.gz read transparently)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    head = 4 + 4 * ndim
    if len(data) < head:
        raise ValueError(f"{path}: truncated header")
    shape = struct.unpack(f">{ndim}I", data[4:head])
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) - head != count:
        raise ValueError(f"{path}: {len(data) - head} data bytes, shape {list(shape)} needs {count}")
    return np.frombuffer(data, np.uint8, offset=head).reshape(shape)


def _find(directory: str, stem: str) -> str:
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{directory}: no {stem} or {stem}.gz (install Debian's dataset-fashion-mnist)")


def load(split: str, directory: str = DEFAULT_DIR) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28, 1], labels uint8 [N]) of split 'train' or 't10k'."""
    images = read_idx(_find(directory, f"{split}-images-idx3-ubyte"))
    labels = read_idx(_find(directory, f"{split}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise ValueError(f"{directory}: {split} images {list(images.shape)} and labels {list(labels.shape)} disagree")
    return images[..., None], labels
