"""The simulator's own forward physics, written again from the SI (NumPy/SciPy, no PyTensor).

A simulator used to test a model must not share the model's code path for the thing being tested,
so :mod:`bayesgain.simulate` computes the charge fractions, the Poisson excitation, transition
counting and the Auger cascade here instead of through :mod:`bayesgain.physics` (the model's home
of these equations).  The two implementations are compared in ``tests/test_scenarios.py``; this
module is the deliberate exception to "every equation has one home".

* Transition counting (eq. S6): A*(N, n) = max(g_h - N, 0) max(g_e - N - n, 0) - min(N, g_h) min(N + n, g_e).
* Poisson excitation (eq. S5, S18): P(N; <N>) from ``scipy.stats.poisson``; the sum is truncated
  where the neglected weight is < 1e-13 (not renormalised).
* Charge fractions (eq. S7-S13, the SI's sign corrected: electrons fill the level below V_1S): direct
  Boltzmann weights
  w_n = binom(g_e, n) exp(-e [n (V - V_1S) + V_C n (n - 1) / 2] / kT), normalised after subtracting
  the largest exponent; Gaussian level disorder (eq. S15-S16) by the trapezoid rule on +-9 sigma
  (128 nodes: error < 1e-6 at sigma = 110 mV; the same discretisation as the model's default, so
  the shipped synthetic folders keep their written digits).
* Hole trapping: a fraction eta of the QDs has one photo-excited hole trapped from t = 0; those QDs are
  counted with N - 1 band-edge holes and N + n electrons (absorption of the trapped hole's transition
  restored) and decay only by Auger events among the band-edge carriers (own chains).
* Auger cascade (eq. S19-S22): for each n the master equation df/dt = K_n f with the bidiagonal
  rate matrix K_n (k(N, n) = k_xx/8 (N + n) N (max(N + n - 1, 0) + max(N - 1, 0)) + N k_x),
  integrated by the matrix exponential f(t) = expm(K_n t) f(0) (scaled Taylor series) (no Bateman coefficients, so equal
  rates, k(1, 0) = 0 and k_x = 0 are all fine).
"""

import math

import numpy as np
from scipy import stats

__all__ = ["BOLTZMANN_EV_PER_K", "band_edge_table", "trapped_band_edge_table", "trapped_auger_rates", "poisson_truncation", "poisson_weights", "auger_rates",
           "fractions", "mean_electrons", "expm_batch", "cascade_populations", "ensemble_observables"]

BOLTZMANN_EV_PER_K = 8.617333262e-5  # CODATA 2018, eV/K
_TAIL = 1e-13
_DISORDER_NODES = 128
_DISORDER_HALF_WIDTH = 9.0


def band_edge_table(n_max, g_e, g_h):
    """A*(N, n) of eq. S6 for N = 0..n_max (rows), n = 0..g_e (columns), units of gamma."""
    N = np.arange(n_max + 1)[:, None]
    n = np.arange(g_e + 1)[None, :]
    open_transitions = np.maximum(g_h - N, 0) * np.maximum(g_e - N - n, 0)
    stimulated = np.minimum(N, g_h) * np.minimum(N + n, g_e)
    return (open_transitions - stimulated).astype(float)


def trapped_band_edge_table(n_max, g_e, g_h):
    """A*(N, n) of a QD with one of its N photo-excited holes trapped off the band edge (N - 1 band-edge holes,
    N + n electrons); row N = 0 as untrapped (no hole to trap)."""
    N = np.arange(n_max + 1)[:, None]
    holes = np.maximum(N - 1, 0)
    electrons = N + np.arange(g_e + 1)[None, :]
    return (np.maximum(g_h - holes, 0) * np.maximum(g_e - electrons, 0)
            - np.minimum(holes, g_h) * np.minimum(electrons, g_e)).astype(float)


def poisson_truncation(mean_max, minimum=6):
    """Largest N kept: the Poisson weight beyond it is < 1e-13 at the largest <N>."""
    m = float(mean_max)
    n = int(stats.poisson.ppf(1.0 - 1e-6, m)) if m > 0 else 0
    while m > 0 and stats.poisson.sf(n, m) >= _TAIL:
        n += 1
    return max(n, minimum)


def poisson_weights(mean_excitons, n_max):
    """P(N; <N>) for N = 0..n_max, last axis (eq. S18)."""
    return stats.poisson.pmf(np.arange(n_max + 1), np.asarray(mean_excitons, float)[..., None])


def auger_rates(n_max, g_e, k_xx, k_x=0.0):
    """k(N, n) per ps for n = 0..g_e (rows), N = 0..n_max (columns); k(0, n) = 0 (eq. S20-S22 + N k_x)."""
    N = np.arange(n_max + 1, dtype=float)[None, :]
    e = N + np.arange(g_e + 1, dtype=float)[:, None]
    pathways = e * N * (np.maximum(e - 1.0, 0.0) + np.maximum(N - 1.0, 0.0))
    return k_xx / 8.0 * pathways + N * k_x


