import itertools

import numpy as np
import pytest

import reference as ref
from halibit import simulator as sim
from halibit.images import random_images
from tiny import build_tiny


@pytest.mark.parametrize("groups,stride,pad,kernel", list(itertools.product((1, 2, 4), (1, 2), (0, 1), (1, 3))))
def test_conv_against_loops(groups, stride, pad, kernel):
    rng = np.random.default_rng(groups * 100 + stride * 10 + pad * 3 + kernel)
    N, H, W, C, Cout = 2, 5, 6, 8, 8
    x = rng.integers(0, 256, (N, H, W, C)).astype(np.uint8)
    w = rng.integers(-128, 128, (Cout, kernel, kernel, C // groups)).astype(np.int8)
    pad_values = rng.integers(1, 256, C).tolist()
    got = sim.conv_acc(x, w, stride, pad, groups, pad_values)
    want = np.array(ref.conv(x.tolist(), w.tolist(), stride, pad, groups, pad_values))
    assert got.dtype == np.int32
    assert got.shape == want.shape == (N, (H + 2 * pad - kernel) // stride + 1, (W + 2 * pad - kernel) // stride + 1, Cout)
    np.testing.assert_array_equal(got, want)
    if pad:  # the pad values really contribute
        assert not np.array_equal(got, sim.conv_acc(x, w, stride, pad, groups, None))


def test_conv_stem_shape():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (1, 9, 8, 3)).astype(np.uint8)
    w = rng.integers(-128, 128, (4, 7, 7, 3)).astype(np.int8)
    got = sim.conv_acc(x, w, 2, 3, 1, [124, 116, 104])
    np.testing.assert_array_equal(got, ref.conv(x.tolist(), w.tolist(), 2, 3, 1, [124, 116, 104]))
    assert got.shape == (1, 5, 4, 4)


def test_conv_int32_overflow_raises():
    x = np.full((1, 1, 1, 70000), 255, np.uint8)
    w = np.full((1, 1, 1, 70000), 127, np.int8)  # 70000 * 255 * 127 = 2.27e9 > 2^31 - 1
    with pytest.raises(sim.SimulationError, match="int32"):
        sim.conv_acc(x, w)
    w[..., 66000:] = 0  # 66000 * 255 * 127 = 2137410000 fits
    assert sim.conv_acc(x, w)[0, 0, 0, 0] == 66000 * 255 * 127


def test_requantize_rounding():
    acc = np.array([[[[-9, -6, -5, -2, -1, 0, 1, 2, 5, 6, 9, 1000]]]], np.int32).reshape(1, 1, 12, 1)
    # shift 0: clamp(acc * 2 + 3)
    np.testing.assert_array_equal(sim.requantize(acc, [2], [3], 0, 4).ravel(),
                                  [0, 0, 0, 0, 1, 3, 5, 7, 13, 15, 15, 15])
    # shift 2, M 1, B 8: (acc + 8 + 2) >> 2, halves round up; negative sums clamp to 0
    np.testing.assert_array_equal(sim.requantize(acc, [1], [8], 2, 8).ravel(),
                                  [0, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4, 252])
    # negative multiplier, negative bias
    got = sim.requantize(acc, [-3], [-4], 1, 3).ravel()
    want = [min(max((int(a) * -3 - 4 + 1) >> 1, 0), 7) for a in acc.ravel()]
    assert got.tolist() == want == [7, 7, 6, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert sim.requantize(acc, [1], [0], 0, 1).dtype == np.uint8


def test_requantize_per_channel_and_random_against_python():
    rng = np.random.default_rng(4)
    acc = rng.integers(-(1 << 31), 1 << 31, (2, 3, 3, 5)).astype(np.int32)
    M = rng.integers(-(1 << 31) + 1, 1 << 31, 5).astype(np.int32)
    B = rng.integers(-(1 << 61), 1 << 61, 5)
    for S, bits in ((0, 8), (30, 2), (40, 8), (62, 1), (62, 8)):
        got = sim.requantize(acc, M, B, S, bits)
        assert got.tolist() == ref.requantize(acc.tolist(), M.tolist(), B.tolist(), S, bits)


def test_requantize_int64_overflow_raises():
    acc = np.array([(1 << 31) - 1], np.int32).reshape(1, 1, 1, 1)
    with pytest.raises(sim.SimulationError, match="int64"):
        sim.requantize(acc, [(1 << 31) - 1], [(1 << 62) + (1 << 33)], 0, 8)  # (2^31-1)^2 + B > 2^63 - 1
    assert sim.requantize(acc, [(1 << 31) - 1], [1 << 62], 0, 8).item() == 255  # 2^63 - 2^32 + 1 fits


def test_add_against_python():
    rng = np.random.default_rng(5)
    x0 = rng.integers(-(1 << 20), 1 << 20, (2, 4, 3, 6)).astype(np.int32)
    x1 = rng.integers(0, 16, (2, 4, 3, 6)).astype(np.uint8)
    M0 = rng.integers(-(1 << 12), 1 << 12, 6).astype(np.int32)
    M1 = rng.integers(0, 1 << 20, 6).astype(np.int32)
    B = rng.integers(-(1 << 30), 1 << 30, 6)
    got = sim.add(x0, x1, [M0, M1], B, 22, 3)
    want = ref.add(x0.tolist(), x1.tolist(), M0.tolist(), M1.tolist(), B.tolist(), 22, 3)
    assert got.tolist() == want
    assert 1 < len(np.unique(got)) and got.dtype == np.uint8


def test_channel_shuffle_permutation():
    x = np.arange(6, dtype=np.uint8).reshape(1, 1, 1, 6)
    assert sim.channel_shuffle(x, 2).ravel().tolist() == [0, 3, 1, 4, 2, 5]  # out k*G+g = in g*K+k
    assert sim.channel_shuffle(x, 3).ravel().tolist() == [0, 2, 4, 1, 3, 5]
    assert sim.channel_shuffle(x, 1).ravel().tolist() == list(range(6))
    y = np.random.default_rng(6).integers(0, 4, (2, 3, 2, 12)).astype(np.uint8)
    np.testing.assert_array_equal(sim.channel_shuffle(sim.channel_shuffle(y, 3), 4), y)  # inverse of G is K
    assert sim.channel_shuffle(y, 4).tolist() == ref.channel_shuffle(y.tolist(), 4)


@pytest.mark.parametrize("H,W,k,stride,pad", [(4, 4, 3, 2, 1), (5, 5, 3, 2, 1), (7, 6, 3, 1, 1), (5, 4, 2, 2, 1),
                                               (6, 6, 2, 2, 0), (3, 3, 3, 1, 2)])
def test_max_pool_borders(H, W, k, stride, pad):
    rng = np.random.default_rng(H * W + k)
    x = rng.integers(0, 256, (2, H, W, 3)).astype(np.uint8)
    got = sim.max_pool(x, [k, k], stride, pad)
    assert got.dtype == np.uint8
    assert got.tolist() == ref.max_pool(x.tolist(), k, k, stride, pad)


def test_max_pool_corner_window():
    x = np.zeros((1, 4, 4, 1), np.uint8)
    x[0, 0, 0, 0] = 9
    x[0, 3, 3, 0] = 7
    got = sim.max_pool(x, [3, 3], 2, 1)[0, :, :, 0]
    assert got.tolist() == [[9, 0], [0, 7]]  # window (0,0) covers rows/cols -1..1; (1,1) covers 1..3


def test_global_avg_pool():
    rng = np.random.default_rng(8)
    x = rng.integers(0, 16, (3, 7, 7, 10)).astype(np.uint8)
    got = sim.global_avg_pool(x, 1337, 16, 8)
    assert got.shape == (3, 1, 1, 10) and got.dtype == np.uint8
    assert got.tolist() == ref.global_avg_pool(x.tolist(), 1337, 16, 8)
    # exact example: sum 49 * 3 = 147; 147 * 5 = 735; (735 + 8) >> 4 = 46
    assert sim.global_avg_pool(np.full((1, 7, 7, 1), 3, np.uint8), 5, 4, 8).item() == 46


def test_run_against_reference_graph():
    graph, tensors = build_tiny()
    images = random_images(3, 6, 5, 3, seed=11)
    logits, acts = sim.run(graph, tensors, images, return_all=True)
    env = ref.run(graph, tensors, images)
    for name in graph["tensors"]:
        assert acts[name].tolist() == env[name], name
    assert logits.dtype == np.int32 and logits.shape == (3, 3)
    assert logits.tolist() == np.array(env["logits"]).reshape(3, 3).tolist()
    assert not (logits == logits[0]).all()
    np.testing.assert_array_equal(sim.run(graph, tensors, images), logits)


def test_run_checks_images():
    graph, tensors = build_tiny()
    with pytest.raises(sim.SimulationError, match="uint8"):
        sim.run(graph, tensors, np.zeros((1, 6, 5, 3), np.int32))
    with pytest.raises(sim.SimulationError, match="uint8"):
        sim.run(graph, tensors, np.zeros((1, 5, 6, 3), np.uint8))


def test_int32_bias_against_reference_graph():
    """Format version 3: c3's and c4's biased int32 outputs feed adds, the fc's are the logits."""
    graph, tensors = build_tiny(bias=True)
    assert graph["format_version"] == 3
    biased = [l["name"] for l in graph["layers"] if l["op"] == "conv" and "bias" in l]
    assert biased == ["c3", "c4", "fc"]
    images = random_images(3, 6, 5, 3, seed=12)
    logits, acts = sim.run(graph, tensors, images, return_all=True)
    env = ref.run(graph, tensors, images)
    for name in graph["tensors"]:
        assert acts[name].tolist() == env[name], name
    # the bias is added once, after the accumulation
    layer = next(l for l in graph["layers"] if l["name"] == "fc")
    acc = sim.conv_acc(acts["avgpool"], tensors[layer["weights"]["tensor"]])
    np.testing.assert_array_equal(logits, (acc.astype(np.int64) + tensors["fc.bias"]).reshape(3, 3))
    assert tensors["fc.bias"].dtype == np.int32 and tensors["fc.bias"].any()


def test_add_int32_bias():
    acc = np.array([-5, 0, 7, (1 << 31) - 3], np.int32).reshape(1, 1, 2, 2)
    got = sim.add_int32_bias(acc, np.array([10, 2], np.int32))
    assert got.dtype == np.int32 and got.ravel().tolist() == [5, 2, 17, (1 << 31) - 1]
    with pytest.raises(sim.SimulationError, match="int32"):
        sim.add_int32_bias(acc, np.array([0, 3], np.int32))
    with pytest.raises(sim.SimulationError, match="int32"):
        sim.add_int32_bias(np.full((1, 1, 1, 1), -(1 << 31) + 1, np.int32), [-2])
