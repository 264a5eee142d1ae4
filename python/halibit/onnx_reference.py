"""Float reference executor for the ONNX / QONNX subset that halibit imports.

``run(model, inputs, outputs=None)`` executes an ``onnx.ModelProto`` node by node with numpy and
returns the graph outputs (or the named values). It is the reference halibit's converter
(``convert.py``) is tested against, so every operator follows its specification, and anything
outside the supported subset -- an operator, an attribute, an attribute value, an extra output --
raises ``OnnxReferenceError`` naming the node instead of being approximated or ignored.

Numerics
    Float tensors (graph inputs, initializers, Constant values) are converted to float64 and every
    float computation is float64. Integer tensors keep their dtype where the operator needs it:
    QuantizeLinear / QLinear* outputs are uint8 or int8, Shape is int64, Reshape / Gather indices are
    integers. Runtimes that compute in float32 (onnxruntime, qonnx's own executor, which casts Quant
    outputs to float32) can therefore differ where a float32 value lands on the other side of a
    rounding tie or a clamp bound; with float64 the exact ties in the tests are exact.

Domains and versions
    ``""`` / ``"ai.onnx"`` opsets 11..17; ``"qonnx.custom_op.general"`` and
    ``"finn.custom_op.general"`` (and ``"onnx.brevitas"``, the domain Brevitas exports before
    qonnx's cleanup renames it, same operators) for Quant, IntQuant, BipolarQuant, Trunc;
    ``"com.microsoft"`` for QLinearAdd, QLinearMul, QLinearGlobalAveragePool.

Semantics sources, per operator
    ONNX operators: the operator schemas of onnx 1.12 (``onnx.defs.get_schema(op, 17).doc``),
    i.e. docs/Operators.md of opsets 11..17.

    * Conv: NCHW, group, strides, dilations, pads ``[x1_begin, x2_begin, x1_end, x2_end]``,
      auto_pad NOTSET / VALID / SAME_UPPER (odd padding at the end) / SAME_LOWER (at the start)
      with output ``ceil(in / stride)``; optional bias B.
    * MaxPool: padding never wins (-inf, or the dtype's minimum for integer inputs);
      ceil_mode 1, dilations other than 1 and the Indices output are rejected.
    * AveragePool: count_include_pad 0 divides by the number of non-padding elements in the
      window, 1 by the kernel size; ceil_mode 1 is rejected.
    * BatchNormalization: inference form ``(X - mean) / sqrt(var + epsilon) * scale + B``
      (training_mode 1 and the running-statistics outputs are rejected).
    * Clip: min / max as inputs (opset >= 11) or as attributes (the opset-6 form); missing bounds
      are unbounded; ``min(max(x, min), max)``, so min > max gives max, as the schema says.
    * Add / Sub / Mul / Div: numpy (multidirectional) broadcasting, operands of one element
      type; integer Div truncates toward zero (C semantics, what onnxruntime computes).
    * Squeeze / Unsqueeze: axes attribute before opset 13, axes input from 13 (the other form is
      an error). ReduceMean: axes attribute (opsets <= 17), keepdims. Reshape: 0 copies the input
      dimension unless allowzero = 1 (opset 14), one -1 is inferred. Shape: start / end (opset 15).
    * QuantizeLinear: ``saturate(round_half_to_even(x / y_scale) + y_zero_point)``, uint8 when the
      zero point is absent; per-axis 1-D scale / zero point along ``axis`` (opset 13, default 1).
      DequantizeLinear: ``(x - x_zero_point) * x_scale``, same per-axis rule; int32 input has no
      zero point.
    * QLinearConv: ``saturate(round_half_to_even(acc * (x_scale * w_scale / y_scale)) + y_zp)``
      where ``acc = conv(x - x_zp, w - w_zp) + B`` (B is int32 at scale x_scale * w_scale, zero
      point 0); w_scale / w_zero_point scalar or per output channel. Padding pads x with its zero
      point (a real 0). The grouping ``x_scale * w_scale / y_scale`` follows onnx's own reference
      implementation (onnx/reference/ops/op_qlinear_conv.py).
    * QLinearMatMul: ``saturate(round_half_to_even(acc * (a_scale * b_scale / y_scale)) + y_zp)``,
      ``acc = (a - a_zp) @ (b - b_zp)``; a's scale / zero point per tensor or per row (an M-element
      vector for 2-D a, or [..., M, 1]), b's per tensor or per column.

    com.microsoft (onnxruntime docs/ContribOperators.md, contrib_defs.cc): dequantize -> float op ->
    quantize with round half to even, as the formulas there and mlas's "Saturate(RoundToEven(
    Input / Scale) + ZeroPoint)" say.

    * QLinearAdd: ``C = (A_scale * (A - A_zp) + B_scale * (B - B_zp)) / C_scale + C_zp``.
    * QLinearMul: ``C = ((A - A_zp) * (B - B_zp)) * (A_scale * B_scale) / C_scale + C_zp``.
      Zero points are optional (default 0); scales and zero points are scalars.
    * QLinearGlobalAveragePool: mean of ``(X - x_zp) * x_scale`` over the spatial axes, quantized
      with y_scale / y_zp; attribute channels_last (default 0).

    QONNX (fastmachinelearning/qonnx docs/qonnx-custom-ops/ quant_op.md, intquant_v1.md,
    bipolar_quant_op.md, trunc_v1.md, trunc_v2.md, and the numpy implementation
    src/qonnx/custom_op/general/{intquant,bipolar_quant,trunc}.py):

    * Quant (IntQuant is the same operator renamed; qonnx treats Quant as IntQuant):
      ``y = clamp(x / scale + zeropt, min_int, max_int)``, ``q = rounding_mode(y)``,
      ``out = (q - zeropt) * scale``. Attributes: signed (default 1), narrow (default 0),
      rounding_mode (default "ROUND"), the defaults of the docs (qonnx's code marks signed and
      narrow required). min_int / max_int: signed narrow [-(2^(b-1) - 1), 2^(b-1) - 1], signed
      [-2^(b-1), 2^(b-1) - 1], unsigned [0, 2^b - 1], unsigned narrow [0, 2^b - 2] (the docs'
      min_int / max_int functions). The docs clamp before rounding; since the bounds are integers
      and every rounding mode is monotone and fixes integers, that equals round-then-clamp.
      Bit width 1 with signed = 1 is bipolar: ``q = +1 if x / scale + zeropt >= 0 else -1``, as
      qonnx's implementation does (the docs say Quant does not cover bipolar quantization and
      point to BipolarQuant; the formula would give {-1, 0}). scale / zeropt broadcast against X
      (scalar or one value per channel, with X's rank) but may not enlarge it; bitwidth is a
      scalar positive integer (int or integral float).
    * Rounding modes (case-insensitive), from the docs' table and qonnx's resolve_rounding_mode:
      ROUND = HALF_EVEN (ties to even), CEIL, FLOOR, UP (away from zero), DOWN (toward zero),
      HALF_UP (ties away from zero), HALF_DOWN (ties toward zero); also ROUND_TO_ZERO, Brevitas's
      name for DOWN. HALF_UP / HALF_DOWN decide ties on the exact fraction (qonnx's
      ``floor(|x| + 0.5)`` rounds 0.49999999999999994 up through float rounding; the docs' table
      defines the tie rule, which this follows).
    * BipolarQuant: ``out = (+1 if x >= 0 else -1) * scale`` (so -0.0 gives +scale).
    * Trunc, by input count: 5 inputs = version 1 (X, scale, zeropt, in_bitwidth, out_bitwidth):
      ``y = round_half_even(x / scale + zeropt) / 2^(in_bitwidth - out_bitwidth)``,
      ``out = (rounding_mode(y) - zeropt) * scale`` (no clamp; the output keeps the input scale,
      exactly as trunc_v1.md writes it). 6 inputs = version 2 (X, scale, zeropt, in_bitwidth,
      out_scale, out_bitwidth; attributes signed default 1, narrow default 0, what Brevitas's
      current exporter emits): ``t = 2^round(log2(out_scale / scale))``,
      ``y = clamp(round_half_even(x / scale + zeropt) / t, min_int, max_int)`` at out_bitwidth,
      ``out = (rounding_mode(y) - zeropt / t) * out_scale``. rounding_mode defaults to FLOOR. A
      7-input form (an output zero point that qonnx's code reads and then ignores) is not in the
      docs and is rejected, as is a version the model's opset_import contradicts.
"""
from __future__ import annotations

