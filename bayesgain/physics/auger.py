"""Auger cascade: multiexciton decay rates and the time evolution of the populations.

SI section 1.5.  A QD with N photo-excited excitons and n electrochemical electrons has
e = N + n electrons and h = N holes; the number of Auger pathways (eq. S20-S21) is::

    N_Aug(N, n) = (N + n) N (max(N + n - 1, 0) + max(N - 1, 0))

and the rate is k(N, n) = (k_xx / 8) N_Aug (eq. S22; the neutral biexciton has 8 pathways, so
k(2, 0) = k_xx and k(3, 0) / k(2, 0) = 36 / 8 = 4.5).  The paper sets the single-exciton decay to
zero; real single excitons live tens of ns, so an optional ``k_x`` is added as N k_x (each exciton
also decays on its own).  Rates are per ps.

Each Auger event removes one exciton and conserves n, so for every n the populations obey the
linear chain of eq. S19, f_N' = -k_N f_N + k_{N+1} f_{N+1}.  Its matrix is bidiagonal with
eigenvalues -k_N, so the solution is a closed-form sum of exponentials (Bateman)::

    f_j(t) = sum_{i=j..m} C[j, m, i] exp(-k_i t)   for a QD that starts with m excitons,
    C[j, m, i] = prod_{l=j+1..m} k_l / prod_{l=j..m, l != i} (k_l - k_i).

The coefficients are built from cumulative products of scaled rates (no Python loop over N, so
the truncation n_max may be symbolic).  The empty state N = 0 is never decayed and its
population follows from conservation, so a zero k(1, 0) (the paper's choice) is exact.  The
formula needs distinct rates among N >= 1 for each n, which eq. S22 guarantees (N_Aug grows
strictly with N); free rates that coincide to rounding would make it ill-conditioned.
"""

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import zero_grad

from .poisson import poisson_weights

__all__ = ["auger_pathways", "auger_rate", "rate_table", "trapped_hole_rate_table", "free_auger_rates", "hole_trap_chains", "bateman_coefficients", "cascade_populations",
           "cascade_absorption"]


def _pathways(electrons, holes):
    """e h (max(e - 1, 0) + max(h - 1, 0)): negative-trion-like (e e h) and positive-trion-like (h h e) events."""
    return electrons * holes * (pt.maximum(electrons - 1, 0) + pt.maximum(holes - 1, 0))


def auger_pathways(N, n_echem):
    """Number of Auger transitions N_Aug(N, n_echem) of eq. S21."""
    N = pt.as_tensor_variable(N)
    return _pathways(N + pt.as_tensor_variable(n_echem), N)


def trapped_hole_rate_table(n_max, g_e, k_xx, k_x=0.0):
    """Rates (n = 0..g_e rows, N = 1..n_max columns) of a QD with one of its N holes trapped off the band edge.

    The trapped hole takes no part in band-edge Auger events: (k_xx / 8) _pathways(N + n, N - 1) + N k_x, so a
    QD with one exciton and its hole trapped (N = 1, n = 0) does not Auger-decay, and a trapped biexciton decays
    through the 2 negative-trion pathways of its remaining exciton plus electron (k_xx / 4, not k_xx)."""
    N = pt.arange(1, n_max + 1, dtype="float64")[None, :]
    n = pt.as_tensor_variable(np.arange(g_e + 1, dtype="float64"))[:, None]
    return pt.as_tensor_variable(k_xx) / 8.0 * _pathways(N + n, N - 1) + N * pt.as_tensor_variable(k_x)


def auger_rate(N, n_echem, k_xx, k_x=0.0):
    """k(N, n) per ps: (k_xx / 8) N_Aug(N, n) + N k_x (eq. S22 plus single-exciton decay)."""
    N = pt.as_tensor_variable(N)
    return pt.as_tensor_variable(k_xx) / 8.0 * auger_pathways(N, n_echem) + N * pt.as_tensor_variable(k_x)


