"""Quantizers for quantization-aware training (torch).

Each quantizer returns the dequantized value q * step, with q an integer code of the model file's
encoding (docs/model-format.md), so training sees exactly the grid the integer runtime uses.
Rounding passes gradients straight through (STE); steps are learned as in LSQ (Esser et al.
2020): the gradient of x / s -> round -> clamp -> * s with respect to s, scaled by
1 / sqrt(numel * Qp).

* `ActQuant(bits)`: unsigned codes [0, 2^bits - 1], one step per tensor (activations follow ReLU).
* `WeightQuant(encoding, bits, per_channel)`: `signed` [-2^(b-1), 2^(b-1) - 1] (LSQ), `binary`
  {-1, +1} (sign with STE, step = learned per channel), `odd` {-(2^b - 1), ..., -1, 1, ..., 2^b - 1}.
* `CodebookQuant(bits, channels, limit)`: `codebook`, 2^bits non-uniform levels per layer fitted
  to the weights during training (integers of at most `limit` in magnitude in the file) times a
  learned step per channel.
* `weight_quantizer(encoding, bits, channels, act_bits)` picks one of the two.
* `QConv2d`, `QLinear`: `nn.Conv2d` / `nn.Linear` whose forward quantizes the weight with one of
  them (`F.conv2d(x, self.wq(self.weight), ...)`), the form `halibit.fx_export` maps to a layer.

Every weight quantizer has `integer(w)` (the integer weights of the file) and `file_steps()` (the
float step per output channel that multiplies them).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
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

    def file_steps(self):
        return self.step.detach()


class CodebookQuant(nn.Module):
    """`codebook` weights: w = step[c] * level[i], with 2^bits levels per layer.

    The levels live in step units as floats, initialised to the signed grid (so training starts
    from the uniform quantizer), and follow the weights: every training step moves each level
    `momentum` of the way to the mean of the weights w / step that took it (one step of Lloyd's
    k-means, as LQ-Nets fits its levels to the weights). The forward pass uses them on the
    integer grid of the file: integer level round(level * R) with R = limit / max|level|, so
    the largest level is `limit` (the pairwise table kernel needs |level| * (2^A - 1) <= 127).
    Each weight takes the nearest level; gradients pass straight through to the weight (inside
    the levels' range) and to the step (as LSQ).
    """

    encoding = "codebook"

    def __init__(self, bits: int, channels: int, limit: int, momentum: float = 0.1):
        super().__init__()
        if not 1 <= bits <= 4:
            raise ValueError(f"codebook weights: {bits} bits is not 1..4")
        if not 1 <= limit <= 127:
            raise ValueError(f"codebook weights: level limit {limit} is not 1..127")
        self.bits, self.limit, self.momentum = bits, limit, momentum
        init = [-1.0, 1.0] if bits == 1 else [float(v) for v in range(-(1 << (bits - 1)), 1 << (bits - 1))]
        self.register_buffer("levels", torch.tensor(init))
        self.step = nn.Parameter(torch.ones(channels))
        self.register_buffer("initialized", torch.tensor(False))

    def _init(self, w):
        mean_abs = w.detach().reshape(w.shape[0], -1).abs().mean(dim=1)
        hi = float(self.levels.abs().max())
        self.step.data.copy_(2 * mean_abs / math.sqrt(hi) + 1e-8)  # as the signed LSQ grid it starts from
        self.initialized.fill_(True)

    def _resolution(self):
        return self.limit / self.levels.abs().max().clamp_min(1e-8)

    def integer_levels(self):
        """The levels of the file: integers, the largest magnitude `limit`."""
        return torch.round(self.levels * self._resolution())

    def file_steps(self):
        return self.step.detach() / self._resolution()

    def _assign(self, x):
        """(grid levels in step units, index of the level each of x takes)."""
        lv = self.integer_levels() / self._resolution()
        return lv, (x.detach().unsqueeze(-1) - lv).abs().argmin(dim=-1)

    def forward(self, w):
        if not self.initialized:
            with torch.no_grad():
                self._init(w)
        per = w.numel() // self.step.numel()
        hi = float(self.levels.abs().max())
        s = grad_scale(self.step, 1.0 / math.sqrt(per * max(hi, 1.0))).reshape((-1,) + (1,) * (w.dim() - 1))
        x = w / s
        lv, index = self._assign(x)
        if self.training:
            with torch.no_grad():  # Lloyd step towards the weights' means, empty levels stay
                xd = x.detach().reshape(-1)
                idx = index.reshape(-1)
                counts = torch.bincount(idx, minlength=lv.numel()).to(xd.dtype)
                sums = torch.zeros_like(lv).index_add_(0, idx, xd)
                target = torch.where(counts > 0, sums / counts.clamp_min(1), self.levels)
                self.levels.mul_(1 - self.momentum).add_(self.momentum * target)
        xc = torch.clamp(x, lv.min(), lv.max())
        return (lv[index] + xc - xc.detach()) * s

    def integer(self, w, s=None, ste=False):
        """The file's integer weights of w: the integer level each weight takes."""
        s = (self.step.detach() if s is None else s).reshape((-1,) + (1,) * (w.dim() - 1))
        lv, index = self._assign(w / s)
        return self.integer_levels()[index]


def weight_quantizer(encoding: str, bits: int, channels: int, act_bits: int = 8, per_channel: bool = True):
    """The weight quantizer of `encoding`; a codebook's levels are bounded so that their products
    with `act_bits`-bit codes fit int8 (the pairwise table kernel's bound)."""
    if encoding == "codebook":
        return CodebookQuant(bits, channels, max(1, 127 // ((1 << act_bits) - 1)))
    return WeightQuant(encoding, bits, channels, per_channel)


class QConv2d(nn.Conv2d):
    """A convolution with quantized weights: `weight` = (encoding, bits) of `weight_quantizer`,
    `act_bits` the bits of its input codes (bounds a codebook's levels; default: the weight bits)."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0, groups=1, bias=False, *, weight, act_bits=None,
                 per_channel=True):
        super().__init__(cin, cout, kernel, stride, padding, groups=groups, bias=bias)
        encoding, bits = weight
        self.wq = weight_quantizer(encoding, bits, cout, act_bits or bits, per_channel)

    def forward(self, x):
        return F.conv2d(x, self.wq(self.weight), self.bias, self.stride, self.padding, self.dilation, self.groups)


class QLinear(nn.Linear):
    """A fully connected layer with quantized weights (see QConv2d); the network's last layer
    (int32 logits) needs `per_channel=False`: one scale for every logit."""

    def __init__(self, cin, cout, bias=False, *, weight, act_bits=None, per_channel=True):
        super().__init__(cin, cout, bias=bias)
        encoding, bits = weight
        self.wq = weight_quantizer(encoding, bits, cout, act_bits or bits, per_channel)

    def forward(self, x):
        return F.linear(x, self.wq(self.weight), self.bias)
