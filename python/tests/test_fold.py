import numpy as np

from halibit.dyadic import round_shift
from halibit.fold import fold_batchnorm, requantization


def test_fold_batchnorm_matches_batchnorm_formula():
    rng = np.random.default_rng(0)
    gamma, beta, mean = rng.normal(size=8), rng.normal(size=8), rng.normal(size=8)
    var, bias, z = rng.uniform(0.1, 2, size=8), rng.normal(size=8), rng.normal(size=(5, 8))
    scale, shift = fold_batchnorm(gamma, beta, mean, var, eps=1e-3, conv_bias=bias)
    direct = gamma * (z + bias - mean) / np.sqrt(var + 1e-3) + beta
    np.testing.assert_allclose(scale * z + shift, direct, rtol=1e-12, atol=1e-12)


def test_requantization_reproduces_float_codes():
    rng = np.random.default_rng(1)
    channels, bits = 16, 4
    weight_scale = rng.uniform(0.01, 0.05, size=channels)
    bn_scale, bn_shift = rng.uniform(0.5, 2, size=channels), rng.normal(size=channels)
    acc = rng.integers(-3000, 3000, size=(1000, channels))
    M, B, S = requantization(0.02, weight_scale, 0.1, bn_scale, bn_shift, acc_bound=3000)
    assert M.dtype == np.int32 and B.dtype == np.int64 and 0 <= S <= 62
    codes = np.clip(round_shift(acc.astype(np.int64) * M + B, S), 0, 2**bits - 1)
    real = (acc * 0.02 * weight_scale * bn_scale + bn_shift) / 0.1
    want = np.clip(np.floor(real + 0.5), 0, 2**bits - 1)
    # Dyadic rounding may flip a value that sits within 1e-6 of a rounding boundary, nothing else.
    near_boundary = np.abs(real - np.floor(real) - 0.5) < 1e-6
    assert np.all((codes == want) | near_boundary)
    assert (codes != want).mean() < 1e-3