import math

import numpy as np
import onnx
from numpy.lib.stride_tricks import as_strided
from onnx import helper, numpy_helper

__all__ = ["OnnxReferenceError", "run", "ONNX_OPSETS", "QONNX_DOMAINS", "rounding_function"]

ONNX_OPSETS = range(11, 18)
QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")
MS_DOMAIN = "com.microsoft"
_COLS_LIMIT = 1 << 23  # im2col elements per chunk (64 MiB of float64): bounds memory for big batches


class OnnxReferenceError(ValueError):
    """The model is outside the supported subset, or malformed; the message names the node."""


# --- nodes -----------------------------------------------------------------------------------------

class _Node:
    """One NodeProto with its attributes; remembers which attributes were read so that run() can
    reject the ones no handler understood (nothing is silently ignored)."""

    def __init__(self, proto: onnx.NodeProto, index: int, version: int | None):
        self.proto = proto
        self.op = proto.op_type
        self.domain = proto.domain
        self.version = version  # opset version of the node's domain (None: not imported)
        self.label = f"'{proto.name}'" if proto.name else f"#{index}"
        self._attrs = {a.name: a for a in proto.attribute}
        self._read: set[str] = set()

    def error(self, message: str) -> OnnxReferenceError:
        return OnnxReferenceError(f"node {self.label} ({self.op}): {message}")

    def has(self, name: str) -> bool:
        return name in self._attrs

    def attr(self, name: str, default=None):
        self._read.add(name)
        a = self._attrs.get(name)
        if a is None:
            return default
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            return value.decode()
        if isinstance(value, onnx.TensorProto):
            return numpy_helper.to_array(value)
        if isinstance(value, (list, tuple)):
            return [v.decode() if isinstance(v, bytes) else v for v in value]
        return value

    def int_attr(self, name: str, default: int, allowed=None) -> int:
        value = self.attr(name, default)
        if not isinstance(value, int) or (allowed is not None and value not in allowed):
            raise self.error(f"attribute '{name}': {value!r} is not supported")
        return value

    def unread(self) -> list[str]:
        return [n for n in self._attrs if n not in self._read]

    def reject(self, name: str, value=None) -> OnnxReferenceError:
        value = self.attr(name) if value is None else value
        if isinstance(value, np.ndarray):
            value = value.tolist()
        return self.error(f"attribute '{name}': {value!r} is not supported")


def _need(node: _Node, ins: list, count: int) -> list:
    """The first `count` inputs, all present."""
    if len(ins) < count:
        raise node.error(f"needs {count} inputs, has {len(ins)}")
    for i in range(count):
        if ins[i] is None:
            raise node.error(f"input {i} is required")
    return ins[:count]


def _opt(ins: list, i: int):
    return ins[i] if i < len(ins) else None


def _is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f"


def _as_value(a: np.ndarray) -> np.ndarray:
    """Float tensors become float64; everything else keeps its dtype."""
    a = np.asarray(a)
    return a.astype(np.float64) if a.dtype.kind == "f" else a


def _float(node: _Node, a: np.ndarray, what: str) -> np.ndarray:
    if not _is_float(a):
        raise node.error(f"{what} must be a float tensor, not {a.dtype}")
    return a


