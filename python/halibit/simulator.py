"""Integer simulator: runs a halibit graph bit for bit as the runtime does (docs/model-format.md).

Activations are NHWC numpy arrays: ``codes`` tensors as uint8, ``int32`` tensors as int32.
Convolutions are im2col + float matrix products: every product and partial sum is an integer
below 2^53 in magnitude (2^24 where float32 is used), so the result is exact (checked), and the accumulator is then
checked to fit int32. Requantization, add and pooling arithmetic is int64 with overflow checks.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .dyadic import round_shift
from .modelfile import INT32_MAX, INT32_MIN, conv_out_size

INT64_MAX = (1 << 63) - 1
_EXACT = 1 << 53
_EXACT32 = 1 << 24


class SimulationError(ArithmeticError):
    """An accumulator or intermediate left its integer range, or inputs are malformed."""


def _pad(x: np.ndarray, pad: int, values, dtype) -> np.ndarray:
    """x [N, H, W, C] inside a border of `pad` pixels holding `values` (per channel)."""
    N, H, W, C = x.shape
    if pad == 0:
        return x.astype(dtype, copy=False)
    out = np.empty((N, H + 2 * pad, W + 2 * pad, C), dtype)
    out[...] = np.asarray(values, dtype).reshape(C) if values is not None else 0
    out[:, pad:pad + H, pad:pad + W, :] = x
    return out


def _windows(xp: np.ndarray, KH: int, KW: int, stride: int, OH: int, OW: int) -> np.ndarray:
    """View [N, OH, OW, KH, KW, C] of the padded input xp [N, Hp, Wp, C]."""
    N, _, _, C = xp.shape
    sn, sh, sw, sc = xp.strides
    return as_strided(xp, (N, OH, OW, KH, KW, C), (sn, sh * stride, sw * stride, sh, sw, sc), writeable=False)


def conv_acc(x: np.ndarray, weights: np.ndarray, stride: int = 1, pad: int = 0, groups: int = 1,
             pad_values=None) -> np.ndarray:
    """Exact int32 accumulators [N, OH, OW, Cout] of x (codes [N, H, W, Cin]) with OHWI weights
    [Cout, KH, KW, Cin / groups]; positions outside the image hold pad_values[c] (default 0)."""
    N, H, W, C = x.shape
    Cout, KH, KW, Cg = weights.shape
    if C % groups or Cout % groups or Cg != C // groups:
        raise SimulationError(f"conv: {C} input channels, weights {list(weights.shape)}, groups {groups}")
    OH, OW = conv_out_size(H, KH, stride, pad), conv_out_size(W, KW, stride, pad)
    if OH < 1 or OW < 1:
        raise SimulationError(f"conv: empty output for input {H}x{W}, kernel {KH}x{KW}, pad {pad}")
    amax = int(np.abs(x).max(initial=0))
    if pad_values is not None and pad > 0:
        amax = max(amax, int(np.abs(np.asarray(pad_values)).max(initial=0)))
    wmax = int(np.abs(weights.astype(np.int64)).max(initial=0))
    if KH * KW * Cg * amax * wmax >= _EXACT:
        raise SimulationError("conv: partial sums could exceed 2^53 (float64 would not be exact)")
    # Every partial sum is an integer of magnitude <= amax * max_c sum |w_c|: below 2^24 float32
    # is exact too, whatever the summation order, and twice as fast.
    bound = amax * int(np.abs(weights.astype(np.int64)).reshape(Cout, -1).sum(axis=1).max(initial=0))
    ftype = np.float32 if bound < _EXACT32 else np.float64

    xp = _pad(x, pad, pad_values, ftype)
    Cog = Cout // groups
    out = np.empty((N * OH * OW, Cout), ftype)
    if KH == 1 and KW == 1:
        view = xp[:, ::stride, ::stride, :][:, :OH, :OW, :].reshape(N * OH * OW, C)
        for g in range(groups):
            wg = np.ascontiguousarray(weights[g * Cog:(g + 1) * Cog, 0, 0, :].T, dtype=ftype)
            out[:, g * Cog:(g + 1) * Cog] = view[:, g * Cg:(g + 1) * Cg] @ wg
    else:
        win = _windows(xp, KH, KW, stride, OH, OW)
        for g in range(groups):
            cols = win[..., g * Cg:(g + 1) * Cg].reshape(N * OH * OW, KH * KW * Cg)
            wg = np.ascontiguousarray(weights[g * Cog:(g + 1) * Cog].reshape(Cog, KH * KW * Cg).T, dtype=ftype)
            out[:, g * Cog:(g + 1) * Cog] = cols @ wg  # (K, Cog) C-contiguous: 2x faster with reference BLAS
    lo, hi = out.min(initial=0), out.max(initial=0)
    if lo < INT32_MIN or hi > INT32_MAX:
        raise SimulationError(f"conv: accumulator range [{int(lo)}, {int(hi)}] does not fit int32")
    return out.astype(np.int32).reshape(N, OH, OW, Cout)


def _check_int64(terms, what: str) -> None:
    """terms: list of (max |x|, max |M|) pairs and plain ints; raises if the sum reaches 2^63."""
    total = 0
    for t in terms:
        total += t[0] * t[1] if isinstance(t, tuple) else t
    if total > INT64_MAX:
        raise SimulationError(f"{what}: int64 intermediate could overflow")


def _absmax(a) -> int:
    a = np.asarray(a)
    return int(np.abs(a.astype(np.int64)).max(initial=0))


def _clamp_codes(v: np.ndarray, bits: int) -> np.ndarray:
    return np.clip(v, 0, (1 << bits) - 1).astype(np.uint8)


def requantize(acc: np.ndarray, multiplier, bias, shift: int, bits: int) -> np.ndarray:
    """clamp(round(acc * M[c] + B[c], S), 0, 2^bits - 1) per channel (last axis), as uint8."""
    M = np.asarray(multiplier, np.int64)
    B = np.asarray(bias, np.int64)
    _check_int64([(_absmax(acc), _absmax(M)), _absmax(B), (1 << (shift - 1)) if shift else 0], "requantize")
    return _clamp_codes(round_shift(acc.astype(np.int64) * M + B, shift), bits)


def add_int32_bias(acc: np.ndarray, bias) -> np.ndarray:
    """acc + B[c] per channel (last axis): a conv's int32 bias (format version 3), as int32."""
    v = acc.astype(np.int64) + np.asarray(bias, np.int64)
    lo, hi = v.min(initial=0), v.max(initial=0)
    if lo < INT32_MIN or hi > INT32_MAX:
        raise SimulationError(f"conv bias: output range [{int(lo)}, {int(hi)}] does not fit int32")
    return v.astype(np.int32)


