import json
import re
import struct

import numpy as np
import pytest

from halibit.modelfile import (ACC_LIMIT, ENCODINGS, FORMAT_VERSION, ModelError, format_version_for, in_encoding,
                               pack_weights, parse_model, read_model, unpack_weights, validate, write_model)
from tiny import build_tiny


@pytest.fixture(scope="module")
def tiny():
    return build_tiny()


def raw_parse(data):
    """Independent safetensors parse: (N, header dict, data section)."""
    (n,) = struct.unpack("<Q", data[:8])
    return n, json.loads(data[8:8 + n].decode("utf-8")), data[8 + n:]


def as_version1(graph):
    """The tiny graph without its codebook (version 1 has none): c7's levels as 8-bit signed weights."""
    g = json.loads(json.dumps(graph))
    g["format_version"] = 1
    conv_layer(g, "c7")["weights"] = {"tensor": "c7.weight", "encoding": "signed", "bits": 8}
    return g


@pytest.mark.parametrize("version", [1, 2])
def test_round_trip(tmp_path, tiny, version):
    graph, tensors = tiny
    graph = graph if version == 2 else as_version1(graph)
    path = tmp_path / "tiny.halibit"
    write_model(path, graph, tensors, version=version)
    g2, t2 = read_model(path)
    assert g2 == graph
    assert sorted(t2) == sorted(tensors)
    for name, a in tensors.items():
        assert t2[name].dtype == a.dtype and t2[name].shape == a.shape
        np.testing.assert_array_equal(t2[name], a)


@pytest.fixture(scope="module")
def tiny_bias():
    return build_tiny(bias=True)


def test_round_trip_version3(tmp_path, tiny_bias):
    graph, tensors = tiny_bias
    path = tmp_path / "tiny.halibit"
    write_model(path, graph, tensors)
    g2, t2 = read_model(path)
    assert g2 == graph and g2["format_version"] == 3
    for name, a in tensors.items():
        assert t2[name].dtype == a.dtype and t2[name].shape == a.shape
        np.testing.assert_array_equal(t2[name], a)
    header = raw_parse(path.read_bytes())[1]
    assert header["fc.bias"]["dtype"] == "I32" and header["fc.bias"]["shape"] == [3]


def test_writer_picks_the_version(tmp_path, tiny, tiny_bias):
    """Version 3 only when a conv has a bias: other files stay what version 2 wrote."""
    assert FORMAT_VERSION == 2
    assert format_version_for(tiny[0]) == 2 and format_version_for(tiny_bias[0]) == 3
    write_model(tmp_path / "a.halibit", *tiny)
    write_model(tmp_path / "b.halibit", *tiny, version=2)
    assert (tmp_path / "a.halibit").read_bytes() == (tmp_path / "b.halibit").read_bytes()
    assert read_model(tmp_path / "a.halibit")[0]["format_version"] == 2
    write_model(tmp_path / "c.halibit", *tiny, version=3)  # any graph may be written as version 3
    assert read_model(tmp_path / "c.halibit")[0]["format_version"] == 3
    with pytest.raises(ModelError, match="layer 'c3': field 'bias': a conv's int32 bias needs format version 3 "
                                         r"\(this file is version 2\)"):
        write_model(tmp_path / "d.halibit", *tiny_bias, version=2)
    assert not (tmp_path / "d.halibit").exists()


