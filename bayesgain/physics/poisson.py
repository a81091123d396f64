"""Poisson statistics of photo-excitation (SI eq. S5, S17, S18).

A pump pulse leaves a QD with N excitons with probability P(N; <N>) = <N>^N e^{-<N>} / N!.
Sums over N are truncated at ``n_max``; :func:`required_n_max` picks the smallest ``n_max`` whose
neglected tail weight P(N > n_max) is below ``tail`` (1e-10 by default), so the truncation error of
any bounded per-QD quantity (|A*| <= g_e g_h) is below g_e g_h * tail.

The models sum with ``lump_tail=True``: the weight P(N >= n_max) sits on N = n_max, so the weights sum to 1
whatever <N> a sampler visits.  Dropping the tail made <N> far beyond the truncation look like a smaller
bleach, a spurious mode in which chains stuck (film <N> 22 against a truncation of 28, 8-14 % of the QDs
lost; docs/decisions/poisson-tail-lumped.md).  A QD with N > n_max >= g_e + g_h is saturated like one at
n_max, and its Auger cascade passes n_max within a few k(n_max)^-1.
"""

import numpy as np
import pytensor.tensor as pt
from scipy import stats

__all__ = ["poisson_weights", "required_n_max", "probability_at_least", "DEFAULT_TAIL"]

DEFAULT_TAIL = 1e-10


def poisson_weights(mean_excitons, n_max, lump_tail=False):
    """P(N; <N>) for N = 0..n_max, appended as a last axis (PyTensor).

    The logarithm is floored at 1e-300 so <N> = 0 gives P(0) = 1 and P(N > 0) = 0 without a NaN.
    ``lump_tail``: the last weight is P(N >= n_max) (the weights sum to 1); added as 1 - sum of all the
    weights, floored at 0, so that where the tail is below rounding the last weight stays P(n_max).
    """
    mean = pt.as_tensor_variable(mean_excitons)[..., None]
    N = pt.arange(n_max + 1, dtype="float64")
    P = pt.exp(N * pt.log(pt.maximum(mean, 1e-300)) - mean - pt.gammaln(N + 1.0))
    if not lump_tail:
        return P
    tail = pt.maximum(1.0 - pt.sum(P, axis=-1, keepdims=True), 0.0)
    return pt.concatenate([P[..., :-1], P[..., -1:] + tail], axis=-1)


def required_n_max(mean_excitons, tail=DEFAULT_TAIL, minimum=4):
    """Smallest truncation n_max with P(N > n_max; <N>) < ``tail`` for the largest <N> given (NumPy)."""
    mean = float(np.max(np.asarray(mean_excitons, dtype=float), initial=0.0))
    if not np.isfinite(mean) or mean < 0:
        raise ValueError(f"mean_excitons must be finite and >= 0; got max {mean!r}")
    n = int(max(stats.poisson.isf(tail, mean), 0)) if mean > 0 else 0
    while stats.poisson.sf(n, mean) >= tail:  # isf is approximate for discrete laws
        n += 1
    return max(n, minimum)


def probability_at_least(mean_excitons, k):
    """P(N >= k; <N>) (NumPy): the fraction of QDs left with k or more excitons by the pump."""
    return stats.poisson.sf(int(k) - 1, np.asarray(mean_excitons, dtype=float))


def truncated_tail(mean_excitons, n_max):
    """P(N > n_max; <N>) (NumPy), the weight a truncated sum neglects."""
    return stats.poisson.sf(n_max, np.asarray(mean_excitons, dtype=float))
