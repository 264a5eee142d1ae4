"""halibit.onnx_reference: float ops against torch.nn.functional (float64, 1e-9), quantization ops
against values computed by hand from their specifications, errors naming the node."""
import io
import time

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from halibit.onnx_reference import OnnxReferenceError, rounding_function, run

QONNX = "qonnx.custom_op.general"
TOL = dict(rtol=1e-9, atol=1e-9)


def make_model(nodes, inputs=(), outputs=("out",), inits=None, opset=13, extra_opsets=None):
    """A model of `nodes`; `inputs` are graph inputs (float), `inits` name -> array initializers."""
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        initializer=[numpy_helper.from_array(np.asarray(a), n) for n, a in (inits or {}).items()])
    opsets = [helper.make_opsetid("", opset)]
    opsets += [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    return helper.make_model(graph, opset_imports=opsets)


def run_node(op, args, domain="", opset=13, name="n", extra_opsets=None, n_out=1, **attrs):
    """Run one node whose inputs are the initializers `args` (None: an omitted optional input)."""
    names = [f"in{i}" if a is not None else "" for i, a in enumerate(args)]
    inits = {n: a for n, a in zip(names, args) if a is not None}
    outs = ["out"] + [f"out{i}" for i in range(1, n_out)]
    node = helper.make_node(op, names, outs, name=name, domain=domain, **attrs)
    result = run(make_model([node], outputs=outs, inits=inits, opset=opset, extra_opsets=extra_opsets), {})
    return result["out"] if n_out == 1 else [result[o] for o in outs]


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


rng = np.random.default_rng(1234)


# --- Conv, Gemm, pools, BN against torch ------------------------------------------------------------

@pytest.mark.parametrize("N,C,H,W,M,k,stride,pads,group,dil,bias", [
    (2, 3, 9, 8, 4, 3, 1, [1, 1, 1, 1], 1, 1, True),
    (1, 4, 10, 10, 6, 3, 2, [0, 0, 0, 0], 2, 1, False),
    (3, 6, 7, 9, 6, 3, 1, [1, 1, 1, 1], 6, 1, True),       # depthwise
    (1, 8, 12, 11, 4, 1, 2, [0, 0, 0, 0], 1, 1, True),     # 1x1 stride 2
    (2, 4, 11, 13, 8, (3, 5), (2, 1), [1, 2, 0, 1], 4, 1, True),  # asymmetric pads, rect kernel
    (1, 3, 15, 15, 5, 3, 1, [2, 2, 2, 2], 1, 2, True),     # dilation 2
    (1, 3, 224, 224, 64, 7, 2, [3, 3, 3, 3], 1, 1, False),  # ResNet stem
])
def test_conv_matches_torch(N, C, H, W, M, k, stride, pads, group, dil, bias):
    kh, kw = (k, k) if isinstance(k, int) else k
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((M, C // group, kh, kw))
    b = rng.standard_normal(M) if bias else None
    got = run_node("Conv", [x, w, b] if bias else [x, w], strides=[sh, sw], pads=pads, group=group,
                   dilations=[dil, dil], kernel_shape=[kh, kw])
    xp = F.pad(t(x), (pads[1], pads[3], pads[0], pads[2]))  # F.pad: (left, right, top, bottom)
    want = F.conv2d(xp, t(w), None if b is None else t(b), stride=(sh, sw), dilation=dil, groups=group)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want.numpy(), **TOL)


@pytest.mark.parametrize("auto_pad,pads", [
    ("SAME_UPPER", (0, 1, 0, 1)),  # 8x8, k3 s2: out 4, total pad 1, the odd one at the end
    ("SAME_LOWER", (1, 0, 1, 0)),  # ... at the start
    ("VALID", (0, 0, 0, 0)),
])
def test_conv_auto_pad(auto_pad, pads):
    x, w = rng.standard_normal((1, 2, 8, 8)), rng.standard_normal((3, 2, 3, 3))
    got = run_node("Conv", [x, w], strides=[2, 2], auto_pad=auto_pad)
    want = F.conv2d(F.pad(t(x), (pads[2], pads[3], pads[0], pads[1])), t(w), stride=2)
    assert got.shape == ((1, 3, 4, 4) if auto_pad != "VALID" else (1, 3, 3, 3))
    np.testing.assert_allclose(got, want.numpy(), **TOL)


def test_conv_same_upper_stride1_keeps_size():
    x, w = rng.standard_normal((1, 1, 5, 6)), rng.standard_normal((1, 1, 4, 4))
    got = run_node("Conv", [x, w], auto_pad="SAME_UPPER")  # total 3: 1 before, 2 after
    want = F.conv2d(F.pad(t(x), (1, 2, 1, 2)), t(w))
    np.testing.assert_allclose(got, want.numpy(), **TOL)


@pytest.mark.parametrize("transA,transB,alpha,beta,c_shape", [
    (0, 0, 1.0, 1.0, (5,)),
    (1, 0, 0.5, 2.0, (3, 5)),
    (0, 1, 1.5, 0.25, (1, 5)),
    (1, 1, 1.0, 1.0, ()),
    (0, 0, 2.0, 1.0, None),
])
def test_gemm_matches_torch(transA, transB, alpha, beta, c_shape):
    a = rng.standard_normal((4, 3) if transA else (3, 4))
    b = rng.standard_normal((5, 4) if transB else (4, 5))
    c = None if c_shape is None else rng.standard_normal(c_shape)
    got = run_node("Gemm", [a, b] if c is None else [a, b, c], transA=transA, transB=transB, alpha=alpha, beta=beta)
    ta, tb = t(a.T if transA else a), t(b.T if transB else b)
    want = alpha * (ta @ tb) + (0 if c is None else beta * t(c))
    np.testing.assert_allclose(got, want.numpy(), **TOL)


def test_gemm_alpha_is_the_float32_attribute():
    # Attributes are float32 in the protobuf: alpha=0.1 arrives as float32(0.1).
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    got = run_node("Gemm", [a, b], alpha=0.1)
    np.testing.assert_allclose(got, float(np.float32(0.1)) * (a @ b), rtol=1e-15)


@pytest.mark.parametrize("k,stride,pads", [
    (3, 2, [1, 1, 1, 1]), (2, 2, [0, 0, 0, 0]), (3, 1, [0, 1, 2, 0]), ((2, 3), (1, 2), [1, 0, 0, 1]),
])
def test_max_pool_matches_torch(k, stride, pads):
    x = rng.standard_normal((2, 3, 9, 10)) - 3.0  # negative, so zero padding would win
    kh, kw = (k, k) if isinstance(k, int) else k
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    got = run_node("MaxPool", [x], kernel_shape=[kh, kw], strides=[sh, sw], pads=pads)
    xp = F.pad(t(x), (pads[1], pads[3], pads[0], pads[2]), value=-np.inf)
    np.testing.assert_array_equal(got, F.max_pool2d(xp, (kh, kw), (sh, sw)).numpy())


def test_max_pool_uint8_pads_with_minimum():
    x = np.array([[[[0, 3], [2, 1]]]], np.uint8)
    got = run_node("MaxPool", [x], kernel_shape=[2, 2], pads=[1, 1, 1, 1], strides=[1, 1])
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got[0, 0], [[0, 3, 3], [2, 3, 3], [2, 2, 1]])


@pytest.mark.parametrize("include", [0, 1])
@pytest.mark.parametrize("k,stride,pad", [(3, 2, 1), (3, 1, 1), (2, 2, 0), (5, 3, 2)])
def test_average_pool_matches_torch(include, k, stride, pad):
    x = rng.standard_normal((2, 3, 11, 10))
    got = run_node("AveragePool", [x], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4,
                   count_include_pad=include)
    want = F.avg_pool2d(t(x), k, stride, pad, count_include_pad=bool(include))
    np.testing.assert_allclose(got, want.numpy(), **TOL)


def test_average_pool_asymmetric_pads_exclude_by_hand():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # [[1,2,3],[4,5,6],[7,8,9]]
    got = run_node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 0, 0, 1])
    # padded: top row and right column; windows: {1,2} {3} / {4,5,7,8} {6,9}
    np.testing.assert_allclose(got[0, 0], [[1.5, 3.0], [6.0, 7.5]], rtol=0)
    got = run_node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 0, 0, 1], count_include_pad=1)
    np.testing.assert_allclose(got[0, 0], [[0.75, 0.75], [6.0, 3.75]], rtol=0)


