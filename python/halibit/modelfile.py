"""Reading, writing and validating halibit model files (docs/model-format.md, versions 1 to 3).

A model file is a safetensors container: an 8-byte little-endian header length N, N bytes of
UTF-8 JSON (padded with spaces so that N is a multiple of 8), then the raw little-endian data
of every stored tensor. The graph is a JSON string under ``__metadata__["halibit"]``.

In memory (what ``read_model`` returns and ``write_model`` takes) a convolution's weights are
always int8 values [Cout, KH, KW, Cin / groups], codebook weights the levels their indices
select. Version 2 and 3 files store them bit-packed at their bit width (``pack_weights``,
``unpack_weights``: the one place that packs and unpacks); version 1 files as int8 values.
Version 3 adds the int32 ``bias`` of convolutions without requantization; ``write_model``
writes version 3 only for graphs that use it (``format_version_for``), so every other file
stays as version 2 wrote it.

``validate(graph, tensors)`` checks everything the format document says (field ranges, shapes,
topological order, weight values inside their encoding, int32 accumulators and int64
requantization intermediates in range for every possible input) and raises ``ModelError``
with a message in the C++ loader's style::

    model.halibit: layer 'layer2.0.conv1': field 'weights.bits': 5 is not supported for encoding 'odd' (1..4)
"""
from __future__ import annotations

import json
import math
import struct

import numpy as np

FORMAT_VERSIONS = (1, 2, 3)  # what read_model reads
FORMAT_VERSION = 2  # what write_model writes unless the graph needs a later one (format_version_for)
CONV_BIAS_VERSION = 3  # the version that introduced a conv's int32 `bias`

# safetensors dtype name -> little-endian numpy dtype (the dtypes docs/model-format.md uses)
DTYPES = {"I8": np.dtype("<i1"), "U8": np.dtype("<u1"), "I32": np.dtype("<i4"), "I64": np.dtype("<i8")}
_DTYPE_NAME = {np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.int32): "I32", np.dtype(np.int64): "I64"}

# encoding -> (min bits, max bits)
ENCODINGS = {"binary": (1, 1), "signed": (2, 8), "odd": (1, 4), "codebook": (1, 4)}
OPS = ("conv", "add", "max_pool", "global_avg_pool", "channel_shuffle")

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
# A convolution's accumulators stay within +-ACC_LIMIT: the kernels compare them with int32
# requantization thresholds that need one value beyond every accumulator (docs/model-format.md).
ACC_LIMIT = INT32_MAX - 1
INT64_MAX = (1 << 63) - 1
MAX_SHIFT = 62


class ModelError(ValueError):
    """A malformed model file or graph."""


# --------------------------------------------------------------------------------------------
# weight encodings


