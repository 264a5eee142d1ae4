"""Export a halibit model to QONNX: ``python -m halibit.export_qonnx MODEL.halibit OUT.onnx``.

    python3 -m halibit.export_qonnx MODEL.halibit OUT.onnx [--batch N] [--input-zeropt pad|mean] [--quiet]

The exported graph computes in float what the halibit model computes in integers, up to float32
precision and rounding ties (see "Differences" below). It is ONNX opset 13 plus the QONNX custom
domain ``qonnx.custom_op.general`` (version 1: ``Quant``, ``BipolarQuant``), NCHW float32, batch
dimension symbolic ``N`` (or a number, ``--batch``); ``onnx.checker.check_model`` passes.
``halibit.convert`` reads this form back. From Python: ``export(graph, tensors) ->
onnx.ModelProto`` (graph and tensors as ``halibit.modelfile.read_model`` returns them).

Values
------
Every halibit tensor T becomes one ONNX value named T (T_1, T_2, ... if T is ``input``,
``logits`` or a name generated earlier) whose float value is

* ``codes`` tensors: ``s_T * code``, s_T the graph's ``scale`` (1.0 if missing or 0), zero point
  0. Exception: the image tensor holds the input Quant's output ``s_c * (p - z_c)``, s_c = 1 /
  (255 std[c]) and z_c its zero point (below); the graph's nominal image ``scale`` is used only
  to give an RGB image one scale for all channels (``input.rescale``, below). ``max_pool`` and
  ``channel_shuffle`` outputs carry their input's scale and zero point (the shuffle permutes
  them), whatever their own ``scale`` field says: they copy codes.
* ``int32`` tensors: ``t * acc``, t their ``scale`` (1.0 if missing or 0); the output tensor's
  t is ``output.scale``.

Nodes (node and initializer names derive from the halibit layer names)
----------------------------------------------------------------------
* Graph input ``input`` float [N, C, H, W]: the normalised image x = (p/255 - mean[c]) / std[c].
  Node ``input.quant``: ``Quant(input, scale = 1 / (255 std[c]), zeropt, bitwidth 8)``, signed 0,
  narrow 0, rounding ROUND; scale and zeropt [1, C, 1, 1] (scalars if C == 1). x / scale +
  zeropt = p - 255 mean[c] + zeropt rounds to the pixel code p exactly when |zeropt - 255
  mean[c]| < 0.5, so the node records the input normalisation. zeropt (``--input-zeropt``):

  - ``pad`` (default): the ``pad_values`` of the padded convs reading the image (the toolkit's
    first layer pads with round(255 mean[c]): 73 for Fashion-MNIST's 72.93), if they lie within
    0.5 of 255 mean[c]; otherwise (no padded first layer, or pad codes farther away) 255 mean[c].
    The float graph's zero padding is then exactly the model's pad code, and the Quant outputs x
    shifted by (255 mean[c] - zeropt) * scale (0.0008 for Fashion-MNIST). The exact mean and std
    are in the metadata ``halibit.graph``.
  - ``mean``: 255 mean[c]: the Quant outputs x itself, and the first layer's border positions
    see the pixel 255 mean[c] where the model pads with round(255 mean[c]) (see Differences).

  If the channels' scales differ (RGB with per-channel std), ``Mul(., s / s_c)`` (``input.rescale``,
  s the image tensor's ``scale``) makes the image value ``s * (p - z_c)``, so that weight scales
  stay per output channel.
* ``conv`` (node = the layer name), input value ``s_in * (code - z_in[c])``: the accumulator's
  float coefficient a[o] is ``M[o] / 2^S * s_out`` with requantize and ``t`` without. Weights
  ``<layer>.wq`` = ``Quant(<layer>.weight, <layer>.wq.scale, 0, bitwidth)``: scale k[o] = a[o] /
  s_in, [Cout, 1, 1, 1]; initializer ``<layer>.weight`` = w * k (OIHW, float32), so that the
  Quant's output divided by its scale is the integer weight w:

  | encoding | node |
  |---|---|
  | binary | ``BipolarQuant(w * abs(k), k)`` (sign(w * abs(k)) * k = w * k for either sign of k) |
  | signed W | ``Quant`` bitwidth W, signed 1, narrow 0 |
  | odd W | ``Quant`` bitwidth W + 1, signed 1, narrow 1 (all values odd, -(2^W - 1)..2^W - 1) |
  | codebook W | ``Quant`` bitwidth 8, signed 1, narrow 0 (at most 2^W distinct values) |

  Weight Quants: rounding ROUND, zeropt 0. A negative multiplier gives a negative scale (exact:
  w * k / k = w); a zero multiplier gives k = 2^-64 (a Quant scale cannot be 0; the channel's
  weights then contribute below 1e-15 and its output is its bias alone).
  ``Conv(X, <layer>.wq, <layer>.bias)`` (kernel_shape, strides, pads [p, p, p, p], group,
  dilations 1): bias[o] = ``B[o] / 2^S * s_out`` with requantize; ``bias[o] * t`` for an int32
  conv with the (format version 3) int32 ``bias``, no bias input if it has none; plus ``a[o] *
  sum w z_in`` when the input has a zero point (the first layer: the pixel zero point folded in).
  With requantize, then ``Relu`` (``<layer>.relu``) and ``Quant(scale s_out, zeropt 0, bitwidth
  bits_out)``, signed 0, narrow 0 (``<layer>.quant``). The Relu changes nothing (the unsigned
  Quant clamps at 0 itself); it is emitted because FINN / Brevitas graphs have it (QuantReLU)
  and it shows where the activation is.
* ``add`` (node = the layer name): ``Mul(x0, <layer>.m0)`` (``<layer>.mul0``), m0[c] = M0[c] /
  2^S * s_out / s_0, [1, C, 1, 1]; likewise ``<layer>.mul1``; ``Add``; ``Add(., <layer>.b)``
  (``<layer>.addbias``, b[c] = (B[c] + M0[c] z_0[c] + M1[c] z_1[c]) / 2^S * s_out, [1, C, 1, 1]);
  ``Relu`` (``<layer>.relu``); ``Quant`` (``<layer>.quant``) as for conv.
* ``max_pool``: ``MaxPool`` (kernel_shape, strides, pads [p, p, p, p]).
* ``global_avg_pool`` (H x W input): ``GlobalAveragePool`` (the layer name), ``Mul(., m / 2^S *
  H * W * s_out / s_in)`` (``<layer>.mul``, a scalar), an ``Add`` (``<layer>.addbias``) only if
  the input has a zero point (the image), ``Quant`` (``<layer>.quant``) as for conv (no Relu).
* ``channel_shuffle`` (groups G, C = G * K): ``Reshape [0, G, K, H, W]`` (``<layer>.reshape0``)
  -> ``Transpose`` perm [0, 2, 1, 3, 4] (the layer name) -> ``Reshape [0, C, H, W]``
  (``<layer>.reshape1``).
* The output tensor (int32 [1, 1, classes], value output.scale * acc) -> ``Flatten`` axis 1
  (``output.flatten``) -> graph output ``logits`` [N, classes].

Metadata
--------
``model.metadata_props``, JSON strings, for exact round trips (float32 holds neither 31-bit
multipliers, 63-bit biases, level orders nor names):

* ``halibit.requantize``: {layer: {"multiplier": [..], "bias": [..], "shift": S}} (conv with
  requantize), {"multipliers": [[..], [..]], "bias": [..], "shift": S} (add), {"multiplier": m,
  "shift": S} (global_avg_pool);
* ``halibit.graph``: {"name", "labels", "output_scale", "color", "mean", "std"};
* ``halibit.levels``: {layer: levels} of codebook layers (their order);
* ``halibit.pad_values``: {layer: pad_values} of convs that have them;
* ``halibit.bias``: {layer: [..]}: the int32 biases of int32-output convs (format version 3).

Differences between the float graph and the integer model
---------------------------------------------------------
* Rounding ties: halibit rounds halves up ((x + 2^(S-1)) >> S); QONNX ``ROUND`` rounds halves to
  even. Where the exact value is a half (acc * M + B an odd multiple of 2^(S-1): never in the
  shipped models' layers on the test images, but on 17% of the values of a global_avg_pool whose
  multiplier is 255 * 2^23, as in tests/tiny.py with biases) the float value lands on the half or
  within float32 precision of it on either side, so the code is the integer model's or one less,
  whatever the rounding mode (so the export keeps ``ROUND``, the mode FINN and Brevitas use).
* float32: multipliers, biases and scales are float32 (24-bit mantissas; the 31-bit dyadic
  multipliers are exact only in the metadata) and runtimes sum in float32, so a value within
  about 1e-6 relative of a rounding boundary can round to the neighbouring code, and the change
  propagates to later layers.
* Padding: ONNX Conv pads with float 0, i.e. with the code z_in[c] (the image's zero point, 0
  elsewhere). Where a conv's ``pad_values`` differ from it (``--input-zeropt mean``: the first
  layer's round(255 mean[c]) against 255 mean[c]; or pad_values on a conv not reading the image)
  the border accumulators differ by sum(w) * (pad_values - z_in). ``differences(graph)`` lists
  them; the command line prints them as notes.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

QONNX_DOMAIN = "qonnx.custom_op.general"
OPSET = 13
INPUT_ZEROPTS = ("pad", "mean")  # the input Quant's zero point: the first layer's pad_values or 255 mean
TINY_SCALE = 2.0 ** -64  # the weight scale of a channel whose multiplier is 0


def _onnx():
    import onnx  # noqa: PLC0415 (imported lazily: the rest of the toolkit needs numpy only)
    import onnx.checker  # noqa: F401,PLC0415
    import onnx.numpy_helper  # noqa: F401,PLC0415
    return onnx


def _scale(spec: dict) -> float:
    s = spec.get("scale")
    return float(s) if s else 1.0


def _f32(a, what: str) -> np.ndarray:
    """float64 values -> float32, refusing values that do not survive (overflow, non-finite,
    nonzero values that flush to 0)."""
    a64 = np.asarray(a, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        a32 = a64.astype(np.float32)
    if not np.all(np.isfinite(a32)) or np.any((a32 == 0) & (a64 != 0)):
        raise ValueError(f"{what}: {a64.ravel()[:4].tolist()}... does not fit float32")
    return a32


class _Rep:
    """How an ONNX value holds a halibit tensor: float value = s[c] * (code - z[c])."""

    def __init__(self, name, s, z):
        self.name = name
        self.s = np.asarray(s, dtype=np.float64)
        self.z = np.asarray(z, dtype=np.float64)

    @property
    def uniform(self) -> bool:
        return bool(np.all(self.s == self.s[0]))

    @property
    def has_zero_point(self) -> bool:
        return bool(np.any(self.z != 0))


class _Builder:
    def __init__(self):
        onnx = _onnx()
        self.onnx = onnx
        self.h = onnx.helper
        self.nodes, self.inits = [], []
        self.values, self.node_names = set(), set()

    def value(self, want: str) -> str:
        name, i = want, 0
        while name in self.values:
            i += 1
            name = f"{want}_{i}"
        self.values.add(name)
        return name

    def init(self, want: str, array) -> str:
        name = self.value(want)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs, want_output: str, want_name: str, domain: str = "", **attrs) -> str:
        out = self.value(want_output)
        name, i = want_name, 0
        while name in self.node_names:
            i += 1
            name = f"{want_name}_{i}"
        self.node_names.add(name)
        self.nodes.append(self.h.make_node(op, list(inputs), [out], name=name, domain=domain, **attrs))
        return out

    def quant(self, x: str, prefix: str, out: str, scale, zeropt, bits: int, signed: int, narrow: int) -> str:
        s = self.init(f"{prefix}.scale", _f32(scale, f"'{prefix}' scale"))
        z = self.init(f"{prefix}.zeropt", np.asarray(zeropt, np.float32))
        b = self.init(f"{prefix}.bitwidth", np.asarray(float(bits), np.float32))
        return self.node("Quant", [x, s, z, b], out, prefix, domain=QONNX_DOMAIN, signed=int(signed),
                         narrow=int(narrow), rounding_mode="ROUND")


def _per_channel(v: np.ndarray) -> np.ndarray:
    """[C] -> [1, C, 1, 1]."""
    return np.asarray(v).reshape(1, -1, 1, 1)


def _input_quant_params(graph: dict):
    """(scale [C], zero point [C]) of the input Quant: 1 / (255 std), 255 mean."""
    spec = graph["tensors"][graph["input"]["tensor"]]
    C = int(spec["shape"][2])
    mean = np.asarray(graph["input"].get("mean") or [0.0] * C, np.float64).reshape(-1)
    std = np.asarray(graph["input"].get("std") or [1.0] * C, np.float64).reshape(-1)
    if mean.size == 1 and C > 1:
        mean = np.repeat(mean, C)
    if std.size == 1 and C > 1:
        std = np.repeat(std, C)
    if mean.size != C or std.size != C or np.any(std <= 0):
        raise ValueError(f"input: mean {mean.tolist()} / std {std.tolist()} do not fit {C} channels "
                         f"(std must be positive)")
    return 1.0 / (255.0 * std), 255.0 * mean


def _image_zero_point(graph: dict, input_zeropt: str = "pad") -> np.ndarray:
    """The input Quant's zero point: "mean": 255 mean[c]; "pad": the pad_values of the padded
    convs reading the image, when they agree and lie within 0.5 of 255 mean[c] (so that the Quant
    still rounds x / scale + zeropt = p + (pad - 255 mean) to the pixel code p), else 255 mean[c]."""
    if input_zeropt not in INPUT_ZEROPTS:
        raise ValueError(f"input_zeropt {input_zeropt!r} is not one of {', '.join(INPUT_ZEROPTS)}")
    _, z = _input_quant_params(graph)
    if input_zeropt == "mean":
        return z
    image = graph["input"]["tensor"]
    pads = {tuple(int(v) for v in (layer.get("pad_values") or [0] * z.size)) for layer in graph["layers"]
            if layer["op"] == "conv" and layer["inputs"][0] == image and int(layer.get("pad", 0)) > 0}
    if len(pads) != 1:
        return z
    pv = np.asarray(pads.pop(), np.float64)
    return pv if pv.size == z.size and np.all(np.abs(pv - z) < 0.499) else z


def differences(graph: dict, input_zeropt: str = "pad") -> list[str]:
    """Where the exported float graph cannot equal the integer model exactly, beyond float32
    rounding and rounding ties: convs whose pad_values differ from the code the float graph
    pads with (its input's zero point)."""
    zero = {graph["input"]["tensor"]: _image_zero_point(graph, input_zeropt)}
    notes = []
    for layer in graph["layers"]:
        ins = layer["inputs"]
        z_in = zero.get(ins[0])
        op = layer["op"]
        if op == "max_pool":
            if z_in is not None:
                zero[layer["output"]] = z_in
        elif op == "channel_shuffle":
            if z_in is not None:
                G = int(layer["groups"])
                zero[layer["output"]] = z_in.reshape(G, -1).T.reshape(-1)
        elif op == "conv" and int(layer.get("pad", 0)) > 0:
            C = int(graph["tensors"][ins[0]]["shape"][2])
            implied = z_in if z_in is not None else np.zeros(C)
            pv = np.asarray(layer.get("pad_values") or [0] * C, np.float64)
            if np.any(pv != implied):
                notes.append(f"layer '{layer['name']}': pads with codes {[int(v) for v in pv]}, the float graph "
                             f"with {[round(float(v), 3) for v in implied]} (ONNX Conv pads with 0.0): border "
                             f"accumulators differ by sum(w) * {[round(float(a), 3) for a in pv - implied]}")
    return notes


def export(graph: dict, tensors: dict, batch="N", input_zeropt: str = "pad"):
    """The QONNX ModelProto of a halibit model (graph, tensors as halibit.modelfile.read_model
    returns them: weights int8 OHWI values). `batch`: the batch dimension, a name (symbolic) or
    an int. `input_zeropt`: the input Quant's zero point, "pad" (the first layer's pad_values,
    round(255 mean): exact padding; the default) or "mean" (255 mean exactly); see the module
    docstring."""
    onnx = _onnx()
    b = _Builder()
    specs = graph["tensors"]
    in_name = graph["input"]["tensor"]
    H, W, C = (int(d) for d in specs[in_name]["shape"])
    out_spec_name = graph["output"]["tensor"]
    out_scale = float(graph["output"].get("scale") or 0.0) or _scale(specs[out_spec_name])

    b.values.update({"input", "logits"})
    rep: dict[str, _Rep] = {}
    meta_rq, meta_levels, meta_pad, meta_bias = {}, {}, {}, {}

    # input normalisation
    s_img, _ = _input_quant_params(graph)
    z_img = _image_zero_point(graph, input_zeropt)
    shape_c = (lambda v: np.asarray(v[0])) if C == 1 else _per_channel
    uniform = bool(np.all(s_img == s_img[0]))
    img = b.quant("input", "input.quant", in_name if uniform else "input.normalised", shape_c(s_img),
                  shape_c(z_img).astype(np.float32), 8, 0, 0)
    if uniform:
        rep[in_name] = _Rep(img, s_img, z_img)
    else:  # one scale for all channels (per output channel weight scales): s * (p - z[c])
        s_bar = _scale(specs[in_name])
        factor = b.init("input.rescale.factor", _f32(_per_channel(s_bar / s_img), "input rescale factor"))
        img = b.node("Mul", [img, factor], in_name, "input.rescale")
        rep[in_name] = _Rep(img, np.full(C, s_bar), z_img)

    def value_scale(tname: str) -> float:
        if tname == out_spec_name and specs[tname]["type"] == "int32":
            return out_scale
        return _scale(specs[tname])

    def out_quant(x: str, lname: str, tname: str) -> str:
        spec = specs[tname]
        s_out = value_scale(tname)
        y = b.quant(x, f"{lname}.quant", tname, np.asarray(s_out), np.asarray(0.0), int(spec["bits"]), 0, 0)
        rep[tname] = _Rep(y, np.full(int(spec["shape"][2]), s_out), np.zeros(int(spec["shape"][2])))
        return y

    for layer in graph["layers"]:
        op, lname, oname = layer["op"], layer["name"], layer["output"]
        ospec = specs[oname]
        xs = [rep[t] for t in layer["inputs"]]
        Cout = int(ospec["shape"][2])

        if op == "conv":
            x = xs[0]
            Cin = int(specs[layer["inputs"][0]]["shape"][2])
            wspec = layer["weights"]
            w = np.asarray(tensors[wspec["tensor"]]).astype(np.int64).transpose(0, 3, 1, 2)  # OIHW
            groups = int(layer.get("groups", 1))
            Cg = Cin // groups
            KH, KW = (int(v) for v in layer["kernel"])
            stride, pad = int(layer["stride"]), int(layer["pad"])
            # the input channel of weight [o, j]
            ch = (np.arange(Cout)[:, None] // (Cout // groups)) * Cg + np.arange(Cg)[None, :]
            rq = layer.get("requantize")
            if rq is not None:
                M = np.asarray(tensors[rq["multiplier"]]).astype(np.int64)
                B = np.asarray(tensors[rq["bias"]]).astype(np.int64)
                S = int(rq["shift"])
                s_out = value_scale(oname)
                a = M / 2.0 ** S * s_out
                beta = B / 2.0 ** S * s_out
                meta_rq[lname] = {"multiplier": M.tolist(), "bias": B.tolist(), "shift": S}
            else:
                t = value_scale(oname)
                a = np.full(Cout, t)
                beta = np.zeros(Cout)
                if layer.get("bias") is not None:
                    bias_i = np.asarray(tensors[layer["bias"]]).astype(np.int64)
                    beta = bias_i * t
                    meta_bias[lname] = bias_i.tolist()
            if not x.uniform:
                raise ValueError(f"layer '{lname}': its input's scale differs between channels")
            k = np.where(a == 0, TINY_SCALE, a / x.s[0])
            k32 = _f32(k.reshape(Cout, 1, 1, 1), f"layer '{lname}': weight scale")
            # the input's zero point (the image's mean pixel) folded into the bias
            comp = (w * (k32.astype(np.float64) * x.s[0] * x.z[ch].reshape(Cout, Cg, 1, 1))).sum(axis=(1, 2, 3))
            bias = beta + comp
            enc, wbits = wspec["encoding"], int(wspec["bits"])
            wname = f"{lname}.wq"
            if enc == "binary":
                winit = b.init(f"{lname}.weight", (w * np.abs(k32)).astype(np.float32))
                sname = b.init(f"{wname}.scale", k32)
                wq = b.node("BipolarQuant", [winit, sname], wname, wname, domain=QONNX_DOMAIN)
            else:
                qbits, narrow = {"signed": (wbits, 0), "odd": (wbits + 1, 1), "codebook": (8, 0)}[enc]
                winit = b.init(f"{lname}.weight", (w * k32.astype(np.float64)).astype(np.float32))
                wq = b.quant(winit, wname, wname, k32, np.asarray(0.0), qbits, 1, narrow)
                if enc == "codebook":
                    meta_levels[lname] = [int(v) for v in wspec["levels"]]
            if layer.get("pad_values") is not None:
                meta_pad[lname] = [int(v) for v in layer["pad_values"]]
            conv_in = [x.name, wq]
            if rq is not None or np.any(bias != 0):
                conv_in.append(b.init(f"{lname}.bias", _f32_or_zero(bias, f"layer '{lname}': bias")))
            conv_out = oname if rq is None else f"{lname}.acc"
            y = b.node("Conv", conv_in, conv_out, lname, kernel_shape=[KH, KW], strides=[stride, stride],
                       pads=[pad] * 4, group=groups, dilations=[1, 1])
            if rq is None:
                t = value_scale(oname)
                rep[oname] = _Rep(y, np.full(Cout, t), np.zeros(Cout))
            else:
                r = b.node("Relu", [y], f"{lname}.relu", f"{lname}.relu")
                out_quant(r, lname, oname)

        elif op == "add":
            M0, M1 = (np.asarray(tensors[m]).astype(np.int64) for m in layer["multipliers"])
            B = np.asarray(tensors[layer["bias"]]).astype(np.int64)
            S = int(layer["shift"])
            s_out = value_scale(oname)
            meta_rq[lname] = {"multipliers": [M0.tolist(), M1.tolist()], "bias": B.tolist(), "shift": S}
            prods = []
            for i, (x, M) in enumerate(zip(xs, (M0, M1))):
                m = _f32_or_zero(_per_channel(M / 2.0 ** S * s_out / x.s), f"layer '{lname}': multiplier {i}")
                prods.append(b.node("Mul", [x.name, b.init(f"{lname}.m{i}", m)], f"{lname}.mul{i}", f"{lname}.mul{i}"))
            total = b.node("Add", prods, f"{lname}.sum", lname)
            bias = (B + M0 * xs[0].z + M1 * xs[1].z) / 2.0 ** S * s_out
            bname = b.init(f"{lname}.b", _f32_or_zero(_per_channel(bias), f"layer '{lname}': bias"))
            y = b.node("Add", [total, bname], f"{lname}.biased", f"{lname}.addbias")
            r = b.node("Relu", [y], f"{lname}.relu", f"{lname}.relu")
            out_quant(r, lname, oname)

        elif op == "max_pool":
            KH, KW = (int(v) for v in layer["kernel"])
            stride, pad = int(layer["stride"]), int(layer["pad"])
            y = b.node("MaxPool", [xs[0].name], oname, lname, kernel_shape=[KH, KW], strides=[stride, stride],
                       pads=[pad] * 4)
            rep[oname] = _Rep(y, xs[0].s, xs[0].z)

        elif op == "global_avg_pool":
            x = xs[0]
            Hi, Wi, _ = (int(d) for d in specs[layer["inputs"][0]]["shape"])
            m, S = int(layer["multiplier"]), int(layer["shift"])
            s_out = value_scale(oname)
            meta_rq[lname] = {"multiplier": m, "shift": S}
            coeff = m / 2.0 ** S * Hi * Wi * s_out / x.s
            coeff = np.asarray(coeff[0]) if x.uniform else _per_channel(coeff)
            avg = b.node("GlobalAveragePool", [x.name], f"{lname}.avg", lname)
            y = b.node("Mul", [avg, b.init(f"{lname}.m", _f32_or_zero(coeff, f"layer '{lname}': multiplier"))],
                       f"{lname}.scaled", f"{lname}.mul")
            if x.has_zero_point:
                bias = _per_channel(m / 2.0 ** S * Hi * Wi * x.z * s_out)
                y = b.node("Add", [y, b.init(f"{lname}.b", _f32_or_zero(bias, f"layer '{lname}': bias"))],
                           f"{lname}.biased", f"{lname}.addbias")
            out_quant(y, lname, oname)

        elif op == "channel_shuffle":
            x = xs[0]
            G = int(layer["groups"])
            Hs, Ws, Cs = (int(d) for d in specs[layer["inputs"][0]]["shape"])
            K = Cs // G
            s1 = b.init(f"{lname}.shape0", np.asarray([0, G, K, Hs, Ws], np.int64))
            r = b.node("Reshape", [x.name, s1], f"{lname}.grouped", f"{lname}.reshape0")
            tr = b.node("Transpose", [r], f"{lname}.transposed", lname, perm=[0, 2, 1, 3, 4])
            s2 = b.init(f"{lname}.shape1", np.asarray([0, Cs, Hs, Ws], np.int64))
            y = b.node("Reshape", [tr, s2], oname, f"{lname}.reshape1")
            perm = lambda v: v.reshape(G, K).T.reshape(-1)  # noqa: E731
            rep[oname] = _Rep(y, perm(x.s), perm(x.z))

        else:
            raise ValueError(f"layer '{lname}': op {op!r} cannot be exported")

    # the output
    out_rep = rep[out_spec_name]
    if specs[out_spec_name]["type"] != "int32" or out_rep.has_zero_point:
        raise ValueError(f"output tensor '{out_spec_name}' is not an int32 tensor")
    b.values.discard("logits")
    logits = b.node("Flatten", [out_rep.name], "logits", "output.flatten", axis=1)
    assert logits == "logits"

    h = onnx.helper
    classes = int(np.prod(specs[out_spec_name]["shape"]))
    N = batch if isinstance(batch, str) else int(batch)
    inp = h.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [N, C, H, W])
    out = h.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [N, classes])
    vinfo = []
    for tname, r in rep.items():
        if r.name in ("input", "logits"):
            continue
        Ht, Wt, Ct = (int(d) for d in specs[tname]["shape"])
        vinfo.append(h.make_tensor_value_info(r.name, onnx.TensorProto.FLOAT, [N, Ct, Ht, Wt]))
    g = h.make_graph(b.nodes, str(graph.get("name") or "halibit"), [inp], [out], initializer=b.inits,
                     value_info=vinfo)
    model = h.make_model(g, opset_imports=[h.make_opsetid("", OPSET), h.make_opsetid(QONNX_DOMAIN, 1)],
                         producer_name="halibit.export_qonnx")
    meta = {
        "halibit.requantize": meta_rq,
        "halibit.graph": {"name": graph.get("name", ""), "labels": list(graph.get("labels") or []),
                          "output_scale": out_scale, "color": graph["input"].get("color"),
                          "mean": [float(v) for v in graph["input"].get("mean") or []],
                          "std": [float(v) for v in graph["input"].get("std") or []]},
        "halibit.levels": meta_levels,
        "halibit.pad_values": meta_pad,
        "halibit.bias": meta_bias,
    }
    for key, value in meta.items():
        if value or key in ("halibit.requantize", "halibit.graph"):
            entry = model.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value, allow_nan=False)
    return model