def test_batch_norm_matches_torch():
    x = rng.standard_normal((3, 5, 4, 6))
    scale, b, mean = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal(5)
    var = rng.uniform(0.1, 2.0, 5)
    got = run_node("BatchNormalization", [x, scale, b, mean, var], epsilon=1e-3)
    eps = float(np.float32(1e-3))  # the attribute is a float32
    want = F.batch_norm(t(x), t(mean), t(var), t(scale), t(b), training=False, eps=eps)
    np.testing.assert_allclose(got, want.numpy(), **TOL)
    got = run_node("BatchNormalization", [x, scale, b, mean, var])  # default epsilon 1e-5
    want = F.batch_norm(t(x), t(mean), t(var), t(scale), t(b), training=False, eps=float(np.float32(1e-5)))
    np.testing.assert_allclose(got, want.numpy(), **TOL)


def test_global_average_pool_and_reduce_mean():
    x = rng.standard_normal((2, 3, 5, 7))
    np.testing.assert_allclose(run_node("GlobalAveragePool", [x]), F.adaptive_avg_pool2d(t(x), 1).numpy(), **TOL)
    got = run_node("ReduceMean", [x], axes=[2, -1], keepdims=0)
    np.testing.assert_allclose(got, t(x).mean(dim=(2, 3)).numpy(), **TOL)
    assert run_node("ReduceMean", [x], axes=[1]).shape == (2, 1, 5, 7)
    np.testing.assert_allclose(run_node("ReduceMean", [x], keepdims=0), x.mean(), **TOL)


# --- elementwise and shape ops ----------------------------------------------------------------------

def test_elementwise_broadcasting():
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 1))
    np.testing.assert_array_equal(run_node("Add", [a, b]), a + b)
    np.testing.assert_array_equal(run_node("Sub", [a, b]), a - b)
    np.testing.assert_array_equal(run_node("Mul", [a, b]), a * b)
    np.testing.assert_array_equal(run_node("Div", [a, b]), a / b)
    np.testing.assert_array_equal(run_node("Relu", [a]), np.maximum(a, 0))
    ints = run_node("Div", [np.array([7, -7, 7, -7], np.int64), np.array([2, 2, -2, -2], np.int64)])
    np.testing.assert_array_equal(ints, [3, -3, -3, 3])  # truncation toward zero
    assert ints.dtype == np.int64


