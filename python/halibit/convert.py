"""ONNX import: QONNX and ONNX QDQ int8 graphs -> halibit model files (docs/import.md).

    python3 -m halibit.convert IN.onnx OUT.halibit [--mean M ...] [--std S ...] [--labels FILE]

The converter interprets the graph symbolically. Every activation value of the ONNX graph is
held as an affine form over halibit tensors,

    value[c] = sum_i coeff_i[c] * T_i[c] + bias[c]          (`Lin`)

where each T_i is a halibit tensor (8-bit image codes, lower-bit codes, or an int32
accumulator) and c the channel. Convolutions, batch norm, scalings, residual adds and
dequantization only change the coefficients; a quantizer (`Quant`, `QuantizeLinear`) turns a
form into new integer codes, which becomes a halibit layer: the requantization of the
convolution that produced the accumulator (when nothing else reads it) or an `add` layer with
one or two inputs. So batch norm, scales and zero points fold into halibit's dyadic integer
requantization (HAWQ-V3) exactly, up to the dyadic multiplier's 31 bits and rounding ties.

Weights are quantized initializers (`Quant`, `BipolarQuant`, `DequantizeLinear` of int8); the
encoding follows their integer values (see `weight_encoding`). Every failure is a
ConvertError naming the node, its op type and the attribute or value at fault.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from dataclasses import dataclass, replace

import numpy as np

from .dyadic import INT64_MAX, requant_params
from .modelfile import ACC_LIMIT, ModelError, conv_out_size, validate, write_model
from .onnx_reference import quant_range

QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "finn", "qonnx")
MS_DOMAIN = "com.microsoft"
REL_TOL = 1e-6  # "the same value" for float scales that must agree (float32 graphs)


INTERNAL = "internal error, please report it with the model"


class ConvertError(ValueError):
    """An ONNX graph halibit cannot express exactly enough; the message names the node."""


def _where(node) -> str:
    return f"node '{node.name or (node.output[0] if node.output else '?')}' ({node.op_type})"


def fail(node, msg: str):
    raise ConvertError(f"{_where(node)}: {msg}" if node is not None else msg)


# --------------------------------------------------------------------------------------------
# values


@dataclass
class Const:
    value: np.ndarray


@dataclass
class QWeight:
    """Quantized weights: value = (ints - zero) * scale, ints integers in ONNX layout."""
    ints: np.ndarray
    scale: np.ndarray  # broadcastable to ints
    zero: np.ndarray
    bits: int
    kind: str  # "binary", "signed", "unsigned"
    narrow: bool
    node: object

    def value(self):
        return (self.ints - self.zero) * self.scale


@dataclass
class Lin:
    """value[c] = sum coeff[c] * T + bias[c] over halibit tensors T, on a C x H x W grid.

    `terms`: [(key, coeff [C])], key a halibit tensor name or ("avg", name) for the spatial mean
    of one (pending global_avg_pool). `relu`: the value is max(form, 0). `layout`: "nchw",
    "nhwc" (the graph input before its Transpose), "flat" ([N, C] after Flatten), or ("split",
    G) / ("split_t", G, transpose node) inside a channel shuffle's Reshape -> Transpose -> Reshape."""
    terms: list
    bias: np.ndarray
    shape: tuple  # (C, H, W)
    relu: bool = False
    layout: object = "nchw"

    @property
    def C(self):
        return self.shape[0]


def _channels(node, a, C: int, layout, what: str) -> np.ndarray:
    """A constant broadcast against an activation of C channels -> per-channel [C] (float64);
    raises if it varies along the batch or spatial axes."""
    a = np.asarray(a, dtype=np.float64)
    if a.size == 1:
        return np.full(C, float(a.reshape(-1)[0]))
    axis = 1  # NCHW and [N, C]
    nd = 4 if layout in ("nchw", "nhwc") else 2
    if layout == "nhwc":
        axis = 3
    if a.ndim > nd:
        fail(node, f"{what}: shape {list(a.shape)} has more dimensions than the activation")
    full = a.reshape((1,) * (nd - a.ndim) + a.shape)
    if full.shape[axis] not in (1, C) or any(full.shape[i] != 1 for i in range(nd) if i != axis):
        fail(node, f"{what}: shape {list(a.shape)} is not one value or one per channel ({C})")
    return np.broadcast_to(full.reshape(-1), (C,)).astype(np.float64).copy()


def _uniform(v: np.ndarray) -> bool:
    v = np.asarray(v, dtype=np.float64)
    return bool(np.all(np.abs(v - v[0]) <= REL_TOL * np.maximum(np.abs(v), np.abs(v[0]))))


def _is_integer(v, tol=1e-6) -> bool:
    v = np.asarray(v, dtype=np.float64)
    return bool(np.all(np.abs(v - np.round(v)) <= tol))


# --------------------------------------------------------------------------------------------
# weights


def weight_encoding(qw: QWeight, node, levels_hint=None):
    """(encoding, bits, levels or None) of quantized weights, from their integer values:
    binary for BipolarQuant; a codebook when a quantizer of more than 4 bits takes at most 16
    distinct values (its levels, sorted); odd for narrow signed values that are all odd;
    otherwise signed at the quantizer's bit width (unsigned b-bit weights: signed b + 1)."""
    if np.any(np.asarray(qw.zero) != 0):
        fail(node, "input 'zero point' of the weights: must be 0 (halibit weights are symmetric integers)")
    v = qw.ints.astype(np.int64)
    if qw.kind == "binary":
        return "binary", 1, None
    distinct = np.unique(v)
    if qw.bits > 4 and distinct.size <= 16 and distinct.min() >= -128 and distinct.max() <= 127:
        w = max(1, int(math.ceil(math.log2(distinct.size))))
        if levels_hint is not None and len(levels_hint) == 1 << w and set(levels_hint) == set(distinct.tolist()):
            return "codebook", w, [int(x) for x in levels_hint]
        levels = distinct.tolist() + [int(distinct[-1])] * ((1 << w) - distinct.size)
        return "codebook", w, levels
    if qw.kind == "signed":
        if qw.narrow and qw.bits >= 2 and np.all(v & 1) and qw.bits - 1 <= 4:
            return "odd", qw.bits - 1, None
        return "signed", max(2, qw.bits), None
    if qw.bits >= 8:
        fail(node, f"attribute 'bitwidth': unsigned {qw.bits}-bit weights (up to {(1 << qw.bits) - 1}) do not fit int8")
    return "signed", qw.bits + 1, None


def _offset_weights(node, q, scale, zero, bits, kind, narrow) -> QWeight:
    """Weights q with a zero point: the integers q - zero, signed at the bits their range needs
    (without a zero point: the quantizer's own bits and kind)."""
    zero = np.asarray(zero, dtype=np.float64)
    try:
        np.broadcast_shapes(q.shape, zero.shape, np.shape(scale))
    except ValueError:
        fail(node, f"the scale {list(np.shape(scale))} or zero point {list(zero.shape)} does not broadcast to the "
                   f"weights {list(q.shape)}")
    if not np.any(zero):
        return QWeight(q, scale, np.zeros(1), bits, kind, narrow, node)
    v = (q - zero).astype(np.int64)
    lo, hi = int(v.min(initial=0)), int(v.max(initial=0))
    need = next((b for b in range(2, 9) if -(1 << (b - 1)) <= lo and hi <= (1 << (b - 1)) - 1), None)
    if need is None:
        fail(node, f"the zero point moves the weights to {lo}..{hi}, beyond int8")
    return QWeight(v, scale, np.zeros(1), need, "signed", False, node)


def _weight_channel_scale(qw: QWeight, axis: int, node) -> np.ndarray:
    """The weights' scale as one value per output channel (`axis` of the ONNX layout)."""
    s = np.asarray(qw.scale, dtype=np.float64)
    try:
        full = np.broadcast_to(s.reshape((1,) * max(0, qw.ints.ndim - s.ndim) + s.shape), qw.ints.shape)
    except ValueError:
        fail(node, f"input 'scale' of the weights: shape {list(s.shape)} does not broadcast to the weights "
                   f"{list(qw.ints.shape)}")
    per = np.moveaxis(full, axis, 0).reshape(full.shape[axis], -1)
    if not np.all(per == per[:, :1]):
        fail(node, "input 'scale' of the weights: varies inside an output channel (halibit has one scale per "
                   "output channel)")
    if np.any(per[:, 0] <= 0) or not np.all(np.isfinite(per[:, 0])):
        fail(node, "input 'scale' of the weights: must be positive and finite")
    return per[:, 0].copy()


# --------------------------------------------------------------------------------------------
# the converter


class _Attrs:
    """A node's attributes, read with their expected types: a value of another type is a
    ConvertError naming the attribute, never a TypeError later."""

    def __init__(self, node):
        import onnx
        self.node = node
        self.raw = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def _bad(self, name, want):
        v = self.raw[name]
        shown = v if isinstance(v, (int, float, str, bytes, list)) else type(v).__name__
        fail(self.node, f"attribute '{name}': expected {want}, found {shown!r}")

    def has(self, name):
        return name in self.raw

    def int(self, name, default):
        if name not in self.raw:
            return default
        v = self.raw[name]
        if not isinstance(v, int) or isinstance(v, bool):
            self._bad(name, "an integer")
        return v

    def ints(self, name, default, length=None):
        if name not in self.raw:
            return list(default) if default is not None else None
        v = self.raw[name]
        if not isinstance(v, list) or not all(isinstance(x, int) for x in v) or (length and len(v) != length):
            self._bad(name, f"{length or 'a list of'} integers")
        return list(v)

    def float(self, name, default):
        if name not in self.raw:
            return default
        v = self.raw[name]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            self._bad(name, "a finite number")
        return float(v)

    def str(self, name, default):
        if name not in self.raw:
            return default
        v = self.raw[name]
        if isinstance(v, bytes):
            try:
                v = v.decode()
            except UnicodeDecodeError:
                self._bad(name, "a string")
        if not isinstance(v, str):
            self._bad(name, "a string")
        return v