def _f32_or_zero(a, what: str) -> np.ndarray:
    """float32 of values that may be 0 (biases, multipliers): below float32's range they
    flush to 0 (they would not change a code), beyond it they are refused."""
    a64 = np.asarray(a, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        a32 = a64.astype(np.float32)
    if not np.all(np.isfinite(a32)):
        raise ValueError(f"{what}: {a64.ravel()[:4].tolist()}... does not fit float32")
    return a32


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m halibit.export_qonnx",
                                description="Export a halibit model to QONNX (float ONNX with Quant nodes).")
    p.add_argument("model", help="the halibit model file")
    p.add_argument("output", help="the .onnx file to write")
    p.add_argument("--batch", default="N", help="batch dimension: a symbol (default N) or a number")
    p.add_argument("--input-zeropt", choices=INPUT_ZEROPTS, default="pad",
                   help="the input Quant's zero point: pad (the first layer's pad_values = round(255 mean): "
                        "the float graph pads exactly as the model; default) or mean (255 mean exactly)")
    p.add_argument("--quiet", action="store_true", help="do not print where the float graph differs")
    args = p.parse_args(argv)
    onnx = _onnx()
    from .modelfile import ModelError, read_model

    def error(msg: str) -> int:
        print(f"halibit.export_qonnx: {msg}", file=sys.stderr)
        return 1

    batch = int(args.batch) if args.batch.isdigit() else args.batch
    try:
        graph, tensors = read_model(args.model)  # ModelError messages start with the file name
    except ModelError as e:
        return error(str(e).strip().splitlines()[0])
    except OSError as e:
        return error(f"{args.model}: {e.strerror or e}")
    try:
        model = export(graph, tensors, batch, args.input_zeropt)
        onnx.checker.check_model(model)
    except (ValueError, KeyError, TypeError, IndexError, onnx.checker.ValidationError) as e:
        text = str(e).strip()
        return error(f"{args.model}: cannot export: {text.splitlines()[0] if text else type(e).__name__}")
    try:
        onnx.save(model, args.output)
    except OSError as e:
        return error(f"{args.output}: {e.strerror or e}")
    if not args.quiet:
        for note in differences(graph, args.input_zeropt):
            print(f"halibit.export_qonnx: note: {args.model}: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