def test_clip_inputs_and_attributes():
    x = np.array([-3.0, -1.0, 0.5, 2.0, 9.0])
    np.testing.assert_array_equal(run_node("Clip", [x, np.array(-1.5), np.array(2.5)]), [-1.5, -1.0, 0.5, 2.0, 2.5])
    np.testing.assert_array_equal(run_node("Clip", [x, None, np.array(1.0)]), [-3.0, -1.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(run_node("Clip", [x, np.array(0.0)]), [0.0, 0.0, 0.5, 2.0, 9.0])
    np.testing.assert_array_equal(run_node("Clip", [x, np.array(3.0), np.array(1.0)]), [1.0] * 5)  # min > max: max
    np.testing.assert_array_equal(run_node("Clip", [x], min=0.0, max=6.0), [0.0, 0.0, 0.5, 2.0, 6.0])


def test_shape_ops():
    x = rng.standard_normal((2, 3, 4, 5))
    assert run_node("Flatten", [x]).shape == (2, 60)
    assert run_node("Flatten", [x], axis=0).shape == (1, 120)
    assert run_node("Flatten", [x], axis=-1).shape == (24, 5)
    assert run_node("Flatten", [x], axis=4).shape == (120, 1)
    got = run_node("Reshape", [x, np.array([0, -1, 5], np.int64)])
    np.testing.assert_array_equal(got, x.reshape(2, 12, 5))
    assert run_node("Reshape", [np.zeros((0, 3)), np.array([0, 3], np.int64)], allowzero=1, opset=14).shape == (0, 3)
    np.testing.assert_array_equal(run_node("Transpose", [x], perm=[0, 2, 3, 1]), x.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(run_node("Transpose", [x]), x.transpose())
    np.testing.assert_array_equal(run_node("Concat", [x, x[:, :1]], axis=1), np.concatenate([x, x[:, :1]], 1))
    np.testing.assert_array_equal(run_node("Identity", [x]), x)
    y = x[:, :1, :, :1]
    assert run_node("Squeeze", [y, np.array([1, -1], np.int64)]).shape == (2, 4)
    assert run_node("Squeeze", [y], axes=[1], opset=11).shape == (2, 4, 1)
    assert run_node("Squeeze", [y]).shape == (2, 4)
    assert run_node("Unsqueeze", [x, np.array([0, -1], np.int64)]).shape == (1, 2, 3, 4, 5, 1)
    assert run_node("Unsqueeze", [x], axes=[1], opset=12).shape == (2, 1, 3, 4, 5)
    shape = run_node("Shape", [x])
    assert shape.dtype == np.int64 and shape.tolist() == [2, 3, 4, 5]
    assert run_node("Shape", [x], start=1, end=-1, opset=15).tolist() == [3, 4]
    np.testing.assert_array_equal(run_node("Gather", [x, np.array([-1, 0], np.int64)], axis=1), x[:, [2, 0]])
    assert run_node("Gather", [np.array([4, 5, 6], np.int64), np.array(1, np.int64)]).tolist() == 5
    np.testing.assert_array_equal(run_node("MatMul", [x, x.transpose(0, 1, 3, 2)]), x @ x.transpose(0, 1, 3, 2))


def test_constant_values():
    node = helper.make_node("Constant", [], ["out"], value=numpy_helper.from_array(np.array([0.1, 2.0], np.float32)))
    got = run(make_model([node]), {})["out"]
    assert got.dtype == np.float64 and got.tolist() == [float(np.float32(0.1)), 2.0]
    node = helper.make_node("Constant", [], ["out"], value_ints=[1, -1])
    got = run(make_model([node]), {})["out"]
    assert got.dtype == np.int64 and got.tolist() == [1, -1]


# --- QONNX Quant ------------------------------------------------------------------------------------

QUANT_TABLE_IN = [5.5, 2.5, 1.6, 1.1, 1.0, -1.0, -1.1, -1.6, -2.5, -5.5]
QUANT_TABLE = {  # qonnx docs/qonnx-custom-ops/intquant_v1.md, "Rounding modes"
    "ROUND": [6, 2, 2, 1, 1, -1, -1, -2, -2, -6],
    "CEIL": [6, 3, 2, 2, 1, -1, -1, -1, -2, -5],
    "FLOOR": [5, 2, 1, 1, 1, -1, -2, -2, -3, -6],
    "UP": [6, 3, 2, 2, 1, -1, -2, -2, -3, -6],
    "DOWN": [5, 2, 1, 1, 1, -1, -1, -1, -2, -5],
    "HALF_UP": [6, 3, 2, 1, 1, -1, -1, -2, -3, -6],
    "HALF_DOWN": [5, 2, 2, 1, 1, -1, -1, -2, -2, -5],
}


def quant(x, scale=1.0, zeropt=0.0, bits=8, domain=QONNX, op="Quant", **attrs):
    return run_node(op, [np.asarray(x, np.float64), np.asarray(scale, np.float64),
                         np.asarray(zeropt, np.float64), np.asarray(bits, np.float64)], domain=domain, **attrs)


@pytest.mark.parametrize("mode", sorted(QUANT_TABLE))
def test_quant_rounding_modes_docs_table(mode):
    got = quant(QUANT_TABLE_IN, rounding_mode=mode, signed=1, narrow=0)
    np.testing.assert_array_equal(got, QUANT_TABLE[mode])
    np.testing.assert_array_equal(quant(QUANT_TABLE_IN, rounding_mode=mode.lower()), QUANT_TABLE[mode])


def test_quant_rounding_aliases_and_exact_ties():
    np.testing.assert_array_equal(quant(QUANT_TABLE_IN, rounding_mode="HALF_EVEN"), QUANT_TABLE["ROUND"])
    np.testing.assert_array_equal(quant(QUANT_TABLE_IN, rounding_mode="ROUND_TO_ZERO"), QUANT_TABLE["DOWN"])
    np.testing.assert_array_equal(quant(QUANT_TABLE_IN), QUANT_TABLE["ROUND"])  # default ROUND
    below = np.nextafter(0.5, 0)  # 0.49999999999999994: not a tie, floor(x + 0.5) would give 1
    np.testing.assert_array_equal(quant([below, -below, 0.5, 0.5 + 2 ** -52], rounding_mode="HALF_UP"),
                                  [0, 0, 1, 1])
    np.testing.assert_array_equal(quant([below, 0.5, 1.5, 0.5 + 2 ** -52, -0.5], rounding_mode="HALF_DOWN"),
                                  [0, 0, 1, 1, 0])
    np.testing.assert_array_equal(quant([0.5, 1.5, 2.5, -0.5, -1.5, 126.5]), [0, 2, 2, 0, -2, 126])
    assert rounding_function("half_up")(np.array(2.5)) == 3.0


# (signed, narrow) -> {bits: (min_int, max_int)}, from the docs' min_int / max_int functions
QUANT_RANGES = {
    (0, 0): {1: (0, 1), 2: (0, 3), 3: (0, 7), 4: (0, 15), 5: (0, 31), 6: (0, 63), 7: (0, 127), 8: (0, 255)},
    (0, 1): {1: (0, 0), 2: (0, 2), 3: (0, 6), 4: (0, 14), 5: (0, 30), 6: (0, 62), 7: (0, 126), 8: (0, 254)},
    (1, 0): {2: (-2, 1), 3: (-4, 3), 4: (-8, 7), 5: (-16, 15), 6: (-32, 31), 7: (-64, 63), 8: (-128, 127)},
    (1, 1): {2: (-1, 1), 3: (-3, 3), 4: (-7, 7), 5: (-15, 15), 6: (-31, 31), 7: (-63, 63), 8: (-127, 127)},
}


@pytest.mark.parametrize("signed,narrow", sorted(QUANT_RANGES))
@pytest.mark.parametrize("bits", range(1, 9))
def test_quant_ranges(signed, narrow, bits):
    x = np.arange(-300, 301, dtype=np.float64)
    got = quant(x, bits=bits, signed=signed, narrow=narrow)
    if signed and bits == 1:  # bipolar, as qonnx's implementation (narrow does not matter)
        np.testing.assert_array_equal(got, np.where(x >= 0, 1.0, -1.0))
        return
    lo, hi = QUANT_RANGES[(signed, narrow)][bits]
    assert got.min() == lo and got.max() == hi
    np.testing.assert_array_equal(got, np.clip(x, lo, hi))
    # with a scale of 0.5 and a zero point of 1 (x / 0.5 + 1 on the integer grid), at the edges
    edge = np.array([(lo - 1) * 0.5 - 0.5, (lo - 1) * 0.5, (hi - 1) * 0.5, (hi - 1) * 0.5 + 0.5])
    np.testing.assert_array_equal(quant(edge, 0.5, 1.0, bits, signed=signed, narrow=narrow),
                                  [(lo - 1) * 0.5, (lo - 1) * 0.5, (hi - 1) * 0.5, (hi - 1) * 0.5])


def test_quant_scale_and_zero_point_by_hand():
    # 3-bit unsigned, scale 0.5, zero point 1: x/s + z = [-1, 0.4, 1, 1.5, 2.4, 5, 8.6]
    # clamp [0, 7] -> [0, 0.4, 1, 1.5, 2.4, 5, 7]; ROUND -> [0, 0, 1, 2, 2, 5, 7]; (q - 1) * 0.5
    x = [-1.0, -0.3, 0.0, 0.25, 0.7, 2.0, 3.8]
    np.testing.assert_array_equal(quant(x, 0.5, 1.0, 3, signed=0, narrow=0), [-0.5, -0.5, 0, 0.5, 0.5, 2.0, 3.0])
    # FLOOR: [0, 0, 1, 1, 2, 5, 7]; CEIL: [0, 1, 1, 2, 3, 5, 7]
    np.testing.assert_array_equal(quant(x, 0.5, 1.0, 3, signed=0, rounding_mode="FLOOR"),
                                  [-0.5, -0.5, 0, 0, 0.5, 2.0, 3.0])
    np.testing.assert_array_equal(quant(x, 0.5, 1.0, 3, signed=0, rounding_mode="CEIL"),
                                  [-0.5, 0, 0, 0.5, 1.0, 2.0, 3.0])
    # IntQuant is the same operator; so is the finn domain; the bit width may be an int
    np.testing.assert_array_equal(quant(x, 0.5, 1.0, 3, op="IntQuant", signed=0), quant(x, 0.5, 1.0, 3, signed=0))
    np.testing.assert_array_equal(quant(x, 0.5, 1.0, np.int32(3), domain="finn.custom_op.general", signed=0),
                                  [-0.5, -0.5, 0, 0.5, 0.5, 2.0, 3.0])


def test_quant_per_channel_scale_and_zero_point():
    x = np.array([[[[1.0, -3.0]], [[1.0, -3.0]], [[1.0, -3.0]]]])  # [1, 3, 1, 2]
    scale = np.array([0.5, 1.0, 2.0]).reshape(1, 3, 1, 1)
    zeropt = np.array([0.0, 1.0, -1.0]).reshape(1, 3, 1, 1)
    # 4-bit signed narrow [-7, 7]:
    # ch0: x/0.5 + 0 = [2, -6] -> [2, -6] -> out [1, -3]
    # ch1: x/1 + 1 = [2, -2] -> out (q - 1) * 1 = [1, -3]
    # ch2: x/2 - 1 = [-0.5, -2.5] -> ROUND (even) [-0, -2] -> (q + 1) * 2 = [2, -2]
    got = quant(x, scale, zeropt, 4, signed=1, narrow=1)
    np.testing.assert_array_equal(got[0, :, 0], [[1, -3], [1, -3], [2, -2]])
    # 2-bit signed [-2, 1] clamps: ch0 [2, -6] -> [1, -2] -> [0.5, -1]; ch1 [2, -2] -> [1, -2] -> [0, -3]
    # ch2 [-0.5, -2.5] -> [-0.5, -2] -> [0, -2] -> [2, -2]
    got = quant(x, scale, zeropt, 2, signed=1, narrow=0)
    np.testing.assert_array_equal(got[0, :, 0], [[0.5, -1], [0, -3], [2, -2]])


def test_quant_signed_one_bit_is_bipolar_with_zero_point():
    # qonnx: y = x / s + z; +1 where y >= 0 else -1; out = (q - z) * s
    np.testing.assert_array_equal(quant([-0.5, 0.0, 0.3], 2.0, 0.0, 1), [-2.0, 2.0, 2.0])
    np.testing.assert_array_equal(quant([-0.5, -0.6, 2.0], 1.0, 0.5, 1, narrow=1), [0.5, -1.5, 0.5])


def test_bipolar_quant():
    x = np.array([-1.5, -0.0, 0.0, 1e-30, -1e-30, 3.0])
    got = run_node("BipolarQuant", [x, np.array(0.25)], domain=QONNX)
    np.testing.assert_array_equal(got, [-0.25, 0.25, 0.25, 0.25, -0.25, 0.25])
    x = np.array([[-1.0, 1.0], [2.0, -2.0]])
    got = run_node("BipolarQuant", [x, np.array([[0.5], [3.0]])], domain="finn.custom_op.general")
    np.testing.assert_array_equal(got, [[-0.5, 0.5], [3.0, -3.0]])


def trunc_v1(x, scale, zeropt, in_bits, out_bits, **attrs):
    return run_node("Trunc", [np.asarray(x, np.float64), np.asarray(scale, np.float64), np.asarray(zeropt, np.float64),
                              np.asarray(in_bits, np.float64), np.asarray(out_bits, np.float64)], domain=QONNX, **attrs)


def test_trunc_v1_docs_example():
    # The docs' example: scale 1, zeropt 0, in 10 bits, out 4 bits -> divide by 2^6 = 64.
    x = [100.0, 37.0, -37.0, 96.0, 95.5, -64.0, 1023.0, 32.0, 31.6]
    # round(x) = [100, 37, -37, 96, 96, -64, 1023, 32, 32]; / 64 =
    # [1.5625, 0.578125, -0.578125, 1.5, 1.5, -1, 15.984375, 0.5, 0.5]
    np.testing.assert_array_equal(trunc_v1(x, 1.0, 0.0, 10, 4), [1, 0, -1, 1, 1, -1, 15, 0, 0])  # FLOOR default
    np.testing.assert_array_equal(trunc_v1(x, 1.0, 0.0, 10, 4, rounding_mode="ROUND"), [2, 1, -1, 2, 2, -1, 16, 0, 0])
    np.testing.assert_array_equal(trunc_v1(x, 1.0, 0.0, 10, 4, rounding_mode="ceil"), [2, 1, 0, 2, 2, -1, 16, 1, 1])
    # scale 0.5, zeropt 2, 8 -> 6 bits (divide by 4): x/0.5 + 2 = [6, 12.5 -> 12, 15], / 4 = [1.5, 3, 3.75]
    # FLOOR [1, 3, 3]; out = (q - 2) * 0.5 (the input scale, as trunc_v1.md writes it)
    np.testing.assert_array_equal(trunc_v1([2.0, 5.25, 6.5], 0.5, 2.0, 8, 6), [-0.5, 0.5, 0.5])


def test_trunc_v2_by_hand():
    def trunc_v2(x, zeropt, **attrs):
        args = [np.asarray(x, np.float64), np.array(0.25), np.array(zeropt), np.array(8.0),  # in_bitwidth
                np.array(1.0), np.array(4.0)]  # out_scale, out_bitwidth
        return run_node("Trunc", args, domain=QONNX, extra_opsets={QONNX: 2}, **attrs)
    # scale 0.25 -> out_scale 1.0: t = 4. x / 0.25 = [13, -13, 6, 40, -40, 3.5 -> round 4, 2]
    # / 4 = [3.25, -3.25, 1.5, 10, -10, 1, 0.5]; clamp to 4-bit signed [-8, 7]; FLOOR
    x = [3.25, -3.25, 1.5, 10.0, -10.0, 0.875, 0.5]
    np.testing.assert_array_equal(trunc_v2(x, 0.0), [3, -4, 1, 7, -8, 1, 0])
    np.testing.assert_array_equal(trunc_v2(x, 0.0, rounding_mode="ROUND"), [3, -3, 2, 7, -8, 1, 0])
    np.testing.assert_array_equal(trunc_v2(x, 0.0, narrow=1), [3, -4, 1, 7, -7, 1, 0])
    # unsigned [0, 15], zeropt 4 (output zero point 4 / t = 1): (x/0.25 + 4) / 4 =
    # [4.25, -2.25 -> 0, 2.5, 11, -9 -> 0, 2, 1.5]; FLOOR [4, 0, 2, 11, 0, 2, 1]; out = q - 1
    np.testing.assert_array_equal(trunc_v2(x, 4.0, signed=0), [3, -1, 1, 10, -1, 1, 0])


def test_trunc_version_checks():
    with pytest.raises(OnnxReferenceError, match=r"node 'n' \(Trunc\): 5 inputs is Trunc version 1"):
        run_node("Trunc", [np.zeros(2), np.array(1.0), np.array(0.0), np.array(8.0), np.array(4.0)],
                 domain=QONNX, extra_opsets={QONNX: 2})
    with pytest.raises(OnnxReferenceError, match="attribute 'signed'"):  # not a version-1 attribute
        run_node("Trunc", [np.zeros(2), np.array(1.0), np.array(0.0), np.array(8.0), np.array(4.0)],
                 domain=QONNX, signed=1)
    with pytest.raises(OnnxReferenceError, match="7 inputs"):
        run_node("Trunc", [np.zeros(2)] + [np.array(1.0)] * 6, domain=QONNX)


def test_quant_errors():
    with pytest.raises(OnnxReferenceError, match=r"node 'n' \(Quant\): attribute 'rounding_mode': 'STOCHASTIC'"):
        quant([1.0], rounding_mode="STOCHASTIC")
    with pytest.raises(OnnxReferenceError, match="bitwidth must be a positive integer, is 2.5"):
        quant([1.0], bits=2.5)
    with pytest.raises(OnnxReferenceError, match="bitwidth must be a positive integer"):
        quant([1.0], bits=0)
    with pytest.raises(OnnxReferenceError, match="does not broadcast to X"):
        quant([1.0, 2.0], scale=[1.0, 2.0, 3.0])
    with pytest.raises(OnnxReferenceError, match="does not broadcast to X"):
        quant([1.0, 2.0], scale=[[1.0], [2.0]])  # would enlarge X
    with pytest.raises(OnnxReferenceError, match="attribute 'narrow': 2"):
        quant([1.0], narrow=2)


# --- ONNX quantization ops --------------------------------------------------------------------------

def test_quantize_linear_ties_and_saturation():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 300.0, -300.0, 1.4999, 127.5, -128.5])
    got = run_node("QuantizeLinear", [x, np.array(1.0), np.array(128, np.uint8)])
    # rint: [0, 2, 2, -0, -2, 300, -300, 1, 128, -128] + 128, saturated to [0, 255]
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, [128, 130, 130, 128, 126, 255, 0, 129, 255, 0])
    got = run_node("QuantizeLinear", [x, np.array(1.0), np.array(0, np.int8)])
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, [0, 2, 2, 0, -2, 127, -128, 1, 127, -128])
    got = run_node("QuantizeLinear", [x, np.array(0.5)])  # no zero point: uint8, 0
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, [1, 3, 5, 0, 0, 255, 0, 3, 255, 0])
    got = run_node("QuantizeLinear", [np.array([[0.3, 0.25, -0.75]], np.float32), np.array(0.5, np.float32),
                                      np.array(-1, np.int8)], opset=11)
    # float32 0.3 / 0.5 = 0.6 -> 1; 0.5 -> 0 (even); -1.5 -> -2; then -1
    np.testing.assert_array_equal(got, [[0, -1, -3]])