def encoding_range(encoding: str, bits: int) -> tuple[int, int]:
    """(min, max) weight value of `encoding` at `bits` (docs/model-format.md); a codebook's
    levels may take any int8 value."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown weight encoding {encoding!r}")
    lo_bits, hi_bits = ENCODINGS[encoding]
    if not lo_bits <= bits <= hi_bits:
        raise ValueError(f"{bits} is not supported for encoding '{encoding}' ({lo_bits}..{hi_bits})")
    if encoding == "binary":
        return -1, 1
    if encoding == "signed":
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if encoding == "codebook":
        return -128, 127
    return -((1 << bits) - 1), (1 << bits) - 1


def in_encoding(values: np.ndarray, encoding: str, bits: int, levels=None) -> np.ndarray:
    """Boolean array: which values are members of `encoding` at `bits` (codebook: of `levels`)."""
    v = np.asarray(values).astype(np.int64)
    if encoding == "codebook":
        return np.isin(v, np.asarray(levels if levels is not None else [], dtype=np.int64))
    lo, hi = encoding_range(encoding, bits)
    ok = (v >= lo) & (v <= hi)
    if encoding in ("binary", "odd"):
        ok &= (v & 1) == 1  # odd values only (binary: -1, +1)
    return ok


def packed_bytes(count: int, bits: int) -> int:
    """Bytes of `count` packed fields of `bits` bits."""
    return (count * bits + 7) // 8


def pack_weights(values: np.ndarray, encoding: str, bits: int, levels=None) -> np.ndarray:
    """int8 weight values -> the version-2 byte string (uint8): one `bits`-bit field per value, in
    order, field i at bits [i * bits, (i + 1) * bits) of the bytes read as one little-endian
    number. The field of binary is 1 for -1; signed: two's complement; odd: (w + 2^b - 1) / 2;
    codebook: the index of the value's first level."""
    v = np.asarray(values).astype(np.int64).reshape(-1)
    if not in_encoding(v, encoding, bits, levels).all():
        bad = int(v[~in_encoding(v, encoding, bits, levels)][0])
        raise ValueError(f"{bad} is not a {bits}-bit '{encoding}' weight")
    if encoding == "binary":
        fields = (v < 0).astype(np.int64)
    elif encoding == "signed":
        fields = v & ((1 << bits) - 1)
    elif encoding == "odd":
        fields = (v + (1 << bits) - 1) // 2
    else:
        lv = np.asarray(levels, dtype=np.int64)
        fields = np.argmax(v[:, None] == lv[None, :], axis=1)
    planes = (fields[:, None] >> np.arange(bits)) & 1
    return np.packbits(planes.reshape(-1).astype(np.uint8), bitorder="little")


def unpack_weights(packed: np.ndarray, count: int, encoding: str, bits: int, levels=None) -> np.ndarray:
    """The inverse of pack_weights: `count` int8 values. Raises ValueError if the byte string
    has the wrong length or bits set past the last field."""
    packed = np.asarray(packed, dtype=np.uint8).reshape(-1)
    if packed.size != packed_bytes(count, bits):
        raise ValueError(f"{packed.size} bytes, {count} fields of {bits} bits take {packed_bytes(count, bits)}")
    stream = np.unpackbits(packed, bitorder="little")
    if stream[count * bits:].any():
        raise ValueError(f"bits are set past the {count} fields of {bits} bits")
    fields = stream[:count * bits].reshape(count, bits).astype(np.int64) @ (1 << np.arange(bits, dtype=np.int64))
    if encoding == "binary":
        v = 1 - 2 * fields
    elif encoding == "signed":
        v = np.where(fields >= 1 << (bits - 1), fields - (1 << bits), fields)
    elif encoding == "odd":
        v = 2 * fields - ((1 << bits) - 1)
    else:
        v = np.asarray(levels, dtype=np.int64)[fields]
    return v.astype(np.int8)