def add(x0: np.ndarray, x1: np.ndarray, multipliers, bias, shift: int, bits: int) -> np.ndarray:
    """clamp(round(x0 * M0[c] + x1 * M1[c] + B[c], S), 0, 2^bits - 1), as uint8."""
    if x0.shape != x1.shape:
        raise SimulationError(f"add: shapes {x0.shape} and {x1.shape} differ")
    M0, M1 = (np.asarray(m, np.int64) for m in multipliers)
    B = np.asarray(bias, np.int64)
    _check_int64([(_absmax(x0), _absmax(M0)), (_absmax(x1), _absmax(M1)), _absmax(B),
                  (1 << (shift - 1)) if shift else 0], "add")
    v = x0.astype(np.int64) * M0 + x1.astype(np.int64) * M1 + B
    return _clamp_codes(round_shift(v, shift), bits)


def max_pool(x: np.ndarray, kernel, stride: int, pad: int) -> np.ndarray:
    """Maximum over the window positions inside the image (same dtype as x)."""
    KH, KW = kernel
    N, H, W, C = x.shape
    OH, OW = conv_out_size(H, KH, stride, pad), conv_out_size(W, KW, stride, pad)
    if pad >= min(KH, KW) or OH < 1 or OW < 1:
        raise SimulationError(f"max_pool: kernel {KH}x{KW} with pad {pad} on {H}x{W}")
    xp = _pad(x.astype(np.int16), pad, None, np.int16)
    if pad:
        xp[:, :pad], xp[:, H + pad:], xp[:, :, :pad], xp[:, :, W + pad:] = -1, -1, -1, -1
    out = _windows(xp, KH, KW, stride, OH, OW).max(axis=(3, 4))
    assert out.min(initial=0) >= 0
    return out.astype(x.dtype)


