import math

import numpy as np
import pytest

from halibit.dyadic import dyadic, dyadic_per_channel, requant_params, round_shift


def test_dyadic_accuracy_and_range():
    rng = np.random.default_rng(1)
    for scale in np.exp(rng.uniform(math.log(1e-9), math.log(1e9), 2000)):
        M, S = dyadic(float(scale))
        assert 0 <= S <= 62
        assert (1 << 30) <= M <= (1 << 31) - 1  # full precision (scale >= 2^-32)
        assert abs(M / 2.0 ** S - scale) <= scale * 2.0 ** -31


@pytest.mark.parametrize("scale,expect", [
    (1.0, ((1 << 30), 30)),
    (0.5, ((1 << 30), 31)),
    (3.0, (3 << 29, 29)),
    (1 - 2.0 ** -40, ((1 << 30), 30)),  # rounds up to 2^31: halved
    (2.0 ** 31 - 1, ((1 << 31) - 1, 0)),
    (1e-15, (4612, 62)),                # limited by the shift: round(1e-15 * 2^62)
    (0.0, (0, 0)),
    (-0.75, (-(3 << 29), 31)),
])
def test_dyadic_values(scale, expect):
    assert dyadic(scale) == expect


def test_dyadic_limits():
    assert dyadic(1e-3, max_shift=20) == (1049, 20)
    assert dyadic(0.3, bits=8) == (154, 9)  # 154 / 512 = 0.30078
    with pytest.raises(ValueError):
        dyadic(2.0 ** 31)
    with pytest.raises(ValueError):
        dyadic(float("nan"))


def test_dyadic_per_channel():
    scales = np.array([0.25, 1e-3, 3.7e-2, 0.249999, 1e-12])
    M, S = dyadic_per_channel(scales)
    assert M.dtype == np.int32
    assert (1 << 30) <= M.max() <= (1 << 31) - 1
    assert S == dyadic(0.25)[1]
    assert np.all(np.abs(M / 2.0 ** S - scales) <= 0.5 / 2.0 ** S)
    M, S = dyadic_per_channel(np.zeros(3))
    assert S == 0 and not M.any()


def test_requant_params_bounds():
    rng = np.random.default_rng(2)
    c0 = rng.uniform(0.001, 0.01, 64)
    c1 = rng.uniform(0.5, 2.0, 64)
    bias = rng.uniform(-1e6, 1e6, 64)
    bounds = [(1 << 31) - 1, 255]
    (M0, M1), B, S = requant_params([c0, c1], bias, bounds)
    assert M0.dtype == np.int32 and M1.dtype == np.int32 and B.dtype == np.int64
    worst = max(bounds[0] * abs(int(a)) + bounds[1] * abs(int(b)) + abs(int(c)) for a, b, c in zip(M0, M1, B))
    assert worst + (1 << (S - 1)) < 1 << 63
    assert np.all(np.abs(M1 / 2.0 ** S - c1) <= 0.5 / 2.0 ** S)
    assert np.all(np.abs(B / 2.0 ** S - bias) <= 0.5 / 2.0 ** S)
    # the largest multiplier uses most of the 31 bits unless the int64 bound forced a smaller shift
    assert M1.max() >= 1 << 28


def test_round_shift_values():
    x = np.array([-7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7], np.int64)
    np.testing.assert_array_equal(round_shift(x, 0), x)
    # (x + 1) >> 1: halves round up (towards +inf), arithmetic shift for negatives
    np.testing.assert_array_equal(round_shift(x, 1), [-3, -3, -2, -2, -1, -1, 0, 0, 1, 1, 2, 2, 3, 3, 4])
    np.testing.assert_array_equal(round_shift(x, 2), [-2, -1, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    big = np.array([(1 << 62) - 1, -(1 << 62)], np.int64)
    np.testing.assert_array_equal(round_shift(big, 62), [1, -1])


def test_round_shift_against_python_ints():
    rng = np.random.default_rng(3)
    x = rng.integers(-(1 << 61), 1 << 61, 1000)
    for S in (0, 1, 2, 7, 31, 40, 61, 62):
        want = [(int(v) + ((1 << (S - 1)) if S else 0)) >> S for v in x]
        assert round_shift(x, S).tolist() == want
    with pytest.raises(ValueError):
        round_shift(x, 63)