def test_quantize_dequantize_per_axis():
    x = np.array([[1.0, 1.0, 1.0], [-3.0, 3.0, 5.0]])
    scale = np.array([1.0, 0.5, 2.0])
    zp = np.array([0, 1, -1], np.int8)
    got = run_node("QuantizeLinear", [x, scale, zp])  # axis 1 (default)
    # col0: [1, -3] + 0; col1: [2, 6] + 1 = [3, 7]; col2: [0.5 -> 0, 2.5 -> 2] - 1 = [-1, 1]
    np.testing.assert_array_equal(got, [[1, 3, -1], [-3, 7, 1]])
    back = run_node("DequantizeLinear", [got, scale, zp])
    np.testing.assert_array_equal(back, [[1.0, 1.0, 0.0], [-3.0, 3.0, 4.0]])
    got = run_node("QuantizeLinear", [x, np.array([2.0, 1.0]), np.array([10, 20], np.uint8)], axis=0)
    # row0: [0.5 -> 0] + 10; row1: [-3, 3, 5] + 20
    np.testing.assert_array_equal(got, [[10, 10, 10], [17, 23, 25]])
    got = run_node("DequantizeLinear", [np.array([0, 128, 255], np.uint8), np.array(0.5), np.array(128, np.uint8)])
    np.testing.assert_array_equal(got, [-64.0, 0.0, 63.5])
    got = run_node("DequantizeLinear", [np.array([-5, 7], np.int32), np.array(0.25)])
    np.testing.assert_array_equal(got, [-1.25, 1.75])
    with pytest.raises(OnnxReferenceError,
                       match=r"node 'n' \(QuantizeLinear\): y_scale must be a scalar before opset 13"):
        run_node("QuantizeLinear", [x, scale, zp], opset=12)
    with pytest.raises(OnnxReferenceError, match="y_scale has 2 values for axis 1 of size 3"):
        run_node("QuantizeLinear", [x, np.array([1.0, 2.0]), np.array([0, 0], np.int8)])