def global_avg_pool(x: np.ndarray, multiplier: int, shift: int, bits: int) -> np.ndarray:
    """clamp(round(sum_{y,x} x * multiplier, S), 0, 2^bits - 1) -> [N, 1, 1, C] uint8."""
    s = x.astype(np.int64).sum(axis=(1, 2), keepdims=True)
    _check_int64([(_absmax(s), abs(int(multiplier))), (1 << (shift - 1)) if shift else 0], "global_avg_pool")
    return _clamp_codes(round_shift(s * np.int64(multiplier), shift), bits)


def channel_shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    """Output channel k * G + g is input channel g * K + k (C = G * K)."""
    N, H, W, C = x.shape
    if C % groups:
        raise SimulationError(f"channel_shuffle: {groups} groups do not divide {C} channels")
    K = C // groups
    return np.ascontiguousarray(x.reshape(N, H, W, groups, K).transpose(0, 1, 2, 4, 3).reshape(N, H, W, C))


def run_layer(layer: dict, graph: dict, tensors: dict, env: dict) -> np.ndarray:
    """Computes one layer from the activations in `env` (name -> NHWC array); returns its output."""
    op = layer["op"]
    spec = graph["tensors"][layer["output"]]
    xs = [env[t] for t in layer["inputs"]]
    if op == "conv":
        w = layer["weights"]
        acc = conv_acc(xs[0], tensors[w["tensor"]], layer["stride"], layer["pad"], layer.get("groups", 1),
                       layer.get("pad_values"))
        rq = layer.get("requantize")
        if rq is None:
            return add_int32_bias(acc, tensors[layer["bias"]]) if "bias" in layer else acc
        return requantize(acc, tensors[rq["multiplier"]], tensors[rq["bias"]], rq["shift"], spec["bits"])
    if op == "add":
        return add(xs[0], xs[1], [tensors[m] for m in layer["multipliers"]], tensors[layer["bias"]],
                   layer["shift"], spec["bits"])
    if op == "max_pool":
        return max_pool(xs[0], layer["kernel"], layer["stride"], layer["pad"])
    if op == "global_avg_pool":
        return global_avg_pool(xs[0], layer["multiplier"], layer["shift"], spec["bits"])
    if op == "channel_shuffle":
        return channel_shuffle(xs[0], layer["groups"])
    raise SimulationError(f"layer '{layer['name']}': unknown op {op!r}")


def check_images(graph: dict, images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    shape = graph["tensors"][graph["input"]["tensor"]]["shape"]
    if images.dtype != np.uint8 or images.ndim != 4 or list(images.shape[1:]) != list(shape):
        raise SimulationError(f"images must be uint8 [N, {', '.join(map(str, shape))}], "
                              f"got {images.dtype} {list(images.shape)}")
    return images


def run(graph: dict, tensors: dict, images: np.ndarray, return_all: bool = False):
    """Runs the graph on uint8 images [N, H, W, C].

    Returns the int32 logits [N, classes]; with return_all=True returns (logits, activations)
    where activations maps every tensor name to its NHWC array (uint8 codes or int32).
    """
    images = check_images(graph, images)
    env = {graph["input"]["tensor"]: images}
    for layer in graph["layers"]:
        out = run_layer(layer, graph, tensors, env)
        spec = graph["tensors"][layer["output"]]
        want = np.uint8 if spec["type"] == "codes" else np.int32
        if out.dtype != want or list(out.shape[1:]) != list(spec["shape"]):
            raise SimulationError(f"layer '{layer['name']}': produced {out.dtype} {list(out.shape[1:])}, "
                                  f"tensor '{layer['output']}' is {spec['type']} {spec['shape']}")
        env[layer["output"]] = out
    logits = env[graph["output"]["tensor"]].reshape(images.shape[0], -1).astype(np.int32)
    return (logits, env) if return_all else logits
