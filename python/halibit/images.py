"""Deterministic random test images (calibration and golden inputs).

Uniform noise makes every image look alike after a few layers of pooling, so these images are
smooth random fields (a coarse random grid, bilinearly upsampled) with a per-image brightness
and contrast, plus pixel noise: different images give clearly different features.
"""
from __future__ import annotations

import numpy as np


def _upsample(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear upsampling of grid [gh, gw, c] to [h, w, c]."""
    gh, gw, _ = grid.shape

    def axis(n_out, n_in):
        pos = np.linspace(0, n_in - 1, n_out)
        i0 = np.minimum(np.floor(pos).astype(int), n_in - 2) if n_in > 1 else np.zeros(n_out, int)
        f = pos - i0 if n_in > 1 else np.zeros(n_out)
        return i0, np.minimum(i0 + 1, n_in - 1), f

    y0, y1, fy = axis(h, gh)
    x0, x1, fx = axis(w, gw)
    rows = grid[y0] * (1 - fy)[:, None, None] + grid[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def random_images(n: int, h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    """uint8 [n, h, w, c], a deterministic function of the arguments."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, h, w, c), np.uint8)
    for i in range(n):
        gh, gw = rng.integers(2, 9, size=2)
        smooth = _upsample(rng.random((gh, gw, c)), h, w)
        contrast = rng.uniform(0.4, 1.2)
        brightness = rng.uniform(0.25, 0.75)
        img = brightness + contrast * (smooth - 0.5) + rng.normal(0.0, 0.08, size=(h, w, c))
        out[i] = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    return out