def rate_table(n_max, g_e, k_xx, k_x=0.0):
    """Rates k(N, n) for n = 0..g_e (rows) and N = 1..n_max (columns), per ps."""
    N = pt.arange(1, n_max + 1, dtype="float64")[None, :]
    n = pt.as_tensor_variable(np.arange(g_e + 1, dtype="float64"))[:, None]
    return auger_rate(N, n, k_xx, k_x)


def free_auger_rates(rates, n_max, g_e, k_x, trion_rate_factor, triexciton_rate_factor):
    """Rates of :func:`rate_table` (n = 0..g_e rows, N = 1..n_max columns) with free trion and triexciton Auger rates.

    The Auger part k(N, n) - N k_x of the trion pathways (N = 1, n >= 1) is multiplied by ``trion_rate_factor``
    and that of the neutral triexciton (N = 3, n = 0) by ``triexciton_rate_factor``; the single-exciton decay
    N k_x stays as it is.  ``k_x`` and the factors broadcast against the (g_e + 1, n_max) table (NumPy or
    PyTensor); a factor of 1 gives eq. S22's scaling law back."""
    Nn = np.arange(1, int(n_max) + 1)[None, :]
    nn = np.arange(int(g_e) + 1)[:, None]
    trion = ((Nn == 1) & (nn >= 1)).astype(float)
    tri = ((Nn == 3) & (nn == 0)).astype(float)
    factor = 1.0 + trion * (trion_rate_factor - 1.0) + tri * (triexciton_rate_factor - 1.0)
    single = Nn * k_x
    return (rates - single) * factor + single


def hole_trap_chains(charge_fractions, hole_trap_fraction, rates, trapped_rates, table, trapped_table):
    """The cascade's inputs with a fraction eta of the QDs holding one trapped photo-excited hole from t = 0.

    Each charge state gets a second chain (its trapped-hole rates and counting, ``trapped_hole_rate_table`` and
    ``transitions.trapped_hole_transition_table``), weighted eta; the untrapped one is weighted 1 - eta.  Returns
    (fractions (..., 2S), rates (2S, M), table (..., M + 1, 2S)) for :func:`cascade_absorption`, whose
    ``n_saturated`` must then be max(g_e, g_h + 1).  A QD without excitons has no hole to trap; the trapped
    table's N = 0 row equals the untrapped one, so that weight is exact either way."""
    f = pt.as_tensor_variable(charge_fractions)
    eta = pt.as_tensor_variable(hole_trap_fraction)
    fx = pt.concatenate([(1.0 - eta) * f, eta * f], axis=-1)
    return (fx, pt.concatenate([pt.as_tensor_variable(rates), pt.as_tensor_variable(trapped_rates)], axis=0),
            pt.concatenate([pt.as_tensor_variable(table), pt.as_tensor_variable(trapped_table)], axis=-1))


