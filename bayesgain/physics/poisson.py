"""Poisson statistics of photo-excitation (SI eq. S5, S17, S18).

A pump pulse leaves a QD with N excitons with probability P(N; <N>) = <N>^N e^{-<N>} / N!.
Sums over N are truncated at ``n_max``; :func:`required_n_max` picks the smallest ``n_max`` whose
neglected tail weight P(N > n_max) is below ``tail`` (1e-10 by default), so the truncation error of
any bounded per-QD quantity (|A*| <= g_e g_h) is below g_e g_h * tail.
"""

import numpy as np
import pytensor.tensor as pt
from scipy import stats

__all__ = ["poisson_weights", "required_n_max", "DEFAULT_TAIL"]

DEFAULT_TAIL = 1e-10


def poisson_weights(mean_excitons, n_max):
    """P(N; <N>) for N = 0..n_max, appended as a last axis (PyTensor).

    The logarithm is floored at 1e-300 so <N> = 0 gives P(0) = 1 and P(N > 0) = 0 without a NaN.
    """
    mean = pt.as_tensor_variable(mean_excitons)[..., None]
    N = pt.arange(n_max + 1, dtype="float64")
    return pt.exp(N * pt.log(pt.maximum(mean, 1e-300)) - mean - pt.gammaln(N + 1.0))


def required_n_max(mean_excitons, tail=DEFAULT_TAIL, minimum=4):
    """Smallest truncation n_max with P(N > n_max; <N>) < ``tail`` for the largest <N> given (NumPy)."""
    mean = float(np.max(np.asarray(mean_excitons, dtype=float), initial=0.0))
    if not np.isfinite(mean) or mean < 0:
        raise ValueError(f"mean_excitons must be finite and >= 0; got max {mean!r}")
    n = int(max(stats.poisson.isf(tail, mean), 0)) if mean > 0 else 0
    while stats.poisson.sf(n, mean) >= tail:  # isf is approximate for discrete laws
        n += 1
    return max(n, minimum)


def truncated_tail(mean_excitons, n_max):
    """P(N > n_max; <N>) (NumPy), the weight a truncated sum neglects."""
    return stats.poisson.sf(n_max, np.asarray(mean_excitons, dtype=float))