QX = np.array([[[[10, 20, 30], [40, 50, 60], [70, 80, 90]]]], np.uint8)
QW = np.array([[[[1, 2], [3, 4]]]], np.int8)


def qconv(bias, y_scale, y_zp, x=QX, w=QW, w_scale=0.25, w_zp=0, **attrs):
    args = [x, np.array(0.5, np.float32), np.array(10, np.uint8), w, np.array(w_scale, np.float32),
            np.array(w_zp, np.int8), np.array(y_scale, np.float32), y_zp]
    return run_node("QLinearConv", args + ([] if bias is None else [np.array(bias, np.int32)]), **attrs)


def test_qlinear_conv_by_hand():
    # x - 10 = [[0,10,20],[30,40,50],[60,70,80]], w = [[1,2],[3,4]]:
    # acc = [[0+20+90+160, 10+40+120+200], [30+80+180+280, 40+100+210+320]] = [[270, 370], [570, 670]]
    # y_scale 0.5: multiplier 0.5 * 0.25 / 0.5 = 0.25: [67.5, 92.5, 142.5, 167.5] -> ties to even
    got = qconv(None, 0.5, np.array(0, np.uint8))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got[0, 0], [[68, 92], [142, 168]])
    got = qconv([2], 0.5, np.array(0, np.uint8))  # bias 2 (at scale 0.125): [68, 93, 143, 168]
    np.testing.assert_array_equal(got[0, 0], [[68, 93], [143, 168]])
    # y_scale 0.25, bias -1: 0.5 * [269, 369, 569, 669] = [134.5, 184.5, 284.5, 334.5] -> [134, 184, 284, 334]
    got = qconv([-1], 0.25, np.array(0, np.uint8))  # saturating at 255
    np.testing.assert_array_equal(got[0, 0], [[134, 184], [255, 255]])
    got = qconv(None, 1.0, np.array(0, np.uint8))  # 0.125 * acc = [33.75, 46.25, 71.25, 83.75]
    np.testing.assert_array_equal(got[0, 0], [[34, 46], [71, 84]])
    got = qconv([-1], 0.25, np.array(100, np.uint8))  # + 100, saturating at 255
    np.testing.assert_array_equal(got[0, 0], [[234, 255], [255, 255]])
    got = qconv([-1], 0.25, np.array(-100, np.int8))  # int8 output: -100 + [134, ...] -> [34, 84, 127, 127]
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got[0, 0], [[34, 84], [127, 127]])
    # padding 1 pads x with its zero point (a real 0): the top-left output is x[0,0]*4 = 0,
    # the one right of it (0*3 + 10*4) = 40 -> 20
    got = qconv(None, 0.25, np.array(0, np.uint8), pads=[1, 1, 1, 1])
    assert got.shape == (1, 1, 4, 4)
    assert got[0, 0, 0, 0] == 0 and got[0, 0, 0, 1] == 20
    # w zero point 1: w - 1 = [[0,1],[2,3]]; acc[0,0] = 10 + 60 + 120 = 190 -> 0.5 * 190 = 95
    assert qconv(None, 0.25, np.array(0, np.uint8), w_zp=1)[0, 0, 0, 0] == 95