def bateman_coefficients(rates, n_rows=None):
    """C[..., j, m, i] of the chain with decay rates ``rates[..., p]`` for states N = p + 1.

    Indices m (initial state) and i (exponential) run over N = 1..M, j (state) over N = 1..n_rows
    (all M by default; ``n_rows`` must be a Python int <= M).  Entries outside j <= i <= m are zero.
    rates[..., 0] may be zero; rates[..., 1:] must be positive and distinct.

    Built from cumulative products: with D[i, l] = k_l - k_i (1 on the diagonal) and its running product
    P[i, l] = prod_{l' <= l} D[i, l'], the denominator over l in [j, m] is P[i, m] / P[i, j - 1], so every
    coefficient is two products and a quotient (no exponential: this tensor is the largest elementwise
    work of a model's gradient after the disorder average).  C is invariant under k -> k / s (m - j
    factors above and below), so the rates are divided by their largest value first: every factor is
    then <= 1 in size and the products cannot overflow for any truncation M.
    """
    k = pt.as_tensor_variable(rates)
    M = k.shape[-1]
    idx = pt.arange(M)
    rows = idx if n_rows is None else idx[:n_rows]
    n = rows.shape[0]
    # exact invariance, so the scale carries no gradient (a chain of one state with a zero rate keeps scale 1)
    scale = zero_grad(pt.max(pt.abs(k), axis=-1, keepdims=True))
    k = k / pt.switch(pt.gt(scale, 0.0), scale, 1.0)
    diag = pt.eq(idx[:, None], idx[None, :])  # [i, l]
    D = pt.switch(diag, 1.0, k[..., None, :] - k[..., :, None])  # [..., i, l] = k_l - k_i
    run = pt.cumprod(D, axis=-1)  # [..., i, l]: prod over l' <= l
    before = run / D  # prod over l' < l (D is never zero: distinct rates, 1 on the diagonal)
    swap = lambda x: pt.swapaxes(x, -1, -2)  # noqa: E731  [i, l] -> [l, i]
    # numerator prod_{l=j+1..m} k_l; position 0 (N = 1) never enters it, so a zero rate there is fine
    run_k = pt.cumprod(pt.switch(pt.eq(idx, 0), 1.0, k), axis=-1)
    j = rows[:, None, None]
    m = idx[None, :, None]
    i = idx[None, None, :]
    valid = pt.and_(pt.le(j, i), pt.le(i, m))
    # C[j, m, i] = (run_k[m] / run_k[j]) * before[i, j] / run[i, m]
    coeff = ((run_k[..., None, :, None] / run_k[..., :n, None, None]) * swap(before)[..., :n, None, :]
             / swap(run)[..., None, :, :])
    return pt.switch(valid, coeff, 0.0)


def cascade_populations(initial, rates, delays_ps):
    """Populations f[..., N, t] for N = 0..M of a single chain (one n), from ``initial[..., N]``.

    ``rates[..., p]`` are the decay rates of N = p + 1; ``delays_ps`` is 1-D.  N = 0 follows from
    conservation.  Intended for tests and plots; models use :func:`cascade_absorption`.
    """
    f0 = pt.as_tensor_variable(initial)
    k = pt.as_tensor_variable(rates)
    t = pt.as_tensor_variable(delays_ps)
    C = bateman_coefficients(k)  # [..., j, m, i]
    expo = pt.exp(-k[..., :, None] * t)  # [..., i, t]
    E = pt.matmul(C, expo[..., None, :, :])  # [..., j, m, t]
    excited = pt.sum(E * f0[..., None, 1:, None], axis=-2)  # [..., j, t]
    ground = pt.sum(f0, axis=-1)[..., None] - pt.sum(excited, axis=-2)
    return pt.concatenate([ground[..., None, :], excited], axis=-2)