def trapped_auger_rates(n_max, g_e, k_xx, k_x=0.0):
    """k(N, n) with one hole trapped: Auger events among the N + n electrons and N - 1 band-edge holes only."""
    N = np.arange(n_max + 1, dtype=float)[None, :]
    electrons = N + np.arange(g_e + 1, dtype=float)[:, None]
    holes = np.maximum(N - 1.0, 0.0)
    eeh = electrons * np.maximum(electrons - 1.0, 0.0) * holes  # two electrons and a hole
    hhe = holes * np.maximum(holes - 1.0, 0.0) * electrons  # two holes and an electron
    return k_xx / 8.0 * (eeh + hhe) + N * k_x


def _plain_fractions(V, V_1S, V_C, temperature_K, g_e):
    beta = 1.0 / (BOLTZMANN_EV_PER_K * temperature_K)
    n = np.arange(g_e + 1, dtype=float)
    log_w = (np.log([math.comb(g_e, int(k)) for k in n])
             - beta * (n * (np.asarray(V, float)[..., None] - np.asarray(V_1S, float)[..., None])
                       + V_C * n * (n - 1.0) / 2.0))
    log_w = log_w - log_w.max(axis=-1, keepdims=True)
    w = np.exp(log_w)
    return w / w.sum(axis=-1, keepdims=True)


def fractions(potential_V, V_1S, V_C=0.0, sigma_1S=0.0, temperature_K=293.0, g_e=2):
    """f_0..f_{g_e} (last axis) at ``potential_V`` (V), averaged over V_1S' ~ Normal(V_1S, sigma_1S)."""
    V = np.asarray(potential_V, float)
    if sigma_1S <= 0:
        return _plain_fractions(V, V_1S, V_C, temperature_K, g_e)
    z = np.linspace(-_DISORDER_HALF_WIDTH, _DISORDER_HALF_WIDTH, _DISORDER_NODES)
    w = np.exp(-0.5 * z**2)
    w = w / w.sum()
    f = _plain_fractions(V[..., None], V_1S + sigma_1S * z, V_C, temperature_K, g_e)  # (..., nodes, n)
    return np.einsum("...kn,k->...n", f, w)


def mean_electrons(f):
    """<n_e> = sum_n n f_n (eq. S14)."""
    f = np.asarray(f, float)
    return f @ np.arange(f.shape[-1], dtype=float)


def _exact_band(E, A):
    """Overwrite the diagonal and first superdiagonal of E = expm(A) (A upper triangular) with their exact
    values: exp(a_ii) and a_{i,i+1} (e^{a_ii} - e^{a_jj}) / (a_ii - a_jj), written as
    a_{i,i+1} e^{max} (1 - e^{-|a_ii - a_jj|}) / |a_ii - a_jj| (no cancellation or overflow)."""
    d = np.diagonal(A, axis1=-2, axis2=-1)
    i = np.arange(d.shape[-1])
    E[..., i, i] = np.exp(d)
    x, y = d[..., :-1], d[..., 1:]
    two_h = np.abs(x - y)
    ratio = np.where(two_h > 0, -np.expm1(-two_h) / np.where(two_h > 0, two_h, 1.0), 1.0)
    E[..., i[:-1], i[1:]] = np.diagonal(A, offset=1, axis1=-2, axis2=-1) * np.exp(np.maximum(x, y)) * ratio
    return E


def expm_batch(A, order=16):
    """Matrix exponentials of a stack of upper-bidiagonal matrices ``A`` (..., n, n).

    Scaling and squaring with a Taylor series: s halvings make every scaled 1-norm <= 1/4 (series
    error < 4^-17 / 17!, far below rounding); after the series and after every squaring the diagonal
    and the first superdiagonal are reset to their exact values (Al-Mohy and Higham's fix for
    triangular matrices; without it the error doubles with each squaring, 2e-10 at t = 3 ns).
    (scipy.linalg.expm does the same but takes ~10 ms per 20 x 20 matrix; this is batched over delays.)
    """
    A = np.asarray(A, float)
    norm = float(np.max(np.abs(A).sum(axis=-2), initial=0.0))
    s = max(0, int(math.ceil(math.log2(norm / 0.25)))) if norm > 0 else 0
    B = A / 2.0**s
    eye = np.broadcast_to(np.eye(A.shape[-1]), A.shape)
    E = eye + B / order
    for j in range(order - 1, 0, -1):  # Horner: I + B/1 (I + B/2 (I + ...))
        E = eye + (B @ E) / j
    E = _exact_band(E, B)
    for j in range(s - 1, -1, -1):
        E = _exact_band(E @ E, A / 2.0**j)
    return E


