"""Mutation fuzzing of halibit.convert: every input must end in a ConvertError or a valid model.

The valid graphs of onnx_graphs.py (and its Tiny graph) are mutated at random -- nodes deleted,
duplicated, reordered, op types and domains changed, attributes changed to random values of
random types or removed, initializers replaced by random shapes / dtypes / NaN / inf / huge
values, inputs renamed to dangling or other values, graph inputs and outputs and the metadata
the converter reads changed -- and converted. convert() may raise ConvertError, or succeed with a
model that passes halibit.modelfile.validate and runs in the simulator; any other exception (a
KeyError, IndexError, TypeError, ZeroDivisionError, numpy's errors, ...) or a conversion taking
longer than TIME_LIMIT seconds is a bug.

    PYTHONPATH=python /usr/bin/python3 -m pytest python/tests/test_convert_fuzz.py -q -s
    HALIBIT_FUZZ_SEED=123 HALIBIT_FUZZ_CASES=5000 ... (default: seed 20261207, 2,500 cases;
        HALIBIT_FUZZ_SEED=random picks one and prints it)
    PYTHONPATH=python /usr/bin/python3 python/tests/test_convert_fuzz.py SEED CASE   # replay one case
    PYTHONPATH=python /usr/bin/python3 python/tests/test_convert_fuzz.py --run SEED CASES  # a long run

Case i of seed S uses numpy.random.default_rng([S, i]), so any case replays alone. The failures
are grouped by exception type and the line of halibit's code that raised, one reproducer each.
test_regression_* are the bugs found so far, as plain reproducers (they fail until fixed).
"""
from __future__ import annotations

import os
import signal
import sys
import time
import traceback
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnx_graphs as G
from onnx_graphs import Q, Tiny
from halibit import convert, simulator
from halibit.modelfile import validate

DEFAULT_SEED = 20261207
CASES = int(os.environ.get("HALIBIT_FUZZ_CASES", "2500"))
TIME_LIMIT = 10.0  # seconds per conversion
BUDGET = 50.0      # seconds for the whole run: stops early (with a message) if the machine is slow

OPS = ["Conv", "BatchNormalization", "Relu", "Add", "Sub", "Mul", "Div", "MaxPool", "AveragePool",
       "GlobalAveragePool", "ReduceMean", "Flatten", "Reshape", "Transpose", "Gemm", "MatMul", "Identity",
       "Clip", "Squeeze", "Cast", "Constant", "Dropout", "QuantizeLinear", "DequantizeLinear", "QLinearConv",
       "QLinearMatMul", "Quant", "BipolarQuant", "Trunc", "IntQuant", "QLinearAdd", "QLinearGlobalAveragePool",
       "Sigmoid", "Softmax", "LSTM", "Concat", "Shape", "Gather", "Unsqueeze", "Pad", "Resize", "Nonexistent"]
DOMAINS = ["", "ai.onnx", Q, "finn.custom_op.general", "com.microsoft", "qonnx", "bogus.domain"]
ATTRS = ["pads", "strides", "kernel_shape", "dilations", "group", "auto_pad", "perm", "axis", "axes", "keepdims",
         "transA", "transB", "alpha", "beta", "epsilon", "signed", "narrow", "rounding_mode", "ceil_mode",
         "storage_order", "count_include_pad", "to", "value", "min", "max", "channels_last", "allowzero",
         "training_mode", "momentum", "hidden_size"]
DTYPES = [np.float32, np.float64, np.float16, np.int8, np.uint8, np.int32, np.int64, np.bool_, np.int16]
META_KEYS = ["halibit.requantize", "halibit.levels", "halibit.graph"]


class Timeout(Exception):
    pass


# -- random values -------------------------------------------------------------------------------


def rand_number(r):
    return r.choice([0, 1, -1, 2, 3, 7, 8, 9, 15, 16, 255, 256, -128, 1 << 31, -(1 << 40), 0.5, -0.5, 1e-30, 1e30,
                     np.nan, np.inf, -np.inf, 1e300, r.normal() * 10])