def cascade_absorption(mean_excitons, charge_fractions, delays_ps, rates, table, n_saturated, coefficients=None):
    """Ensemble band-edge absorption A*(t) in units of gamma (time-dependent eq. S17 with S18-S19).

    Parameters
    ----------
    mean_excitons : (...) initial <N> per QD at each point (a Poisson distribution, eq. S18).
    charge_fractions : (..., S) fractions f_n of QDs with n = 0..S-1 electrochemical electrons.
    delays_ps : (T,) pump-probe delays in ps shared by the batch, or (..., T) with the batch shape.
    rates : (S, M) decay rates k(N, n) for N = 1..M per ps (see :func:`rate_table`).
    table : (M + 1, S) A*(N, n) for N = 0..M (see ``transitions.transition_table``), or (K, M + 1, S):
        K observables of the same populations (absorption, occupancy, ...) evaluated together.
    n_saturated : Python int J <= M such that A*(N, n) = A*(J, n) for every N >= J
        (J = max(g_e, g_h) for transition counting: beyond it every level is saturated).

    Only states N < J need their own populations; the states N >= J are lumped exactly: a QD leaves
    them at the rate k_J E_J(t), so E_{>=J}(t) = sum_i k_J C[J, m, i] / k_i exp(-k_i t).  This cuts
    the coefficient tensor from M^3 to J M^2 per charge state.

    coefficients : optional (S, J', M', M') with J' >= J, M' >= M: ``bateman_coefficients`` of a longer
        chain with the same leading rates.  C[j, m, i] depends only on k_j..k_m, so the leading block of a
        longer chain's coefficients is exact; a model with several Poisson truncations (film, solution)
        computes them once, which removes a whole coefficient graph and its gradient from the compile.

    Returns (..., T), or (..., K, T) for a (K, M + 1, S) table.  Poisson weight beyond M starts at M (the
    weights sum to 1; choose M with ``required_n_max`` so that this weight is negligible).
    """
    k = pt.as_tensor_variable(rates)
    A = pt.as_tensor_variable(table)
    f = pt.as_tensor_variable(charge_fractions)
    t = pt.as_tensor_variable(delays_ps)
    stacked = A.ndim == 3
    if not stacked:
        A = A[None]
    J = int(n_saturated)
    M = k.shape[-1]
    S = k.shape[0]
    P = poisson_weights(mean_excitons, M, lump_tail=True)  # (..., M + 1), sums to 1
    if coefficients is None:
        C = bateman_coefficients(k, n_rows=J)  # (S, j = 1..J, m, i)
    else:
        C = pt.as_tensor_variable(coefficients)[..., :J, :M, :M]
    dA = pt.swapaxes(A[:, 1 : J + 1, :] - A[:, 0, None, :], -1, -2)  # (K, S, j): absorption change relative to N = 0
    # rows N < J as they are; row N = J becomes the lumped survival of all N >= J
    # k_J / k_i, used only where C[J, m, i] != 0 (i >= J, where k_i > 0); elsewhere divide by 1, not by a zero rate
    k_i = pt.switch(pt.ge(pt.arange(M), J - 1)[None, :], k, 1.0)
    last = C[:, J - 1] * (k[:, J - 1][:, None] / k_i)[:, None, :]
    C_lumped = pt.concatenate([C[:, : J - 1], last[:, None]], axis=1)  # (S, j, m, i)
    G = pt.sum(dA[..., None, None] * C_lumped, axis=-3)  # (K, S, m, i)
    # contract the initial state with the Poisson weights first: (..., K, S, i), then the exponentials
    PG = pt.tensordot(P[..., 1:], G, axes=[[-1], [2]])  # (..., K, S, i)
    if t.ndim == 1:
        # delays shared by the batch: one (S, M, T) table of exponentials and a batched matrix product over
        # the charge states, (S, batch, i) @ (S, i, T); the broadcast product it replaces built a
        # (batch, S, M, T) tensor, the largest array of the model, twice (forward and gradient)
        expo = pt.exp(-k[:, :, None] * t)  # (S, i, T)
        batch = [PG.shape[a] for a in range(PG.ndim - 2)]  # (..., K)
        PGs = pt.moveaxis(PG, -2, 0).reshape((S, -1, M))
        Q = pt.moveaxis(pt.matmul(PGs, expo).reshape((S, *batch, t.shape[0])), 0, -2)  # (..., K, S, T)
        # the reshape forgets which axes are broadcastable (length 1 by construction); restore PG's flags
        Q = pt.specify_broadcastable(Q, *[a for a, b in enumerate(PG.type.broadcastable[:-1]) if b])
    else:
        expo = pt.exp(-k[:, :, None] * t[..., None, None, None, :])  # (..., 1, S, i, T)
        Q = pt.sum(PG[..., None] * expo, axis=-2)  # (..., K, S, T)
    f_k = f[..., None, :]  # (..., 1, S)
    base = pt.sum(f_k * A[:, 0, :], axis=-1) * pt.sum(P, axis=-1)[..., None]  # (..., K): every QD back at N = 0
    out = base[..., None] + pt.sum(f_k[..., None] * Q, axis=-2)  # (..., K, T)
    return out if stacked else out[..., 0, :]
