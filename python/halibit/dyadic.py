"""Dyadic numbers M / 2^S (HAWQ-V3): integer-only requantization.

Rounding everywhere is ``round_shift(x, S) = (x + 2^(S-1)) >> S`` (arithmetic shift, the
rounding term is 0 when S is 0), computed in int64, 0 <= S <= 62.
"""
from __future__ import annotations

import math

import numpy as np

MAX_SHIFT = 62
MULTIPLIER_BITS = 31  # |M| <= 2^31 - 1: a signed 32-bit integer
INT64_MAX = (1 << 63) - 1


def dyadic(scale: float, max_shift: int = MAX_SHIFT, bits: int = MULTIPLIER_BITS) -> tuple[int, int]:
    """(M, S) with M / 2^S ~= scale, |M| < 2^bits as large as possible, 0 <= S <= max_shift.

    The relative error is at most 2^-bits unless `scale` is so small that S hits `max_shift`
    (then M = round(scale * 2^max_shift), possibly 0). Raises ValueError when |scale| >= 2^bits
    (S would have to be negative). Negative scales give negative multipliers.
    """
    if not math.isfinite(scale):
        raise ValueError(f"dyadic: {scale} is not finite")
    if not 0 <= max_shift <= MAX_SHIFT:
        raise ValueError(f"dyadic: max_shift {max_shift} is not 0..{MAX_SHIFT}")
    if scale == 0:
        return 0, 0
    m, e = math.frexp(abs(scale))  # abs(scale) = m * 2^e, 0.5 <= m < 1
    limit = (1 << bits) - 1
    M, S = round(math.ldexp(m, bits)), bits - e
    if M > limit:  # m rounded up to 1.0
        M, S = M >> 1, S - 1
    if S > max_shift:
        M, S = round(math.ldexp(abs(scale), max_shift)), max_shift
    if S < 0:
        raise ValueError(f"dyadic: {scale} does not fit a {bits}-bit multiplier with a shift >= 0")
    return (M if scale > 0 else -M), S


def dyadic_per_channel(scales, max_shift: int = MAX_SHIFT, bits: int = MULTIPLIER_BITS) -> tuple[np.ndarray, int]:
    """Per-channel multipliers sharing one shift (one `shift` per layer in the model file).

    Returns (M: int32 array, S): the largest S <= max_shift for which every |M_c| =
    |round(scale_c * 2^S)| fits in `bits` bits, so the largest channel keeps full precision.
    """
    scales = np.asarray(scales, dtype=np.float64)
    if not np.all(np.isfinite(scales)):
        raise ValueError("dyadic_per_channel: scales must be finite")
    biggest = float(np.max(np.abs(scales))) if scales.size else 0.0
    if biggest == 0:
        return np.zeros(scales.shape, np.int32), 0
    _, S = dyadic(biggest, max_shift, bits)
    limit = (1 << bits) - 1
    while True:
        M = np.round(np.ldexp(scales, S))
        if np.max(np.abs(M)) <= limit:
            return M.astype(np.int32 if bits <= 31 else np.int64), S
        S -= 1  # only when rounding pushed the largest channel over the limit


def requant_params(coeffs, bias, bounds, max_shift: int = MAX_SHIFT, bits: int = MULTIPLIER_BITS):
    """Dyadic form of  y_c = sum_i coeffs[i][c] * x_i + bias[c]  (one shift for all terms).

    `bounds[i]` is the largest |x_i| possible. Chooses the largest shift S <= max_shift with every
    |M_ic| < 2^bits and sum_i bounds[i]*|M_ic| + |B_c| + 2^(S-1) < 2^63, so the int64
    computation of round_shift(sum_i x_i*M_i + B, S) cannot overflow.
    Returns ([M_i int32 arrays], B int64 array, S).
    """
    coeffs = [np.asarray(c, dtype=np.float64) for c in coeffs]
    bias = np.asarray(bias, dtype=np.float64)
    limit = (1 << bits) - 1
    biggest = max(float(np.max(np.abs(c))) for c in coeffs)
    S = dyadic(biggest, max_shift, bits)[1] if biggest > 0 else max_shift
    while S >= 0:
        Ms = [np.round(np.ldexp(c, S)) for c in coeffs]
        B = np.round(np.ldexp(bias, S))
        if all(np.max(np.abs(M)) <= limit for M in Ms) and np.max(np.abs(B)) < 2.0 ** 62:
            Mi = [M.astype(np.int64) for M in Ms]
            Bi = B.astype(np.int64)
            worst = max(sum(int(b) * abs(int(M[c])) for b, M in zip(bounds, Mi)) + abs(int(Bi[c]))
                        for c in range(Bi.size)) + ((1 << (S - 1)) if S > 0 else 0)
            if worst <= INT64_MAX:
                return [M.astype(np.int32) for M in Mi], Bi, S
        S -= 1
    raise ValueError("requant_params: no shift keeps the multipliers and int64 intermediates in range")


def round_shift(x, S: int) -> np.ndarray:
    """(x + 2^(S-1)) >> S in int64 (arithmetic shift; nothing is added when S is 0)."""
    if not 0 <= S <= MAX_SHIFT:
        raise ValueError(f"round_shift: shift {S} is not 0..{MAX_SHIFT}")
    x = np.asarray(x, dtype=np.int64)
    if S == 0:
        return x.copy()
    return (x + np.int64(1 << (S - 1))) >> np.int64(S)