def _conv_weights(graph: dict, file: str):
    """{weight tensor name: (layer name, encoding, bits, levels, element count)} of the graph's
    convolutions, for packing and unpacking; one tensor read by two layers must be read alike."""
    specs, out = graph.get("tensors") if isinstance(graph.get("tensors"), dict) else {}, {}
    for layer in graph.get("layers") or []:
        if not isinstance(layer, dict) or layer.get("op") != "conv" or not isinstance(layer.get("weights"), dict):
            continue
        w, lname = layer["weights"], layer.get("name", "?")
        enc, bits, levels = w.get("encoding"), w.get("bits"), w.get("levels")
        if enc not in ENCODINGS or not _is_int(bits) or not ENCODINGS[enc][0] <= bits <= ENCODINGS[enc][1]:
            raise ModelError(f"{file}: layer '{lname}': field 'weights': {enc!r} at {bits!r} bits is not a weight "
                             f"encoding ({', '.join(f'{k}: {a}..{b}' for k, (a, b) in ENCODINGS.items())})")
        if enc == "codebook" and not (isinstance(levels, list) and len(levels) == 1 << bits
                                      and all(_is_int(v) and -128 <= v <= 127 for v in levels)):
            raise ModelError(f"{file}: layer '{lname}': field 'weights.levels': expected {1 << bits} integers "
                             f"-128..127, found {levels!r}")
        try:
            kh, kw = layer["kernel"]
            shape = (int(specs[layer["output"]]["shape"][2]), int(kh), int(kw),
                     int(specs[layer["inputs"][0]]["shape"][2] // layer.get("groups", 1)))
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError):
            raise ModelError(f"{file}: layer '{lname}': its kernel, groups, input or output do not give the "
                             f"weights' shape") from None
        key = (enc, bits, tuple(levels) if enc == "codebook" else None, shape)
        name = w.get("tensor")
        if name in out and out[name][1:] != key:
            raise ModelError(f"{file}: layer '{lname}': field 'weights.tensor': tensor '{name}' is read by layer "
                             f"'{out[name][0]}' with another encoding, bits, levels or shape")
        out[name] = (lname,) + key
    return out


# --------------------------------------------------------------------------------------------
# container


def _plain(x):
    """numpy scalars / arrays inside the graph -> plain Python values for json."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    return x


def _check_stored_dtypes(graph: dict, tensors: dict, file: str) -> None:
    """Weights int8, multipliers int32, biases int64 (by their role in the graph)."""
    want = {}

    def need(name, dtype, layer, field):
        if not isinstance(name, str):
            raise ModelError(f"{file}: layer '{layer}': field '{field}': expected a tensor name")
        if name not in tensors:
            raise ModelError(f"{file}: layer '{layer}': field '{field}': stored tensor '{name}' is missing")
        have = np.asarray(tensors[name]).dtype
        if have != np.dtype(dtype):
            raise ModelError(f"{file}: layer '{layer}': field '{field}': tensor '{name}' has dtype {have}, "
                             f"expected {np.dtype(dtype)}")
        want[name] = dtype

    for layer in graph.get("layers", []):
        lname = layer.get("name", "?")
        if layer.get("op") == "conv":
            need(layer.get("weights", {}).get("tensor"), np.int8, lname, "weights.tensor")
            rq = layer.get("requantize")
            if rq is not None:
                need(rq.get("multiplier"), np.int32, lname, "requantize.multiplier")
                need(rq.get("bias"), np.int64, lname, "requantize.bias")
            if "bias" in layer:
                need(layer["bias"], np.int32, lname, "bias")
        elif layer.get("op") == "add":
            for i, m in enumerate(layer.get("multipliers", [])):
                need(m, np.int32, lname, f"multipliers[{i}]")
            need(layer.get("bias"), np.int64, lname, "bias")


def format_version_for(graph: dict) -> int:
    """The version write_model writes by default: FORMAT_VERSION, or CONV_BIAS_VERSION when a
    conv has an int32 `bias` (files without one stay byte-identical to what version 2 wrote)."""
    layers = graph.get("layers") if isinstance(graph, dict) else None
    if any(isinstance(l, dict) and l.get("op") == "conv" and "bias" in l for l in layers or []):
        return CONV_BIAS_VERSION
    return FORMAT_VERSION


def write_model(path, graph: dict, tensors: dict, validate_graph: bool = True, version: int | None = None) -> None:
    """Writes `graph` and the stored `tensors` (name -> int8/int32/int64 array; weights as int8
    values) to `path` in format `version` (default: format_version_for(graph)); the writer sets
    the graph's `format_version`."""
    if version is None:
        version = format_version_for(graph)
    if version not in FORMAT_VERSIONS:
        raise ModelError(f"{path}: format version {version!r} is not one of {FORMAT_VERSIONS}")
    graph = {"format_version": version, **{k: v for k, v in _plain(graph).items() if k != "format_version"}}
    arrays = {name: np.asarray(a) for name, a in tensors.items()}
    _check_stored_dtypes(graph, arrays, str(path))  # by role: weights int8, multipliers int32, biases int64
    for name, a in arrays.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ModelError(f"{path}: invalid stored tensor name {name!r}")
        if a.dtype not in _DTYPE_NAME:
            raise ModelError(f"{path}: stored tensor '{name}': dtype {a.dtype} is not int8, int32 or int64")
    if validate_graph:
        validate(graph, arrays, str(path))
    if version >= 2:
        for name, (lname, enc, bits, levels, shape) in _conv_weights(graph, str(path)).items():
            if name in arrays:
                try:
                    arrays[name] = pack_weights(arrays[name], enc, bits, levels)
                except ValueError as e:
                    raise ModelError(f"{path}: layer '{lname}': field 'weights.tensor': {e}") from None

    # Largest element size first, then by name: every tensor is naturally aligned in the file
    # (the data section starts at a multiple of 8), with no gaps between tensors.
    order = sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n))
    header = {"__metadata__": {"halibit": json.dumps(graph, allow_nan=False)}}
    offset = 0
    for name in order:
        a = arrays[name]
        nbytes = a.size * a.dtype.itemsize
        header[name] = {"dtype": _DTYPE_NAME[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in order:
            a = arrays[name]
            f.write(np.ascontiguousarray(a, dtype=DTYPES[_DTYPE_NAME[a.dtype]]).tobytes())


def parse_model(data: bytes, file: str = "model", validate_graph: bool = True):
    """(graph, tensors) from the bytes of a model file."""
    if len(data) < 8:
        raise ModelError(f"{file}: shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ModelError(f"{file}: header length {n} exceeds the file size {len(data)}")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{file}: header is not UTF-8 JSON: {e}") from None
    if not isinstance(header, dict):
        raise ModelError(f"{file}: header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or not isinstance(meta.get("halibit"), str):
        raise ModelError(f"{file}: __metadata__['halibit'] (the graph) is missing")
    try:
        graph = json.loads(meta["halibit"])
    except json.JSONDecodeError as e:
        raise ModelError(f"{file}: __metadata__['halibit'] is not JSON: {e}") from None
    version = graph.get("format_version") if isinstance(graph, dict) else None
    if version not in FORMAT_VERSIONS or not _is_int(version):
        raise ModelError(f"{file}: field 'format_version': {version!r} is not supported (versions "
                         f"{', '.join(map(str, FORMAT_VERSIONS))})")
    data_len = len(data) - 8 - n
    tensors, spans = {}, []
    for name, info in header.items():
        try:
            dtype = DTYPES[info["dtype"]]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ModelError(f"{file}: stored tensor '{name}': bad dtype, shape or data_offsets "
                             f"(dtypes: {', '.join(DTYPES)})") from None
        if any(d < 0 for d in shape):
            raise ModelError(f"{file}: stored tensor '{name}': negative dimension in shape {shape}")
        count = math.prod(shape)
        if not 0 <= begin <= end <= data_len or end - begin != count * dtype.itemsize:
            raise ModelError(f"{file}: stored tensor '{name}': data_offsets [{begin}, {end}] do not match "
                             f"shape {shape} x {dtype.itemsize} bytes inside a data section of {data_len} bytes")
        spans.append((begin, end, name))
        tensors[name] = np.frombuffer(data, dtype=dtype, count=count, offset=8 + n + begin) \
            .reshape(shape).astype(dtype.newbyteorder("="))
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ModelError(f"{file}: stored tensors '{n0}' and '{n1}' overlap")
    if version >= 2:  # bit-packed weights -> int8 values
        for name, (lname, enc, bits, levels, shape) in _conv_weights(graph, file).items():
            t = tensors.get(name)
            if t is None:
                continue  # validate names the missing tensor
            if t.dtype != np.uint8 or t.ndim != 1:
                raise ModelError(f"{file}: layer '{lname}': field 'weights.tensor': tensor '{name}' has dtype "
                                 f"{t.dtype} and shape {list(t.shape)}, expected U8 [bytes]")
            try:
                tensors[name] = unpack_weights(t, math.prod(shape), enc, bits, levels).reshape(shape)
            except ValueError as e:
                raise ModelError(f"{file}: layer '{lname}': field 'weights.tensor': tensor '{name}': {e}") from None
    if validate_graph:
        validate(graph, tensors, file)
    return graph, tensors


def read_model(path, validate_graph: bool = True):
    """(graph, tensors) of the model file at `path`; tensors as native-endian numpy arrays."""
    with open(path, "rb") as f:
        data = f.read()
    return parse_model(data, str(path), validate_graph)


# --------------------------------------------------------------------------------------------
# graph validation


def conv_out_size(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def validate(graph: dict, tensors: dict, file: str = "model") -> None:
    """Checks `graph` and the stored `tensors` against docs/model-format.md; raises ModelError."""

    def fail(msg, layer=None, field=None):
        where = f"{file}: "
        if layer is not None:
            where += f"layer '{layer}': "
        if field is not None:
            where += f"field '{field}': "
        raise ModelError(where + msg)

    if not isinstance(graph, dict):
        fail("the graph is not a JSON object")
    version = graph.get("format_version")
    if version not in FORMAT_VERSIONS or not _is_int(version):
        fail(f"{version!r} is not supported (versions {', '.join(map(str, FORMAT_VERSIONS))})", field="format_version")
    if not isinstance(graph.get("name"), str):
        fail("expected a string", field="name")

    specs = graph.get("tensors")
    if not isinstance(specs, dict) or not specs:
        fail("expected an object of tensor specs", field="tensors")
    for tname, s in specs.items():
        f = f"tensors.{tname}"
        if not isinstance(s, dict):
            fail("expected an object", field=f)
        shape = s.get("shape")
        if not (isinstance(shape, list) and len(shape) == 3 and all(_is_int(d) and d >= 1 for d in shape)):
            fail(f"{shape!r} is not [H, W, C] with positive sizes", field=f + ".shape")
        if s.get("type") not in ("codes", "int32"):
            fail(f"{s.get('type')!r} is not 'codes' or 'int32'", field=f + ".type")
        if s["type"] == "codes" and not (_is_int(s.get("bits")) and 1 <= s["bits"] <= 8):
            fail(f"{s.get('bits')!r} is not 1..8", field=f + ".bits")
        if "scale" in s and not _is_num(s["scale"]):
            fail(f"{s['scale']!r} is not a finite number", field=f + ".scale")

    inp = graph.get("input")
    if not isinstance(inp, dict) or inp.get("tensor") not in specs:
        fail("expected {'tensor': a tensor of 'tensors', ...}", field="input")
    ispec = specs[inp["tensor"]]
    if ispec["type"] != "codes" or ispec["bits"] != 8:
        fail("the input tensor must be 8-bit codes", field="input.tensor")
    channels = {"gray": 1, "rgb": 3}
    if inp.get("color") not in channels:
        fail(f"{inp.get('color')!r} is not 'gray' or 'rgb'", field="input.color")
    if ispec["shape"][2] != channels[inp["color"]]:
        fail(f"'{inp['color']}' needs {channels[inp['color']]} channels, the input has {ispec['shape'][2]}",
             field="input.color")
    for key in ("mean", "std"):
        v = inp.get(key)
        if not (isinstance(v, list) and len(v) == ispec["shape"][2] and all(_is_num(x) for x in v)):
            fail("expected one number per input channel", field=f"input.{key}")
    if not all(x > 0 for x in inp["std"]):
        fail("must be positive", field="input.std")

    out = graph.get("output")
    if not isinstance(out, dict) or out.get("tensor") not in specs:
        fail("expected {'tensor': a tensor of 'tensors', 'scale': ...}", field="output")
    ospec = specs[out["tensor"]]
    if ospec["type"] != "int32" or ospec["shape"][:2] != [1, 1]:
        fail("the output tensor must be int32 [1, 1, classes]", field="output.tensor")
    if not _is_num(out.get("scale")):
        fail(f"{out.get('scale')!r} is not a finite number", field="output.scale")
    labels = graph.get("labels", [])
    if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        fail("expected a list of strings", field="labels")
    if labels and len(labels) != ospec["shape"][2]:
        fail(f"{len(labels)} labels for {ospec['shape'][2]} classes", field="labels")

    layers = graph.get("layers")
    if not isinstance(layers, list) or not layers:
        fail("expected a list of layers", field="layers")

    # max |value| every tensor can hold, for the int32 / int64 range checks
    bound = {inp["tensor"]: 255}
    names = set()

    def stored(name, dtype, shape, layer, field):
        if not isinstance(name, str) or name not in tensors:
            fail(f"stored tensor {name!r} is missing", layer, field)
        a = np.asarray(tensors[name])
        if a.dtype != np.dtype(dtype):
            fail(f"tensor '{name}' has dtype {a.dtype}, expected {np.dtype(dtype)}", layer, field)
        if list(a.shape) != list(shape):
            fail(f"tensor '{name}' has shape {list(a.shape)}, expected {list(shape)}", layer, field)
        return a.astype(np.int64)

    def shift_ok(s, layer, field):
        if not (_is_int(s) and 0 <= s <= MAX_SHIFT):
            fail(f"{s!r} is not 0..{MAX_SHIFT}", layer, field)
        return (1 << (s - 1)) if s > 0 else 0

    def geometry(layer, lname):
        k = layer.get("kernel")
        if not (isinstance(k, list) and len(k) == 2 and all(_is_int(v) and 1 <= v <= 15 for v in k)):
            fail(f"{k!r} is not [KH, KW] with sizes 1..15", lname, "kernel")
        if not (_is_int(layer.get("stride")) and 1 <= layer["stride"] <= 8):
            fail(f"{layer.get('stride')!r} is not 1..8", lname, "stride")
        if not (_is_int(layer.get("pad")) and 0 <= layer["pad"] <= 7):
            fail(f"{layer.get('pad')!r} is not 0..7", lname, "pad")
        return k[0], k[1], layer["stride"], layer["pad"]

    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            fail(f"layer {i} is not an object", field="layers")
        lname = layer.get("name")
        if not isinstance(lname, str) or not lname:
            fail(f"layer {i} has no name", field="layers")
        if lname in names:
            fail("the name is used twice", lname, "name")
        names.add(lname)
        op = layer.get("op")
        if op not in OPS:
            fail(f"{op!r} is not one of {', '.join(OPS)}", lname, "op")
        ins = layer.get("inputs")
        if not (isinstance(ins, list) and all(isinstance(t, str) for t in ins)):
            fail("expected a list of tensor names", lname, "inputs")
        need_inputs = 2 if op == "add" else 1
        if len(ins) != need_inputs:
            fail(f"'{op}' takes {need_inputs} input(s), got {len(ins)}", lname, "inputs")
        for t in ins:
            if t not in bound:
                fail(f"tensor '{t}' is not the input or an output of an earlier layer", lname, "inputs")
        o = layer.get("output")
        if o not in specs:
            fail(f"tensor {o!r} is not in 'tensors'", lname, "output")
        if o in bound:
            fail(f"tensor '{o}' is already written", lname, "output")
        ospec_l = specs[o]
        in_specs = [specs[t] for t in ins]
        x = in_specs[0]
        H, W, C = x["shape"]

        if op != "add" and x["type"] != "codes":
            fail(f"'{op}' needs a codes input, '{ins[0]}' is int32", lname, "inputs")

        if op == "conv":
            KH, KW, stride, pad = geometry(layer, lname)
            groups = layer.get("groups", 1)
            Cout = ospec_l["shape"][2]
            if not (_is_int(groups) and groups >= 1 and C % groups == 0 and Cout % groups == 0):
                fail(f"{groups!r} does not divide {C} input and {Cout} output channels", lname, "groups")
            OH, OW = conv_out_size(H, KH, stride, pad), conv_out_size(W, KW, stride, pad)
            if OH < 1 or OW < 1 or ospec_l["shape"] != [OH, OW, Cout]:
                fail(f"shape {ospec_l['shape']} does not match the convolution output [{OH}, {OW}, {Cout}]",
                     lname, "output")
            wspec = layer.get("weights")
            if not isinstance(wspec, dict):
                fail("expected {'tensor', 'encoding', 'bits'}", lname, "weights")
            enc, wbits = wspec.get("encoding"), wspec.get("bits")
            if enc not in ENCODINGS:
                fail(f"{enc!r} is not one of {', '.join(ENCODINGS)}", lname, "weights.encoding")
            lo_b, hi_b = ENCODINGS[enc]
            if not (_is_int(wbits) and lo_b <= wbits <= hi_b):
                fail(f"{wbits!r} is not supported for encoding '{enc}' ({lo_b}..{hi_b})", lname, "weights.bits")
            levels = wspec.get("levels")
            if enc == "codebook":
                if version < 2:
                    fail("codebook weights need format version 2", lname, "weights.encoding")
                if not (isinstance(levels, list) and len(levels) == 1 << wbits
                        and all(_is_int(v) and -128 <= v <= 127 for v in levels)):
                    fail(f"expected {1 << wbits} integers -128..127 (2^bits), found {levels!r}", lname, "weights.levels")
            elif levels is not None:
                fail(f"is only for codebook weights, not '{enc}'", lname, "weights.levels")
            w = stored(wspec.get("tensor"), np.int8, [Cout, KH, KW, C // groups], lname, "weights.tensor")
            bad = ~in_encoding(w, enc, wbits, levels)
            if bad.any():
                idx = tuple(int(v) for v in np.argwhere(bad)[0])
                fail(f"weight {list(idx)} = {int(w[idx])} is not a member of '{enc}' at {wbits} bits",
                     lname, "weights.tensor")
            amax = (1 << x["bits"]) - 1
            pv = layer.get("pad_values")
            if pv is not None:
                if not (isinstance(pv, list) and len(pv) == C and all(_is_int(v) and 0 <= v <= amax for v in pv)):
                    fail(f"expected {C} integer codes 0..{amax}", lname, "pad_values")
                amax = max([amax] + pv)
            wf = w.reshape(Cout, -1)
            acc_hi = np.where(wf > 0, wf, 0).sum(axis=1) * amax
            acc_lo = np.where(wf < 0, wf, 0).sum(axis=1) * amax
            if acc_hi.max() > ACC_LIMIT or acc_lo.min() < -ACC_LIMIT:
                fail(f"the accumulator can reach [{int(acc_lo.min())}, {int(acc_hi.max())}], outside +-(2^31 - 2)",
                     lname, "weights.tensor")
            acc_bound = np.maximum(acc_hi, -acc_lo)
            rq = layer.get("requantize")
            if (ospec_l["type"] == "codes") != (rq is not None):
                fail("present if and only if the output is codes", lname, "requantize")
            if rq is not None:
                if not isinstance(rq, dict):
                    fail("expected {'multiplier', 'bias', 'shift'}", lname, "requantize")
                m = stored(rq.get("multiplier"), np.int32, [Cout], lname, "requantize.multiplier")
                b = stored(rq.get("bias"), np.int64, [Cout], lname, "requantize.bias")
                r = shift_ok(rq.get("shift"), lname, "requantize.shift")
                worst = max(int(a) * abs(int(mm)) + abs(int(bb)) for a, mm, bb in zip(acc_bound, m, b)) + r
                if worst > INT64_MAX:
                    fail("acc * multiplier + bias can overflow int64", lname, "requantize")
                bound[o] = (1 << ospec_l["bits"]) - 1
            else:
                bound[o] = int(acc_bound.max())
            if "bias" in layer:
                if version < CONV_BIAS_VERSION:
                    fail(f"a conv's int32 bias needs format version {CONV_BIAS_VERSION} "
                         f"(this file is version {version})", lname, "bias")
                if rq is not None:
                    fail("is only for convolutions with an int32 output (a requantizing conv has requantize.bias)",
                         lname, "bias")
                b = stored(layer["bias"], np.int32, [Cout], lname, "bias")
                reach = acc_bound + np.abs(b)
                for c in np.flatnonzero(reach > ACC_LIMIT)[:1]:
                    fail(f"acc + bias of output channel {c} can reach +-{int(reach[c])} "
                         f"(acc up to +-{int(acc_bound[c])}, bias {int(b[c])}), outside +-(2^31 - 2), "
                         "the range of int32 accumulators", lname, "bias")
                bound[o] = int(reach.max())  # what a consumer (add) of this int32 tensor can receive

        elif op == "add":
            if in_specs[1]["shape"] != x["shape"] or ospec_l["shape"] != x["shape"]:
                fail(f"inputs {x['shape']}, {in_specs[1]['shape']} and output {ospec_l['shape']} differ",
                     lname, "inputs")
            if ospec_l["type"] != "codes":
                fail("the output of 'add' must be codes", lname, "output")
            mults = layer.get("multipliers")
            if not (isinstance(mults, list) and len(mults) == 2):
                fail("expected two tensor names", lname, "multipliers")
            m0 = stored(mults[0], np.int32, [C], lname, "multipliers[0]")
            m1 = stored(mults[1], np.int32, [C], lname, "multipliers[1]")
            b = stored(layer.get("bias"), np.int64, [C], lname, "bias")
            r = shift_ok(layer.get("shift"), lname, "shift")
            b0, b1 = bound[ins[0]], bound[ins[1]]
            worst = max(b0 * abs(int(p)) + b1 * abs(int(q)) + abs(int(c)) for p, q, c in zip(m0, m1, b)) + r
            if worst > INT64_MAX:
                fail("x0 * M0 + x1 * M1 + bias can overflow int64", lname, "multipliers")
            bound[o] = (1 << ospec_l["bits"]) - 1

        elif op == "max_pool":
            KH, KW, stride, pad = geometry(layer, lname)
            if pad >= min(KH, KW):
                fail(f"{pad} leaves windows without a position inside the image (kernel {[KH, KW]})", lname, "pad")
            OH, OW = conv_out_size(H, KH, stride, pad), conv_out_size(W, KW, stride, pad)
            if ospec_l["type"] != "codes" or ospec_l["bits"] != x["bits"] or ospec_l["shape"] != [OH, OW, C]:
                fail(f"expected {x['bits']}-bit codes [{OH}, {OW}, {C}]", lname, "output")
            bound[o] = (1 << ospec_l["bits"]) - 1

        elif op == "global_avg_pool":
            if ospec_l["type"] != "codes" or ospec_l["shape"] != [1, 1, C]:
                fail(f"expected codes [1, 1, {C}]", lname, "output")
            m = layer.get("multiplier")
            if not (_is_int(m) and INT32_MIN <= m <= INT32_MAX):
                fail(f"{m!r} is not an int32 integer", lname, "multiplier")
            r = shift_ok(layer.get("shift"), lname, "shift")
            if H * W * ((1 << x["bits"]) - 1) * abs(m) + r > INT64_MAX:
                fail("sum * multiplier can overflow int64", lname, "multiplier")
            bound[o] = (1 << ospec_l["bits"]) - 1

        elif op == "channel_shuffle":
            g = layer.get("groups")
            if not (_is_int(g) and g >= 1 and C % g == 0):
                fail(f"{g!r} does not divide {C} channels", lname, "groups")
            if ospec_l["type"] != "codes" or ospec_l["bits"] != x["bits"] or ospec_l["shape"] != x["shape"]:
                fail(f"expected {x['bits']}-bit codes {x['shape']}", lname, "output")
            bound[o] = (1 << ospec_l["bits"]) - 1

    for tname in specs:
        if tname not in bound:
            fail(f"tensor '{tname}' is neither the input nor written by a layer", field="tensors")
