"""Quantizers for quantization-aware training (torch).

Each quantizer returns the dequantized value q * step, with q an integer code of the model file's
encoding (docs/model-format.md), so training sees exactly the grid the integer runtime uses.
Rounding passes gradients straight through (STE); steps are learned as in LSQ (Esser et al.
2020): the gradient of x / s -> round -> clamp -> * s with respect to s, scaled by
1 / sqrt(numel * Qp).

* `ActQuant(bits)`: unsigned codes [0, 2^bits - 1], one step per tensor (activations follow ReLU).
* `WeightQuant(encoding, bits, per_channel)`: `signed` [-2^(b-1), 2^(b-1) - 1] (LSQ), `binary`
  {-1, +1} (sign with STE, step = learned per channel), `odd` {-(2^b - 1), ..., -1, 1, ..., 2^b - 1}.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def round_ste(x):
    return (x.round() - x).detach() + x


def grad_scale(x, scale):
    return (x - x * scale).detach() + x * scale


def weight_range(encoding: str, bits: int) -> tuple[int, int]:
    if encoding == "signed":
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if encoding in ("binary", "odd"):
        return -((1 << bits) - 1), (1 << bits) - 1
    raise ValueError(f"unknown weight encoding {encoding!r}")


class ActQuant(nn.Module):
    """Unsigned `bits`-bit activation codes with a learned per-tensor step (LSQ)."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits
        self.qmax = (1 << bits) - 1
        self.step = nn.Parameter(torch.tensor(1.0))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, x):
        if not self.initialized:  # LSQ init from the first batch: 2 mean|x| / sqrt(Qp)
            with torch.no_grad():
                self.step.copy_(2 * x.abs().mean() / math.sqrt(self.qmax) + 1e-8)
                self.initialized.fill_(True)
        s = grad_scale(self.step, 1.0 / math.sqrt(x.numel() / x.shape[0] * self.qmax))
        return round_ste(torch.clamp(x / s, 0, self.qmax)) * s

    def codes(self, x):
        return torch.clamp(torch.round(x / self.step), 0, self.qmax)


class WeightQuant(nn.Module):
    """Integer weights of `encoding` at `bits` times a learned step (per output channel or one)."""

    def __init__(self, encoding: str, bits: int, channels: int, per_channel: bool = True):
        super().__init__()
        self.encoding, self.bits = encoding, bits
        self.lo, self.hi = weight_range(encoding, bits)
        self.step = nn.Parameter(torch.ones(channels if per_channel else 1))
        self.register_buffer("initialized", torch.tensor(False))

    def _init(self, w):
        flat = w.detach().reshape(w.shape[0], -1) if self.step.numel() > 1 else w.detach().reshape(1, -1)
        mean_abs = flat.abs().mean(dim=1)
        if self.encoding == "binary":
            s = mean_abs  # XNOR-Net: the L1-optimal scale of sign(w)
        elif self.encoding == "odd":
            s = 2 * mean_abs / self.hi  # the grid {-hi..hi} step 2: spread over mean |w|
        else:
            s = 2 * mean_abs / math.sqrt(self.hi)
        self.step.data.copy_(s + 1e-8)
        self.initialized.fill_(True)

    def _scaled(self, w):
        shape = (-1,) + (1,) * (w.dim() - 1)
        return self.step.reshape(shape) if self.step.numel() > 1 else self.step

    def forward(self, w):
        if not self.initialized:
            with torch.no_grad():
                self._init(w)
        per = w.numel() // self.step.numel()
        s = grad_scale(self._scaled(w), 1.0 / math.sqrt(per * max(self.hi, 1)))
        return self.integer(w, s, ste=True) * s

    def integer(self, w, s=None, ste=False):
        """Integer codes of w (float tensor); with ste, gradients flow straight through."""
        s = self._scaled(w) if s is None else s
        r = round_ste if ste else torch.round
        x = w / s
        if self.encoding == "binary":
            q = torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))
            if not ste:
                return q
            xc = torch.clamp(x, -1, 1)  # STE with the gradient cut outside [-1, 1] (BinaryConnect)
            return (q - xc).detach() + xc
        if self.encoding == "odd":
            return torch.clamp(2 * r((x - 1) / 2) + 1, self.lo, self.hi)
        return torch.clamp(r(x), self.lo, self.hi)