class Converter:
    def __init__(self, model, mean=None, std=None, name=None, labels=None):
        import onnx
        import onnx.numpy_helper  # noqa: F401 - a submodule onnx does not import itself
        self.onnx = onnx
        self.model = model
        self.mean, self.std = mean, std
        self.notes: list[str] = []
        self.tensors: dict = {}
        self.layers: list = []
        self.stored: dict = {}
        self.bounds: dict = {}  # halibit tensor -> largest |value|
        self.producer: dict = {}  # halibit tensor -> layer dict
        self.readers: dict = {}  # halibit tensor -> number of layers reading it
        self.made_by: dict = {}  # halibit tensor -> the ONNX node it comes from
        self.values: dict = {}
        self.names: set = set()
        meta = {p.key: p.value for p in model.metadata_props}
        self.exact = self._meta(meta, "halibit.requantize")
        self.levels_hint = self._meta(meta, "halibit.levels")
        self.pad_hint = self._meta(meta, "halibit.pad_values")
        self.bias_hint = self._meta(meta, "halibit.bias")
        info = self._meta(meta, "halibit.graph")
        self.recorded = info  # a halibit export's own input mean / std (checked in _input_mean_std)
        if not isinstance(info.get("name", ""), str) or not (
                isinstance(info.get("labels", []), list) and all(isinstance(x, str) for x in info.get("labels", []))):
            raise ConvertError("metadata_props 'halibit.graph': 'name' must be a string and 'labels' a list of strings")
        self.name = name or info.get("name") or (model.graph.name or "imported")
        self.labels = labels if labels is not None else info.get("labels", [])
        self.opset = {o.domain: o.version for o in model.opset_import}

    @staticmethod
    def _meta(meta, key):
        try:
            v = json.loads(meta[key]) if key in meta else {}
        except json.JSONDecodeError as e:
            raise ConvertError(f"metadata_props '{key}': not JSON ({e})") from None
        if not isinstance(v, dict):
            raise ConvertError(f"metadata_props '{key}': expected a JSON object")
        return v

    # -- halibit graph ---------------------------------------------------------------------

    def _unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def _tensor(self, base, shape, type_, scale, bits=None):
        name = self._unique(base)
        spec = {"shape": [int(shape[1]), int(shape[2]), int(shape[0])], "type": type_}
        if bits is not None:
            spec["bits"] = int(bits)
        spec["scale"] = float(scale) if math.isfinite(scale) and scale != 0 else 1.0
        self.tensors[name] = spec
        self.made_by[name] = getattr(self, "current", None)
        self.bounds[name] = (1 << bits) - 1 if type_ == "codes" else None
        self.readers[name] = 0
        return name

    def _layer(self, layer):
        for t in layer["inputs"]:
            self.readers[t] += 1
        self.producer[layer["output"]] = layer
        self.layers.append(layer)
        return layer

    def _store(self, name, a):
        self.stored[name] = a
        return name

    @staticmethod
    def _layer_name(node):
        n = node.name or node.output[0]
        for suffix in (".quant", ".requantize"):
            if n.endswith(suffix):
                return n[: -len(suffix)]
        return n

    # -- value access ------------------------------------------------------------------------

    def value(self, node, i, what=None):
        if i >= len(node.input) or node.input[i] == "":
            return None
        name = node.input[i]
        if name not in self.values:
            fail(node, f"input {i} ('{name}') is not produced by an earlier node, an initializer or the graph input")
        return self.values[name]

    def const(self, node, i, what, required=True):
        v = self.value(node, i)
        if v is None:
            if required:
                fail(node, f"input '{what}' is missing")
            return None
        if isinstance(v, QWeight):
            return v.value()
        if not isinstance(v, Const):
            fail(node, f"input '{what}': must be a constant (an initializer), it is computed from the image")
        return v.value

    def lin(self, node, i, what="X") -> Lin:
        v = self.value(node, i)
        if v is None:
            fail(node, f"input '{what}' is missing")
        if not isinstance(v, Lin):
            fail(node, f"input '{what}': expected an activation, found a constant")
        return v

    # -- driver ------------------------------------------------------------------------------

    def run(self):
        g = self.model.graph
        for init in g.initializer:
            self.values[init.name] = Const(self.onnx.numpy_helper.to_array(init))
        inputs = [i for i in g.input if i.name not in self.values]
        if len(inputs) != 1:
            raise ConvertError(f"graph: expected one image input, found {len(inputs)} "
                               f"({', '.join(i.name for i in inputs) or 'none'})")
        self._input(inputs[0])
        for node in g.node:
            self.current = node
            try:
                outs = self._node(node)
            except ConvertError:
                raise
            except (ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError, ZeroDivisionError,
                    FloatingPointError) as e:
                # a case the checks above missed: still one line naming the node
                raise ConvertError(f"{_where(node)}: {INTERNAL} ({type(e).__name__}: {e})") from None
            if not isinstance(outs, (list, tuple)):
                outs = [outs]
            for name, v in zip(node.output, outs):
                self.values[name] = v
        if len(g.output) != 1:
            raise ConvertError(f"graph: expected one output (the logits), found {len(g.output)}")
        self._output(g.output[0].name)
        self._fuse_requantization()
        self._name_output(g.output[0].name)
        return self._graph()

    def _name_output(self, name):
        """The logits tensor takes the graph output's name (when no other tensor has it)."""
        t, scale = self.output
        if name in self.tensors or name == t:
            return
        self.tensors[name] = self.tensors.pop(t)
        self.producer[t]["output"] = name
        for layer in self.layers:
            layer["inputs"] = [name if x == t else x for x in layer["inputs"]]
        self.output = (name, scale)

    def _input(self, vi):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        if len(dims) != 4 or any(d is None or d < 1 for d in dims[1:]):
            raise ConvertError(f"graph input '{vi.name}': shape {dims} is not [N, C, H, W] or [N, H, W, C] with "
                               "known sizes")
        consumers = [n for n in self.model.graph.node if vi.name in n.input]
        nhwc = bool(consumers) and consumers[0].op_type == "Transpose" and \
            _Attrs(consumers[0]).raw.get("perm") == [0, 3, 1, 2]
        C, H, W = (dims[3], dims[1], dims[2]) if nhwc else (dims[1], dims[2], dims[3])
        if C not in (1, 3):
            raise ConvertError(f"graph input '{vi.name}': {C} channels; halibit reads gray (1) or RGB (3) images")
        mean, std = self._normalisation(vi.name, consumers, C, nhwc)
        self.input_name = self._tensor("image", (C, H, W), "codes", 1.0 / (255.0 * float(np.mean(std))), 8)
        self.names.add(vi.name)
        a = 1.0 / (255.0 * np.asarray(std))
        self.input_lin = Lin([(self.input_name, a)], -np.asarray(mean) / np.asarray(std), (C, H, W),
                             layout="nhwc" if nhwc else "nchw")
        self.values[vi.name] = self.input_lin
        self.color = "gray" if C == 1 else "rgb"

    def _normalisation(self, name, consumers, C, nhwc):
        """(mean [C], std [C]) in pixel/255 units: --mean/--std, else the first quantizer of the
        input when it maps pixels to codes one to one (8-bit unsigned), else 0 and 1."""
        def per_channel(v, what):
            v = np.asarray(v, dtype=np.float64).reshape(-1)
            if v.size == 1:
                v = np.full(C, v[0])
            if v.size != C or not np.all(np.isfinite(v)):
                raise ConvertError(f"--{what}: expected 1 or {C} finite numbers, found {v.size}")
            return v
        if self.mean is not None or self.std is not None:
            mean = per_channel(self.mean if self.mean is not None else [0.0], "mean")
            std = per_channel(self.std if self.std is not None else [1.0], "std")
            if np.any(std <= 0):
                raise ConvertError("--std: must be positive")
            return mean, std
        first = consumers[0] if consumers else None
        if first is not None and nhwc:
            nxt = [n for n in self.model.graph.node if first.output[0] in n.input]
            first = nxt[0] if nxt else None
        if first is not None and first.op_type in ("Quant", "IntQuant", "QuantizeLinear"):
            try:
                s, z, bits, signed = self._quant_params_raw(first)
            except ConvertError:
                s = None
            if s is not None and bits == 8 and not signed:
                s, z = (_channels(first, x, C, "nchw", "scale") for x in (s, z))
                if np.all(s > 0) and np.all(np.isfinite(s)) and np.all(np.isfinite(z)):
                    self.inferred_note = len(self.notes)
                    self.notes.append(f"input normalisation from {_where(first)}: mean {np.round(z / 255, 6).tolist()}, "
                                      f"std {np.round(1 / (255 * s), 6).tolist()} (pixel/255 units)")
                    return z / 255.0, 1.0 / (255.0 * s)
        self.notes.append("no input normalisation given (--mean/--std) and none in the graph: the input is "
                          "taken as pixel/255")
        return np.zeros(C), np.ones(C)

    def _node(self, node):
        op, dom = node.op_type, node.domain
        if dom in QONNX_DOMAINS or (dom == "" and op in ("Quant", "BipolarQuant", "Trunc", "IntQuant")):
            handler = {"Quant": self._quant, "IntQuant": self._quant, "BipolarQuant": self._bipolar,
                       "Trunc": self._trunc}.get(op)
        elif dom in ("", "ai.onnx"):
            handler = getattr(self, f"_op_{op}", None)
        elif dom == MS_DOMAIN:
            handler = getattr(self, f"_ms_{op}", None)
        else:
            handler = None
        ins = [self.values.get(i) for i in node.input if i]
        if handler is None:
            if ins and all(isinstance(v, Const) for v in ins) and dom in ("", "ai.onnx"):
                return self._fold(node)
            fail(node, f"operator '{op}'{f' of domain {dom!r}' if dom else ''} is not supported (docs/import.md)")
        return handler(node)

    def _fold(self, node):
        """A standard node whose inputs are all constants: computed by the float reference."""
        from . import onnx_reference
        helper = self.onnx.helper
        names = [i for i in node.input if i]
        for n in names:
            if n not in self.values:
                fail(node, f"input '{n}' is not produced by an earlier node, an initializer or the graph input")
            if not isinstance(self.values[n], (Const, QWeight)):
                fail(node, f"input '{n}': computed from the image where this node needs a constant")
        vals = {n: np.asarray(self.values[n].value() if isinstance(self.values[n], QWeight) else self.values[n].value)
                for n in names}
        inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(vals[n].dtype)
                                                if hasattr(helper, "np_dtype_to_tensor_dtype")
                                                else self.onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[vals[n].dtype], None)
                  for n in names]
        outputs = [helper.make_tensor_value_info(o, self.onnx.TensorProto.FLOAT, None) for o in node.output]
        g = helper.make_graph([node], "fold", inputs, outputs)
        m = helper.make_model(g, opset_imports=self.model.opset_import)
        try:
            res = onnx_reference.run(m, vals)
        except Exception as e:  # noqa: BLE001 - the reference's own error names the node
            msg = str(e)
            msg = msg[len(_where(node)) + 2:] if msg.startswith(_where(node)) else msg
            fail(node, f"cannot compute it from its constant inputs: {msg}")
        return [Const(np.asarray(res[o])) for o in node.output]

    # -- constants and shapes ------------------------------------------------------------------

    def _op_Constant(self, node):
        a = _Attrs(node)
        if sorted(a.raw) != ["value"] or not isinstance(a.raw["value"], self.onnx.TensorProto):
            fail(node, f"attribute: only a tensor 'value' is supported, found {sorted(a.raw)}")
        try:
            return Const(self.onnx.numpy_helper.to_array(a.raw["value"]))
        except Exception as e:  # noqa: BLE001 - a malformed TensorProto
            fail(node, f"attribute 'value': not a readable tensor ({e})")

    def _passthrough(self, node):
        v = self.value(node, 0)
        if v is None:
            fail(node, "input 0 is missing")
        return v

    _op_Identity = _passthrough
    _op_Dropout = _passthrough

    def _op_Cast(self, node):
        v = self.value(node, 0)
        if isinstance(v, Lin):
            to = _Attrs(node).int("to", None)
            if to not in (self.onnx.TensorProto.UINT8, self.onnx.TensorProto.INT8, self.onnx.TensorProto.INT32,
                          self.onnx.TensorProto.FLOAT, self.onnx.TensorProto.DOUBLE):
                fail(node, f"attribute 'to': casting an activation to type {to} is not supported")
            return v  # integer codes stay integers; halibit computes exactly
        if isinstance(v, QWeight):
            return v
        return self._fold(node)

    # -- quantizers ----------------------------------------------------------------------------

    def _quant_params_raw(self, node):
        """(scale, zero point, bits, signed) of Quant / QuantizeLinear, without checks of use."""
        if node.op_type == "QuantizeLinear":
            s = self.const(node, 1, "y_scale")
            z = self.const(node, 2, "y_zero_point", required=False)
            z = np.zeros(1, np.uint8) if z is None else np.asarray(z)
            if z.dtype not in (np.uint8, np.int8):
                fail(node, f"input 'y_zero_point': type {z.dtype}; halibit imports uint8 and int8 QDQ graphs")
            return np.asarray(s, np.float64), z.astype(np.float64), 8, z.dtype == np.int8
        s, z, b = (self.const(node, i, w) for i, w in ((1, "scale"), (2, "zeropt"), (3, "bitwidth")))
        b = np.asarray(b, dtype=np.float64).reshape(-1)
        if b.size != 1 or not np.isfinite(b[0]) or b[0] != round(b[0]) or not 1 <= b[0] <= 64:
            fail(node, f"input 'bitwidth': {b.tolist()} is not one positive integer")
        return s, z, int(b[0]), bool(_Attrs(node).int("signed", 1))

    def _quant(self, node):
        a = _Attrs(node)
        s, z, bits, signed = self._quant_params_raw(node)
        narrow = bool(a.int("narrow", 0))
        mode = a.str("rounding_mode", "ROUND").upper()
        x = self.value(node, 0)
        if x is None:
            fail(node, "input 'X' is missing")
        if isinstance(x, (Const, QWeight)):
            if bits > 8:  # a bias quantized to 16 or 32 bits: its float values
                return self._fold(node)
            return self._quant_weights(node, x, s, z, bits, signed, narrow, mode)
        if bits > 8:
            fail(node, f"input 'bitwidth': {bits}-bit activations; halibit codes have 1..8 bits")
        return self.quantize(node, x, s, z, bits, signed, narrow, mode)

    def _quant_weights(self, node, x, s, z, bits, signed, narrow, mode):
        from .onnx_reference import rounding_function
        w = np.asarray(x.value() if isinstance(x, QWeight) else x.value, dtype=np.float64)
        s = np.asarray(s, dtype=np.float64)
        z = np.asarray(z, dtype=np.float64)
        if np.any(s <= 0) or not np.all(np.isfinite(s)) or not np.all(np.isfinite(z)):
            fail(node, "input 'scale'/'zeropt': the scale must be positive and finite, the zero point finite")
        try:
            np.broadcast_shapes(w.shape, s.shape, z.shape)
        except ValueError:
            fail(node, f"input 'scale': shape {list(s.shape)} does not broadcast to the weights {list(w.shape)}")
        y = w / s + z
        if bits == 1 and signed:  # qonnx: a signed 1-bit Quant is bipolar
            return QWeight(np.where(y >= 0, 1, -1).astype(np.int64), s, np.zeros(1), 1, "binary", False, node)
        try:
            rnd = rounding_function(mode)
        except KeyError:
            fail(node, f"attribute 'rounding_mode': {mode!r} is not a QONNX rounding mode")
        lo, hi = quant_range(bits, signed, narrow)
        q = rnd(np.clip(y, lo, hi))
        if not _is_integer(z, 1e-9):
            fail(node, "input 'zeropt': a non-integer zero point on weights")
        return _offset_weights(node, q.astype(np.int64), s, np.round(z), bits, "signed" if signed else "unsigned",
                               narrow)

    def _bipolar(self, node):
        x = self.value(node, 0)
        s = np.asarray(self.const(node, 1, "scale"), dtype=np.float64)
        if isinstance(x, Lin):
            fail(node, "input 'X': bipolar activations are not supported (halibit codes are unsigned)")
        if np.any(s <= 0) or not np.all(np.isfinite(s)):
            fail(node, "input 'scale': must be positive and finite")
        w = np.asarray(x.value() if isinstance(x, QWeight) else x.value, dtype=np.float64)
        return QWeight(np.where(w >= 0, 1, -1).astype(np.int64), s, np.zeros(1), 1, "binary", False, node)

    def _trunc(self, node):
        """QONNX Trunc (trunc_op.md; Brevitas's TruncAvgPool): y = rint(x / scale + zeropt) is the
        input's integer grid, then y / 2^k rounded (FLOOR by default), with 2^k = 2^(in_bits -
        out_bits) (version 1, 5 inputs, no clamp, output scale = scale) or out_scale / scale as
        a power of two (version 2, 6 inputs, clamped to the output bits). Exact here when y is an
        integer combination of codes by construction, as after a pool's sum: one rounding of a
        dyadic fraction."""
        n = len(node.input)
        if n not in (5, 6):
            fail(node, f"{n} inputs: Trunc takes 5 (version 1) or 6 (version 2)")
        x = self.lin(node, 0)
        C = x.C
        s = _channels(node, self.const(node, 1, "scale"), C, x.layout, "input 'scale'")
        z = _channels(node, self.const(node, 2, "zeropt"), C, x.layout, "input 'zeropt'")
        if np.any(s <= 0) or not np.all(np.isfinite(s)) or not np.all(np.isfinite(z)):
            fail(node, "input 'scale'/'zeropt': the scale must be positive and finite, the zero point finite")
        a = _Attrs(node)
        mode = a.str("rounding_mode", "FLOOR").upper()
        in_bits = self._int_input(node, 3, "in_bitwidth")
        grid = replace(x, terms=[(k, c / s) for k, c in x.terms], bias=x.bias / s + z)
        lo_y = hi_y = grid.bias.copy()
        for k, c in grid.terms:
            t = k[1] if isinstance(k, tuple) else k
            unit = c / (self.tensors[t]["shape"][0] * self.tensors[t]["shape"][1]) if isinstance(k, tuple) else c
            if not _is_integer(unit) or not _is_integer(grid.bias):
                fail(node, "input 'X': not on the integer grid of 'scale' (halibit applies Trunc to sums of codes, "
                           "as Brevitas's TruncAvgPool writes it)")
            bound = self._bound(t, node) * (self.tensors[t]["shape"][0] * self.tensors[t]["shape"][1]
                                            if isinstance(k, tuple) else 1)
            low = 0 if self.tensors[t]["type"] == "codes" else -bound
            lo_y, hi_y = lo_y + np.minimum(unit * low, unit * bound), hi_y + np.maximum(unit * low, unit * bound)
        if n == 5:
            out_bits = self._int_input(node, 4, "out_bitwidth")
            shift = in_bits - out_bits
            if shift < 0 or np.any(lo_y < 0) or np.any(hi_y > (1 << in_bits) - 1):
                fail(node, f"input 'X': its integers {float(lo_y.min()):g}..{float(hi_y.max()):g} are not unsigned "
                           f"{in_bits}-bit values, or out_bitwidth exceeds in_bitwidth (version 1 does not clamp)")
            step, out_scale, signed, narrow = 2.0 ** shift, s, False, False
        else:
            out_scale = _channels(node, self.const(node, 4, "out_scale"), C, x.layout, "input 'out_scale'")
            out_bits = self._int_input(node, 5, "out_bitwidth")
            if np.any(out_scale <= 0) or not np.all(np.isfinite(out_scale)):
                fail(node, "input 'out_scale': must be positive and finite")
            step = 2.0 ** np.rint(np.log2(out_scale / s))
            signed, narrow = bool(a.int("signed", 1)), bool(a.int("narrow", 0))
        if out_bits > 8:
            fail(node, f"input 'out_bitwidth': {out_bits}-bit activations; halibit codes have 1..8 bits")
        # codes of y / step; value = (y' - zeropt / step) * out_scale with y' the rounded integer
        if x.relu and np.any(lo_y < 0):
            fail(node, "input 'X': a Relu before Trunc on values that can be negative")
        shape = (1, C) if x.layout == "flat" else (1, C, 1, 1)
        q = self.quantize(node, replace(grid, relu=False), np.broadcast_to(step, (C,)).reshape(shape), 0.0, out_bits,
                          signed, narrow, mode, integer=True)
        return self._affine(node, q, out_scale, -z / (step if n == 6 else 1.0) * out_scale)

    def _int_input(self, node, i, what):
        v = np.asarray(self.const(node, i, what), dtype=np.float64).reshape(-1)
        if v.size != 1 or not np.isfinite(v[0]) or v[0] != round(v[0]) or not 1 <= v[0] <= 64:
            fail(node, f"input '{what}': {v.tolist()} is not one positive integer")
        return int(v[0])

    def _op_QuantizeLinear(self, node):
        x = self.value(node, 0)
        if x is None:
            fail(node, "input 'x' is missing")
        s, z, bits, signed = self._quant_params_raw(node)
        if isinstance(x, (Const, QWeight)):
            return Const(np.asarray(self._fold(node)[0].value))
        axis = _Attrs(node).int("axis", 1)
        s = self._axis_params(node, x, s, axis, "y_scale")
        z = self._axis_params(node, x, z, axis, "y_zero_point")
        return self.quantize(node, x, s, z, 8, signed, False, "ROUND", integer=True)

    @staticmethod
    def _axis_params(node, x: Lin, v, axis, what):
        """A per-axis QuantizeLinear / DequantizeLinear parameter [C] as a broadcastable array
        along the channel axis (ONNX per-axis parameters are 1-D along `axis`)."""
        v = np.asarray(v, dtype=np.float64)
        if v.ndim == 1 and v.size > 1:
            nd = 4 if x.layout in ("nchw", "nhwc") else 2
            ch_axis = 3 if x.layout == "nhwc" else 1
            if axis % nd != ch_axis:
                fail(node, f"attribute 'axis': {axis}: a per-axis {what} must be along the channels")
            shape = [1] * nd
            shape[ch_axis] = v.size
            return v.reshape(shape)
        return v

    def _op_DequantizeLinear(self, node):
        x = self.value(node, 0)
        if x is None:
            fail(node, "input 'x' is missing")
        s = np.asarray(self.const(node, 1, "x_scale"), dtype=np.float64)
        z = self.const(node, 2, "x_zero_point", required=False)
        z = np.zeros(1) if z is None else np.asarray(z, dtype=np.float64)
        axis = _Attrs(node).int("axis", 1)
        if isinstance(x, Const):
            q = np.asarray(x.value)
            if q.dtype in (np.int8, np.uint8) and q.ndim >= 2:  # weights
                if not -q.ndim <= axis < q.ndim:
                    fail(node, f"attribute 'axis': {axis} is not an axis of the {q.ndim}-D weights")
                shape = [1] * q.ndim
                n = q.shape[axis]
                for what, v in (("x_scale", s), ("x_zero_point", z)):
                    if v.size not in (1, n) or (v.size > 1 and v.ndim != 1):
                        fail(node, f"input '{what}': {v.size} values for {n} channels along axis {axis}")
                if s.size > 1:
                    shape[axis % q.ndim] = s.size
                zs = list(shape) if z.size > 1 else [1] * q.ndim
                if z.size > 1:
                    zs[axis % q.ndim] = z.size
                return _offset_weights(node, q.astype(np.int64), s.reshape(shape), z.reshape(zs), 8,
                                       "signed" if q.dtype == np.int8 else "unsigned", False)
            return self._fold(node)
        if not isinstance(x, Lin):
            fail(node, "input 'x': expected quantized activations or constants")
        C = x.C
        s = _channels(node, self._axis_params(node, x, s, axis, "x_scale"), C, x.layout, "input 'x_scale'")
        z = _channels(node, self._axis_params(node, x, z, axis, "x_zero_point"), C, x.layout, "input 'x_zero_point'")
        return self._affine(node, x, s, -s * z)

    def quantize(self, node, x: Lin, s, z, bits, signed, narrow, mode, integer=False) -> Lin:
        """Codes of a quantizer applied to the form x: a new halibit tensor (a layer), or x's own
        tensor when the quantizer maps its codes one to one."""
        if x.layout not in ("nchw", "flat"):
            fail(node, f"input 'X': a {x.layout} activation (inside a reshape) cannot be quantized")
        C = x.C
        s = _channels(node, s, C, x.layout, "input 'scale'")
        z = _channels(node, z, C, x.layout, "input 'zeropt'")
        if np.any(s <= 0) or not np.all(np.isfinite(s)):
            fail(node, f"input 'scale': {s[s <= 0][:1].tolist() or 'a non-finite value'}: must be positive")
        lo, hi = quant_range(bits, signed, narrow)
        lo = np.full(C, float(lo))
        if x.relu:
            if not _is_integer(z):
                fail(node, "input 'zeropt': a Relu before the quantizer needs an integer zero point")
            lo = np.maximum(lo, np.round(z))
        count = hi - lo + 1
        if not _uniform(count) or count[0] < 2 or (int(count[0]) & (int(count[0]) - 1)) or count[0] > 256:
            fail(node, f"attribute 'narrow'/'signed': the codes {lo[0]:g}..{hi} are not 2^b values (b <= 8); "
                       "halibit codes are 0 .. 2^b - 1")
        out_bits = int(count[0]).bit_length() - 1
        mode = str(mode).upper()
        if mode in ("DOWN", "ROUND_TO_ZERO", "UP"):
            if not x.relu:
                fail(node, f"attribute 'rounding_mode': {mode} rounds by sign; halibit can apply it only to a value "
                           "known to be >= 0 (after a Relu)")
            mode = "FLOOR" if mode != "UP" else "CEIL"
        if mode not in ROUNDING_ADJUST:
            fail(node, f"attribute 'rounding_mode': {mode!r} is not a QONNX rounding mode")
        coeffs = [(k, c / s) for k, c in x.terms]
        offset = x.bias / s + z - lo
        # the integer form: code = clamp(round(sum coeff_i * T_i + offset), 0, 2^out_bits - 1)
        shape = x.shape
        name = self._layer_name(node)
        result_scale = float(np.mean(s))

        def out_lin(t):
            if integer:
                return Lin([(t, np.ones(C))], lo.copy(), shape, layout=x.layout)
            return Lin([(t, s.copy())], s * (lo - z), shape, layout=x.layout)

        if len(coeffs) == 1 and isinstance(coeffs[0][0], str):
            t, c = coeffs[0]
            spec = self.tensors[t]
            if spec["type"] == "codes" and np.all(np.abs(c - 1) <= REL_TOL) and np.all(np.abs(offset) <= REL_TOL) \
                    and spec["bits"] <= out_bits:
                return out_lin(t)  # one to one: the same codes
        if len(coeffs) == 1 and isinstance(coeffs[0][0], tuple):
            return out_lin(self._avg_pool_layer(node, name, coeffs[0], offset, out_bits, mode, result_scale, shape))
        if len(coeffs) > 2:
            fail(node, f"input 'X': a sum of {len(coeffs)} activations; halibit's add layer takes two")
        keys = [k for k, _ in coeffs]
        if any(isinstance(k, tuple) for k in keys):
            fail(node, "input 'X': a global average pool added to another value needs its own quantizer first")
        if len(keys) == 1:
            keys, cs = [keys[0], keys[0]], [coeffs[0][1], np.zeros(C)]
        else:
            cs = [coeffs[0][1], coeffs[1][1]]
        bounds = [self._bound(k, node) for k in keys]
        Ms, B, S = self._requant(node, name, cs, offset, bounds, mode, kind="add")
        t = self._tensor(name, shape, "codes", result_scale, out_bits)
        layer = {"name": t, "op": "add", "inputs": keys, "output": t,
                 "multipliers": [self._store(f"{t}.multiplier0", Ms[0]), self._store(f"{t}.multiplier1", Ms[1])],
                 "bias": self._store(f"{t}.bias", B), "shift": int(S)}
        self._layer(layer)
        return out_lin(t)

    def _requant(self, node, name, coeffs, offset, bounds, mode, kind):
        exact = self.exact.get(name)
        try:
            Ms, B, S = requant_params(coeffs, offset, bounds)
        except ValueError as e:
            fail(node, f"the requantization cannot be expressed in int64: {e}")
        if S > 0:
            B = B + ROUNDING_ADJUST[mode](S)
        if exact:
            Ms, B, S = self._exact(node, exact, coeffs, offset, Ms, B, S, kind)
        worst = max(sum(int(b) * abs(int(M[c])) for b, M in zip(bounds, Ms)) + abs(int(B[c]))
                    for c in range(B.size)) + ((1 << (S - 1)) if S > 0 else 0)
        if worst > INT64_MAX:
            fail(node, "the requantization's int64 intermediates could overflow")
        return Ms, B, S

    def _exact(self, node, exact, coeffs, offset, Ms, B, S, kind):
        """The integers a halibit export recorded (metadata 'halibit.requantize'), when they
        agree with the graph's float scales to float32 precision."""
        try:
            if "multipliers" in exact:
                em = [np.asarray(m, np.int64) for m in exact["multipliers"]]
            else:
                em = [np.asarray(exact["multiplier"], np.int64).reshape(-1)]
                em = em + [np.zeros_like(em[0])] if len(coeffs) == 2 and kind == "add" else em
            eb, es = np.asarray(exact.get("bias", np.zeros(em[0].size)), np.int64), int(exact["shift"])
            ok = all(np.all(np.abs(m) < 1 << 31) for m in em) and np.all(np.abs(eb) < 1 << 62) and 0 <= es <= 62
        except (KeyError, TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            fail(node, "metadata_props 'halibit.requantize': a malformed entry for this layer")
        if len(em) != len(coeffs) or any(m.size != c.size for m, c in zip(em, coeffs)) or eb.size != offset.size:
            return Ms, B, S
        scale = 2.0 ** -es
        for m, c in zip(em, coeffs):
            if not np.allclose(m * scale, c, rtol=1e-5, atol=1e-7 * max(1.0, float(np.max(np.abs(c))))):
                return Ms, B, S
        if not np.allclose(eb * scale, offset, rtol=1e-5, atol=1e-4):
            return Ms, B, S
        return [m.astype(np.int32) for m in em], eb, es

    def _bound(self, key, node):
        b = self.bounds.get(key)
        if b is None:
            fail(node, f"internal: no bound for tensor '{key}'")
        return b

    def _avg_pool_layer(self, node, name, term, offset, out_bits, mode, scale, shape):
        (_, t), c = term
        H, W = self.tensors[t]["shape"][:2]
        if not _uniform(c):
            fail(node, "input 'scale': a global average pool's quantizer needs one scale for all channels "
                       "(halibit's global_avg_pool has one multiplier)")
        if np.any(np.abs(offset) > 1e-3):
            fail(node, "input 'zeropt': a global average pool's output codes must be the mean of its input codes "
                       f"times a scale, but they carry an offset of {float(np.max(np.abs(offset))):.4g} codes "
                       "(halibit's global_avg_pool has no bias)")
        coeff = float(c[0]) / (H * W)
        Ms, B, S = self._requant(node, name, [np.array([coeff])], np.zeros(1), [H * W * self.bounds[t]], mode,
                                 kind="avg")
        if np.any(B != 0):
            fail(node, f"attribute 'rounding_mode': {mode} after an average pool; halibit's global_avg_pool rounds "
                       "half up and has no bias to shift its rounding")
        out = self._tensor(name, (shape[0], 1, 1), "codes", scale, out_bits)
        self._layer({"name": out, "op": "global_avg_pool", "inputs": [t], "output": out,
                     "multiplier": int(Ms[0][0]), "shift": int(S)})
        return out

    # -- affine ops ----------------------------------------------------------------------------

    def _affine(self, node, x: Lin, mul, add) -> Lin:
        mul, add = np.asarray(mul, np.float64), np.asarray(add, np.float64)
        if not (np.all(np.isfinite(mul)) and np.all(np.isfinite(add))):
            fail(node, "a constant is not finite (NaN or infinity)")
        if x.relu:
            if np.any(mul <= 0) or np.any(add != 0):
                fail(node, "a Relu's output is scaled by a non-positive factor or shifted before its quantizer; "
                           "halibit can fold only positive scalings there")
        return replace(x, terms=[(k, c * mul) for k, c in x.terms], bias=x.bias * mul + add)

    def _binary(self, node, op):
        a, b = self.value(node, 0), self.value(node, 1)
        if a is None or b is None:
            fail(node, "an input is missing")
        if isinstance(a, Lin) and isinstance(b, Lin):
            if op not in ("Add", "Sub"):
                fail(node, f"{op} of two activations is not supported")
            return self._sum(node, a, b, 1.0 if op == "Add" else -1.0)
        if isinstance(a, Lin) or isinstance(b, Lin):
            x, k, first = (a, b, True) if isinstance(a, Lin) else (b, a, False)
            kv = k.value() if isinstance(k, QWeight) else k.value
            kv = _channels(node, kv, x.C, x.layout, "the constant")
            if op == "Add":
                return self._affine(node, x, np.ones(x.C), kv)
            if op == "Sub":
                return self._affine(node, x, np.ones(x.C), -kv) if first else self._affine(node, x, -np.ones(x.C), kv)
            if op == "Mul":
                return self._affine(node, x, kv, np.zeros(x.C))
            if op == "Div" and first:
                if np.any(kv == 0):
                    fail(node, "division by zero")
                return self._affine(node, x, 1.0 / kv, np.zeros(x.C))
            fail(node, f"{op} with the activation as divisor is not supported")
        return self._fold(node)

    @staticmethod
    def _sum(node, a: Lin, b: Lin, sign: float) -> Lin:
        """a + sign * b: the terms of one tensor merge."""
        if a.relu or b.relu:
            fail(node, "adding a Relu's output before its quantizer is not supported")
        if a.shape != b.shape or a.layout != b.layout:
            fail(node, f"input shapes {list(a.shape)} and {list(b.shape)} differ")
        terms = {}
        for k, c in a.terms + [(k, sign * c) for k, c in b.terms]:
            terms[k] = terms[k] + c if k in terms else c
        return Lin(list(terms.items()), a.bias + sign * b.bias, a.shape, layout=a.layout)

    def _op_Add(self, node):
        return self._binary(node, "Add")

    def _op_Sub(self, node):
        return self._binary(node, "Sub")

    def _op_Mul(self, node):
        return self._binary(node, "Mul")

    def _op_Div(self, node):
        return self._binary(node, "Div")

    def _op_BatchNormalization(self, node):
        x = self.lin(node, 0)
        gamma, beta, mean, var = (np.asarray(self.const(node, i, w), np.float64).reshape(-1)
                                  for i, w in ((1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")))
        eps = _Attrs(node).float("epsilon", 1e-5)
        if any(v.size != x.C for v in (gamma, beta, mean, var)):
            fail(node, f"inputs: expected {x.C} values per parameter")
        if np.any(var + eps <= 0):
            fail(node, "input 'input_var': variance + epsilon must be positive")
        g = gamma / np.sqrt(var + eps)
        return self._affine(node, x, g, beta - g * mean)

    def _op_Relu(self, node):
        x = self.lin(node, 0)
        return replace(x, relu=True)

    def _op_Clip(self, node):
        x = self.lin(node, 0)
        a = _Attrs(node)
        lo = self.const(node, 1, "min", required=False) if len(node.input) > 1 else a.float("min", None)
        hi = self.const(node, 2, "max", required=False) if len(node.input) > 2 else a.float("max", None)
        for what, v in (("min", lo), ("max", hi)):
            if v is not None and np.asarray(v).size != 1:
                fail(node, f"input '{what}': expected one value, found shape {list(np.asarray(v).shape)}")
        if lo is None or float(np.asarray(lo)) != 0 or (hi is not None and math.isfinite(float(np.asarray(hi)))):
            fail(node, f"inputs 'min'/'max': only Clip(0, inf), a Relu, is supported (found {lo}, {hi}); a bounded "
                       "clip must be the quantizer's range")
        return replace(x, relu=True)

    # -- layout ----------------------------------------------------------------------------------

    def _op_Transpose(self, node):
        x = self.value(node, 0)
        if isinstance(x, Const):
            return self._fold(node)
        x = self.lin(node, 0)
        perm = _Attrs(node).ints("perm", [])
        if x.layout == "nhwc" and perm == [0, 3, 1, 2]:
            return replace(x, layout="nchw")
        if isinstance(x.layout, tuple) and x.layout[0] == "split" and perm == [0, 2, 1, 3, 4]:
            return replace(x, layout=("split_t", x.layout[1], node.name or node.output[0]))
        fail(node, f"attribute 'perm': {perm} on a {x.layout} activation is not supported (only the input's "
                   "NHWC -> NCHW and a channel shuffle's [0, 2, 1, 3, 4])")

    def _shape_to(self, node, x: Lin, shape):
        C, H, W = x.shape
        shape = [int(d) for d in shape]
        if x.layout == "nchw" and H == W == 1 and (len(shape) == 2 and shape[1] in (C, -1)):
            return replace(x, layout="flat")
        if x.layout == "flat" and len(shape) == 4 and shape[1] in (C, -1) and shape[2:] == [1, 1]:
            return replace(x, layout="nchw")
        if x.layout == "nchw" and len(shape) == 5 and shape[3:] == [H, W] and shape[1] > 0 and shape[2] in (-1, C // max(shape[1], 1)) \
                and C % shape[1] == 0:
            return replace(x, layout=("split", shape[1]))
        if isinstance(x.layout, tuple) and len(shape) == 4 and shape[1] in (C, -1) and shape[2:] == [H, W]:
            G = x.layout[1]
            if x.layout[0] == "split":
                return replace(x, layout="nchw")
            return self._shuffle(node, x, G, x.layout[2])
        if x.layout == "nchw" and len(shape) == 4 and shape[1:] in ([C, H, W], [-1, H, W]):
            return x
        fail(node, f"input 'shape': reshaping a {x.layout} activation of [C, H, W] = {[C, H, W]} to {shape} is not "
                   "supported (only flattening 1x1 maps and channel shuffles)")

    def _op_Reshape(self, node):
        x = self.value(node, 0)
        if isinstance(x, Const):
            return self._fold(node)
        x = self.lin(node, 0)
        return self._shape_to(node, x, np.asarray(self.const(node, 1, "shape")).reshape(-1))

    def _op_Flatten(self, node):
        x = self.value(node, 0)
        if isinstance(x, Const):
            return self._fold(node)
        x = self.lin(node, 0)
        if _Attrs(node).int("axis", 1) != 1:
            fail(node, "attribute 'axis': only 1 is supported")
        return self._shape_to(node, x, [-1, x.C]) if x.layout != "flat" else x

    def _op_Squeeze(self, node):
        x = self.value(node, 0)
        if isinstance(x, Const):
            return self._fold(node)
        x = self.lin(node, 0)
        return self._shape_to(node, x, [-1, x.C])

    def _shuffle(self, node, x: Lin, G, name):
        """Reshape [N, G, K, H, W] -> Transpose [0, 2, 1, 3, 4] -> Reshape: out k*G + g = in g*K + k."""
        C = x.C
        K = C // G
        if len(x.terms) != 1 or not isinstance(x.terms[0][0], str) or self.tensors[x.terms[0][0]]["type"] != "codes":
            fail(node, "a channel shuffle of a value that is not quantized codes (insert a quantizer before it)")
        t, c = x.terms[0]
        perm = np.array([(o % G) * K + o // G for o in range(C)])  # source channel of output o
        bits = self.tensors[t]["bits"]
        out = self._tensor(name, x.shape, "codes", self.tensors[t]["scale"], bits)  # named after its Transpose
        self._layer({"name": out, "op": "channel_shuffle", "inputs": [t], "output": out, "groups": int(G)})
        return Lin([(out, c[perm])], x.bias[perm], x.shape, relu=x.relu, layout="nchw")

    # -- convolutions and pools --------------------------------------------------------------

    def _codes_input(self, node, x: Lin):
        """(tensor, a, b [C]) for a conv or pool input: the codes of one tensor, value a*code + b[c]."""
        if x.layout != "nchw":
            fail(node, f"input 'X': a {x.layout} activation (convolutions and pools read NCHW maps)")
        if len(x.terms) != 1 or isinstance(x.terms[0][0], tuple) or self.tensors[x.terms[0][0]]["type"] != "codes":
            fail(node, "input 'X': not quantized: halibit convolutions and pools read integer codes, so the value "
                       "must come from a quantizer (Quant, QuantizeLinear) or the image")
        t, a = x.terms[0]
        if np.any(a <= 0):
            fail(node, "input 'X': a negatively scaled activation")
        if x.relu and np.any(x.bias < -REL_TOL * np.max(np.abs(a))):
            fail(node, "input 'X': a Relu on codes that take negative values must be followed by a quantizer")
        return t, a, x.bias

    def _conv_params(self, node, kernel):
        a = _Attrs(node)
        dil = a.ints("dilations", [1, 1], 2)
        if any(d != 1 for d in dil):
            fail(node, f"attribute 'dilations': {dil} is not supported (1 only)")
        strides = a.ints("strides", [1, 1], 2)
        if len(set(strides)) != 1 or not 1 <= strides[0] <= 8:
            fail(node, f"attribute 'strides': {strides}: halibit needs one stride 1..8 for both directions")
        auto = a.str("auto_pad", "NOTSET")
        if auto not in ("NOTSET", "VALID"):
            fail(node, f"attribute 'auto_pad': {auto} is not supported (write explicit pads)")
        pads = a.ints("pads", [0, 0, 0, 0], 4)
        if len(set(pads)) != 1 or not 0 <= pads[0] <= 7:
            fail(node, f"attribute 'pads': {pads}: halibit pads all four sides alike by 0..7")
        ks = a.ints("kernel_shape", kernel, 2)
        if ks != list(kernel) or not all(1 <= k <= 15 for k in ks):
            fail(node, f"attribute 'kernel_shape': {ks} (weights {list(kernel)}; halibit kernels are 1..15)")
        return strides[0], pads[0], a

    def _op_Conv(self, node):
        x = self.lin(node, 0)
        w = self.value(node, 1)
        if not isinstance(w, QWeight):
            fail(node, "input 'W': the weights are not quantized (halibit runs integer weights: quantize them with "
                       "Quant, BipolarQuant or DequantizeLinear of int8)")
        if w.ints.ndim != 4:
            fail(node, f"input 'W': shape {list(w.ints.shape)} is not 4-D (2-D convolutions only)")
        stride, pad, a = self._conv_params(node, w.ints.shape[2:])
        groups = a.int("group", 1)
        bias = self.const(node, 2, "B", required=False)
        return self._conv(node, x, w, 0, stride, pad, groups, bias, onnx_layout="oihw")

    def _conv(self, node, x, w: QWeight, out_axis, stride, pad, groups, bias, onnx_layout):
        t, a, b = self._codes_input(node, x)
        C, H, W = x.shape
        ints = w.ints if onnx_layout == "oihw" else w.ints.reshape(w.ints.shape + (1, 1))
        Cout, Cg, KH, KW = ints.shape
        if groups < 1 or C % groups or Cout % groups or Cg != C // groups:
            fail(node, f"attribute 'group': {groups} with {C} input channels and weights {list(w.ints.shape)}")
        ws = _weight_channel_scale(w, out_axis, node)
        if not _uniform(a):
            fail(node, "input 'X': its channels have different scales (an RGB input normalised with per-channel "
                       "std); halibit folds one input scale into the integer weights: quantize the input with "
                       "one scale first (Quant / QuantizeLinear)")
        a0 = float(a[0])
        enc, bits, levels = weight_encoding(w, node, self.levels_hint.get(self._layer_name(node)))
        vals = ints.astype(np.int64)
        in_bits = self.tensors[t]["bits"]
        pad_values = None
        if pad and np.any(b != 0):
            p = -b / a0
            pr = np.round(p)
            if np.any(pr < 0) or np.any(pr > (1 << in_bits) - 1):
                fail(node, f"attribute 'pads': the float graph pads with 0, which is code {p.tolist()} of its input, "
                           f"outside 0..{(1 << in_bits) - 1}")
            hint = self.pad_hint.get(self._layer_name(node))
            if not _is_integer(p) and isinstance(hint, list) and len(hint) == C and \
                    all(isinstance(v, int) for v in hint) and np.all(np.abs(np.asarray(hint) - p) <= 0.5 + 1e-9):
                pr = np.asarray(hint, dtype=np.float64)  # the exported model's own pad codes
                if np.any(pr < 0) or np.any(pr > (1 << in_bits) - 1):
                    fail(node, f"metadata_props 'halibit.pad_values': {hint} outside the input's codes")
            elif not _is_integer(p):
                self.notes.append(f"{_where(node)}: pads with code {np.round(pr).astype(int).tolist()} where the float "
                                  f"graph's 0 is code {np.round(p, 4).tolist()} (docs/import.md: padding)")
            pad_values = pr.astype(np.int64)
        # value = ws[o] * (a0 * acc + sum over the window of w * b[c])
        bsum = vals.sum(axis=(2, 3))  # [Cout, Cg]
        cin = (np.arange(Cout)[:, None] // (Cout // groups)) * Cg + np.arange(Cg)[None, :]
        out_bias = ws * (bsum * b[cin]).sum(axis=1)
        if bias is not None:
            bias = np.asarray(bias, dtype=np.float64)
            if bias.size not in (1, Cout):
                fail(node, f"input 'B': expected {Cout} values, found {bias.size}")
            if not np.all(np.isfinite(bias)):
                fail(node, "input 'B': a bias is not finite (NaN or infinity)")
            out_bias = out_bias + np.broadcast_to(bias.reshape(-1), (Cout,))
        amax = max((1 << in_bits) - 1, int(pad_values.max()) if pad_values is not None else 0)
        flat = vals.reshape(Cout, -1)
        bound = int(max(flat.clip(min=0).sum(axis=1).max(), (-flat.clip(max=0)).sum(axis=1).max())) * amax
        if bound > ACC_LIMIT:
            fail(node, f"input 'W': accumulators could reach {bound}, beyond int32 (+-{ACC_LIMIT})")
        OH, OW = conv_out_size(H, KH, stride, pad), conv_out_size(W, KW, stride, pad)
        if OH < 1 or OW < 1:
            fail(node, f"the output would be empty (input {H}x{W}, kernel {KH}x{KW}, pad {pad})")
        name = self._layer_name(node)
        out = self._tensor(name, (Cout, OH, OW), "int32", a0 * float(np.median(ws)))
        ohwi = np.ascontiguousarray(vals.transpose(0, 2, 3, 1)).astype(np.int8)
        layer = {"name": out, "op": "conv", "inputs": [t], "output": out, "kernel": [KH, KW], "stride": stride,
                 "pad": pad, "groups": groups,
                 "weights": {"tensor": self._store(f"{out}.weight", ohwi), "encoding": enc, "bits": bits}}
        if levels is not None:
            layer["weights"]["levels"] = levels
        if pad_values is not None:
            layer["pad_values"] = [int(v) for v in pad_values]
        self._layer(layer)
        self.bounds[out] = bound
        return Lin([(out, a0 * ws)], out_bias, (Cout, OH, OW), layout="nchw" if onnx_layout == "oihw" else "flat")

    def _gemm_weights(self, node, i, trans):
        w = self.value(node, i)
        if not isinstance(w, QWeight):
            fail(node, "input 'B': the weights are not quantized (quantize them with Quant, BipolarQuant or "
                       "DequantizeLinear of int8)")
        if w.ints.ndim != 2:
            fail(node, f"input 'B': shape {list(w.ints.shape)} is not 2-D")
        if trans:
            return w
        s = np.asarray(w.scale)
        s = s.reshape((1,) * (2 - s.ndim) + s.shape).T if s.ndim else s
        zz = np.asarray(w.zero)
        zz = zz.reshape((1,) * (2 - zz.ndim) + zz.shape).T if zz.ndim else zz
        return replace(w, ints=w.ints.T, scale=s, zero=zz)

    def _fc(self, node, x: Lin, w: QWeight, bias, alpha=1.0):
        if x.layout == "flat":
            x = replace(x, layout="nchw")
        C = x.C
        if x.shape[1:] != (1, 1):
            fail(node, f"input 'A': a {x.shape[1]}x{x.shape[2]} map; a fully connected layer reads a flattened 1x1 map")
        if w.ints.shape[1] != C:
            fail(node, f"input 'B': {w.ints.shape[1]} inputs, the activation has {C} channels")
        if alpha != 1.0:
            w = replace(w, scale=np.asarray(w.scale) * alpha)
        out = self._conv(node, x, w, 0, 1, 0, 1, bias, onnx_layout="oi")
        return out

    def _op_Gemm(self, node):
        a = _Attrs(node)
        if a.int("transA", 0):
            fail(node, "attribute 'transA': 1 is not supported")
        x = self.lin(node, 0, "A")
        w = self._gemm_weights(node, 1, a.int("transB", 0))
        bias = self.const(node, 2, "C", required=False)
        if bias is not None:
            bias = np.asarray(bias, np.float64) * a.float("beta", 1.0)
        return self._fc(node, x, w, bias, a.float("alpha", 1.0))

    def _op_MatMul(self, node):
        x = self.lin(node, 0, "A")
        return self._fc(node, x, self._gemm_weights(node, 1, False), None)

    def _pool_params(self, node, x):
        a = _Attrs(node)
        if a.int("ceil_mode", 0):
            fail(node, "attribute 'ceil_mode': 1 is not supported")
        dil = a.ints("dilations", [1, 1], 2)
        if any(d != 1 for d in dil):
            fail(node, f"attribute 'dilations': {dil} is not supported")
        if a.int("storage_order", 0):
            fail(node, "attribute 'storage_order': 1 is not supported")
        ks = a.ints("kernel_shape", [])
        if len(ks) != 2 or not all(1 <= k <= 15 for k in ks):
            fail(node, f"attribute 'kernel_shape': {ks} is not two sizes 1..15")
        return (*self._conv_params(node, ks)[:2], ks, a)

    def _op_MaxPool(self, node):
        x = self.lin(node, 0)
        stride, pad, ks, _ = self._pool_params(node, x)
        if len(node.output) > 1 and node.output[1]:
            fail(node, "output 'Indices' is not supported")
        t, a, b = self._codes_input(node, x)
        if pad >= min(ks):
            fail(node, f"attribute 'pads': {pad} must be below the kernel size {ks}")
        C, H, W = x.shape
        OH, OW = conv_out_size(H, ks[0], stride, pad), conv_out_size(W, ks[1], stride, pad)
        if OH < 1 or OW < 1:
            fail(node, f"the output would be empty (input {H}x{W})")
        spec = self.tensors[t]
        out = self._tensor(self._layer_name(node), (C, OH, OW), "codes", spec["scale"], spec["bits"])
        self._layer({"name": out, "op": "max_pool", "inputs": [t], "output": out, "kernel": ks, "stride": stride,
                     "pad": pad})
        return Lin([(out, a)], b, (C, OH, OW), relu=x.relu)

    def _global_mean(self, node, x: Lin):
        t, a, b = self._codes_input(node, x)
        if x.relu and np.any(b < 0):
            fail(node, "input 'X': a Relu on codes that take negative values must be followed by a quantizer")
        return Lin([(("avg", t), a)], b, (x.C, 1, 1))

    def _op_GlobalAveragePool(self, node):
        return self._global_mean(node, self.lin(node, 0))

    def _op_AveragePool(self, node):
        x = self.lin(node, 0)
        stride, pad, ks, a = self._pool_params(node, x)
        if pad or ks != [x.shape[1], x.shape[2]]:
            fail(node, f"attribute 'kernel_shape': {ks} with pads {pad}: only a pool over the whole "
                       f"{x.shape[1]}x{x.shape[2]} map (a global average pool) is supported")
        return self._global_mean(node, x)

    def _op_ReduceMean(self, node):
        x = self.lin(node, 0)
        a = _Attrs(node)
        axes = a.ints("axes", None)
        if axes is None and len(node.input) > 1:
            axes = np.asarray(self.const(node, 1, "axes")).reshape(-1).tolist()
        if not all(isinstance(v, int) for v in axes or []) or sorted(v % 4 for v in (axes or [])) != [2, 3]:
            fail(node, f"attribute 'axes': {axes}: only the mean over H and W (2, 3) is supported")
        m = self._global_mean(node, x)
        return m if a.int("keepdims", 1) else replace(m, layout="flat")

    # -- QDQ composite operators (QLinear*) ------------------------------------------------------

    def _dq(self, node, x, s, z):
        C = x.C
        s = _channels(node, s, C, x.layout, "scale")
        z = _channels(node, z, C, x.layout, "zero point")
        return self._affine(node, x, s, -s * z)

    def _q(self, node, x, s, zname_value):
        z = np.asarray(zname_value)
        return self.quantize(node, x, s, z.astype(np.float64), 8, z.dtype == np.int8, False, "ROUND", integer=True)

    def _qweight(self, node, i, ndim=4, axis=0):
        """QLinear weights (int8 / uint8 with scale and zero point per tensor or along `axis`)."""
        q = np.asarray(self.const(node, i, "w"))
        s = np.asarray(self.const(node, i + 1, "w_scale"), np.float64)
        z = np.asarray(self.const(node, i + 2, "w_zero_point"))
        if q.dtype not in (np.int8, np.uint8) or q.ndim != ndim:
            fail(node, f"input 'w': expected {ndim}-D int8 or uint8 weights, found {q.dtype} {list(q.shape)}")
        n = q.shape[axis]
        for what, v in (("w_scale", s), ("w_zero_point", z)):
            if v.size not in (1, n):
                fail(node, f"input '{what}': {v.size} values for {n} output channels")
        shape = [1] * q.ndim
        shape[axis] = n
        return _offset_weights(node, q.astype(np.int64), s.reshape(shape if s.size > 1 else [1] * q.ndim),
                               z.astype(np.float64).reshape(shape if z.size > 1 else [1] * q.ndim), 8,
                               "signed" if q.dtype == np.int8 else "unsigned", False)

    def _op_QLinearConv(self, node):
        x = self._dq(node, self.lin(node, 0), self.const(node, 1, "x_scale"), self.const(node, 2, "x_zero_point"))
        w = self._qweight(node, 3)
        stride, pad, a = self._conv_params(node, w.ints.shape[2:])
        b = self.const(node, 8, "B", required=False)
        ws = np.asarray(w.scale).reshape(-1)
        xs = np.asarray(self.const(node, 1, "x_scale"), np.float64).reshape(-1)
        if xs.size != 1:
            fail(node, f"input 'x_scale': expected one value, found {xs.size}")
        if b is not None and np.asarray(b).size != w.ints.shape[0]:
            fail(node, f"input 'B': {np.asarray(b).size} values for {w.ints.shape[0]} output channels")
        bias = None if b is None else np.asarray(b, np.float64).reshape(-1) * xs[0] * ws
        y = self._conv(node, x, w, 0, stride, pad, a.int("group", 1), bias, onnx_layout="oihw")
        return self._q(node, y, self.const(node, 6, "y_scale"), self.const(node, 7, "y_zero_point"))

    def _op_QLinearMatMul(self, node):
        x = self._dq(node, self.lin(node, 0), self.const(node, 1, "a_scale"), self.const(node, 2, "a_zero_point"))
        w = self._qweight(node, 3, ndim=2, axis=1)
        w = replace(w, ints=w.ints.T, scale=np.asarray(w.scale).T, zero=np.asarray(w.zero).T)
        y = self._fc(node, x, w, None)
        return self._q(node, y, self.const(node, 6, "y_scale"), self.const(node, 7, "y_zero_point"))

    def _ms_QLinearAdd(self, node):
        a = self._dq(node, self.lin(node, 0, "A"), self.const(node, 1, "A_scale"), self.const(node, 2, "A_zero_point"))
        b = self._dq(node, self.lin(node, 3, "B"), self.const(node, 4, "B_scale"), self.const(node, 5, "B_zero_point"))
        return self._q(node, self._sum(node, a, b, 1.0), self.const(node, 6, "C_scale"),
                       self.const(node, 7, "C_zero_point"))

    def _ms_QLinearGlobalAveragePool(self, node):
        if _Attrs(node).int("channels_last", 0):
            fail(node, "attribute 'channels_last': 1 is not supported")
        x = self._dq(node, self.lin(node, 0), self.const(node, 1, "x_scale"), self.const(node, 2, "x_zero_point"))
        return self._q(node, self._global_mean(node, x), self.const(node, 3, "y_scale"),
                       self.const(node, 4, "y_zero_point"))

    # -- the output ------------------------------------------------------------------------------

    def _output(self, name):
        v = self.values.get(name)
        producer = next((n for n in self.model.graph.node if name in n.output), None)

        def refuse(msg):
            where = f"{_where(producer)}: " if producer is not None else ""
            raise ConvertError(f"{where}graph output '{name}': {msg}")
        if not isinstance(v, Lin):
            refuse("not computed from the image")
        if v.shape[1:] != (1, 1) or v.layout not in ("flat", "nchw"):
            refuse(f"a {v.shape[1]}x{v.shape[2]} map; halibit returns one vector of logits per image")
        if len(v.terms) != 1 or isinstance(v.terms[0][0], tuple):
            refuse("a sum of several activations; halibit's logits are one convolution's int32 accumulators")
        t, c = v.terms[0]
        if not _uniform(c) or c[0] <= 0:
            refuse("input 'B': the logits' scale differs per class (per-channel weight scales on the last layer); "
                   "halibit's int32 logits have one scale: quantize the logits or use one weight scale there")
        if not np.all(np.isfinite(v.bias)):
            refuse("the logits' bias is not finite")
        scale = float(c[0])
        spec = self.tensors[t]
        if spec["type"] == "codes":  # quantized logits: an identity 1x1 convolution reads them into int32
            t = self._identity_fc(t)
            spec = self.tensors[t]
        bias = v.bias / scale
        layer = self.producer[t]
        if np.any(bias != 0):
            rb = np.round(bias)
            hint = self.bias_hint.get(t)
            if isinstance(hint, list) and len(hint) == rb.size and all(isinstance(v, int) for v in hint) and \
                    np.all(np.abs(np.asarray(hint, np.float64) - bias) <= 0.5 + 1e-6 * np.abs(bias)):
                rb = np.asarray(hint, dtype=np.float64)  # the exported model's own integer bias
            if np.any(np.abs(bias - rb) > 1e-3):
                self.notes.append(f"graph output '{name}': the last layer's bias is rounded to whole accumulator "
                                  f"units (largest change {float(np.max(np.abs(bias - rb))):.3f} of {scale:.4g})")
            if self.readers[t]:
                refuse(f"the logits' bias cannot be added: layer '{t}' is read by other layers too")
            bound = self.bounds[t] + int(np.max(np.abs(rb)))
            if bound > ACC_LIMIT:
                refuse(f"the last layer's accumulator bound plus its bias, {bound}, exceeds int32")
            layer["bias"] = self._store(f"{t}.bias", rb.astype(np.int32))
            self.bounds[t] = bound
        self.output = (t, scale)

    def _identity_fc(self, t):
        spec = self.tensors[t]
        C = spec["shape"][2]
        eye = np.eye(C, dtype=np.int8).reshape(C, 1, 1, C)
        out = self._tensor(f"{t}.logits", (C, 1, 1), "int32", spec["scale"])
        self._layer({"name": out, "op": "conv", "inputs": [t], "output": out, "kernel": [1, 1], "stride": 1,
                     "pad": 0, "groups": 1, "weights": {"tensor": self._store(f"{out}.weight", eye),
                                                       "encoding": "signed", "bits": 2}})
        self.bounds[out] = (1 << spec["bits"]) - 1
        self.notes.append(f"the graph's logits are quantized codes: layer '{out}' (a 1x1 identity convolution) "
                          "reads them as int32")
        return out

    # -- finishing ---------------------------------------------------------------------------

    def _fuse_requantization(self):
        """A conv whose int32 output only one `add` layer reads, as both inputs with the second
        multiplier 0, takes that layer's requantization (code = clamp(round(acc * M + B, S))):
        the pair is one conv with requantize, its output named after the conv."""
        rename = {}
        for layer in list(self.layers):
            if layer["op"] != "add" or layer["inputs"][0] != layer["inputs"][1]:
                continue
            src = layer["inputs"][0]
            conv = self.producer.get(src)
            if conv is None or conv["op"] != "conv" or "requantize" in conv or "bias" in conv:
                continue
            if self.readers[src] != 2 or self.output[0] == src:  # the add reads it twice
                continue
            if np.any(self.stored[layer["multipliers"][1]] != 0):
                continue
            out = layer["output"]
            m, b = f"{src}.multiplier", f"{src}.bias"
            if m in self.stored or b in self.stored:
                m, b = layer["multipliers"][0], layer["bias"]
            else:
                self.stored[m] = self.stored.pop(layer["multipliers"][0])
                self.stored[b] = self.stored.pop(layer["bias"])
            conv["requantize"] = {"multiplier": m, "bias": b, "shift": layer["shift"]}
            del self.stored[layer["multipliers"][1]]
            self.layers.remove(layer)
            self.tensors[src] = self.tensors.pop(out)
            self.producer[src] = conv
            rename[out] = src
        for layer in self.layers:
            layer["inputs"] = [rename.get(t, t) for t in layer["inputs"]]
        self.output = (rename.get(self.output[0], self.output[0]), self.output[1])

    def _graph(self):
        t, scale = self.output
        mean_std = self._input_mean_std()
        has_bias = any(l["op"] == "conv" and "bias" in l for l in self.layers)
        graph = {"format_version": 3 if has_bias else 2, "name": self.name,
                 "input": {"tensor": self.input_name, "color": self.color, "mean": mean_std[0], "std": mean_std[1]},
                 "output": {"tensor": t, "scale": scale}, "labels": list(self.labels),
                 "tensors": {}, "layers": self.layers}
        used = {self.input_name} | {l["output"] for l in self.layers}
        graph["tensors"] = {k: v for k, v in self.tensors.items() if k in used}
        return graph, self.stored

    def _input_mean_std(self):
        """The pixel -> value map of the image where the graph first uses it, as mean / std."""
        a, b = self.input_lin.terms[0][1], self.input_lin.bias
        std = 1.0 / (255.0 * a)
        mean = -b * std
        rm, rs = self.recorded.get("mean"), self.recorded.get("std")
        if self.mean is None and self.std is None and isinstance(rm, list) and isinstance(rs, list) and \
                len(rm) == len(rs) == a.size and all(isinstance(v, (int, float)) for v in rm + rs) and \
                np.all(np.abs(np.asarray(rm, np.float64) * 255 - mean * 255) < 0.5) and \
                np.all(np.abs(np.asarray(rs, np.float64) / std - 1) < 1e-5):
            mean, std = np.asarray(rm, np.float64), np.asarray(rs, np.float64)  # an export's exact normalisation
            if getattr(self, "inferred_note", None) is not None:
                self.notes[self.inferred_note] = (f"input normalisation from metadata 'halibit.graph' (it agrees with "
                                                  f"the input quantizer): mean {rm}, std {rs} (pixel/255 units)")
        return [float(v) for v in mean], [float(v) for v in std]


# halibit rounds half up: round(x, S) = (x + 2^(S-1)) >> S. Another rounding of x / 2^S is the
# same shift of x + adjust (exact), except half to even, whose ties round up here.
ROUNDING_ADJUST = {
    "ROUND": lambda S: 0, "HALF_EVEN": lambda S: 0, "HALF_UP": lambda S: 0,
    "HALF_DOWN": lambda S: -1,
    "FLOOR": lambda S: -(1 << (S - 1)),
    "CEIL": lambda S: (1 << (S - 1)) - 1,
}


def convert(model, mean=None, std=None, name=None, labels=None):
    """(graph, stored tensors, notes) of an onnx.ModelProto (or a path); raises ConvertError."""
    import onnx
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        model = onnx.load(model)
    conv = Converter(model, mean, std, name, labels)
    graph, stored = conv.run()
    try:
        validate(graph, stored, "converted")
    except ModelError as e:
        raise ConvertError(f"the converted model is invalid: {e}") from None
    return graph, stored, conv.notes


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m halibit.convert",
                                description="Convert a QONNX or ONNX QDQ int8 model to a halibit model file.")
    p.add_argument("input", help="the .onnx file")
    p.add_argument("output", help="the .halibit file to write")
    p.add_argument("--mean", type=float, nargs="+", help="input normalisation mean per channel, pixel/255 units")
    p.add_argument("--std", type=float, nargs="+", help="input normalisation std per channel, pixel/255 units")
    p.add_argument("--name", help="model name (default: a halibit export's own name, else the file name)")
    p.add_argument("--labels", help="a text file with one class name per line")
    args = p.parse_args(argv)
    import onnx
    try:
        if not os.path.isfile(args.input):
            raise ConvertError("no such file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # protobuf warns before it fails: one line only
                model = onnx.load(args.input)
        except Exception as e:  # noqa: BLE001 - protobuf raises several types
            raise ConvertError(f"not an ONNX model: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        if not model.graph.node:
            raise ConvertError("not an ONNX model, or one without nodes")
        labels = None
        if args.labels:
            with open(args.labels, encoding="utf-8") as f:
                labels = [line.strip() for line in f if line.strip()]
        info = {p.key: p.value for p in model.metadata_props}
        name = args.name or (None if "halibit.graph" in info else os.path.splitext(os.path.basename(args.input))[0])
        graph, stored, notes = convert(model, args.mean, args.std, name, labels)
        for n in notes:
            print(f"halibit.convert: note: {n}", file=sys.stderr)
        write_model(args.output, graph, stored)
    except (ConvertError, ModelError, OSError) as e:
        print(f"halibit.convert: {args.input}: {e}", file=sys.stderr)
        return 1
    print(f"halibit.convert: wrote {args.output}: {len(graph['layers'])} layers", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