def rand_array(r, shape=None, dtype=None):
    if shape is None:
        ndim = int(r.integers(0, 6))
        shape = tuple(int(x) for x in r.choice([0, 1, 1, 2, 3, 4, 5, 8], size=ndim))
    dtype = dtype or DTYPES[int(r.integers(len(DTYPES)))]
    kind = r.integers(5)
    n = int(np.prod(shape)) if shape else 1
    if kind == 0:
        v = r.normal(size=n) * 3
    elif kind == 1:
        v = np.full(n, rand_number(r), np.float64)
    elif kind == 2:
        v = r.integers(-300, 300, size=n).astype(np.float64)
    elif kind == 3:
        v = r.normal(size=n) * 10.0 ** float(r.integers(-40, 40))
    else:
        v = r.normal(size=n)
        if n:
            v[r.integers(n, size=max(1, n // 3))] = r.choice([np.nan, np.inf, -np.inf, 0.0, 1e38])
    with np.errstate(all="ignore"):
        if np.dtype(dtype).kind in "iub":
            v = np.nan_to_num(v, nan=0, posinf=1e9, neginf=-1e9)
            info = np.iinfo(dtype) if np.dtype(dtype).kind != "b" else None
            v = np.clip(v, info.min, info.max) if info else v != 0
        return np.asarray(v).astype(dtype).reshape(shape)


def rand_attr(r, name):
    kind = r.integers(9)
    if kind == 0:
        return helper.make_attribute(name, int(r.choice([0, 1, 2, 3, -1, 7, 8, 16, 100, 1 << 40])))
    if kind == 1:
        return helper.make_attribute(name, float(rand_number(r)))
    if kind == 2:
        return helper.make_attribute(name, str(r.choice(["ROUND", "FLOOR", "CEIL", "SAME_UPPER", "VALID", "NOTSET",
                                                         "", "xyz", "HALF_UP", "ROUND_TO_ZERO", "UP", "DOWN"])))
    if kind == 3:
        n = int(r.integers(0, 7))
        return helper.make_attribute(name, [int(x) for x in r.choice([0, 1, 2, 3, 4, -1, 9, 100], size=n)])
    if kind == 4:
        return helper.make_attribute(name, [float(rand_number(r)) for _ in range(int(r.integers(1, 5)))])
    if kind == 5:
        return helper.make_attribute(name, numpy_helper.from_array(rand_array(r, dtype=np.float32)))
    if kind == 6:
        return helper.make_attribute(name, [b"a", b"b"])
    if kind == 7:  # a valid-looking value for this attribute
        return helper.make_attribute(name, {"pads": [1, 1, 1, 1], "strides": [2, 2], "kernel_shape": [3, 3],
                                            "perm": [0, 2, 1, 3, 4], "axes": [2, 3], "group": 2}.get(name, 1))
    return helper.make_attribute(name, [0, 3, 1, 2])


# -- mutations ------------------------------------------------------------------------------------


def _value_names(m):
    names = {i.name for i in m.graph.input} | {t.name for t in m.graph.initializer}
    for n in m.graph.node:
        names.update(o for o in n.output if o)
    return sorted(names)


def _pick_node(r, m):
    return m.graph.node[int(r.integers(len(m.graph.node)))] if len(m.graph.node) else None


def _where(n):
    return f"node '{n.name}' ({n.op_type})"


def mutate(r, m) -> str:
    """One random mutation of model m (in place); returns its description."""
    g = m.graph
    k = int(r.integers(17))
    n = _pick_node(r, m)
    if n is None:
        k = 16
    if k == 0:
        i = int(r.integers(len(g.node)))
        desc = f"delete {_where(g.node[i])}"
        del g.node[i]
        return desc
    if k == 1:
        i = int(r.integers(len(g.node)))
        copy = onnx.NodeProto()
        copy.CopyFrom(g.node[i])
        g.node.insert(int(r.integers(len(g.node) + 1)), copy)
        return f"duplicate {_where(copy)}"
    if k == 2:
        i, j = (int(x) for x in r.integers(len(g.node), size=2))
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(g.node[i])
        b.CopyFrom(g.node[j])
        g.node[i].CopyFrom(b)
        g.node[j].CopyFrom(a)
        return f"swap {_where(a)} and {_where(b)}"
    if k in (3, 4):  # change or add an attribute
        name = (n.attribute[int(r.integers(len(n.attribute)))].name if n.attribute and k == 3
                else str(r.choice(ATTRS)))
        keep = [a for a in n.attribute if a.name != name]
        attr = rand_attr(r, name)
        del n.attribute[:]
        n.attribute.extend(keep + [attr])
        value = helper.get_attribute_value(attr)
        shown = (f"tensor {numpy_helper.to_array(value).dtype}{list(numpy_helper.to_array(value).shape)}"
                 if isinstance(value, onnx.TensorProto) else repr(value)[:60])
        return f"{_where(n)}: attribute {name} = {shown}"
    if k == 5 and n.attribute:
        a = n.attribute[int(r.integers(len(n.attribute)))]
        name = a.name
        n.attribute.remove(a)
        return f"{_where(n)}: remove attribute {name}"
    if k in (6, 7) and len(g.initializer):
        t = g.initializer[int(r.integers(len(g.initializer)))]
        old = numpy_helper.to_array(t)
        if k == 6:
            new = rand_array(r)
        else:  # same shape (and dtype), some values replaced
            new = rand_array(r, old.shape, old.dtype.type if old.dtype != np.float64 else np.float64)
            mix = r.random(old.shape) < 0.3 if old.ndim else bool(r.random() < 0.5)
            new = np.where(mix, new, old).astype(old.dtype)
        t.CopyFrom(numpy_helper.from_array(np.asarray(new), t.name))
        return f"initializer '{t.name}' {old.dtype}{list(old.shape)} -> {new.dtype}{list(np.shape(new))}"
    if k == 8 and len(n.input):
        i = int(r.integers(len(n.input)))
        names = _value_names(m)
        new = str(r.choice(["dangling", "", "input"] + names))
        old = n.input[i]
        n.input[i] = new
        return f"{_where(n)}: input {i} '{old}' -> '{new}'"
    if k == 9:
        old = n.op_type
        n.op_type = str(r.choice(OPS))
        return f"{_where(n)}: op type {old} -> {n.op_type}"
    if k == 10:
        old = n.domain
        n.domain = str(r.choice(DOMAINS))
        return f"{_where(n)}: domain '{old}' -> '{n.domain}'"
    if k == 11 and len(n.input):
        cut = int(r.integers(len(n.input)))
        del n.input[cut:]
        return f"{_where(n)}: keep the first {cut} inputs"
    if k == 12:
        n.input.append(str(r.choice(_value_names(m) + [""])))
        return f"{_where(n)}: extra input '{n.input[-1]}'"
    if k == 13:
        vi = g.input[0] if len(g.input) else None
        if vi is None:
            return "no graph input"
        dims = vi.type.tensor_type.shape.dim
        choice = int(r.integers(4))
        if choice == 0 and len(dims):
            d = dims[int(r.integers(len(dims)))]
            d.dim_value = int(r.choice([0, 1, 2, 3, 5, 7, 13, 4096, 70000]))
            return f"graph input dims -> {[x.dim_value or x.dim_param for x in dims]}"
        if choice == 1:
            dims.add().dim_value = 2
            return "graph input: an extra dimension"
        if choice == 2 and len(dims):
            del dims[int(r.integers(len(dims)))]
            return "graph input: a dimension removed"
        d = dims[int(r.integers(len(dims)))] if len(dims) else dims.add()
        d.dim_param = "X"
        return "graph input: a symbolic dimension"
    if k == 14:
        choice = int(r.integers(3))
        if choice == 0:
            g.output[0].name = str(r.choice(_value_names(m) + ["nothing"]))
            return f"graph output -> '{g.output[0].name}'"
        if choice == 1:
            g.output.append(helper.make_tensor_value_info(str(r.choice(_value_names(m))), TensorProto.FLOAT, None))
            return f"extra graph output '{g.output[-1].name}'"
        name = str(r.choice(_value_names(m)))
        g.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 1, 4, 4]))
        return f"extra graph input '{name}'"
    if k == 15:
        key = str(r.choice(META_KEYS))
        layer = str(r.choice([x.name for x in g.node] or ["x"]))
        val = r.choice([
            "{", "[]", "null", '{"%s": 3}' % layer, '{"%s": {"multiplier": [1, 2], "shift": 70}}' % layer,
            '{"%s": {"multiplier": "x", "shift": "y"}}' % layer, '{"%s": [1, 2, 3]}' % layer,
            '{"%s": {"multipliers": [[1], [2]], "bias": [0], "shift": -1}}' % layer,
            '{"%s": {"multiplier": [1e40], "shift": 3}}' % layer, '{"name": 5, "labels": 7}',
            '{"labels": [1, 2]}', '{"%s": [1, 2, "a"]}' % layer, '{"%s": {"shift": 3}}' % layer])
        del m.metadata_props[:]
        helper.set_model_props(m, {key: str(val)})
        return f"metadata {key} = {val}"
    # k == 16 or a mutation that did not apply: an opset version / a new node
    if r.random() < 0.5 and len(m.opset_import):
        m.opset_import[0].version = int(r.choice([1, 7, 11, 13, 17, 18, 99]))
        return f"opset '{m.opset_import[0].domain}' version {m.opset_import[0].version}"
    names = _value_names(m)
    op = str(r.choice(OPS))
    new = helper.make_node(op, [str(r.choice(names)) for _ in range(int(r.integers(1, 4)))], [f"new{len(g.node)}"],
                           name=f"new{len(g.node)}", domain=Q if op in ("Quant", "BipolarQuant", "Trunc") else "")
    g.node.insert(int(r.integers(len(g.node) + 1)), new)
    return f"insert {_where(new)} reading {list(new.input)}"