def cascade_populations(mean_excitons, charge_fractions, delays_ps, k_xx, k_x=0.0, n_max=None, weighted=True,
                        trapped=False):
    """Populations f(N, n, t) of eq. S19 from the Poisson start of eq. S18: (B, n, N, T).

    ``mean_excitons`` (B,), ``charge_fractions`` (B, g_e + 1), ``delays_ps`` (T,) >= 0.  Each charge
    state's master equation df/dt = K f (bidiagonal K: loss -k(N) on the diagonal, gain k(N + 1) from
    N + 1 above it) is advanced by expm(K t) for every delay (:func:`expm_batch`).  ``weighted=False``: each chain
    normalised to 1 (not multiplied by its charge fraction).  ``trapped``: the chains of QDs with one hole trapped
    (:func:`trapped_auger_rates`).
    """
    mean = np.atleast_1d(np.asarray(mean_excitons, float))
    f = np.atleast_2d(np.asarray(charge_fractions, float))
    t = np.asarray(delays_ps, float)
    g_e = f.shape[-1] - 1
    n_max = poisson_truncation(mean.max()) if n_max is None else int(n_max)
    P0 = poisson_weights(mean, n_max)  # (B, N)
    k = (trapped_auger_rates if trapped else auger_rates)(n_max, g_e, k_xx, k_x)  # (n, N)
    out = np.empty((mean.size, g_e + 1, n_max + 1, t.size))
    for n in range(g_e + 1):
        K = np.diag(-k[n]) + np.diag(k[n, 1:], 1)
        U = expm_batch(K[None] * t[:, None, None])  # (T, N, N)
        out[:, n] = np.einsum("tij,bj->bit", U, P0)
    return out * f[:, :, None, None] if weighted else out


def ensemble_observables(mean_excitons, charge_fractions, delays_ps, k_xx, k_x=0.0, g_e=2, g_h=4,
                         hole_trap_fraction=0.0):
    """Ensemble averages over the cascade, per condition (B,) and delay (T,).

    ``A`` band-edge absorption sum f(N, n, t) A*(N, n) (eq. S17, units of gamma); ``emission``
    <min(N, g_h) min(N + n, g_e)>; ``charged_excitons`` <min(N, g_h) [n >= 1]> (excitons in charged QDs,
    for the extra-emission knob); ``occupancy`` <min(N + n, g_e)> / g_e; ``neutral_occupancy``
    <min(N, g_e)> / g_e of the n = 0 chain alone (normalised to that chain); ``A_pre`` and
    ``occupancy_pre`` the unexcited values (B,).  ``hole_trap_fraction`` eta: that fraction of the QDs has one
    photo-excited hole trapped from t = 0 (its own chains, rates and counting, weighted eta; the rest 1 - eta).
    """
    f = np.atleast_2d(np.asarray(charge_fractions, float))
    eta = float(hole_trap_fraction)
    chains = cascade_populations(mean_excitons, f, delays_ps, k_xx, k_x, weighted=False)
    n_max = chains.shape[2] - 1
    N = np.arange(n_max + 1)[:, None]
    n = np.arange(g_e + 1)[None, :]
    table = band_edge_table(n_max, g_e, g_h)  # (N, n)
    occ = np.minimum(N + n, g_e) / g_e
    # (populations, neutral chain, band-edge holes, counting) per kind of QD: untrapped, and with eta > 0 trapped
    kinds = [(chains * f[:, :, None, None] * (1.0 - eta), chains[:, 0] * (1.0 - eta), N, table)]
    if eta > 0:
        tc = cascade_populations(mean_excitons, f, delays_ps, k_xx, k_x, n_max=n_max, weighted=False, trapped=True)
        kinds.append((tc * f[:, :, None, None] * eta, tc[:, 0] * eta, np.maximum(N - 1, 0),
                      trapped_band_edge_table(n_max, g_e, g_h)))

    def read(weights):
        return sum(np.einsum("bnNt,Nn->bt", pops, np.broadcast_to(weights(h, tab), tab.shape).astype(float))
                   for pops, _, h, tab in kinds)

    return dict(
        A=read(lambda h, tab: tab),
        emission=read(lambda h, tab: np.minimum(h, g_h) * np.minimum(N + n, g_e)),
        charged_excitons=read(lambda h, tab: np.minimum(h, g_h) * (n >= 1)),
        occupancy=read(lambda h, tab: occ),
        neutral_occupancy=sum(np.einsum("bNt,N->bt", c0, occ[:, 0]) for _, c0, _, _ in kinds),
        A_pre=f @ table[0],
        occupancy_pre=f @ (np.arange(g_e + 1) / g_e),
    )
