"""BatchNorm folding and the integer requantization of a quantized convolution (HAWQ-V3).

A trained block computes  y = BN(conv(x * s_x, w * s_w[c])) + b  followed by ReLU and an
activation quantizer of step s_y. With integer codes x, integer weights w and the int32
accumulator acc = sum x * w, BN folds into one affine map per output channel:

    y_c / s_y = acc * (s_x * s_w[c] * g_c / s_y) + (beta_c - g_c * mean_c + g_c * b_c) / s_y,
    g_c = gamma_c / sqrt(var_c + eps),

which `requantization` turns into the dyadic (M, B, S) of the model file: code =
clamp(round(acc * M + B, S), 0, 2^bits - 1). Nothing here needs torch: parameters come in as
numpy arrays (the training code passes `tensor.detach().numpy()`).
"""
import numpy as np

from .dyadic import requant_params


def fold_batchnorm(gamma, beta, mean, var, eps=1e-5, conv_bias=None):
    """Per-channel (scale, shift) with BN(z + conv_bias) = scale * z + shift."""
    gamma, beta, mean, var = (np.asarray(a, dtype=np.float64) for a in (gamma, beta, mean, var))
    scale = gamma / np.sqrt(var + eps)
    bias = np.zeros_like(mean) if conv_bias is None else np.asarray(conv_bias, dtype=np.float64)
    return scale, beta + scale * (bias - mean)


def requantization(input_scale, weight_scale, out_scale, bn_scale=None, bn_shift=None, acc_bound=2**31 - 1):
    """(multiplier int32 [C], bias int64 [C], shift) for codes = round(acc * M + B, S).

    input_scale: the step of the input codes; weight_scale: per-output-channel weight steps [C];
    out_scale: the step of the output codes; bn_scale / bn_shift: from fold_batchnorm (identity
    if omitted). acc_bound bounds |acc| for the int64 overflow check.
    """
    weight_scale = np.asarray(weight_scale, dtype=np.float64)
    channels = weight_scale.size
    bn_scale = np.ones(channels) if bn_scale is None else np.asarray(bn_scale, dtype=np.float64)
    bn_shift = np.zeros(channels) if bn_shift is None else np.asarray(bn_shift, dtype=np.float64)
    coeff = input_scale * weight_scale * bn_scale / out_scale
    bias = bn_shift / out_scale
    (multiplier,), b, shift = requant_params([coeff], bias, [acc_bound])
    return multiplier, b, shift