def test_qlinear_conv_per_channel_matches_dequantized_torch():
    x = rng.integers(0, 256, (2, 4, 7, 6), dtype=np.uint8)
    w = rng.integers(-127, 128, (6, 2, 3, 3), dtype=np.int8)
    xs, xzp = np.float32(0.02), np.uint8(131)
    ws = rng.uniform(0.001, 0.01, 6).astype(np.float32)
    wzp = np.zeros(6, np.int8)
    ys, yzp = np.float32(0.05), np.uint8(120)
    b = rng.integers(-5000, 5000, 6).astype(np.int32)
    got = run_node("QLinearConv", [x, np.array(xs), np.array(xzp), w, ws, wzp, np.array(ys), np.array(yzp), b],
                   group=2, strides=[2, 1], pads=[1, 0, 1, 2])
    xd = t((x.astype(np.float64) - float(xzp)))
    wd = t(w.astype(np.float64))
    acc = F.conv2d(F.pad(xd, (0, 2, 1, 1)), wd, t(b.astype(np.float64)), stride=(2, 1), groups=2).numpy()
    mult = (float(xs) * ws.astype(np.float64) / float(ys)).reshape(1, -1, 1, 1)
    want = np.clip(np.rint(acc * mult) + 120, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(got)) > 50  # not saturated into a trivial answer


def test_qlinear_matmul_by_hand():
    a = np.array([[1, 2], [3, 4]], np.uint8)
    b = np.array([[5, 6], [7, 8]], np.uint8)
    # a - 1 = [[0,1],[2,3]], b - 5 = [[0,1],[2,3]]; product [[2, 3], [6, 11]]; * (0.5 * 1.0 / 2.0) = 0.25
    # [[0.5, 0.75], [1.5, 2.75]] -> rint [[0, 1], [2, 3]] + 10
    args = [a, np.array(0.5), np.array(1, np.uint8), b, np.array(1.0), np.array(5, np.uint8), np.array(2.0),
            np.array(10, np.uint8)]
    np.testing.assert_array_equal(run_node("QLinearMatMul", args), [[10, 11], [12, 13]])
    # per row of a (scales [0.5, 1.0]) and per column of b (zero points [5, 4]):
    # b - zp = [[0, 2], [2, 4]]; (a - 1) @ = [[2, 4], [6, 16]]; scale rows [0.5, 1] * 1.0 / 2.0:
    # [[0.5, 1.0], [3.0, 8.0]] -> [[0, 1], [3, 8]] + 10
    args[1], args[5] = np.array([0.5, 1.0]), np.array([5, 4], np.uint8)
    args[2] = np.array([1, 1], np.uint8)
    args[4] = np.array([1.0, 1.0])
    np.testing.assert_array_equal(run_node("QLinearMatMul", args), [[10, 11], [13, 18]])


def test_ms_qlinear_add_mul_global_average_pool():
    A = np.array([10, 200, 0], np.uint8)
    B = np.array([30, 100, 255], np.uint8)
    # add: (0.5 * (A - 10) + 0.25 * (B - 20)) / 1.0 + 5 = [2.5 -> 2, 115, 53.75 -> 54] + 5
    args = [A, np.array(0.5), np.array(10, np.uint8), B, np.array(0.25), np.array(20, np.uint8), np.array(1.0),
            np.array(5, np.uint8)]
    got = run_node("QLinearAdd", args, domain="com.microsoft")
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, [7, 120, 59])
    # mul: (A - 10) * (B - 20) * (0.5 * 0.25) / 1.0 + 5 = [0, 190 * 80 / 8 -> 255, -10 * 235 / 8 = -293.75 -> 0]
    np.testing.assert_array_equal(run_node("QLinearMul", args, domain="com.microsoft"), [5, 255, 0])
    # without zero points (default 0): add = 0.5 * A + 0.25 * B = [12.5 -> 12, 125, 63.75 -> 64]
    args2 = [A, np.array(0.5), None, B, np.array(0.25), None, np.array(1.0)]
    np.testing.assert_array_equal(run_node("QLinearAdd", args2, domain="com.microsoft"), [12, 125, 64])
    X = np.array([[[[1, 2], [3, 5]], [[0, 0], [0, 9]]]], np.int8)  # [1, 2, 2, 2]
    # (X - 1) * 0.5 means: ch0 [0, 0.5, 1, 2] -> 0.875; ch1 [-0.5, -0.5, -0.5, 4] -> 0.625
    # / 0.25 = [3.5 -> 4, 2.5 -> 2] + (-3)
    got = run_node("QLinearGlobalAveragePool", [X, np.array(0.5), np.array(1, np.int8), np.array(0.25),
                                                np.array(-3, np.int8)], domain="com.microsoft")
    assert got.dtype == np.int8 and got.shape == (1, 2, 1, 1)
    np.testing.assert_array_equal(got.reshape(-1), [1, -1])
    got = run_node("QLinearGlobalAveragePool", [X.transpose(0, 2, 3, 1), np.array(0.5), np.array(1, np.int8),
                                                np.array(0.25), np.array(-3, np.int8)],
                   domain="com.microsoft", channels_last=1)
    assert got.shape == (1, 1, 1, 2)
    np.testing.assert_array_equal(got.reshape(-1), [1, -1])


