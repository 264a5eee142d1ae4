"""QONNX and ONNX QDQ int8 test graphs for halibit.convert, built with onnx.helper.

Each builder returns a `Case`: the ONNX model, how its input is laid out and normalised, and the
uint8 test / calibration images. The graphs have random weights (seeded) at realistic scales and
are *calibrated* on Fashion-MNIST images while they are built: a BatchNormalization's statistics
are the measured per-channel mean and variance of its input (times a little noise), and an
activation quantizer's scale is set from a percentile of the measured values, so the activations
spread over the codes instead of saturating or collapsing to 0 (with onnx_reference, on 200
calibration images t10k[9000:9096], disjoint from the test images t10k[:1000]).

Used by test_convert.py (agreement of onnx_reference and the simulator, bad inputs) and
test_convert_fuzz.py (mutation fuzzing). `build(name)` caches the cases.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from halibit import fashion_mnist, onnx_reference
from halibit.onnx_reference import quant_range

Q = "qonnx.custom_op.general"
MS = "com.microsoft"
OPSET = 13
CLASSES = 10
CALIB = slice(9000, 9096)


# -- images ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _fashion():
    return fashion_mnist.load("t10k")[0][..., 0]  # [10000, 28, 28] uint8


def images(kind: str, index: slice | np.ndarray) -> np.ndarray:
    """Structured uint8 NHWC test images: Fashion-MNIST t10k images `index`, as
    "g28" 28x28 gray, "g16" the central 16x16 crop, "g14" 2x2-averaged to 14x14, or
    "rgb14" 14x14 RGB made of three views (the image, the next image, the image mirrored)."""
    imgs = _fashion()
    idx = np.arange(len(imgs))[index]
    x = imgs[idx].astype(np.float64)
    if kind == "g28":
        out = x[..., None]
    elif kind == "g16":
        out = x[:, 6:22, 6:22, None]
    elif kind == "g14":
        out = x.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))[..., None]
    elif kind == "rgb14":
        nxt = imgs[(idx + 1) % len(imgs)].astype(np.float64)
        g = lambda a: a.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))  # noqa: E731
        out = np.stack([g(x), g(nxt), g(x[:, :, ::-1])], axis=-1)
    else:
        raise ValueError(kind)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# -- cases -------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    model: onnx.ModelProto
    kind: str  # images(): "g28", "g16", "g14", "rgb14"
    mean: np.ndarray  # per channel, pixel/255 units: the graph input is (p/255 - mean) / std
    std: np.ndarray
    nhwc: bool = False
    convert_kwargs: dict = field(default_factory=dict)  # mean/std for convert() when the graph has none
    covers: list = field(default_factory=list)

    def images(self, index) -> np.ndarray:
        return images(self.kind, index)

    def ref_input(self, imgs: np.ndarray) -> np.ndarray:
        """The float graph input of uint8 NHWC images."""
        x = (imgs.astype(np.float64) / 255.0 - self.mean) / self.std
        return x if self.nhwc else x.transpose(0, 3, 1, 2)

    def reference(self, imgs: np.ndarray, output=None) -> np.ndarray:
        name = output or self.model.graph.output[0].name
        return onnx_reference.run(self.model, {"input": self.ref_input(imgs)}, [name])[name]


class Builder:
    """Accumulates nodes and initializers; `probe` runs the graph built so far on the
    calibration images (onnx_reference) to calibrate the next layer."""

    def __init__(self, name, kind, channels, seed, mean=0.0, std=1.0, nhwc=False):
        self.name, self.kind, self.C, self.nhwc = name, kind, channels, nhwc
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], 0
        self.mean = np.broadcast_to(np.asarray(mean, np.float64), (channels,)).copy()
        self.std = np.broadcast_to(np.asarray(std, np.float64), (channels,)).copy()
        self.calib = images(kind, CALIB)
        self.opsets = {"": OPSET, Q: 1}
        self.covers = []
        self.convert_kwargs = {}
        self._probe_cache = {}

    # - plumbing -
    def fresh(self, base):
        self.count += 1
        return f"{base}{self.count}"

    def init(self, a, base="c", dtype=np.float32):
        name = self.fresh(base + ".")
        self.inits.append(numpy_helper.from_array(np.asarray(a).astype(dtype), name))
        return name

    def node(self, op, inputs, base=None, domain="", n_out=1, **attrs):
        name = self.fresh(base or op.lower())
        outs = [name] if n_out == 1 else [f"{name}.{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=name, domain=domain, **attrs))
        if domain and domain not in self.opsets:
            self.opsets[domain] = 1
        return outs[0] if n_out == 1 else outs

    def model(self, output, shape=None):
        H, W = {"g28": (28, 28), "g16": (16, 16), "g14": (14, 14), "rgb14": (14, 14)}[self.kind]
        dims = ["N", H, W, self.C] if self.nhwc else ["N", self.C, H, W]
        g = helper.make_graph(list(self.nodes), self.name,
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)],
                              list(self.inits))
        return helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in self.opsets.items()],
                                 producer_name="halibit-tests")

    def case(self, output, **kw):
        return Case(self.name, self.model(output, ["N", CLASSES]), self.kind, self.mean, self.std, self.nhwc,
                    self.convert_kwargs, self.covers, **kw)

    def probe(self, name):
        if name not in self._probe_cache:
            c = Case(self.name, self.model(name), self.kind, self.mean, self.std, self.nhwc)
            self._probe_cache[name] = np.asarray(c.reference(self.calib, name), np.float64)
        return self._probe_cache[name]

    # - quantizers -
    def quant(self, x, scale, zeropt, bits, signed, narrow=0, mode=None, base="q"):
        attrs = dict(signed=int(signed), narrow=int(narrow))
        if mode is not None:
            attrs["rounding_mode"] = mode
        return self.node("Quant", [x, self.init(scale, base + "s"), self.init(zeropt, base + "z"),
                                   self.init(float(bits), base + "b")], base, domain=Q, **attrs)

    def quant_act(self, x, bits, signed=False, narrow=False, mode=None, asym=False, per_channel=False,
                  pct=99.5):
        """An activation quantizer with its scale (and zero point when `asym`) calibrated."""
        v = self.probe(x)
        axes = tuple(i for i in range(v.ndim) if i != 1) if per_channel else None
        lo_v = np.percentile(v, 100 - pct, axis=axes)
        hi_v = np.percentile(v, pct, axis=axes)
        qmin, qmax = quant_range(bits, signed, narrow)
        jitter = self.rng.uniform(0.95, 1.05, size=np.shape(hi_v))
        if asym:
            scale = np.maximum(hi_v - lo_v, 1e-3) / (qmax - qmin) * jitter
            z = np.round(qmin - lo_v / scale)
        elif signed:
            scale = np.maximum(np.maximum(np.abs(lo_v), np.abs(hi_v)), 1e-3) / qmax * jitter
            z = np.zeros_like(scale)
        else:
            scale = np.maximum(hi_v, 1e-3) / qmax * jitter
            z = np.zeros_like(scale)
        if per_channel:
            shape = (1, -1, 1, 1) if v.ndim == 4 else (1, -1)
            scale, z = scale.reshape(shape), (z.reshape(shape) if asym else np.float32(0))
        return self.quant(x, scale, z, bits, signed, narrow, mode)

    def input_quant(self, zeropt=0.0, std=1.0, x="input"):
        """The 8-bit unsigned quantizer of the image: scale 1/(255 std), zero point 255 mean (the
        converter's default normalisation). Sets the case's mean/std from the stored float32s."""
        scale = np.float32(1.0 / (255.0 * std))
        z = np.asarray(zeropt, np.float32)
        zshape = (1, -1, 1, 1) if z.size > 1 else ()
        out = self.quant(x, scale, z.reshape(zshape), 8, 0, base="qin")
        self.std = np.full(self.C, 1.0 / (255.0 * float(scale)))
        self.mean = np.broadcast_to(z.astype(np.float64).reshape(-1) / 255.0, (self.C,)).copy()
        return out

    def centered(self, f, C):
        """Random classifier weights [CLASSES, C] for the features f ([N, C] on the calibration
        images) with the mean feature projected out: every class's mean logit is about 0, so the
        predictions spread over the classes instead of one class winning everywhere."""
        m = self.probe(f).reshape(len(self.calib), -1).mean(axis=0)
        w = self.rng.normal(size=(CLASSES, C)) * np.sqrt(2.0 / C)
        return w - np.outer(w @ m, m) / max(float(m @ m), 1e-12)

    def weight_quant(self, shape, bits, kind="signed", per_channel=True, mode=None, out_axis=0, w=None):
        """Quantized weights of `shape` (ONNX layout, output channels along `out_axis`):
        kind "signed", "unsigned" (non-negative, unsigned Quant), "binary" (BipolarQuant),
        "odd" (narrow signed, every integer odd) or "codebook" (8-bit Quant of <= 16 levels);
        random unless given (`w`)."""
        shape = tuple(shape)
        fan_in = int(np.prod(shape)) // shape[out_axis]
        w = self.rng.normal(size=shape) * np.sqrt(2.0 / fan_in) if w is None else np.asarray(w, np.float64)
        red = tuple(i for i in range(len(shape)) if i != out_axis)
        bshape = [1] * len(shape)
        bshape[out_axis] = shape[out_axis]
        amax = np.abs(w).max(axis=red, keepdims=True) if per_channel else np.abs(w).max()
        if kind == "binary":
            s = np.abs(w).mean(axis=red, keepdims=True) if per_channel else np.abs(w).mean()
            return self.node("BipolarQuant", [self.init(w, "w"), self.init(s, "ws")], "wq", domain=Q)
        if kind == "odd":
            qmax = (1 << (bits - 1)) - 1
            s = amax / qmax
            odd = 2 * self.rng.integers(-(qmax + 1) // 2, (qmax + 1) // 2, size=shape) + 1
            w = (odd + self.rng.uniform(-0.3, 0.3, size=shape)) * s
            return self.quant(self.init(w, "w"), s, 0.0, bits, 1, 1, mode, base="wq")
        if kind == "codebook":
            levels = np.array([-127, -90, -61, -40, -24, -13, -6, -2, 1, 4, 9, 17, 30, 52, 80, 118])
            s = amax / 127
            ints = levels[self.rng.integers(0, 16, size=shape)]
            w = (ints + self.rng.uniform(-0.3, 0.3, size=shape)) * s
            return self.quant(self.init(w, "w"), s, 0.0, 8, 1, 0, mode, base="wq")
        if kind == "unsigned":
            w = np.abs(w)
            s = (amax / ((1 << bits) - 1))
            return self.quant(self.init(w, "w"), s, 0.0, bits, 0, 0, mode, base="wq")
        s = amax / ((1 << (bits - 1)) - 1)
        return self.quant(self.init(w, "w"), s, 0.0, bits, 1, 0, mode, base="wq")

    # - layers -
    def conv(self, x, cin, cout, k, bits=4, kind="signed", stride=1, pad=0, groups=1, bias=False,
             per_channel=True, mode=None):
        w = self.weight_quant((cout, cin // groups, k, k), bits, kind, per_channel, mode)
        ins = [x, w] + ([self.init(self.rng.normal(size=cout) * 0.1, "cb")] if bias else [])
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)
        if groups != 1:
            attrs["group"] = groups
        return self.node("Conv", ins, "conv", **attrs)

    def bn(self, x, C, beta_mean=0.3):
        """BatchNormalization with statistics measured on the calibration images (so its output
        is about N(beta, gamma^2) per channel)."""
        v = self.probe(x)
        axes = tuple(i for i in range(v.ndim) if i != 1)
        m, var = v.mean(axis=axes), v.var(axis=axes) + 1e-6
        r = self.rng
        ins = [self.init(r.uniform(0.6, 1.4, C), "bng"), self.init(r.normal(beta_mean, 0.4, C), "bnb"),
               self.init(m + r.normal(0, 0.05, C) * np.sqrt(var), "bnm"),
               self.init(var * r.uniform(0.8, 1.25, C), "bnv")]
        return self.node("BatchNormalization", [x] + ins, "bn", epsilon=1e-5)

    def relu(self, x):
        return self.node("Relu", [x], "relu")

    def block(self, x, cin, cout, k, wbits, abits, stride=1, pad=None, groups=1, kind="signed", mode=None,
              signed=False, narrow=False, per_channel_act=False):
        pad = k // 2 if pad is None else pad
        c = self.conv(x, cin, cout, k, wbits, kind, stride, pad, groups)
        return self.quant_act(self.relu(self.bn(c, cout)), abits, signed, narrow, mode, per_channel=per_channel_act)

    def head(self, x, C, trans_b=1, alpha=None, beta=None, bias=True, wbits=8, per_tensor=True):
        """GAP-output codes [N, C, 1, 1] -> Flatten -> Gemm -> logits [N, 10]."""
        f = self.node("Flatten", [x], "flat", axis=1)
        return self.gemm(f, C, trans_b, alpha, beta, bias, wbits)

    def gemm(self, f, C, trans_b=1, alpha=None, beta=None, bias=True, wbits=8):
        shape = (CLASSES, C) if trans_b else (C, CLASSES)
        wc = self.centered(f, C)
        w = self.weight_quant(shape, wbits, per_channel=False, out_axis=0 if trans_b else 1,
                              w=wc if trans_b else wc.T)
        spread = float(np.std(self.probe(f).reshape(len(self.calib), -1) @ wc.T)) * (alpha or 1.0) / (beta or 1.0)
        ins = [f, w] + ([self.init(self.rng.normal(size=CLASSES) * 0.3 * spread, "fcb")] if bias else [])
        attrs = {"transB": trans_b}
        if alpha is not None:
            attrs["alpha"] = alpha
        if beta is not None:
            attrs["beta"] = beta
        return self.node("Gemm", ins, "fc", **attrs)

    def gap_quant(self, x, op="GlobalAveragePool", bits=8, **kw):
        p = self.node(op, [x], "pool", **kw)
        return self.quant_act(p, bits)


# -- QONNX graphs --------------------------------------------------------------------------------


def g_basic():
    """The smoke graph: 4-bit and binary weights, 2-bit activations, a residual add of codes
    and an int32 accumulator, GlobalAveragePool, Flatten, Gemm transB=1 with bias."""
    b = Builder("basic", "g14", 1, seed=1)
    b.covers = ["Quant per-tensor act", "4-bit per-channel weights", "BipolarQuant weights", "BN", "Relu",
                "2-bit act", "residual add codes + int32 acc", "GlobalAveragePool", "Flatten",
                "Gemm transB=1 bias", "8-bit weights"]
    x = b.input_quant()
    a1 = b.block(x, 1, 8, 3, 4, 2)
    c2 = b.conv(a1, 8, 8, 3, kind="binary", pad=1)
    s = b.node("Add", [b.bn(c2, 8), a1], "add")
    a2 = b.quant_act(b.relu(s), 2)
    return b.case(b.head(b.gap_quant(a2), 8))


def g_normalised():
    """Input normalisation in the input Quant (zero point 73), 3-bit and 2-bit weights, conv
    bias, stride 2 with pads (padding with the zero point's code), FLOOR / CEIL rounding,
    MaxPool with pads, AveragePool over the whole map, Reshape, MatMul + Add."""
    b = Builder("normalised", "g16", 1, seed=2)
    b.covers = ["Quant zero point (input normalisation)", "3-bit weights", "2-bit weights", "conv bias",
                "stride 2", "pads", "rounding FLOOR", "rounding CEIL", "3-bit act", "4-bit act",
                "MaxPool pads", "AveragePool whole map", "Reshape [-1, C]", "MatMul", "Add constant (flat)"]
    x = b.input_quant(zeropt=73.0, std=0.353)
    c1 = b.conv(x, 1, 8, 3, 3, stride=2, pad=1, bias=True)
    a1 = b.quant_act(b.relu(b.bn(c1, 8)), 3, mode="FLOOR")
    p1 = b.node("MaxPool", [a1], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    a2 = b.block(p1, 8, 12, 3, 2, 4, mode="CEIL")
    p2 = b.gap_quant(a2, "AveragePool", kernel_shape=[4, 4])
    r = b.node("Reshape", [p2, b.init(np.array([-1, 12]), "shape", np.int64)], "reshape")
    w = b.weight_quant((12, CLASSES), 8, per_channel=False, out_axis=1, w=b.centered(r, 12).T)
    mm = b.node("MatMul", [r, w], "matmul")
    out = b.node("Add", [mm, b.init(b.rng.normal(size=CLASSES) * 0.2, "bias")], "addbias")
    return b.case(out)


def g_grouped():
    """Grouped (2) and depthwise convolutions, 5/6/7/1-bit activations, unsigned weights,
    ReduceMean, Gemm transB=0 with alpha and beta."""
    b = Builder("grouped", "g14", 1, seed=3)
    b.covers = ["groups 2", "depthwise", "5-bit act", "6-bit act", "7-bit act", "1-bit act",
                "unsigned 3-bit weights", "8-bit weights", "ReduceMean", "Gemm transB=0 alpha beta"]
    x = b.input_quant()
    a1 = b.block(x, 1, 8, 1, 8, 5, pad=0)
    a2 = b.block(a1, 8, 8, 3, 4, 6, groups=2)
    a3 = b.block(a2, 8, 8, 3, 3, 7, stride=2, groups=8)
    c4 = b.conv(a3, 8, 16, 1, 3, kind="unsigned")
    a4 = b.quant_act(b.relu(b.bn(c4, 16, beta_mean=0.0)), 1, pct=70)  # 1 bit: threshold near the median
    m = b.node("ReduceMean", [a4], "reducemean", axes=[2, 3], keepdims=1)
    p = b.quant_act(m, 8)
    return b.case(b.head(p, 16, trans_b=0, alpha=0.5, beta=2.0))


def g_odd_codebook():
    """Odd weights (narrow signed, all odd: 3 and 2 bits), a codebook (8-bit Quant of 16
    non-uniform levels), signed narrow activations after Relu (0..7 codes)."""
    b = Builder("odd_codebook", "g14", 1, seed=4)
    b.covers = ["odd weights 3-bit", "odd weights 2-bit (+-1)", "codebook weights", "signed narrow act",
                "stride 2"]
    x = b.input_quant()
    a1 = b.block(x, 1, 8, 3, 3, 4, kind="odd")
    a2 = b.block(a1, 8, 8, 3, 8, 4, stride=2, kind="codebook", signed=True, narrow=True)
    a3 = b.block(a2, 8, 12, 1, 2, 8, kind="odd")
    return b.case(b.head(b.gap_quant(a3), 12))


def g_affine():
    """Mul / Div / Add / Sub by constants (scalar and per channel [1, C, 1, 1]) instead of batch
    norm, and a residual add of two int32 accumulators."""
    b = Builder("affine", "g14", 1, seed=5)
    b.covers = ["Mul per-channel", "Add per-channel", "Div scalar", "Sub scalar", "Sub per-channel",
                "Mul scalar", "Div per-channel", "add of two int32 accumulators", "Mul scalar on logits"]
    x = b.input_quant()
    ca = b.conv(x, 1, 8, 3, 4, pad=1)
    cb = b.conv(x, 1, 8, 1, 4)
    va, vb = b.probe(ca), b.probe(cb)
    sa = 1.0 / (va.std(axis=(0, 2, 3)) + 1e-3)
    ya = b.node("Mul", [ca, b.init(sa.reshape(1, -1, 1, 1), "mul")], "mul")
    ya = b.node("Add", [ya, b.init((-va.mean(axis=(0, 2, 3)) * sa + 0.2).reshape(1, -1, 1, 1), "add")], "addc")
    yb = b.node("Div", [cb, b.init(np.float32(vb.std() * 2 + 1e-3), "div")], "div")
    yb = b.node("Sub", [yb, b.init(np.float32(0.1), "sub")], "sub")
    a1 = b.quant_act(b.relu(b.node("Add", [ya, yb], "add")), 4)
    c2 = b.conv(a1, 8, 8, 3, 3, pad=1)
    v2 = b.probe(c2)
    y2 = b.node("Mul", [c2, b.init(np.float32(1.0 / (v2.std() + 1e-3)), "mul")], "mul")
    y2 = b.node("Sub", [y2, b.init((v2.mean(axis=(0, 2, 3)) / (v2.std() + 1e-3) - 0.3).reshape(1, -1, 1, 1),
                                   "sub")], "subc")
    y2 = b.node("Div", [y2, b.init(b.rng.uniform(0.7, 1.4, size=(1, 8, 1, 1)), "div")], "divc")
    a2 = b.quant_act(b.relu(y2), 3)
    logits = b.head(b.gap_quant(a2), 8)
    return b.case(b.node("Mul", [logits, b.init(np.float32(1.7), "mul")], "scale"))


def g_rgb_nhwc_shuffle():
    """An NHWC RGB input with its Transpose, per-channel input zero points (padding with each
    channel's code), grouped 1x1 convolutions and a channel shuffle (Reshape [N, G, K, H, W]
    -> Transpose [0, 2, 1, 3, 4] -> Reshape)."""
    b = Builder("rgb_nhwc_shuffle", "rgb14", 3, seed=6, nhwc=True)
    b.covers = ["NHWC input + Transpose", "RGB input", "per-channel input zero points", "channel shuffle",
                "groups 2", "MaxPool", "Reshape 5-D"]
    t = b.node("Transpose", ["input"], "nchw", perm=[0, 3, 1, 2])
    x = b.input_quant(zeropt=[124.0, 116.0, 104.0], std=0.226, x=t)
    a1 = b.block(x, 3, 8, 3, 4, 4)
    a2 = b.block(a1, 8, 8, 1, 4, 4, groups=2)
    r1 = b.node("Reshape", [a2, b.init(np.array([-1, 2, 4, 14, 14]), "shape", np.int64)], "split")
    tr = b.node("Transpose", [r1], "shuffle", perm=[0, 2, 1, 3, 4])
    r2 = b.node("Reshape", [tr, b.init(np.array([-1, 8, 14, 14]), "shape", np.int64)], "merge")
    a3 = b.block(r2, 8, 8, 3, 4, 4, groups=2)
    p = b.node("MaxPool", [a3], "maxpool", kernel_shape=[2, 2], strides=[2, 2])
    return b.case(b.head(b.gap_quant(p), 8))


def g_pools():
    """A 5x5 kernel with pads 2, MaxPool 2x2 stride 2, a valid (unpadded) conv,
    MaxPool 3x3 stride 1 with pads 1, conv stride 2 with pads 1, 1x1 conv."""
    b = Builder("pools", "g16", 1, seed=7)
    b.covers = ["kernel 5 pads 2", "MaxPool 2x2 s2", "MaxPool 3x3 s1 pads 1", "valid conv", "stride 2 pads 1",
                "1x1 conv"]
    x = b.input_quant()
    a1 = b.block(x, 1, 8, 5, 4, 3)
    p1 = b.node("MaxPool", [a1], "maxpool", kernel_shape=[2, 2], strides=[2, 2])
    a2 = b.block(p1, 8, 12, 3, 4, 4, pad=0)
    p2 = b.node("MaxPool", [a2], "maxpool", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    a3 = b.block(p2, 12, 16, 3, 3, 5, stride=2)
    a4 = b.block(a3, 16, 16, 1, 4, 4)
    return b.case(b.head(b.gap_quant(a4), 16))


def g_resnet():
    """Residual blocks: a branch quantized with per-channel signed scales added to the
    shortcut's codes, and a downsampling block adding two int32 accumulators (3x3 stride 2
    branch, 1x1 stride 2 projection)."""
    b = Builder("resnet", "g16", 1, seed=8)
    b.covers = ["per-channel activation scales (signed)", "residual add of two quantized values",
                "add of two int32 accumulators (projection)", "stride 2"]
    x = b.input_quant()
    stem = b.block(x, 1, 8, 3, 4, 4)
    h = b.block(stem, 8, 8, 3, 4, 4)
    br = b.quant_act(b.bn(b.conv(h, 8, 8, 3, 4, pad=1), 8, beta_mean=0.0), 5, signed=True, per_channel=True)
    s1 = b.quant_act(b.relu(b.node("Add", [br, stem], "add")), 4)
    h2 = b.block(s1, 8, 16, 3, 4, 4, stride=2)
    c2 = b.bn(b.conv(h2, 16, 16, 3, 4, pad=1), 16, beta_mean=0.0)
    sc = b.bn(b.conv(s1, 8, 16, 1, 4, stride=2), 16, beta_mean=0.0)
    s2 = b.quant_act(b.relu(b.node("Add", [c2, sc], "add")), 4)
    return b.case(b.head(b.gap_quant(s2), 16))


def g_quantized_logits():
    """Asymmetric activations without Relu (unsigned codes with a zero point), signed 8-bit
    activations, a Reshape flatten, Gemm transB=0 without bias, and quantized logits (a signed
    8-bit Quant on the Gemm's output). Weights quantized with FLOOR and CEIL."""
    b = Builder("quantized_logits", "g14", 1, seed=9)
    b.covers = ["asymmetric act (zero point, no Relu)", "signed 8-bit act", "Quant logits",
                "Gemm transB=0 no bias", "Reshape flatten", "weights rounding FLOOR/CEIL"]
    x = b.input_quant()
    c1 = b.bn(b.conv(x, 1, 8, 3, 4, pad=1, mode="FLOOR"), 8)
    a1 = b.quant_act(c1, 4, asym=True)
    a2 = b.quant_act(b.bn(b.conv(a1, 8, 8, 3, 4, pad=1, mode="CEIL"), 8), 8, signed=True)
    a3 = b.quant_act(b.relu(a2), 4)
    p = b.gap_quant(a3)
    r = b.node("Reshape", [p, b.init(np.array([0, -1]), "shape", np.int64)], "reshape")
    logits = b.gemm(r, 8, trans_b=0, bias=False)
    return b.case(b.quant_act(logits, 8, signed=True, pct=100))


def g_rgb_meanstd():
    """An NCHW RGB image read directly by the first convolution (no input quantizer): the
    normalisation (mean per channel, one std) is given to convert(); the first conv pads with
    each channel's mean code. 8-bit weights, stride 2."""
    b = Builder("rgb_meanstd", "rgb14", 3, seed=10, mean=[124 / 255, 116 / 255, 104 / 255], std=0.25)
    b.convert_kwargs = dict(mean=[124 / 255, 116 / 255, 104 / 255], std=[0.25])
    b.covers = ["RGB NCHW input", "--mean/--std", "first conv reads the image", "8-bit weights"]
    a1 = b.block("input", 3, 8, 3, 8, 4, stride=2)
    a2 = b.block(a1, 8, 12, 3, 4, 4)
    return b.case(b.head(b.gap_quant(a2), 12))


def g_stem28():
    """The full 28x28 image through a ResNet-style stem: 7x7 kernel, stride 2, pads 3, then
    MaxPool 3x3 stride 2 pads 1; Identity passes through; Clip(0, inf) as the Relu;
    Squeeze of the pooled [N, C, 1, 1] codes; Gemm with alpha (no bias)."""
    b = Builder("stem28", "g28", 1, seed=14)
    b.covers = ["kernel 7 stride 2 pads 3", "MaxPool 3x3 s2 pads 1", "Identity", "Clip(0, inf)",
                "Squeeze", "28x28 input", "Gemm alpha no bias"]
    x = b.input_quant()
    c1 = b.bn(b.conv(x, 1, 8, 7, 4, stride=2, pad=3), 8)
    r1 = b.node("Clip", [c1, b.init(np.float32(0.0), "min")], "clip")
    a1 = b.quant_act(b.node("Identity", [r1], "identity"), 4)
    p1 = b.node("MaxPool", [a1], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    a2 = b.block(p1, 8, 16, 3, 3, 4, stride=2)
    g = b.gap_quant(a2)
    sq = b.node("Squeeze", [g, b.init(np.array([2, 3]), "axes", np.int64)], "squeeze")
    return b.case(b.gemm(sq, 16, alpha=0.25, bias=False))


def g_shuffle_unit():
    """A ShuffleNet unit on codes: grouped 1x1 conv (4 groups), channel shuffle of 4 groups,
    depthwise 3x3, grouped 1x1, residual add with the unit's input codes; ROUND_TO_ZERO after
    a Relu; Sub of a per-channel constant before the Relu."""
    b = Builder("shuffle_unit", "g14", 1, seed=15)
    b.covers = ["groups 4", "channel shuffle 4 groups", "depthwise 3x3", "ROUND_TO_ZERO",
                "Sub per-channel", "residual add codes + int32 acc"]
    x = b.input_quant()
    a0 = b.block(x, 1, 16, 3, 4, 4)
    a1 = b.block(a0, 16, 16, 1, 4, 4, groups=4)
    r1 = b.node("Reshape", [a1, b.init(np.array([-1, 4, 4, 14, 14]), "shape", np.int64)], "split")
    tr = b.node("Transpose", [r1], "shuffle", perm=[0, 2, 1, 3, 4])
    r2 = b.node("Reshape", [tr, b.init(np.array([-1, 16, 14, 14]), "shape", np.int64)], "merge")
    c2 = b.bn(b.conv(r2, 16, 16, 3, 4, pad=1, groups=16), 16)
    sub = b.node("Sub", [c2, b.init(b.rng.normal(0, 0.2, size=(1, 16, 1, 1)), "sub")], "sub")
    a2 = b.quant_act(b.relu(sub), 4, mode="ROUND_TO_ZERO")
    c3 = b.bn(b.conv(a2, 16, 16, 1, 4, groups=4), 16, beta_mean=0.0)
    a3 = b.quant_act(b.relu(b.node("Add", [c3, a0], "add")), 4)
    return b.case(b.head(b.gap_quant(a3), 16))


# -- QDQ int8 graphs -------------------------------------------------------------------------------


class QDQBuilder(Builder):
    def q(self, x, signed=False, pct=99.7, scale=None):
        """QuantizeLinear with a calibrated scale (uint8 zero point 0 after Relu, int8 otherwise);
        the image's is 1/255 (pixel codes)."""
        if x == "input" and scale is None:
            scale = 1.0 / 255.0
        if scale is None:
            v = self.probe(x)
            hi = np.percentile(np.abs(v) if signed else v, pct)
            scale = max(hi, 1e-3) / (127 if signed else 255) * self.rng.uniform(0.95, 1.05)
        s = np.float32(scale)
        zp = np.array(self.rng.integers(-3, 4) if signed else 0, np.int8 if signed else np.uint8)
        return self.node("QuantizeLinear", [x, self.init(s, "qs"), self.init(zp, "qz", zp.dtype)], "q"), s, zp

    def qdq(self, x, **kw):
        q, s, zp = self.q(x, **kw)
        return self.node("DequantizeLinear", [q, self.init(s, "dqs"), self.init(zp, "dqz", zp.dtype)], "dq")

    def dq_weights(self, shape, per_channel=True, w=None):
        if w is None:
            w = self.rng.normal(size=shape) * np.sqrt(2.0 / (np.prod(shape) / shape[0]))
        amax = np.abs(w).reshape(shape[0], -1).max(axis=1) if per_channel else np.abs(w).max()
        s = amax / 127
        q = np.clip(np.round(w / np.reshape(s, (-1,) + (1,) * (len(shape) - 1))), -127, 127).astype(np.int8)
        zp = np.zeros(np.shape(s), np.int8)
        ins = [self.init(q, "wq", np.int8), self.init(s, "ws"), self.init(zp, "wz", np.int8)]
        attrs = {"axis": 0} if per_channel else {}
        return self.node("DequantizeLinear", ins, "wdq", **attrs), q, np.asarray(s)


def g_qdq():
    """ONNX QDQ int8: QuantizeLinear / DequantizeLinear pairs around Conv (per-channel int8
    weights, float bias), a residual Add of uint8 and int8 (non-zero zero point) activations,
    GlobalAveragePool and Gemm."""
    b = QDQBuilder("qdq", "g14", 1, seed=11)
    b.covers = ["QuantizeLinear/DequantizeLinear", "DQ per-channel int8 weights", "DQ per-tensor weights",
                "int8 activations with zero point", "Add of DQ values", "GlobalAveragePool (QDQ)", "Gemm (QDQ)"]
    x = b.qdq("input")
    w1, _, _ = b.dq_weights((8, 1, 3, 3))
    c1 = b.node("Conv", [x, w1, b.init(b.rng.normal(size=8) * 0.1, "cb")], "conv", pads=[1, 1, 1, 1],
                kernel_shape=[3, 3])
    a1 = b.qdq(b.relu(c1))
    w2, _, _ = b.dq_weights((8, 8, 3, 3), per_channel=False)
    c2 = b.node("Conv", [a1, w2], "conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    a2 = b.qdq(c2, signed=True)
    a3 = b.qdq(b.relu(b.node("Add", [a2, a1], "add")))
    w3, _, _ = b.dq_weights((16, 8, 3, 3))
    c3 = b.node("Conv", [a3, w3], "conv", pads=[1, 1, 1, 1], strides=[2, 2], kernel_shape=[3, 3])
    a4 = b.qdq(b.relu(c3))
    p = b.qdq(b.node("GlobalAveragePool", [a4], "gap"))
    f = b.node("Flatten", [p], "flat")
    wc = b.centered(f, 16)
    wf, _, _ = b.dq_weights((CLASSES, 16), per_channel=False, w=wc)
    spread = float(np.std(b.probe(f) @ wc.T))
    return b.case(b.node("Gemm", [f, wf, b.init(b.rng.normal(size=CLASSES) * 0.3 * spread, "fcb")], "fc", transB=1))


def g_qdq_matmul():
    """QDQ with a grouped stride-2 conv, MaxPool between Q/DQ pairs, ReduceMean and a MatMul on
    DequantizeLinear'd int8 weights [C, classes] (per tensor)."""
    b = QDQBuilder("qdq_matmul", "g16", 1, seed=12)
    b.covers = ["QDQ grouped conv", "QDQ MaxPool", "QDQ ReduceMean", "MatMul (QDQ)", "uint8 input Q"]
    x = b.qdq("input")
    w1, _, _ = b.dq_weights((8, 1, 3, 3))
    a1 = b.qdq(b.relu(b.node("Conv", [x, w1], "conv", pads=[1, 1, 1, 1])))
    p1 = b.node("MaxPool", [a1], "maxpool", kernel_shape=[2, 2], strides=[2, 2])
    w2, _, _ = b.dq_weights((8, 4, 3, 3))
    a2 = b.qdq(b.relu(b.node("Conv", [p1, w2], "conv", pads=[1, 1, 1, 1], strides=[2, 2], group=2)))
    m = b.qdq(b.node("ReduceMean", [a2], "mean", axes=[2, 3], keepdims=0))
    wc = b.centered(m, 8).T
    q = np.clip(np.round(wc / np.abs(wc).max() * 127), -127, 127).astype(np.int8)
    wdq = b.node("DequantizeLinear", [b.init(q, "mw", np.int8), b.init(0.01, "mws"),
                                      b.init(np.int8(0), "mwz", np.int8)], "wdq")
    return b.case(b.node("MatMul", [m, wdq], "matmul"))


def g_qlinear():
    """Operator-form int8: QLinearConv (uint8 x, int8 per-channel w, int32 bias, pads, stride 2),
    com.microsoft QLinearAdd and QLinearGlobalAveragePool, Flatten, QLinearMatMul and the final
    DequantizeLinear (quantized logits)."""
    b = QDQBuilder("qlinear", "g14", 1, seed=13)
    b.opsets[MS] = 1
    b.covers = ["QLinearConv", "QLinearConv stride 2", "QLinearAdd", "QLinearGlobalAveragePool",
                "QLinearMatMul", "DequantizeLinear logits"]
    xq, xs, xz = b.q("input")
    xs = float(np.float32(xs))

    def qconv(xq, xs, xz, cin, cout, k, stride, pad, relu=True):
        w = b.rng.normal(size=(cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))
        ws = (np.abs(w).reshape(cout, -1).max(axis=1) / 127).astype(np.float32)
        wq = np.clip(np.round(w / ws.reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
        bias = np.round(b.rng.normal(size=cout) * 0.1 / (xs * ws)).astype(np.int32)
        # calibrate y_scale with the float value of the conv on the dequantized input
        dq = b.node("DequantizeLinear", [xq, b.init(xs, "t"), b.init(xz, "t", xz.dtype)], "probe_dq")
        wdq = b.node("DequantizeLinear", [b.init(wq, "t", np.int8), b.init(ws, "t"),
                                          b.init(np.zeros(cout, np.int8), "t", np.int8)], "probe_w", axis=0)
        fc = b.node("Conv", [dq, wdq, b.init(bias * xs * ws, "t")], "probe_conv", strides=[stride] * 2,
                    pads=[pad] * 4)
        v = b.probe(fc)
        del b.nodes[-3:]
        ys = np.float32(max(np.percentile(v, 99.7), 1e-3) / 255 * b.rng.uniform(0.95, 1.05))
        yz = np.uint8(0) if relu else np.uint8(b.rng.integers(100, 140))
        if not relu:
            ys = np.float32(max(np.percentile(np.abs(v), 99.7), 1e-3) / 127)
        ins = [xq, b.init(xs, "xs"), b.init(xz, "xz", xz.dtype), b.init(wq, "w", np.int8), b.init(ws, "ws"),
               b.init(np.zeros(cout, np.int8), "wz", np.int8), b.init(ys, "ys"), b.init(yz, "yz", np.uint8),
               b.init(bias, "b", np.int32)]
        return b.node("QLinearConv", ins, "qconv", strides=[stride] * 2, pads=[pad] * 4), float(ys), yz

    a1, s1, z1 = qconv(xq, xs, xz, 1, 8, 3, 1, 1)
    a2, s2, z2 = qconv(a1, s1, z1, 8, 8, 3, 1, 1, relu=False)
    a3, s3, z3 = qconv(a1, s1, z1, 8, 8, 1, 1, 0, relu=False)
    # QLinearAdd: calibrate C_scale on the float sum
    fa = b.node("Add", [b.node("DequantizeLinear", [a2, b.init(s2, "t"), b.init(z2, "t", np.uint8)], "p"),
                        b.node("DequantizeLinear", [a3, b.init(s3, "t"), b.init(z3, "t", np.uint8)], "p")], "p")
    v = b.probe(fa)
    del b.nodes[-3:]
    cs = np.float32(np.percentile(v, 99.7) / 255)
    add = b.node("QLinearAdd", [a2, b.init(s2, "as"), b.init(z2, "az", np.uint8), a3, b.init(s3, "bs"),
                                b.init(z3, "bz", np.uint8), b.init(cs, "cs"), b.init(np.uint8(0), "cz", np.uint8)],
                 "qadd", domain=MS)
    a4, s4, z4 = qconv(add, float(cs), np.uint8(0), 8, 16, 3, 2, 1)
    gp = b.node("DequantizeLinear", [a4, b.init(s4, "t"), b.init(z4, "t", np.uint8)], "p")
    v = b.probe(b.node("GlobalAveragePool", [gp], "p"))
    del b.nodes[-2:]
    gs = np.float32(np.percentile(v, 99.7) / 255 * 1.03)
    g = b.node("QLinearGlobalAveragePool", [a4, b.init(s4, "xs"), b.init(z4, "xz", np.uint8), b.init(gs, "ys"),
                                            b.init(np.uint8(0), "yz", np.uint8)], "qgap", domain=MS)
    f = b.node("Flatten", [g], "flat")
    wc = b.centered(f, 16).T
    wq = np.clip(np.round(wc / np.abs(wc).max() * 127), -127, 127).astype(np.int8)
    ms = np.float32(0.01)
    acc = b.probe(f) @ wq.astype(np.float64)  # codes x weights: calibrate the logits' scale
    ls = np.float32(np.abs(acc).max() * gs * ms / 120)
    mm = b.node("QLinearMatMul", [f, b.init(gs, "as"), b.init(np.uint8(0), "az", np.uint8), b.init(wq, "b", np.int8),
                                  b.init(ms, "bs"), b.init(np.int8(0), "bz", np.int8), b.init(ls, "ys"),
                                  b.init(np.uint8(128), "yz", np.uint8)], "qmatmul")
    out = b.node("DequantizeLinear", [mm, b.init(ls, "ls"), b.init(np.uint8(128), "lz", np.uint8)], "logits")
    return b.case(out)


# -- a tiny graph with fixed node names, for the bad-input cases ------------------------------------


class Tiny:
    """input [N, 1, 8, 8] -> Quant 'qin' -> Conv 'conv1' (weights Quant 'w1q', 4-bit per channel,
    pads 1) -> BatchNormalization 'bn1' -> Relu 'relu1' -> Quant 'a1' (4-bit) -> GlobalAveragePool
    'gap' -> Quant 'ap' -> Flatten 'flat' -> Gemm 'fc' (weights Quant 'fcq', 8-bit) -> 'logits'.
    Every node's output has the node's name (the Gemm's is 'logits'). Edit `nodes` / `inits`
    / `inputs` (value infos) / `output`, then call model()."""

    def __init__(self, channels=1, size=8, seed=0):
        r = np.random.default_rng(seed)
        self.inits = {}
        self.nodes = []
        self.channels = channels
        self.inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, size, size])]
        self.output = "logits"
        self.opsets = {"": OPSET, Q: 1}
        w1 = r.normal(size=(4, channels, 3, 3)) * 0.3
        self.quant("qin", "input", 1 / 255, 0, 8, 0)
        self.quant("w1q", self.init("w1", w1), np.abs(w1).max(axis=(1, 2, 3), keepdims=True) / 7, 0, 4, 1)
        self.add("Conv", ["qin", "w1q"], "conv1", pads=[1, 1, 1, 1], kernel_shape=[3, 3])
        self.add("BatchNormalization", ["conv1", self.init("bn1.g", r.uniform(0.5, 1.5, 4)),
                                        self.init("bn1.b", r.normal(0.5, 0.3, 4)),
                                        self.init("bn1.m", r.normal(0, 0.1, 4)),
                                        self.init("bn1.v", r.uniform(0.5, 2, 4))], "bn1")
        self.add("Relu", ["bn1"], "relu1")
        self.quant("a1", "relu1", 0.1, 0, 4, 0)
        self.add("GlobalAveragePool", ["a1"], "gap")
        self.quant("ap", "gap", 0.01, 0, 8, 0)
        self.add("Flatten", ["ap"], "flat")
        fcw = r.normal(size=(CLASSES, 4)) * 0.5
        self.quant("fcq", self.init("fcw", fcw), np.abs(fcw).max() / 127, 0, 8, 1)
        self.add("Gemm", ["flat", "fcq", self.init("fcb", r.normal(size=CLASSES) * 0.1)], "fc", out="logits", transB=1)

    def init(self, name, a, dtype=np.float32):
        self.inits[name] = np.asarray(a).astype(dtype)
        return name

    def add(self, op, inputs, name, out=None, domain="", index=None, **attrs):
        n = helper.make_node(op, inputs, [out or name], name=name, domain=domain, **attrs)
        self.nodes.insert(len(self.nodes) if index is None else index, n)
        if domain and domain not in self.opsets:
            self.opsets[domain] = 1
        return n

    def quant(self, name, x, scale, zeropt, bits, signed, narrow=0, index=None, **attrs):
        ins = [x, self.init(name + ".s", scale), self.init(name + ".z", zeropt), self.init(name + ".b", bits)]
        return self.add("Quant", ins, name, domain=Q, index=index, signed=signed, narrow=narrow, **attrs)

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def index(self, name):
        return next(i for i, n in enumerate(self.nodes) if n.name == name)

    def set_attr(self, name, key, value):
        n = self.node(name)
        keep = [a for a in n.attribute if a.name != key]
        del n.attribute[:]
        n.attribute.extend(keep + ([helper.make_attribute(key, value)] if value is not None else []))
        return self

    def rewire(self, name, i, value):
        self.node(name).input[i] = value
        return self

    def model(self):
        g = helper.make_graph(self.nodes, "tiny", self.inputs,
                              [helper.make_tensor_value_info(self.output, TensorProto.FLOAT, ["N", CLASSES])],
                              [numpy_helper.from_array(a, n) for n, a in self.inits.items()])
        return helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in self.opsets.items()])


BUILDERS = {f.__name__[2:]: f for f in (g_basic, g_normalised, g_grouped, g_odd_codebook, g_affine,
                                        g_rgb_nhwc_shuffle, g_pools, g_resnet, g_quantized_logits, g_rgb_meanstd,
                                        g_stem28, g_shuffle_unit, g_qdq, g_qdq_matmul, g_qlinear)}


@functools.lru_cache(maxsize=None)
def build(name: str) -> Case:
    return BUILDERS[name]()
