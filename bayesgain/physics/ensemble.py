"""Ensemble band-edge absorption and the gain threshold (SI eq. S5, S17).

A_ens(<N>, f) = sum_n f_n sum_N P(N; <N>) A*(N, n), in units of gamma.  Because A*(N, n) does not
increase with N and the Poisson family is stochastically ordered in <N>, A_ens decreases
monotonically in <N>: the threshold <N_gain> (A_ens = 0) is unique, and so is the <N> at which
A_ens reaches any level between A_ens(0) and -g_e g_h.

The root is found by bisection followed by Newton steps (dA_ens/d<N> = sum_N P(N) [A*(N+1) - A*(N)]),
all in PyTensor.  The last Newton step is taken from a gradient-stopped iterate, so the gradient
of the threshold is exactly the implicit-function gradient -(dA/dtheta)/(dA/d<N>).
"""

import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from .poisson import poisson_weights

__all__ = ["ensemble_absorption", "ensemble_slope", "threshold_bracket", "solve_threshold"]


def ensemble_absorption(mean_excitons, charge_fractions, table):
    """A_ens(<N>, f) for ``mean_excitons`` (...) and ``charge_fractions`` (..., S); ``table`` (M+1, S)."""
    A = pt.as_tensor_variable(table)
    P = poisson_weights(mean_excitons, A.shape[0] - 1, lump_tail=True)  # (..., M + 1), sums to 1
    per_state = pt.tensordot(P, A, axes=[[-1], [0]])  # (..., S)
    return pt.sum(per_state * pt.as_tensor_variable(charge_fractions), axis=-1)


def ensemble_slope(mean_excitons, charge_fractions, table):
    """dA_ens/d<N> = sum_n f_n sum_N P(N) [A*(N+1, n) - A*(N, n)] (uses the table up to M).

    Exactly the derivative of :func:`ensemble_absorption` with its lumped tail (d P(N >= M)/d<N> = P(M - 1)),
    so the weights here are the plain ones up to M - 1.
    """
    A = pt.as_tensor_variable(table)
    P = poisson_weights(mean_excitons, A.shape[0] - 2)
    steps = A[1:, :] - A[:-1, :]
    per_state = pt.tensordot(P, steps, axes=[[-1], [0]])
    return pt.sum(per_state * pt.as_tensor_variable(charge_fractions), axis=-1)


def threshold_bracket(g_e, g_h):
    """Upper end of the search interval for <N> (excitons/QD): twice the larger degeneracy plus 4."""
    return float(2 * max(g_e, g_h) + 4)


def solve_threshold(charge_fractions, table, level=0.0, upper=8.0, n_bisect=12, n_newton=4):
    """<N> at which A_ens(<N>, f) = ``level`` (PyTensor), for fractions (..., S).

    Returns 0 where A_ens(0) <= level already (no excitation needed) and +inf where even
    ``upper`` excitons/QD do not reach the level.  ``table`` must extend to N well above ``upper``
    (see ``poisson.required_n_max``).
    """
    f = pt.as_tensor_variable(charge_fractions)
    level = pt.as_tensor_variable(level)
    target = lambda x: ensemble_absorption(x, f, table) - level  # noqa: E731
    batch = pt.sum(f, axis=-1) * 0.0 + level * 0.0  # broadcast shape of the batch
    lo = batch
    hi = batch + upper
    for _ in range(n_bisect):
        mid = 0.5 * (lo + hi)
        above = pt.gt(target(mid), 0.0)
        lo = pt.switch(above, mid, lo)
        hi = pt.switch(above, hi, mid)
    x = 0.5 * (lo + hi)
    for _ in range(n_newton - 1):
        x = pt.clip(x - target(x) / ensemble_slope(x, f, table), lo, hi)
    x = disconnected_grad(x)
    x = x - target(x) / ensemble_slope(x, f, table)
    at_zero = pt.le(target(batch), 0.0)
    unreachable = pt.gt(target(batch + upper), 0.0)
    return pt.switch(at_zero, 0.0, pt.switch(unreachable, pt.inf, x))