# --- graphs and errors ------------------------------------------------------------------------------

def test_graph_intermediates_inputs_and_dtypes():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu1"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["out"], name="flat"),
    ]
    w = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
    model = make_model(nodes, inputs=["x"], inits={"w": w})
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    res = run(model, {"x": x})
    assert list(res) == ["out"] and res["out"].shape == (2, 3) and res["out"].dtype == np.float64
    want = F.relu(F.conv2d(t(x.astype(np.float64)), t(w.astype(np.float64)), padding=1)).mean(dim=(2, 3))
    np.testing.assert_allclose(res["out"], want.numpy(), **TOL)
    res = run(model, {"x": x}, outputs=["c", "r"])
    assert list(res) == ["c", "r"]
    np.testing.assert_array_equal(res["r"], np.maximum(res["c"], 0))
    # a given input overrides an initializer of the same name (graph inputs may have defaults)
    model.graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, None))
    w2 = np.ones((3, 1, 3, 3))
    c = run(model, {"x": x, "w": w2}, ["c"])["c"]
    np.testing.assert_allclose(c[0, 0, 1, 1], x[0, 0, :3, :3].astype(np.float64).sum(), rtol=1e-12)


def test_errors_name_the_node():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(OnnxReferenceError) as e:
        run_node("MaxPool", [x], name="pool1", kernel_shape=[2, 2], dilations=[2, 2])
    assert str(e.value) == "node 'pool1' (MaxPool): attribute 'dilations': [2, 2] is not supported"
    with pytest.raises(OnnxReferenceError,
                       match=r"^node 'pool1' \(MaxPool\): attribute 'ceil_mode': 1 is not supported$"):
        run_node("MaxPool", [x], name="pool1", kernel_shape=[2, 2], ceil_mode=1)
    with pytest.raises(OnnxReferenceError,
                       match=r"^node 'sm' \(Softmax\): operator Softmax \(domain ''\) is not supported$"):
        run_node("Softmax", [x], name="sm")
    with pytest.raises(OnnxReferenceError, match=r"operator Quant \(domain 'my.domain'\)"):
        run_node("Quant", [x], domain="my.domain")
    with pytest.raises(OnnxReferenceError, match=r"^node 'c' \(Conv\): attribute 'fancy': 3 is not supported$"):
        run_node("Conv", [x, np.ones((1, 1, 1, 1))], name="c", fancy=3)
    with pytest.raises(OnnxReferenceError, match=r"node 'c' \(Conv\): attribute 'auto_pad': 'SAME'"):
        run_node("Conv", [x, np.ones((1, 1, 1, 1))], name="c", auto_pad="SAME")
    with pytest.raises(OnnxReferenceError, match=r"node 'c' \(Conv\): attribute 'kernel_shape' \[3, 3\] differs"):
        run_node("Conv", [x, np.ones((1, 1, 1, 1))], name="c", kernel_shape=[3, 3])
    with pytest.raises(OnnxReferenceError, match=r"node 'c' \(Conv\): input channels 1, weight \[1, 2, 1, 1\]"):
        run_node("Conv", [x, np.ones((1, 2, 1, 1))], name="c")
    with pytest.raises(OnnxReferenceError, match=r"node 'mp' \(MaxPool\): output 'Indices' is not supported"):
        run_node("MaxPool", [x], name="mp", n_out=2, kernel_shape=[2, 2])
    with pytest.raises(OnnxReferenceError, match=r"node 'a' \(Add\): operands of different element types"):
        run_node("Add", [x, np.ones(1, np.int64)], name="a")
    with pytest.raises(OnnxReferenceError, match=r"node 'a' \(Add\): operands could not be broadcast"):
        run_node("Add", [np.ones(3), np.ones(2)], name="a")  # numpy's own message, with the node
    with pytest.raises(OnnxReferenceError,
                       match=r"node 'sq' \(Squeeze\): attribute 'axes': opset 13 takes axes as an input"):
        run_node("Squeeze", [x], name="sq", axes=[0])
    with pytest.raises(OnnxReferenceError, match=r"node 'bn' \(BatchNormalization\): attribute 'training_mode': 1"):
        run_node("BatchNormalization", [x] + [np.ones(1)] * 4, name="bn", training_mode=1, opset=15)


def test_graph_level_errors():
    node = helper.make_node("Relu", ["x"], ["out"])  # unnamed: labelled by its index
    with pytest.raises(OnnxReferenceError, match=r"^node #0 \(Relu\): graph input 'x' was not given$"):
        run(make_model([node], inputs=["x"]), {})
    node = helper.make_node("Relu", ["nowhere"], ["out"], name="r")
    with pytest.raises(OnnxReferenceError, match=r"^node 'r' \(Relu\): input 'nowhere' is missing"):
        run(make_model([node], inputs=["x"]), {"x": np.zeros(1)})
    with pytest.raises(OnnxReferenceError, match="'y' is not a graph input"):
        run(make_model([helper.make_node("Relu", ["x"], ["out"])], inputs=["x"]), {"y": np.zeros(1)})
    with pytest.raises(OnnxReferenceError, match="ai.onnx opset 9 is not supported"):
        run(make_model([helper.make_node("Relu", ["x"], ["out"])], inputs=["x"], opset=9), {"x": np.zeros(1)})
    with pytest.raises(OnnxReferenceError, match="value 'zz' is not computed"):
        run(make_model([helper.make_node("Relu", ["x"], ["out"])], inputs=["x"]), {"x": np.zeros(1)}, ["zz"])