def _axis(node: _Node, axis: int, rank: int, what: str = "axis") -> int:
    """axis in [-rank, rank - 1] -> nonnegative."""
    if not isinstance(axis, int) or not -rank <= axis < rank:
        raise node.error(f"{what} {axis!r} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _scalar_int(node: _Node, a: np.ndarray, what: str) -> int:
    a = np.asarray(a)
    if a.size != 1:
        raise node.error(f"{what} must be a scalar, has shape {list(a.shape)}")
    v = float(a.reshape(()))
    if not math.isfinite(v) or v != int(v) or v < 1:
        raise node.error(f"{what} must be a positive integer, is {v}")
    return int(v)


# --- rounding --------------------------------------------------------------------------------------

def _half_up(v):
    a = np.abs(v)
    f = np.floor(a)
    return np.copysign(f + (a - f >= 0.5), v)  # a - f is exact: ties decided on the true fraction


def _half_down(v):
    a = np.abs(v)
    f = np.floor(a)
    return np.copysign(f + (a - f > 0.5), v)


def _up(v):
    return np.copysign(np.ceil(np.abs(v)), v)


_ROUNDING = {
    "ROUND": np.rint, "HALF_EVEN": np.rint,  # np.rint: ties to even (= np.round with 0 decimals)
    "CEIL": np.ceil, "FLOOR": np.floor,
    "UP": _up, "DOWN": np.trunc, "ROUND_TO_ZERO": np.trunc,
    "HALF_UP": _half_up, "HALF_DOWN": _half_down,
}


def rounding_function(mode: str):
    """The numpy function of a QONNX rounding_mode (case-insensitive); KeyError if unknown."""
    return _ROUNDING[mode.upper()]


def _rounding(node: _Node, default: str):
    mode = node.attr("rounding_mode", default)
    if not isinstance(mode, str) or mode.upper() not in _ROUNDING:
        raise node.reject("rounding_mode", mode)
    return _ROUNDING[mode.upper()]


def quant_range(bits: int, signed, narrow) -> tuple[int, int]:
    """min_int / max_int of the QONNX docs (Quant, Trunc): the integers a quantizer produces."""
    if signed:
        return -(1 << (bits - 1)) + narrow, (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - narrow


def _saturate(v: np.ndarray, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(v, info.min, info.max).astype(dtype)


# --- QONNX -----------------------------------------------------------------------------------------

def _check_param(node: _Node, x: np.ndarray, p: np.ndarray, what: str) -> np.ndarray:
    """A scale / zero point: float, broadcastable to x without enlarging it."""
    p = _float(node, np.asarray(p, dtype=np.float64) if p.dtype.kind in "iu" else p, what)
    try:
        shape = np.broadcast_shapes(x.shape, p.shape)
    except ValueError:
        shape = None
    if shape != x.shape:
        raise node.error(f"{what} of shape {list(p.shape)} does not broadcast to X {list(x.shape)}")
    return p


def _qonnx_signed_narrow(node: _Node) -> tuple[int, int]:
    return node.int_attr("signed", 1, (0, 1)), node.int_attr("narrow", 0, (0, 1))


def _quant(node: _Node, ins: list) -> list:
    x, scale, zeropt, bitwidth = _need(node, ins, 4)
    x = _float(node, x, "X")
    scale, zeropt = _check_param(node, x, scale, "scale"), _check_param(node, x, zeropt, "zeropt")
    bits = _scalar_int(node, bitwidth, "bitwidth")
    signed, narrow = _qonnx_signed_narrow(node)
    rnd = _rounding(node, "ROUND")
    y = x / scale + zeropt
    if bits == 1 and signed:
        q = np.where(y >= 0, 1.0, -1.0)  # qonnx's implementation: signed 1-bit is bipolar
    else:
        lo, hi = quant_range(bits, signed, narrow)
        q = rnd(np.clip(y, lo, hi))  # the docs' order: clamp, then round
    return [(q - zeropt) * scale]


def _bipolar_quant(node: _Node, ins: list) -> list:
    x, scale = _need(node, ins, 2)
    x = _float(node, x, "X")
    scale = _check_param(node, x, scale, "scale")
    return [np.where(x >= 0, 1.0, -1.0) * scale]


def _trunc(node: _Node, ins: list) -> list:
    n = len(node.proto.input)
    if n not in (5, 6):
        raise node.error(f"{n} inputs: Trunc takes 5 (version 1) or 6 (version 2)")
    version = 1 if n == 5 else 2
    if node.version is not None and (node.version >= 2) != (version == 2):
        raise node.error(f"{n} inputs is Trunc version {version}, the model imports "
                         f"{node.domain} version {node.version}")
    x, scale, zeropt, in_bw = _need(node, ins, n)[:4]
    x = _float(node, x, "X")
    scale, zeropt = _check_param(node, x, scale, "scale"), _check_param(node, x, zeropt, "zeropt")
    in_bits = _scalar_int(node, in_bw, "in_bitwidth")
    rnd = _rounding(node, "FLOOR")
    y = np.rint(x / scale + zeropt)  # both versions round the input to its integer grid first
    if version == 1:
        out_bits = _scalar_int(node, ins[4], "out_bitwidth")
        y = y / 2.0 ** (in_bits - out_bits)
        return [(rnd(y) - zeropt) * scale]
    out_scale = _check_param(node, x, ins[4], "out_scale")
    out_bits = _scalar_int(node, ins[5], "out_bitwidth")
    signed, narrow = _qonnx_signed_narrow(node)
    t = 2.0 ** np.rint(np.log2(out_scale / scale))  # the docs: force a power of two
    lo, hi = quant_range(out_bits, signed, narrow)
    y = rnd(np.clip(y / t, lo, hi))
    return [(y - zeropt / t) * out_scale]


# --- convolution and pooling -----------------------------------------------------------------------

def _ints(node: _Node, name: str, count: int, default: int, minimum: int) -> list[int]:
    value = node.attr(name)
    if value is None:
        return [default] * count
    if len(value) != count or any(not isinstance(v, int) or v < minimum for v in value):
        raise node.reject(name, value)
    return list(value)


def _pads(node: _Node, spatial, kernel, strides, dilations) -> tuple[list[int], list[int]]:
    """(begin, end) padding per spatial axis from pads / auto_pad."""
    nd = len(spatial)
    auto_pad = node.attr("auto_pad", "NOTSET")
    pads = _ints(node, "pads", 2 * nd, 0, 0)
    if auto_pad == "NOTSET":
        return pads[:nd], pads[nd:]
    if auto_pad not in ("VALID", "SAME_UPPER", "SAME_LOWER"):
        raise node.reject("auto_pad", auto_pad)
    if any(pads):
        raise node.error(f"attribute 'pads' together with auto_pad {auto_pad}")
    if auto_pad == "VALID":
        return [0] * nd, [0] * nd
    begin, end = [], []
    for n, k, s, d in zip(spatial, kernel, strides, dilations):
        out = -(-n // s)  # ceil(n / s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
        small = total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else total - small)  # UPPER: odd one at the end
        end.append(total - begin[-1])
    return begin, end


def _geometry(node: _Node, x_shape, kernel, dilations_ok: bool):
    """strides, dilations, (begin, end) pads and output size of a 2-D window op on NCHW."""
    if len(x_shape) != 4:
        raise node.error(f"input of rank {len(x_shape)}: only 2-D (NCHW) is supported")
    strides = _ints(node, "strides", 2, 1, 1)
    if dilations_ok:
        dilations = _ints(node, "dilations", 2, 1, 1)
    else:
        dilations = node.attr("dilations")
        if dilations is not None and any(d != 1 for d in dilations):
            raise node.reject("dilations", dilations)
        dilations = [1, 1]
    begin, end = _pads(node, x_shape[2:], kernel, strides, dilations)
    out = []
    for n, k, s, d, b, e in zip(x_shape[2:], kernel, strides, dilations, begin, end):
        o = (n + b + e - (k - 1) * d - 1) // s + 1  # floor: ceil_mode 0
        if o < 1:
            raise node.error(f"kernel {list(kernel)} does not fit input {list(x_shape[2:])} with its padding")
        out.append(o)
    return strides, dilations, begin, end, out


def _windows(xp: np.ndarray, out, kernel, strides, dilations) -> np.ndarray:
    """Read-only view [N, C, OH, OW, KH, KW] of the windows of the (padded, contiguous) xp."""
    sn, sc, sh, sw = xp.strides
    return as_strided(xp, shape=(xp.shape[0], xp.shape[1], out[0], out[1], kernel[0], kernel[1]),
                      strides=(sn, sc, sh * strides[0], sw * strides[1], sh * dilations[0], sw * dilations[1]),
                      writeable=False)


def _pad2d(x: np.ndarray, begin, end, value) -> np.ndarray:
    if not any(begin) and not any(end):
        return np.ascontiguousarray(x)
    return np.pad(x, ((0, 0), (0, 0), (begin[0], end[0]), (begin[1], end[1])), constant_values=value)


def _conv_core(node: _Node, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Conv of float64 x [N, C, H, W] with w [M, C/group, KH, KW] under the node's attributes."""
    if w.ndim != 4:
        raise node.error(f"weight of rank {w.ndim}: only 2-D convolution is supported")
    group = node.int_attr("group", 1)
    kernel = list(w.shape[2:])
    ks = node.attr("kernel_shape")
    if ks is not None and list(ks) != kernel:
        raise node.error(f"attribute 'kernel_shape' {list(ks)} differs from the weight's {kernel}")
    strides, dilations, begin, end, out = _geometry(node, x.shape, kernel, True)
    N, C = x.shape[:2]
    M, Cg = w.shape[:2]
    if group < 1 or C != Cg * group or M % group:
        raise node.error(f"input channels {C}, weight {list(w.shape)} and group {group} do not agree")
    G, Mg, K = group, M // group, Cg * kernel[0] * kernel[1]
    # [G, Cg*KH*KW, Mg], contiguous: the columns' order; (reference) BLAS is fastest on contiguous operands
    wt = np.ascontiguousarray(w.reshape(G, Mg, K).transpose(0, 2, 1))
    xp = _pad2d(x, begin, end, 0.0)
    OH, OW = out
    P = OH * OW
    y = np.empty((N, M, OH, OW))
    chunk = max(1, _COLS_LIMIT // max(1, C * kernel[0] * kernel[1] * P))
    for n0 in range(0, N, chunk):
        part = xp[n0:n0 + chunk]
        n = part.shape[0]
        win = _windows(part, out, kernel, strides, dilations)  # [n, C, OH, OW, KH, KW], a view
        # -> [G, n, OH, OW, Cg, KH, KW] -> columns [G, n*P, K] (the one copy)
        cols = win.reshape(n, G, Cg, OH, OW, kernel[0], kernel[1]).transpose(1, 0, 3, 4, 2, 5, 6)
        cols = cols.reshape(G, n * P, K)
        res = cols[0] @ wt[0] if G == 1 else np.matmul(cols, wt)  # [n*P, M] or [G, n*P, Mg]
        y[n0:n0 + n] = res.reshape(G, n, OH, OW, Mg).transpose(1, 0, 4, 2, 3).reshape(n, M, OH, OW)
    return y


def _conv(node: _Node, ins: list) -> list:
    x, w = _need(node, ins, 2)
    x, w = _float(node, x, "X"), _float(node, w, "W")
    y = _conv_core(node, x, w)
    b = _opt(ins, 2)
    if b is not None:
        if b.shape != (w.shape[0],):
            raise node.error(f"bias of shape {list(b.shape)} for {w.shape[0]} output channels")
        y += _float(node, b, "B").reshape(1, -1, 1, 1)
    return [y]


def _pool_common(node: _Node, x: np.ndarray):
    kernel = _ints(node, "kernel_shape", 2, 0, 1) if node.has("kernel_shape") else None
    if kernel is None:
        raise node.error("attribute 'kernel_shape' is required")
    if node.int_attr("ceil_mode", 0) != 0:
        raise node.reject("ceil_mode")
    return kernel, _geometry(node, x.shape, kernel, False)


def _max_pool(node: _Node, ins: list) -> list:
    (x,) = _need(node, ins, 1)
    if len(node.proto.output) > 1 and node.proto.output[1]:
        raise node.error("output 'Indices' is not supported")
    node.attr("storage_order")  # only orders the Indices output
    kernel, (strides, dilations, begin, end, out) = _pool_common(node, x)
    low = -np.inf if _is_float(x) else np.iinfo(x.dtype).min  # padding never wins
    win = _windows(_pad2d(x, begin, end, low), out, kernel, strides, dilations)
    return [win.max(axis=(4, 5))]


def _average_pool(node: _Node, ins: list) -> list:
    (x,) = _need(node, ins, 1)
    x = _float(node, x, "X")
    kernel, (strides, dilations, begin, end, out) = _pool_common(node, x)
    include = node.int_attr("count_include_pad", 0, (0, 1))
    sums = _windows(_pad2d(x, begin, end, 0.0), out, kernel, strides, dilations).sum(axis=(4, 5))
    if include:
        return [sums / (kernel[0] * kernel[1])]
    ones = _pad2d(np.ones((1, 1) + x.shape[2:]), begin, end, 0.0)
    counts = _windows(ones, out, kernel, strides, dilations).sum(axis=(4, 5))
    return [sums / counts]


def _global_average_pool(node: _Node, ins: list) -> list:
    (x,) = _need(node, ins, 1)
    x = _float(node, x, "X")
    if x.ndim < 3:
        raise node.error(f"input of rank {x.ndim}: needs N, C and spatial axes")
    return [x.mean(axis=tuple(range(2, x.ndim)), keepdims=True)]


# --- elementwise, normalization, shapes ------------------------------------------------------------

def _batch_norm(node: _Node, ins: list) -> list:
    x, scale, b, mean, var = (_float(node, a, "input") for a in _need(node, ins, 5))
    eps = node.attr("epsilon", float(np.float32(1e-5)))  # the schema's default is the float32 1e-5
    node.attr("momentum")  # only updates running statistics (training)
    if node.int_attr("training_mode", 0) != 0:
        raise node.reject("training_mode")
    if any(node.proto.output[1:]):
        raise node.error("outputs other than Y need training_mode 1, which is not supported")
    if x.ndim < 2:
        raise node.error(f"input of rank {x.ndim}")
    shape = (1, -1) + (1,) * (x.ndim - 2)
    C = x.shape[1]
    for p in (scale, b, mean, var):
        if p.shape != (C,):
            raise node.error(f"parameter of shape {list(p.shape)} for {C} channels")
    inv = 1.0 / np.sqrt(var + eps)
    return [(x - mean.reshape(shape)) * inv.reshape(shape) * scale.reshape(shape) + b.reshape(shape)]


def _relu(node: _Node, ins: list) -> list:
    (x,) = _need(node, ins, 1)
    return [np.maximum(x, np.zeros((), x.dtype))]


def _clip(node: _Node, ins: list) -> list:
    (x,) = _need(node, ins, 1)
    lo, hi = _opt(ins, 1), _opt(ins, 2)
    for name in ("min", "max"):  # the opset-6 form
        if node.has(name):
            if (lo if name == "min" else hi) is not None:
                raise node.error(f"'{name}' given both as attribute and as input")
            v = np.asarray(node.attr(name), dtype=np.float64)
            lo, hi = (v, hi) if name == "min" else (lo, v)
    y = x
    if lo is not None:
        y = np.maximum(y, np.asarray(lo).reshape(()).astype(x.dtype))
    if hi is not None:
        y = np.minimum(y, np.asarray(hi).reshape(()).astype(x.dtype))  # min > max gives max
    return [y]


def _binary(fn):
    def handler(node: _Node, ins: list) -> list:
        a, b = _need(node, ins, 2)
        if _is_float(a) != _is_float(b) or (not _is_float(a) and a.dtype != b.dtype):
            raise node.error(f"operands of different element types ({a.dtype}, {b.dtype})")
        if fn is np.divide and not _is_float(a):
            if np.any(b == 0):
                raise node.error("integer division by zero")
            q = np.abs(a) // np.abs(b)  # truncate toward zero, as C (and onnxruntime) does
            return [(np.sign(a) * np.sign(b) * q).astype(a.dtype)]
        return [fn(a, b)]
    return handler


def _reduce_mean(node: _Node, ins: list) -> list:
    (x,) = _need(node, ins, 1)
    x = _float(node, x, "data")
    if _opt(ins, 1) is not None:
        raise node.error("axes as an input needs opset 18, which is not supported")
    axes = node.attr("axes")
    keep = node.int_attr("keepdims", 1, (0, 1))
    axes = tuple(range(x.ndim)) if axes is None else tuple(sorted({_axis(node, a, x.ndim) for a in axes}))
    return [x.mean(axis=axes, keepdims=bool(keep))]


def _flatten(node: _Node, ins: list) -> list:
    (x,) = _need(node, ins, 1)
    axis = node.int_attr("axis", 1)
    if not -x.ndim <= axis <= x.ndim:  # axis may equal the rank: everything in the first dimension
        raise node.reject("axis", axis)
    axis = axis + x.ndim if axis < 0 else axis
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    inner = int(np.prod(x.shape[axis:], dtype=np.int64))
    return [x.reshape(outer, inner)]


def _reshape(node: _Node, ins: list) -> list:
    x, shape = _need(node, ins, 2)
    if shape.dtype.kind not in "iu" or shape.ndim != 1:
        raise node.error(f"shape must be a 1-D integer tensor, is {shape.dtype} {list(shape.shape)}")
    allowzero = node.int_attr("allowzero", 0, (0, 1)) if node.version >= 14 else 0
    new = []
    for i, d in enumerate(shape.tolist()):
        if d == 0 and not allowzero:
            if i >= x.ndim:
                raise node.error(f"shape {shape.tolist()}: dimension {i} copies an input dimension that does not exist")
            d = x.shape[i]
        new.append(d)
    if new.count(-1) > 1 or any(d < -1 for d in new):
        raise node.error(f"shape {shape.tolist()} is not valid")
    return [x.reshape(new)]


def _transpose(node: _Node, ins: list) -> list:
    (x,) = _need(node, ins, 1)
    perm = node.attr("perm")
    perm = list(range(x.ndim))[::-1] if perm is None else perm
    if sorted(perm) != list(range(x.ndim)):
        raise node.reject("perm", perm)
    return [x.transpose(perm)]


def _gemm(node: _Node, ins: list) -> list:
    a, b = (_float(node, v, "input") for v in _need(node, ins, 2))
    c = _opt(ins, 2)
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    ta, tb = node.int_attr("transA", 0, (0, 1)), node.int_attr("transB", 0, (0, 1))
    if a.ndim != 2 or b.ndim != 2:
        raise node.error(f"A and B must be 2-D, are {list(a.shape)} and {list(b.shape)}")
    y = (a.T if ta else a) @ (b.T if tb else b)
    if alpha != 1.0:
        y = alpha * y
    if c is not None:
        c = _float(node, c, "C")
        if np.broadcast_shapes(y.shape, c.shape) != y.shape:  # unidirectional broadcasting
            raise node.error(f"C of shape {list(c.shape)} does not broadcast to {list(y.shape)}")
        y = y + (beta * c if beta != 1.0 else c)
    return [y]


def _matmul(node: _Node, ins: list) -> list:
    a, b = _need(node, ins, 2)
    return [np.matmul(a, b)]


def _identity(node: _Node, ins: list) -> list:
    return [_need(node, ins, 1)[0]]


def _constant(node: _Node, ins: list) -> list:
    given = [n for n in ("value", "value_float", "value_floats", "value_int", "value_ints",
                         "value_string", "value_strings", "sparse_value") if node.has(n)]
    if len(given) != 1:
        raise node.error(f"needs exactly one value attribute, has {given}")
    name = given[0]
    if name in ("value_string", "value_strings", "sparse_value"):
        raise node.error(f"attribute '{name}' is not supported")
    v = node.attr(name)
    if name in ("value_float", "value_floats"):
        v = np.array(v, dtype=np.float32)  # float attributes are float32 in the protobuf
    elif name in ("value_int", "value_ints"):
        v = np.array(v, dtype=np.int64)
    return [_as_value(v)]


def _cast(node: _Node, ins: list) -> list:
    """Cast (onnx Operators.md): float to integer truncates toward zero after saturation is not
    defined by the spec; exporters cast integer codes between integer types and to float."""
    x = _need(node, ins, 1)[0]
    to = node.attr("to")
    dtype = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE.get(to) if isinstance(to, int) else None
    if dtype is None or dtype.kind not in "iuf":
        raise node.reject("to", to)
    if dtype.kind in "iu" and _is_float(x) and not np.all(x == np.trunc(x)):
        raise node.error("casting non-integer floats to an integer type is not supported")
    return [_as_value(np.asarray(x).astype(dtype))]


def _constant_of_shape(node: _Node, ins: list) -> list:
    """ConstantOfShape: a tensor of the `shape` input filled with `value` (default float 0)."""
    shape = np.asarray(_need(node, ins, 1)[0])
    if shape.dtype.kind not in "iu" or shape.ndim != 1 or np.any(shape < 0):
        raise node.error(f"input 'input' must be a 1-D non-negative integer shape, is {shape.tolist()}")
    v = node.attr("value")
    fill = np.zeros(1, np.float32) if v is None else np.asarray(v).reshape(-1)
    if fill.size != 1:
        raise node.error(f"attribute 'value' must hold one element, holds {fill.size}")
    return [_as_value(np.full(tuple(int(d) for d in shape), fill[0], dtype=fill.dtype))]


def _concat(node: _Node, ins: list) -> list:
    parts = _need(node, ins, len(ins))
    if not parts:
        raise node.error("needs at least one input")
    if not node.has("axis"):
        raise node.error("attribute 'axis' is required")
    axis = _axis(node, node.int_attr("axis", 0), parts[0].ndim)
    return [np.concatenate(parts, axis=axis)]


def _axes_argument(node: _Node, ins: list):
    """Squeeze / Unsqueeze axes: attribute before opset 13, input from 13."""
    if node.version < 13:
        if _opt(ins, 1) is not None:
            raise node.error(f"axes as an input needs opset 13 (the model has {node.version})")
        return node.attr("axes")
    if node.has("axes"):
        raise node.error(f"attribute 'axes': opset {node.version} takes axes as an input")
    axes = _opt(ins, 1)
    if axes is None:
        return None
    if axes.dtype.kind not in "iu" or axes.ndim != 1:
        raise node.error("axes must be a 1-D integer tensor")
    return axes.tolist()


def _squeeze(node: _Node, ins: list) -> list:
    x = _need(node, ins, 1)[0]
    axes = _axes_argument(node, ins)
    if axes is None:
        return [x.reshape([d for d in x.shape if d != 1])]
    axes = sorted({_axis(node, a, x.ndim) for a in axes})
    if any(x.shape[a] != 1 for a in axes):
        raise node.error(f"axes {axes} of shape {list(x.shape)} are not all 1")
    return [np.squeeze(x, axis=tuple(axes))]


def _unsqueeze(node: _Node, ins: list) -> list:
    x = _need(node, ins, 1)[0]
    axes = _axes_argument(node, ins)
    if axes is None:
        raise node.error("axes are required")
    rank = x.ndim + len(axes)
    norm = sorted({_axis(node, a, rank) for a in axes})
    if len(norm) != len(axes):
        raise node.error(f"axes {axes} repeat an axis")
    return [np.expand_dims(x, tuple(norm))]


def _shape(node: _Node, ins: list) -> list:
    (x,) = _need(node, ins, 1)
    start, end = node.attr("start", 0), node.attr("end")
    return [np.array(x.shape[start:end], dtype=np.int64)]  # slicing clamps out-of-range like the schema


def _gather(node: _Node, ins: list) -> list:
    data, idx = _need(node, ins, 2)
    if idx.dtype.kind not in "iu":
        raise node.error("indices must be integers")
    axis = _axis(node, node.int_attr("axis", 0), data.ndim)
    n = data.shape[axis]
    if np.any((idx < -n) | (idx >= n)):
        raise node.error(f"indices out of range for dimension {n}")
    return [np.take(data, np.where(idx < 0, idx + n, idx), axis=axis)]


# --- ONNX quantization ops -------------------------------------------------------------------------

_QTYPES = (np.uint8, np.int8)


def _zero_point(node: _Node, zp, what: str, default=np.uint8):
    if zp is None:
        return np.zeros((), default)
    if zp.dtype not in _QTYPES:
        raise node.error(f"{what} must be uint8 or int8, is {zp.dtype}")
    return zp


def _per_axis(node: _Node, p: np.ndarray, x: np.ndarray, what: str) -> np.ndarray:
    """Scalar, or (opset 13) a 1-D tensor along the node's axis, reshaped to broadcast against x."""
    if p.ndim == 0 or (p.ndim == 1 and p.size == 1 and node.version < 13):
        return p.reshape(())
    if node.version < 13:
        raise node.error(f"{what} must be a scalar before opset 13, has shape {list(p.shape)}")
    if p.ndim != 1:
        raise node.error(f"{what} must be a scalar or 1-D, has shape {list(p.shape)}")
    axis = _axis(node, node.int_attr("axis", 1), x.ndim)
    if p.size not in (1, x.shape[axis]):
        raise node.error(f"{what} has {p.size} values for axis {axis} of size {x.shape[axis]}")
    shape = [1] * x.ndim
    shape[axis] = p.size
    return p.reshape(shape)


def _quantize(v: np.ndarray, scale, zp: np.ndarray) -> np.ndarray:
    """saturate(round_half_to_even(v / scale) + zp) in zp's dtype."""
    return _saturate(np.rint(v / scale) + zp.astype(np.float64), zp.dtype)


def _quantize_linear(node: _Node, ins: list) -> list:
    x, scale = _need(node, ins, 2)
    if not (_is_float(x) or x.dtype == np.int32):
        raise node.error(f"x must be float or int32, is {x.dtype}")
    zp = _zero_point(node, _opt(ins, 2), "y_zero_point")
    scale = _per_axis(node, _float(node, scale, "y_scale"), x, "y_scale")
    zp = _per_axis(node, zp, x, "y_zero_point")
    return [_quantize(x.astype(np.float64), scale, zp)]


def _dequantize_linear(node: _Node, ins: list) -> list:
    x, scale = _need(node, ins, 2)
    zp = _opt(ins, 2)
    if x.dtype == np.int32:
        if zp is not None and np.any(zp != 0):
            raise node.error("int32 input has no zero point (it must be 0)")
        zp = np.zeros((), np.int32)
    else:
        if x.dtype not in _QTYPES:
            raise node.error(f"x must be uint8, int8 or int32, is {x.dtype}")
        zp = _zero_point(node, zp, "x_zero_point", x.dtype)
        if zp.dtype != x.dtype:
            raise node.error(f"x_zero_point is {zp.dtype}, x is {x.dtype}")
    scale = _per_axis(node, _float(node, scale, "x_scale"), x, "x_scale")
    zp = _per_axis(node, zp, x, "x_zero_point")
    return [(x.astype(np.float64) - zp.astype(np.float64)) * scale]


def _scalar(node: _Node, a: np.ndarray, what: str) -> np.ndarray:
    if a.size != 1:
        raise node.error(f"{what} must be a scalar, has shape {list(a.shape)}")
    return a.reshape(())


def _qlinear_conv(node: _Node, ins: list) -> list:
    x, xs, xzp, w, ws, wzp, ys, yzp = _need(node, ins, 8)
    b = _opt(ins, 8)
    for v, what in ((x, "x"), (w, "w"), (xzp, "x_zero_point"), (wzp, "w_zero_point"), (yzp, "y_zero_point")):
        if v.dtype not in _QTYPES:
            raise node.error(f"{what} must be uint8 or int8, is {v.dtype}")
    if x.dtype != xzp.dtype or w.dtype != wzp.dtype:
        raise node.error("x / w and their zero points must have the same type")
    M = w.shape[0] if w.ndim else 0
    xs = _scalar(node, _float(node, xs, "x_scale"), "x_scale")
    ys = _scalar(node, _float(node, ys, "y_scale"), "y_scale")
    xzp, yzp = _scalar(node, xzp, "x_zero_point"), _scalar(node, yzp, "y_zero_point")
    ws = _float(node, ws, "w_scale")
    for p, what in ((ws, "w_scale"), (wzp, "w_zero_point")):
        if p.ndim > 1 or p.size not in (1, M):
            raise node.error(f"{what} must be a scalar or one value per output channel, has shape {list(p.shape)}")
    per_channel = (1, -1, 1, 1)
    xi = x.astype(np.float64) - float(xzp)  # padding with 0 here = padding x with its zero point
    wi = w.astype(np.float64) - wzp.astype(np.float64).reshape(-1, 1, 1, 1)
    acc = _conv_core(node, xi, wi)  # integer-valued: exact in float64 (partial sums far below 2^53)
    if b is not None:
        if b.dtype != np.int32 or b.shape != (M,):
            raise node.error(f"B must be int32 with {M} values, is {b.dtype} {list(b.shape)}")
        acc += b.astype(np.float64).reshape(per_channel)
    multiplier = (xs * ws.reshape(-1)) / ys  # [1] or [M]
    return [_saturate(np.rint(acc * multiplier.reshape(per_channel)) + float(yzp), yzp.dtype)]


def _qlinear_matmul(node: _Node, ins: list) -> list:
    a, a_s, a_zp, b, b_s, b_zp, ys, yzp = _need(node, ins, 8)
    for v, what in ((a, "a"), (b, "b"), (a_zp, "a_zero_point"), (b_zp, "b_zero_point"), (yzp, "y_zero_point")):
        if v.dtype not in _QTYPES:
            raise node.error(f"{what} must be uint8 or int8, is {v.dtype}")
    if a.dtype != a_zp.dtype or b.dtype != b_zp.dtype:
        raise node.error("a / b and their zero points must have the same type")
    if a.ndim < 2 or b.ndim < 2:
        raise node.error("a and b must have rank >= 2")

    def rows(p, what):  # a's parameters: scalar, or per row ([M] for 2-D a, or [..., M, 1])
        if p.size == 1:
            return p.reshape(())
        if p.ndim == 1 and a.ndim == 2 and p.size == a.shape[0]:
            return p.reshape(-1, 1)
        if p.ndim == a.ndim and p.shape[-1] == 1 and p.shape[-2] == a.shape[-2]:
            return p
        raise node.error(f"{what} of shape {list(p.shape)} is neither per tensor nor per row of a {list(a.shape)}")

    def cols(p, what):  # b's parameters: scalar, or per column ([N], or [..., 1, N])
        if p.size == 1:
            return p.reshape(())
        if (p.ndim == 1 or (p.ndim == b.ndim and p.shape[-2] == 1)) and p.shape[-1] == b.shape[-1]:
            return p
        raise node.error(f"{what} of shape {list(p.shape)} is neither per tensor nor per column of b {list(b.shape)}")

    a_s, a_zp = rows(_float(node, a_s, "a_scale"), "a_scale"), rows(a_zp, "a_zero_point")
    b_s, b_zp = cols(_float(node, b_s, "b_scale"), "b_scale"), cols(b_zp, "b_zero_point")
    ys, yzp = _scalar(node, _float(node, ys, "y_scale"), "y_scale"), _scalar(node, yzp, "y_zero_point")
    acc = np.matmul(a.astype(np.float64) - a_zp.astype(np.float64), b.astype(np.float64) - b_zp.astype(np.float64))
    return [_saturate(np.rint(acc * (a_s * b_s / ys)) + float(yzp), yzp.dtype)]


# --- com.microsoft ---------------------------------------------------------------------------------

def _ms_operand(node: _Node, q, s, zp, what: str):
    if q.dtype not in _QTYPES:
        raise node.error(f"{what} must be uint8 or int8, is {q.dtype}")
    s = _scalar(node, _float(node, s, f"{what}_scale"), f"{what}_scale")
    zp = np.zeros((), q.dtype) if zp is None else _scalar(node, zp, f"{what}_zero_point")
    if zp.dtype != q.dtype:
        raise node.error(f"{what}_zero_point is {zp.dtype}, {what} is {q.dtype}")
    return q.astype(np.float64) - float(zp), s


def _ms_binary(kind: str):
    def handler(node: _Node, ins: list) -> list:
        A, As, _, B, Bs, _, Cs = (ins + [None] * 8)[:7]
        for i in (0, 1, 3, 4, 6):  # the zero points (2, 5, 7) are optional
            if i >= len(ins) or ins[i] is None:
                raise node.error(f"input {i} is required")
        if A.dtype != B.dtype:
            raise node.error(f"A is {A.dtype}, B is {B.dtype}")
        a, As = _ms_operand(node, A, As, _opt(ins, 2), "A")
        b, Bs = _ms_operand(node, B, Bs, _opt(ins, 5), "B")
        Cs = _scalar(node, _float(node, Cs, "C_scale"), "C_scale")
        Czp = _opt(ins, 7)
        Czp = np.zeros((), A.dtype) if Czp is None else _scalar(node, Czp, "C_zero_point")
        if Czp.dtype != A.dtype:
            raise node.error(f"C_zero_point is {Czp.dtype}, A is {A.dtype}")
        if kind == "add":
            real = (As * a + Bs * b) / Cs
        else:
            real = (a * b) * (As * Bs) / Cs
        return [_saturate(np.rint(real) + float(Czp), A.dtype)]
    return handler


def _qlinear_global_average_pool(node: _Node, ins: list) -> list:
    X, xs, xzp, ys, yzp = _need(node, ins, 5)
    x, xs = _ms_operand(node, X, xs, xzp, "x")
    ys = _scalar(node, _float(node, ys, "y_scale"), "y_scale")
    yzp = _scalar(node, yzp, "y_zero_point")
    if yzp.dtype != X.dtype:
        raise node.error(f"y_zero_point is {yzp.dtype}, X is {X.dtype}")
    if X.ndim < 3:
        raise node.error(f"input of rank {X.ndim}: needs N, C and spatial axes")
    last = node.int_attr("channels_last", 0, (0, 1))
    axes = tuple(range(1, X.ndim - 1)) if last else tuple(range(2, X.ndim))
    mean = (x * xs).mean(axis=axes, keepdims=True)
    return [_quantize(mean, ys, yzp)]


# --- dispatch --------------------------------------------------------------------------------------

_ONNX_OPS = {
    "Conv": _conv, "BatchNormalization": _batch_norm, "Relu": _relu, "Clip": _clip,
    "Add": _binary(np.add), "Sub": _binary(np.subtract), "Mul": _binary(np.multiply), "Div": _binary(np.divide),
    "MaxPool": _max_pool, "AveragePool": _average_pool, "GlobalAveragePool": _global_average_pool,
    "ReduceMean": _reduce_mean, "Flatten": _flatten, "Reshape": _reshape, "Transpose": _transpose,
    "Gemm": _gemm, "MatMul": _matmul, "Identity": _identity, "Constant": _constant, "Concat": _concat,
    "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Shape": _shape, "Gather": _gather,
    "Cast": _cast, "ConstantOfShape": _constant_of_shape,
    "QuantizeLinear": _quantize_linear, "DequantizeLinear": _dequantize_linear,
    "QLinearConv": _qlinear_conv, "QLinearMatMul": _qlinear_matmul,
}
_QONNX_OPS = {"Quant": _quant, "IntQuant": _quant, "BipolarQuant": _bipolar_quant, "Trunc": _trunc}
_MS_OPS = {
    "QLinearAdd": _ms_binary("add"), "QLinearMul": _ms_binary("mul"),
    "QLinearGlobalAveragePool": _qlinear_global_average_pool,
}


def _handler(node: _Node):
    domain = node.domain
    if domain in ("", "ai.onnx"):
        table = _ONNX_OPS
    elif domain in QONNX_DOMAINS:
        table = _QONNX_OPS
    elif domain == MS_DOMAIN:
        table = _MS_OPS
    else:
        table = {}
    fn = table.get(node.op)
    if fn is None:
        raise node.error(f"operator {node.op} (domain '{domain}') is not supported")
    return fn


def run(model: onnx.ModelProto, inputs: dict, outputs: list | None = None) -> dict:
    """Execute `model` on `inputs` (name -> array) and return {name: array} for `outputs`
    (default: the graph outputs; any value the graph computes may be named). Float tensors are
    computed in float64. Raises OnnxReferenceError for anything outside the supported subset."""
    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"model must be an onnx.ModelProto, not {type(model).__name__}")
    opsets: dict[str, int] = {}
    for imp in model.opset_import:
        opsets["" if imp.domain == "ai.onnx" else imp.domain] = imp.version
    onnx_opset = opsets.get("")
    if onnx_opset not in ONNX_OPSETS:
        raise OnnxReferenceError(f"model: ai.onnx opset {onnx_opset} is not supported "
                                 f"({ONNX_OPSETS.start}..{ONNX_OPSETS.stop - 1})")
    graph = model.graph
    if len(graph.sparse_initializer):
        raise OnnxReferenceError("model: sparse initializers are not supported")
    values: dict[str, np.ndarray] = {t.name: _as_value(numpy_helper.to_array(t)) for t in graph.initializer}
    graph_inputs = [i.name for i in graph.input]
    for name, array in inputs.items():
        if name not in graph_inputs:
            raise OnnxReferenceError(f"model: '{name}' is not a graph input (inputs: {graph_inputs})")
        values[name] = _as_value(array)  # a given input overrides an initializer of the same name

    for index, proto in enumerate(graph.node):
        domain = "" if proto.domain == "ai.onnx" else proto.domain
        node = _Node(proto, index, opsets.get(domain))
        fn = _handler(node)
        ins = []
        for name in proto.input:
            if name == "":
                ins.append(None)  # an omitted optional input
            elif name in values:
                ins.append(values[name])
            elif name in graph_inputs:
                raise node.error(f"graph input '{name}' was not given")
            else:
                raise node.error(f"input '{name}' is missing (not a graph input, an initializer "
                                 "or an output of an earlier node)")
        try:
            results = fn(node, ins)
        except OnnxReferenceError:
            raise
        except (ValueError, IndexError, TypeError) as e:  # numpy's shape errors and the like
            raise node.error(str(e)) from e
        unread = node.unread()
        if unread:
            raise node.reject(unread[0])
        for k, name in enumerate(proto.output):
            if name == "":
                continue
            if k >= len(results):
                raise node.error(f"output {k} ('{name}') is not supported")
            values[name] = results[k]

    wanted = [o.name for o in graph.output] if outputs is None else list(outputs)
    missing = [n for n in wanted if n not in values]
    if missing:
        raise OnnxReferenceError(f"model: value '{missing[0]}' is not computed by the graph")
    return {n: values[n] for n in wanted}