# -- running one case ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bases():
    return base_models()


def base_models():
    out = {name: G.build(name).model for name in G.BUILDERS}
    out["tiny"] = Tiny().model()
    out["tiny_rgb"] = Tiny(channels=3).model()
    return out


def _alarm(signum, frame):
    raise Timeout(f"convert() took longer than {TIME_LIMIT} s")


def run_case(bases, seed, i):
    """(base name, mutations, None) if the case ends well, else (..., (exception, traceback text))."""
    r = np.random.default_rng([seed, i])
    names = sorted(bases)
    base = names[int(r.integers(len(names)))]
    m = onnx.ModelProto()
    m.CopyFrom(bases[base])
    muts = [mutate(r, m) for _ in range(int(r.choice([1, 1, 1, 2, 3])))]
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            graph, stored, _ = convert.convert(m)
        validate(graph, stored, "fuzz")
        shape = graph["tensors"][graph["input"]["tensor"]]["shape"]
        if int(np.prod(shape)) <= 1 << 16:
            simulator.run(graph, stored, np.zeros([2] + shape, np.uint8))
        return base, muts, None
    except convert.ConvertError as e:
        if convert.INTERNAL in str(e):  # the converter's safety net caught an unchecked case: a bug
            return base, muts, (e, traceback.format_exc())
        return base, muts, None
    except (Exception, Timeout) as e:  # noqa: BLE001 - anything else is a bug
        return base, muts, (e, traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _origin(tb_text: str) -> str:
    """The innermost line of halibit's code in a traceback (file:line function)."""
    frames = [ln.strip() for ln in tb_text.splitlines() if ln.strip().startswith("File ") and "/halibit/" in ln]
    if not frames:
        return "?"
    f = frames[-1]
    path = f.split('"')[1]
    return f"{os.path.basename(path)}:{f.split('line ')[1].split(',')[0]} {f.split(', in ')[-1]}"


def fuzz(bases, seed, cases, budget=BUDGET):
    groups, done, start = {}, 0, time.time()
    for i in range(cases):
        if time.time() - start > budget:
            break
        base, muts, err = run_case(bases, seed, i)
        done += 1
        if err is not None:
            e, tb = err
            key = (type(e).__name__, _origin(tb))
            groups.setdefault(key, []).append((i, base, muts, f"{type(e).__name__}: {str(e)[:200]}"))
    return groups, done, time.time() - start


def report(groups, seed) -> str:
    lines = []
    for (etype, origin), hits in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        i, base, muts, msg = min(hits, key=lambda h: (len(h[2]), h[0]))  # the fewest mutations
        lines.append(f"{etype} at {origin}: {len(hits)} cases; e.g. case {i} "
                     f"(replay: test_convert_fuzz.py {seed} {i}): "
                     f"graph '{base}', {'; '.join(muts)} -> {msg}")
    return "\n".join(lines)


def _seed():
    s = os.environ.get("HALIBIT_FUZZ_SEED", str(DEFAULT_SEED))
    return int(np.random.SeedSequence().entropy % (1 << 32)) if s == "random" else int(s)


def test_fuzz_convert(bases):
    seed = _seed()
    groups, done, took = fuzz(bases, seed, CASES)
    print(f"\nconvert fuzz: seed {seed}, {done} cases in {took:.1f} s, {sum(map(len, groups.values()))} bugs "
          f"in {len(groups)} groups")
    text = report(groups, seed)
    if text:
        print(text)
    assert done >= min(CASES, 1000), f"only {done} cases in {BUDGET} s (slow machine?)"
    assert not groups, f"convert() raised other exceptions than ConvertError (seed {seed}):\n{text}"


# -- the bugs found so far, as reproducers ---------------------------------------------------------


def _expect_convert_error(model, **kw):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            graph, stored, _ = convert.convert(model, **kw)
        except convert.ConvertError as e:
            assert "\n" not in str(e)
            assert convert.INTERNAL not in str(e), str(e)
            return str(e)
    validate(graph, stored, "regression")
    return None


def _tiny(fn, **kw):
    def make():
        t = Tiny(**kw)
        fn(t)
        return t.model()
    return make


def _built(name, fn):
    def make():
        m = onnx.ModelProto()
        m.CopyFrom(G.build(name).model)
        fn(m)
        return m
    return make


def _first(m, op):
    return next(n for n in m.graph.node if n.op_type == op)


def _nth(m, op, i):
    return [n for n in m.graph.node if n.op_type == op][i]


def _set_init(m, name, a):
    t = next(t for t in m.graph.initializer if t.name == name)
    t.CopyFrom(numpy_helper.from_array(np.asarray(a), name))


def _set_attr(node, name, value):
    keep = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(keep + [helper.make_attribute(name, value)])


def _dq_weights(t, axis=0, scale=None, zero=None):
    """Tiny's conv1 weights as DequantizeLinear of int8 (per channel along `axis`)."""
    w, s = t.inits.pop("w1"), t.inits["w1q.s"].reshape(-1)
    q = np.clip(np.round(w / s.reshape(-1, 1, 1, 1)), -127, 127)
    i = t.index("w1q")
    t.nodes.pop(i)
    t.add("DequantizeLinear", [t.init("w1.int8", q, np.int8), t.init("w1.scale", s if scale is None else scale),
                               t.init("w1.zp", np.zeros(s.size) if zero is None else zero, np.int8)],
          "w1q", index=i, axis=axis)


def _bipolar_weights(t, scale):
    """Tiny's conv1 weights as BipolarQuant(w1, scale)."""
    i = t.index("w1q")
    t.nodes.pop(i)
    t.add("BipolarQuant", ["w1", t.init("w1.bscale", scale)], "w1q", domain=Q, index=i)


def _insert_maxpool(t, **attrs):
    t.add("MaxPool", ["a1"], "pool", index=t.index("gap"), **attrs)
    t.rewire("gap", 0, "pool")


def _gap_to_reducemean(t, axes):
    n = t.node("gap")
    n.op_type = "ReduceMean"
    t.set_attr("gap", "axes", axes)


def _clip_min(t, lo):
    n = t.node("relu1")
    n.op_type = "Clip"
    n.input.append(t.init("clip.min", lo))


def _conv_bias(t, b):
    t.node("conv1").input.append(t.init("conv1.b", b))


def _tensor(a):
    return numpy_helper.from_array(np.asarray(a, np.float32))


def _qlinear_conv_input(i, a):
    return lambda m: _set_init(m, _first(m, "QLinearConv").input[i], a)


# (id, model maker, the node the ConvertError must name). Each was found by the fuzzer (seeds 1-7);
# the comment names the exception convert.py raised instead of a ConvertError. All must end in a
# ConvertError of one line naming the node (or a valid model) -- they fail until fixed.
REGRESSIONS = [
    # attributes of the wrong type used unchecked (_attrs returns whatever the AttributeProto holds)
    ("bn-epsilon-ints", _tiny(lambda t: t.set_attr("bn1", "epsilon", [0, 3])), "bn1"),      # float(list): TypeError
    ("bn-epsilon-string", _tiny(lambda t: t.set_attr("bn1", "epsilon", "UP")), "bn1"),      # float(b'UP'): ValueError
    ("conv-strides-int", _tiny(lambda t: t.set_attr("conv1", "strides", 2)), "conv1"),      # list(2): TypeError
    ("conv-pads-float", _tiny(lambda t: t.set_attr("conv1", "pads", 1.0)), "conv1"),        # list(1.0): TypeError
    ("conv-dilations-int", _tiny(lambda t: t.set_attr("conv1", "dilations", 1)), "conv1"),  # iterating an int
    ("conv-kernel-shape-tensor", _tiny(lambda t: t.set_attr("conv1", "kernel_shape", _tensor([3, 3]))), "conv1"),
    ("conv-group-ints", _tiny(lambda t: t.set_attr("conv1", "group", [1, 2])), "conv1"),     # int(list): TypeError
    ("conv-group-string", _tiny(lambda t: t.set_attr("conv1", "group", "two")), "conv1"),    # int(b'two'): ValueError
    ("maxpool-kernel-strings", _tiny(lambda t: _insert_maxpool(t, kernel_shape=["a", "b"])), "pool"),  # int <= bytes
    ("maxpool-kernel-int", _tiny(lambda t: _insert_maxpool(t, kernel_shape=2)), "pool"),    # list(2): TypeError
    ("conv-group-inf", _tiny(lambda t: t.set_attr("conv1", "group", -np.inf)), "conv1"),     # int(-inf): Overflow
    ("gemm-alpha-tensor", _tiny(lambda t: t.set_attr("fc", "alpha", _tensor(2.0))), "fc"),   # float(TensorProto)
    ("gemm-beta-ints", _tiny(lambda t: t.set_attr("fc", "beta", [0, 3])), "fc"),             # float(list)
    ("transpose-perm-int", _built("rgb_nhwc_shuffle", lambda m: _set_attr(_nth(m, "Transpose", 1), "perm", 7)),
     "shuffle"),                                                                             # list(7): TypeError
    ("input-transpose-perm-int", _built("rgb_nhwc_shuffle", lambda m: _set_attr(_nth(m, "Transpose", 0), "perm", 8)),
     "input"),                                                               # _input: list(8) on the NHWC check
    ("dq-axis-ints", _tiny(lambda t: _dq_weights(t, axis=[0])), "w1q"),                      # list % int: TypeError
    ("quant-rounding-mode-floats", _tiny(lambda t: t.set_attr("w1q", "rounding_mode", [1.0, 2.0])), "w1q"),
    # ^ onnx_reference.rounding_function(list): AttributeError 'list' object has no attribute 'upper'
    ("reducemean-axes-float", _tiny(lambda t: _gap_to_reducemean(t, 2.0)), "gap"),          # iterating a float
    # bit widths that are not finite
    ("bitwidth-nan", _tiny(lambda t: t.inits.__setitem__("a1.b", np.float32(np.nan))), "a1"),  # round(nan): ValueError
    ("bitwidth-inf", _tiny(lambda t: t.inits.__setitem__("w1q.b", np.float32(np.inf))), "w1q"),  # round(inf): Overflow
    # parameter initializers of unexpected shapes reshaped / indexed unchecked
    ("dq-weights-scale-3-of-4", _tiny(lambda t: _dq_weights(t, scale=np.full(3, 0.1))), "w1q"),  # reshape ValueError
    ("dq-weights-scale-empty", _tiny(lambda t: _dq_weights(t, scale=np.zeros(0))), "w1q"),      # reshape ValueError
    ("dq-weights-axis-1", _tiny(lambda t: _dq_weights(t, axis=1)), "w1q"),   # _weight_channel_scale broadcast error
    ("conv-bias-empty", _tiny(lambda t: _conv_bias(t, np.zeros(0))), "conv1"),              # IndexError in _conv
    ("clip-min-vector", _tiny(lambda t: _clip_min(t, np.zeros(2))), "relu1"),               # float(array[2]): TypeError
    ("qlinearconv-w-scale-empty", _built("qlinear", _qlinear_conv_input(4, np.zeros(0, np.float32))), "qconv"),
    ("qlinearconv-bias-3-of-8", _built("qlinear", _qlinear_conv_input(8, np.zeros(3, np.int32))), "qconv"),
    ("qlinearconv-weights-1d", _built("qlinear", _qlinear_conv_input(3, np.ones(3, np.int8))), "qconv"),
    # _fold (a standard op whose first input is constant) assumes every input is a present Const
    ("fold-reads-activation", _tiny(lambda t: t.add("Reshape", ["fcb", "relu1"], "reshape_x")), "reshape_x"),
    ("fold-reads-missing", _tiny(lambda t: t.add("Sub", ["bn1.g", "bn1.b", "nope"], "sub3")), "sub3"),
    ("dq-zero-point-activation", _tiny(lambda t: (_dq_weights(t), t.rewire("w1q", 2, "qin"))), "w1q"),
    # ^ zv.value of a Lin: AttributeError (of a QWeight: TypeError 'method')
    ("q-zero-point-activation", _built("qdq", lambda m: _nth(m, "QuantizeLinear", 1).input.__setitem__(2, "input")),
     "q"),                                                                   # _quant_params_raw: zv.value of a Lin
    ("q-x-omitted", _built("qdq", lambda m: _nth(m, "QuantizeLinear", 1).input.__setitem__(0, "")), "q"),
    # ^ QuantizeLinear's X '' (omitted): quantize(None): AttributeError 'NoneType' object has no attribute 'layout'
    ("qlinearconv-weights-scalar", _built("qlinear", _qlinear_conv_input(3, np.int8(1))), "qconv"),
    ("qlinearmatmul-weights-scalar", _built("qlinear", lambda m: _set_init(m, _first(m, "QLinearMatMul").input[3],
                                                                            np.int8(1))), "qmatmul"),
    # ^ _fc: w.ints.shape[1] of 0-d weights: IndexError
    ("bipolar-scale-shape", _tiny(lambda t: _bipolar_weights(t, np.full((1, 4, 1, 1), 0.1))), "conv1"),
    # ^ _weight_channel_scale: a scale that does not broadcast to the weights: numpy ValueError
    # ^ _qweight: shape[0] = s.size on a 0-d weight: IndexError
    # metadata the converter reads
    ("metadata-graph-labels-int", _tiny(lambda t: None), None),
    ("metadata-requantize-huge", _tiny(lambda t: None), "a1"),
    # non-finite constants
    ("logits-bias-nan", _tiny(lambda t: t.inits.__setitem__("fcb", np.full(10, np.nan, np.float32))), "fc"),
    ("input-quant-scale-inf", _tiny(lambda t: t.inits.__setitem__("qin.s", np.float32(np.inf))), "qin"),
]
_META = {"metadata-graph-labels-int": {"halibit.graph": '{"name": 5, "labels": 7}'},     # list(7) in _graph
         "metadata-requantize-huge": {"halibit.requantize": '{"a1": {"multiplier": [1e40], "shift": 3}}'}}  # int64


@pytest.mark.parametrize("ident,make,node", REGRESSIONS, ids=[r[0] for r in REGRESSIONS])
def test_regression(ident, make, node):
    model = make()
    if ident in _META:
        helper.set_model_props(model, _META[ident])
    msg = _expect_convert_error(model)
    if msg is not None and node is not None:
        assert f"'{node}" in msg, msg


if __name__ == "__main__":
    b = base_models()
    if len(sys.argv) == 3 and sys.argv[1] != "--run":
        base, muts, err = run_case(b, int(sys.argv[1]), int(sys.argv[2]))
        print(f"graph '{base}'\n  " + "\n  ".join(muts))
        print(err[1] if err else "ok: ConvertError or a valid model")
    else:  # --run [SEED [CASES]]: a long run without the time budget
        args = sys.argv[2:]
        seed = int(args[0]) if args else _seed()
        groups, done, took = fuzz(b, seed, int(args[1]) if len(args) > 1 else CASES, budget=1e9)
        print(f"seed {seed}: {done} cases in {took:.1f} s, {len(groups)} groups")
        print(report(groups, seed))