def test_torch_exported_model():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 8, 3, stride=2, groups=4, bias=False), torch.nn.ReLU6(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10)).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    f = io.BytesIO()
    torch.onnx.export(net, torch.zeros(1, 1, 28, 28), f, opset_version=13, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}})
    model = onnx.load_from_string(f.getvalue())
    x = rng.standard_normal((5, 1, 28, 28)).astype(np.float32)
    got = run(model, {"x": x})["y"]
    with torch.no_grad():
        want = net.double()(t(x.astype(np.float64))).numpy()
    # the exporter folds BatchNormalization into the conv weights in float32: float32 agreement
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # torch's AvgPool2d exports as Pad + AveragePool; Pad is outside the subset, named in the error
    f = io.BytesIO()
    torch.onnx.export(torch.nn.AvgPool2d(2).eval(), torch.zeros(1, 1, 4, 4), f, opset_version=13)
    with pytest.raises(OnnxReferenceError, match=r"\(Pad\): operator Pad \(domain ''\) is not supported"):
        run(onnx.load_from_string(f.getvalue()), {"onnx::Pad_0": np.zeros((1, 1, 4, 4))})


# --- speed: ResNet-18 at 224x224 and 1000 small images ----------------------------------------------

def _resnet18(seed=0):
    """A ResNet-18 ONNX graph (Conv, BN, Relu, Add, MaxPool, GAP, Flatten, Gemm) with random
    weights, and the same network as a torch function."""
    g = np.random.default_rng(seed)
    nodes, inits, ops = [], {}, []

    def conv_bn(x, cin, cout, k, s, relu, tag):
        w = g.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))
        bn = [g.uniform(0.5, 1.5, cout), g.uniform(-0.1, 0.1, cout),  # gamma, beta
              g.uniform(-0.1, 0.1, cout), g.uniform(0.5, 1.5, cout)]  # mean, var
        names = [f"{tag}_{p}" for p in ("w", "g", "b", "m", "v")]
        inits.update(zip(names, [w] + bn))
        nodes.append(helper.make_node("Conv", [x, names[0]], [f"{tag}_c"], name=f"{tag}_conv", strides=[s, s],
                                      pads=[k // 2] * 4, kernel_shape=[k, k]))
        nodes.append(helper.make_node("BatchNormalization", [f"{tag}_c"] + names[1:], [f"{tag}_bn"], name=f"{tag}_bn"))
        out = f"{tag}_bn"
        if relu:
            nodes.append(helper.make_node("Relu", [out], [f"{tag}_r"], name=f"{tag}_relu"))
            out = f"{tag}_r"
        ops.append((tag, s, k // 2, relu))
        return out

    x = conv_bn("x", 3, 64, 7, 2, True, "stem")
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], name="pool", kernel_shape=[3, 3], strides=[2, 2],
                                  pads=[1, 1, 1, 1]))
    x, cin = "pool", 64
    for stage, cout in enumerate([64, 128, 256, 512]):
        for block in range(2):
            s = 2 if stage > 0 and block == 0 else 1
            tag = f"s{stage}b{block}"
            y = conv_bn(x, cin, cout, 3, s, True, tag + "a")
            y = conv_bn(y, cout, cout, 3, 1, False, tag + "b")
            skip = conv_bn(x, cin, cout, 1, s, False, tag + "d") if (s != 1 or cin != cout) else x
            nodes.append(helper.make_node("Add", [y, skip], [tag + "_add"], name=tag + "_add"))
            nodes.append(helper.make_node("Relu", [tag + "_add"], [tag + "_out"], name=tag + "_relu"))
            x, cin = tag + "_out", cout
    inits["fc_w"], inits["fc_b"] = g.standard_normal((1000, 512)) * 0.05, g.standard_normal(1000) * 0.01
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
              helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["out"], name="fc", transB=1)]
    model = make_model(nodes, inputs=["x"], inits=inits)

    def torch_forward(xt):
        P = {k: t(v) for k, v in inits.items()}

        def cb(v, tag):
            _, s, p, relu = next(o for o in ops if o[0] == tag)
            v = F.conv2d(v, P[tag + "_w"], stride=s, padding=p)
            v = F.batch_norm(v, P[tag + "_m"], P[tag + "_v"], P[tag + "_g"], P[tag + "_b"], False,
                             eps=float(np.float32(1e-5)))
            return F.relu(v) if relu else v
        v = F.max_pool2d(cb(xt, "stem"), 3, 2, 1)
        cin = 64
        for stage, cout in enumerate([64, 128, 256, 512]):
            for block in range(2):
                tag = f"s{stage}b{block}"
                s = 2 if stage > 0 and block == 0 else 1
                y = cb(cb(v, tag + "a"), tag + "b")
                v = F.relu(y + (cb(v, tag + "d") if (s != 1 or cin != cout) else v))
                cin = cout
        return F.linear(v.mean(dim=(2, 3)), P["fc_w"], P["fc_b"])
    return model, torch_forward


def test_resnet18_224_matches_torch_and_is_fast():
    model, torch_forward = _resnet18()
    x = rng.standard_normal((1, 3, 224, 224))
    start = time.perf_counter()
    got = run(model, {"x": x})["out"]
    seconds = time.perf_counter() - start
    with torch.no_grad():
        want = torch_forward(t(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
    assert seconds < 20, f"ResNet-18 took {seconds:.1f} s"  # a few seconds; generous for loaded machines


def test_small_net_1000_images_is_fast():
    w1, w2 = rng.standard_normal((16, 1, 3, 3)), rng.standard_normal((32, 16, 3, 3)) * 0.1
    w3, fc = rng.standard_normal((32, 1, 3, 3)), rng.standard_normal((10, 32))
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Conv", ["b", "w2"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Conv", ["c", "w3"], ["d"], pads=[1, 1, 1, 1], group=32),
        helper.make_node("MaxPool", ["d"], ["e"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["e"], ["f"]),
        helper.make_node("Flatten", ["f"], ["g"]),
        helper.make_node("Gemm", ["g", "fc"], ["out"], transB=1),
    ]
    model = make_model(nodes, inputs=["x"], inits={"w1": w1, "w2": w2, "w3": w3, "fc": fc})
    x = rng.standard_normal((1000, 1, 28, 28))
    start = time.perf_counter()
    got = run(model, {"x": x})["out"]
    seconds = time.perf_counter() - start
    v = F.conv2d(F.relu(F.conv2d(t(x), t(w1), padding=1)), t(w2), padding=1, stride=2)
    v = F.max_pool2d(F.conv2d(v, t(w3), padding=1, groups=32), 2)
    want = (v.mean(dim=(2, 3)) @ t(fc).T).numpy()
    np.testing.assert_allclose(got, want, **TOL)
    assert seconds < 20, f"1000 images took {seconds:.1f} s"