def reference_fields(values, encoding, bits, levels=None):
    """The field of every weight value, written out from docs/model-format.md."""
    out = []
    for v in np.asarray(values).reshape(-1).tolist():
        if encoding == "binary":
            out.append(1 if v == -1 else 0)
        elif encoding == "signed":
            out.append(v + (1 << bits) if v < 0 else v)
        elif encoding == "odd":
            out.append((v + (1 << bits) - 1) // 2)
        else:
            out.append(levels.index(v))
    return out


def reference_pack(fields, bits):
    """Field i at bits [i * bits, (i + 1) * bits) of the bytes as one little-endian number."""
    number = sum(f << (i * bits) for i, f in enumerate(fields))
    return number.to_bytes((len(fields) * bits + 7) // 8, "little")


def random_values(rng, encoding, bits, count, levels=None):
    if encoding == "codebook":
        return rng.choice(levels, size=count).astype(np.int8)
    every = np.arange(-128, 128)
    return rng.choice(every[in_encoding(every, encoding, bits)], size=count).astype(np.int8)


@pytest.mark.parametrize("encoding,bits", [(e, b) for e, (lo, hi) in ENCODINGS.items() for b in range(lo, hi + 1)])
@pytest.mark.parametrize("count", [1, 7, 8, 9, 27, 64, 1001])
def test_pack_weights_matches_the_format(encoding, bits, count):
    rng = np.random.default_rng(count * 16 + bits)
    levels = sorted(rng.choice(np.arange(-128, 128), size=1 << bits, replace=False).tolist()) \
        if encoding == "codebook" else None
    values = random_values(rng, encoding, bits, count, levels)
    packed = pack_weights(values, encoding, bits, levels)
    assert packed.dtype == np.uint8
    assert packed.tobytes() == reference_pack(reference_fields(values, encoding, bits, levels), bits)
    np.testing.assert_array_equal(unpack_weights(packed, count, encoding, bits, levels), values)


def test_unpack_weights_refuses_bad_byte_strings():
    unpack_weights(np.zeros(3, np.uint8), 9, "signed", 2)
    with pytest.raises(ValueError, match="4 bytes, 9 fields of 2 bits take 3"):
        unpack_weights(np.zeros(4, np.uint8), 9, "signed", 2)
    with pytest.raises(ValueError, match="bits are set past the 9 fields of 2 bits"):
        unpack_weights(np.array([0, 0, 4], np.uint8), 9, "signed", 2)
    with pytest.raises(ValueError, match="5 is not a 2-bit 'codebook' weight"):
        pack_weights(np.array([1, 5], np.int8), "codebook", 2, [1, 2, 3, 4])


def test_container_layout(tmp_path, tiny):
    graph, tensors = tiny
    path = tmp_path / "tiny.halibit"
    write_model(path, graph, tensors)
    weights = {l["weights"]["tensor"]: l["weights"] for l in graph["layers"] if l["op"] == "conv"}
    data = path.read_bytes()
    n, header, body = raw_parse(data)
    assert n % 8 == 0
    text = data[8:8 + n].decode("utf-8")
    assert text.startswith("{") and text.rstrip(" ").endswith("}")
    assert set(header["__metadata__"]) == {"halibit"}
    assert json.loads(header["__metadata__"]["halibit"]) == graph
    del header["__metadata__"]
    assert set(header) == set(tensors)
    sizes = {"U8": 1, "I32": 4, "I64": 8}
    want = {np.dtype(np.int32): "I32", np.dtype(np.int64): "I64"}
    spans = sorted((h["data_offsets"][0], h["data_offsets"][1], name) for name, h in header.items())
    assert spans[0][0] == 0 and spans[-1][1] == len(body)  # no gaps, nothing after the data
    for (b0, e0, _), (b1, _, _) in zip(spans, spans[1:]):
        assert e0 == b1
    for name, h in header.items():
        a = tensors[name]
        begin, end = h["data_offsets"]
        assert begin % sizes[h["dtype"]] == 0  # naturally aligned
        if name in weights:  # version 2: bit-packed
            w = weights[name]
            packed = reference_pack(reference_fields(a, w["encoding"], w["bits"], w.get("levels")), w["bits"])
            assert h["dtype"] == "U8" and h["shape"] == [len(packed)]
            assert body[begin:end] == packed
            continue
        assert h["dtype"] == want[a.dtype]
        assert h["shape"] == list(a.shape)
        assert body[begin:end] == a.astype(a.dtype.newbyteorder("<")).tobytes()
    # little-endian check on one known value
    bias_name = graph["layers"][0]["requantize"]["bias"]
    b0 = header[bias_name]["data_offsets"][0]
    assert struct.unpack("<q", body[b0:b0 + 8])[0] == int(tensors[bias_name][0])


def conv_layer(graph, name):
    return next(l for l in graph["layers"] if l["name"] == name)


@pytest.mark.parametrize("role,dtype", [("weights", np.int16), ("weights", np.int32), ("weights", np.uint8),
                                        ("multiplier", np.int64), ("multiplier", np.int16),
                                        ("bias", np.int32), ("bias", np.float64)])
def test_write_rejects_wrong_dtypes(tmp_path, tiny, role, dtype):
    graph, tensors = tiny
    c1 = conv_layer(graph, "c1")
    name = c1["weights"]["tensor"] if role == "weights" else c1["requantize"][role]
    bad = dict(tensors)
    bad[name] = tensors[name].astype(dtype)
    with pytest.raises(ModelError, match=f"layer 'c1'.*{name}"):
        write_model(tmp_path / "bad.halibit", graph, bad)
    assert not (tmp_path / "bad.halibit").exists()


def test_write_rejects_int64_conv_bias(tmp_path, tiny_bias):
    graph, tensors = tiny_bias
    bad = dict(tensors, **{"fc.bias": tensors["fc.bias"].astype(np.int64)})
    with pytest.raises(ModelError, match=r"layer 'fc': field 'bias': tensor 'fc.bias' has dtype int64, expected int32"):
        write_model(tmp_path / "bad.halibit", graph, bad)


def test_add_multiplier_dtype(tmp_path, tiny):
    graph, tensors = tiny
    bad = dict(tensors)
    bad["res.multiplier1"] = tensors["res.multiplier1"].astype(np.int64)
    with pytest.raises(ModelError, match=r"layer 'res': field 'multipliers\[1\]'"):
        write_model(tmp_path / "bad.halibit", graph, bad)


def mutated(graph, fn):
    g = json.loads(json.dumps(graph))
    fn(g)
    return g


@pytest.mark.parametrize("fn,pattern", [
    (lambda g: g.update(format_version=4), "field 'format_version': 4 is not supported"),
    (lambda g: g.update(format_version=1), "layer 'c7': field 'weights.encoding': codebook weights need format version 2"),
    (lambda g: conv_layer(g, "c7")["weights"].update(levels=[1, 2, 3]), "layer 'c7': field 'weights.levels': expected 4"),
    (lambda g: conv_layer(g, "c7")["weights"].update(levels=[1, 2, 3, 128]), "layer 'c7': field 'weights.levels'"),
    (lambda g: conv_layer(g, "c7")["weights"].pop("levels"), "layer 'c7': field 'weights.levels'"),
    (lambda g: conv_layer(g, "c6")["weights"].update(levels=[1, 2, 3, 4]),
     "layer 'c6': field 'weights.levels': is only for codebook weights"),
    (lambda g: conv_layer(g, "c3")["weights"].update(bits=5), "layer 'c3': field 'weights.bits': 5 is not supported for encoding 'odd' \\(1..4\\)"),
    (lambda g: conv_layer(g, "c1")["requantize"].update(shift=63), "layer 'c1': field 'requantize.shift'"),
    (lambda g: conv_layer(g, "c1").update(stride=9), "layer 'c1': field 'stride'"),
    (lambda g: conv_layer(g, "c1").update(pad_values=[0, 0]), "layer 'c1': field 'pad_values'"),
    (lambda g: conv_layer(g, "c1").update(pad_values=[0, 0, 256]), "layer 'c1': field 'pad_values'"),
    (lambda g: conv_layer(g, "c2").update(groups=4), "layer 'c2': field 'groups'"),
    (lambda g: conv_layer(g, "c2").update(inputs=["pool"]), "layer 'c2': field 'inputs': tensor 'pool' is not"),
    (lambda g: conv_layer(g, "pool").update(pad=3), "layer 'pool': field 'pad'"),
    (lambda g: conv_layer(g, "c3").pop("requantize", None) or g["tensors"]["c3"].update(type="codes", bits=4),
     "layer 'c3': field 'requantize'"),
    (lambda g: g["tensors"]["c2"].update(shape=[3, 4, 6]), "layer 'c2': field 'output'"),
    (lambda g: g["labels"].append("d"), "field 'labels'"),
    (lambda g: g["input"].update(color="gray"), "field 'input.color'"),
])
def test_validate_rejects(tiny, fn, pattern):
    graph, tensors = tiny
    validate(graph, tensors, "tiny.halibit")
    with pytest.raises(ModelError, match="^tiny.halibit: .*" + pattern):
        validate(mutated(graph, fn), tensors, "tiny.halibit")


@pytest.mark.parametrize("fn,pattern", [
    (lambda g: g.update(format_version=2),
     r"layer 'c3': field 'bias': a conv's int32 bias needs format version 3 \(this file is version 2\)"),
    (lambda g: g.update(format_version=1), "layer 'c3': field 'bias': a conv's int32 bias needs format version 3"),
    (lambda g: conv_layer(g, "c1").update(bias="fc.bias"),
     r"layer 'c1': field 'bias': is only for convolutions with an int32 output \(a requantizing conv has "
     r"requantize.bias\)"),
    (lambda g: conv_layer(g, "fc").update(bias="c1.bias"),
     "layer 'fc': field 'bias': tensor 'c1.bias' has dtype int64, expected int32"),
    (lambda g: conv_layer(g, "fc").update(bias="c3.bias"),
     r"layer 'fc': field 'bias': tensor 'c3.bias' has shape \[6\], expected \[3\]"),
    (lambda g: conv_layer(g, "fc").update(bias="nope"), "layer 'fc': field 'bias': stored tensor 'nope' is missing"),
])
def test_validate_rejects_int32_bias(tiny_bias, fn, pattern):
    graph, tensors = tiny_bias
    validate(graph, tensors, "tiny.halibit")
    with pytest.raises(ModelError, match="^tiny.halibit: " + pattern):
        validate(mutated(graph, fn), tensors, "tiny.halibit")


def fc_acc_bound(graph, tensors):
    """Per class: the fc's |acc| bound (weights x the largest 8-bit code)."""
    w = tensors[conv_layer(graph, "fc")["weights"]["tensor"]].astype(np.int64).reshape(3, -1)
    return np.maximum(np.where(w > 0, w, 0).sum(axis=1), -np.where(w < 0, w, 0).sum(axis=1)) * 255


@pytest.mark.parametrize("sign", [1, -1])
def test_validate_int32_bias_range(tiny_bias, sign):
    """|acc| + |bias| of every channel within +-(2^31 - 2), with the same message as the C++ loader."""
    graph, tensors = tiny_bias
    acc = fc_acc_bound(graph, tensors)
    edge = dict(tensors, **{"fc.bias": (sign * (ACC_LIMIT - acc)).astype(np.int32)})
    validate(graph, edge, "tiny.halibit")
    over = dict(tensors, **{"fc.bias": edge["fc.bias"].copy()})
    over["fc.bias"][1] += sign
    with pytest.raises(ModelError, match=re.escape(
            f"tiny.halibit: layer 'fc': field 'bias': acc + bias of output channel 1 can reach +-{ACC_LIMIT + 1} "
            f"(acc up to +-{acc[1]}, bias {int(over['fc.bias'][1])}), outside +-(2^31 - 2), the range of int32 "
            f"accumulators")):
        validate(graph, over, "tiny.halibit")


def test_add_checks_the_biased_bound(tiny_bias):
    """res reads c3: its int64 check uses c3's bound with the bias (|acc| + |bias|), not |acc| alone."""
    graph, tensors = tiny_bias
    c3, res = conv_layer(graph, "c3"), conv_layer(graph, "res")
    w = tensors[c3["weights"]["tensor"]].astype(np.int64).reshape(6, -1)
    codes = (1 << graph["tensors"][c3["inputs"][0]]["bits"]) - 1
    acc = np.maximum(np.where(w > 0, w, 0).sum(axis=1), -np.where(w < 0, w, 0).sum(axis=1)) * codes
    bound = int((acc + np.abs(tensors[c3["bias"]].astype(np.int64))).max())
    assert bound > int(acc.max())
    m0, m1 = (np.abs(tensors[m].astype(np.int64)) for m in res["multipliers"])
    x1 = (1 << graph["tensors"][res["inputs"][1]]["bits"]) - 1
    rounding = 1 << (res["shift"] - 1) if res["shift"] else 0
    room = [(1 << 63) - 1 - rounding - bound * int(a) - x1 * int(b) for a, b in zip(m0, m1)]
    at_limit = dict(tensors, **{res["bias"]: np.array(room, np.int64)})
    validate(graph, at_limit)  # B fills int64 exactly for inputs up to the biased bound
    c = int(np.argmax(m0))
    over = dict(at_limit, **{res["bias"]: at_limit[res["bias"]].copy()})
    over[res["bias"]][c] += 1
    with pytest.raises(ModelError, match="layer 'res': field 'multipliers': .* can overflow int64"):
        validate(graph, over)


@pytest.mark.parametrize("layer,value", [("c2", 8), ("c2", -9), ("c3", 2), ("c3", 5), ("c3", -7), ("c4", 0),
                                         ("c4", 3), ("c5", 3), ("c7", 4)])
def test_validate_rejects_weights_outside_encoding(tiny, layer, value):
    graph, tensors = tiny
    bad = dict(tensors)
    w = tensors[f"{layer}.weight"].copy()
    w.flat[3] = value
    bad[f"{layer}.weight"] = w
    with pytest.raises(ModelError, match=f"layer '{layer}': field 'weights.tensor': weight .* = {value} is not a member"):
        validate(graph, bad)


def test_accumulator_bound_int32():
    x = {"shape": [1, 1, 20000], "type": "codes", "bits": 8, "scale": 1.0}
    graph = {"format_version": 1, "name": "big", "labels": [],
             "input": {"tensor": "image", "color": "rgb", "mean": [0, 0, 0], "std": [1, 1, 1]},
             "output": {"tensor": "logits", "scale": 1.0},
             "tensors": {"image": dict(x, shape=[1, 1, 3]), "wide": x,
                         "logits": {"shape": [1, 1, 1], "type": "int32"}},
             "layers": []}
    # 20000 channels x 255 x 127 < 2^31 but x 128 (-128 weights) ... both fit; 70000 would not
    graph["tensors"]["wide"] = dict(x, shape=[1, 1, 70000])
    graph["layers"] = [{"name": "expand", "op": "conv", "inputs": ["image"], "output": "wide", "kernel": [1, 1],
                        "stride": 1, "pad": 0, "groups": 1, "weights": {"tensor": "we", "encoding": "signed", "bits": 8},
                        "requantize": {"multiplier": "m", "bias": "b", "shift": 0}},
                       {"name": "fc", "op": "conv", "inputs": ["wide"], "output": "logits", "kernel": [1, 1],
                        "stride": 1, "pad": 0, "groups": 1, "weights": {"tensor": "wf", "encoding": "signed", "bits": 8}}]
    tensors = {"we": np.ones((70000, 1, 1, 3), np.int8), "m": np.ones(70000, np.int32), "b": np.zeros(70000, np.int64),
               "wf": np.full((1, 1, 1, 70000), 127, np.int8)}
    with pytest.raises(ModelError, match=r"layer 'fc'.*outside \+-\(2\^31 - 2\)"):
        validate(graph, tensors)
    tensors["wf"][0, 0, 0, 60000:] = 0  # 60000 * 255 * 127 = 1.94e9 fits
    validate(graph, tensors)


def test_parse_rejects_broken_containers(tmp_path, tiny):
    graph, tensors = tiny
    path = tmp_path / "tiny.halibit"
    write_model(path, graph, tensors)
    data = path.read_bytes()
    with pytest.raises(ModelError, match="header length"):
        parse_model(data[:8] + data[8:100], "x")
    with pytest.raises(ModelError, match="data_offsets"):
        parse_model(data[:-1], "x")  # the last tensor now ends outside the file
    n, header, body = raw_parse(data)
    names = [k for k in header if k != "__metadata__"]
    header[names[1]]["data_offsets"] = list(header[names[0]]["data_offsets"])
    header[names[1]]["shape"] = list(header[names[0]]["shape"])
    header[names[1]]["dtype"] = header[names[0]]["dtype"]
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with pytest.raises(ModelError, match="overlap"):
        parse_model(struct.pack("<Q", len(text)) + text + body, "x", validate_graph=False)


def test_in_encoding():
    v = np.arange(-20, 20)
    assert set(v[in_encoding(v, "binary", 1)]) == {-1, 1}
    assert set(v[in_encoding(v, "signed", 2)]) == {-2, -1, 0, 1}
    assert set(v[in_encoding(v, "signed", 4)]) == set(range(-8, 8))
    assert set(v[in_encoding(v, "odd", 1)]) == {-1, 1}
    assert set(v[in_encoding(v, "odd", 2)]) == {-3, -1, 1, 3}
    assert set(v[in_encoding(v, "odd", 4)]) == set(range(-15, 16, 2))
    with pytest.raises(ValueError):
        in_encoding(v, "odd", 5)
    with pytest.raises(ValueError):
        in_encoding(v, "signed", 1)
