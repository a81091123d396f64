"""Charging statistics: fractions of QDs holding 0..g_e electrochemical 1S(e) electrons.

SI section 1.3, eq. S7-S16, with the sign convention of ``docs/paper-conventions.md``: electrons
enter 1S(e) as the electrode potential V goes *more negative* than V_1S.  With the electron
electrochemical potential mu = -eV, the grand-canonical weight of the n-electron state is::

    w_n = binom(g_e, n) * exp(-beta e [ n (V - V_1S) + V_C n (n - 1) / 2 ])

i.e. 1, 2 exp(-beta e (V - V_1S)), exp(-beta e [2 (V - V_1S) + V_C]) for g_e = 2 (the printed eq. S9
has the opposite sign and would fill the level at positive potentials).  The charging energy V_C
(in volts, i.e. eV per electron) is paid once per pair of electrons; for g_e = 2 this is the SI's
single V_C of the second electron.

Disorder (eq. S15-S16; S16 is printed without the square and the minus sign): the level
potential of each QD is V_1S' ~ Normal(V_1S, sigma_1S) and the *fractions* (not only <n_e>) are
averaged over it by quadrature (trapezoidal; see ``DEFAULT_QUADRATURE_NODES`` for why not Gauss-Hermite).  The effective-temperature variant is the plain
fractions with ``temperature_K`` as a free parameter.

Uniform doping (SI Fig. S6b, the alternative the paper shows and rejects): no distribution of the charge
over the QDs beyond the integer parts, every QD holding floor(<n_e>) or ceil(<n_e>) electrons with
f_floor = 1 - frac(<n_e>), f_ceil = frac(<n_e>), i.e. f_n = max(0, 1 - |n - <n_e>|) (the least charge spread
that gives the mean <n_e>).
"""

import math

import numpy as np
import pytensor.tensor as pt

from .constants import BOLTZMANN_EV_PER_K

__all__ = [
    "MODEL_QUADRATURE_HALF_WIDTH",
    "charge_fractions",
    "charge_fractions_disordered",
    "charge_fractions_uniform",
    "mean_electrons",
    "effective_temperature_K",
    "DEFAULT_QUADRATURE_NODES",
    "disorder_nodes",
    "quadrature_rule",
]

# Disorder quadrature: the trapezoidal rule on z in [-9, 9] (V_1S' = V_1S + sigma z, Gaussian weights
# renormalised to sum to 1).  The integrand is analytic with poles pi kT/sigma away from the real
# axis, so the error falls as exp(-2 pi^2 kT / (sigma h)) with step h; measured against adaptive
# quadrature at 293 K, V_C = 5 mV: sigma = 110 mV -> 6e-7 (64 nodes), 5e-14 (128); sigma = 300 mV ->
# 2e-5 (128), 3e-11 (256).  Gauss-Hermite with 64/128 nodes errs by 6e-5/4e-7 at sigma = 110 mV,
# because its nodes spread to +-11 sigma and leave the sharp Fermi step under-resolved, so the SI's
# "numerical form" is done here with the trapezoid.  Use ``disorder_nodes`` to size it for a prior.
DEFAULT_QUADRATURE_NODES = 128
QUADRATURE_HALF_WIDTH = 9.0
# the model's sampled graphs average over +-6 sigma (Gaussian tail 2e-9): fewer nodes than the NumPy face's 9 sigma
# for the same step; with 40 trapezoid nodes the error is < 1e-6 in <n_e> for sigma_1S >= 50 mV at room temperature
MODEL_QUADRATURE_HALF_WIDTH = 6.0


def disorder_nodes(sigma_max_V, temperature_K=293.0, tol=1e-8, minimum=32, half_width=QUADRATURE_HALF_WIDTH):
    """Trapezoid nodes that keep the disorder average within ``tol`` for sigma_1S up to ``sigma_max_V``
    on +-``half_width`` sigma."""
    kT = BOLTZMANN_EV_PER_K * float(temperature_K)
    step = 2 * math.pi**2 * kT / (float(sigma_max_V) * math.log(2.0 / tol))
    return max(minimum, int(math.ceil(2 * float(half_width) / step)) + 1)


def quadrature_rule(n_nodes, half_width=QUADRATURE_HALF_WIDTH):
    """Nodes z and weights w of the standard-normal average (NumPy), sum(w) = 1."""
    z = np.linspace(-float(half_width), float(half_width), int(n_nodes))
    w = np.exp(-0.5 * z**2)
    return z, w / w.sum()


def charge_fractions(potential_V, V_1S, V_C=0.0, temperature_K=293.0, g_e=2):
    """f_0..f_{g_e} at ``potential_V`` without disorder (eq. S10-S13, sign-corrected). Last axis = n.

    Potentials in volts against the same reference; temperature in kelvin.  All arguments broadcast.

    One exponential per point: with a = e (V - V_1S) / kT and t = exp(-|a|) <= 1, the weights are
    binom(g_e, n) c_n t^n for a >= 0 and binom(g_e, n) c_n t^(g_e - n) for a < 0 (the same weights
    divided by exp(-g_e a)), c_n = exp(-e V_C n (n - 1) / (2 kT)); neither form overflows.  This is
    the model's innermost loop (points x disorder nodes), so it is kept to one fused elementwise
    pass (the log-sum-exp form with a Softmax op was 1.5-3x slower, measured with its gradient).
    """
    return pt.stack(_fraction_list(potential_V, V_1S, V_C, temperature_K, g_e), axis=-1)


def _fraction_list(potential_V, V_1S, V_C, temperature_K, g_e):
    """[f_0, ..., f_{g_e}] of :func:`charge_fractions` as separate arrays (not stacked)."""
    beta = 1.0 / (BOLTZMANN_EV_PER_K * pt.as_tensor_variable(temperature_K))  # 1/eV
    a = beta * (pt.as_tensor_variable(potential_V) - pt.as_tensor_variable(V_1S))
    filling = pt.ge(a, 0.0)  # level above the Fermi level: few electrons
    # exp(-|a|) with the gated sign, not abs(): abs has a zero derivative at a = 0; one exponential per
    # element (two gated ones cost 10-15 % of the joint model's gradient)
    t = pt.exp(-pt.switch(filling, a, -a))
    V_C = pt.as_tensor_variable(V_C)
    w = []
    for n in range(g_e + 1):
        power = pt.switch(filling, t**n, t ** (g_e - n)) if g_e else a * 0 + 1.0
        c = pt.exp(-beta * V_C * (n * (n - 1) / 2.0)) if n > 1 else 1.0
        w.append(math.comb(g_e, n) * c * power)
    Z = w[0]
    for x in w[1:]:
        Z = Z + x
    inv_Z = 1.0 / Z
    return [x * inv_Z for x in w]


def charge_fractions_disordered(
    potential_V, V_1S, V_C=0.0, sigma_1S=0.1, temperature_K=293.0, g_e=2, n_nodes=DEFAULT_QUADRATURE_NODES,
    half_width=QUADRATURE_HALF_WIDTH,
):
    """Fractions averaged over V_1S' ~ Normal(V_1S, sigma_1S) (trapezoid quadrature, ``n_nodes`` nodes).

    sigma_1S = 0 reduces exactly to :func:`charge_fractions`.  ``half_width`` (in sigma) bounds the
    nodes: +-6 drops a Gaussian tail of 2e-9 and lets 40 nodes do what 64 do on +-9 (models use it).
    """
    x, w = quadrature_rule(n_nodes, half_width)
    V_1S = pt.as_tensor_variable(V_1S)[..., None]
    sigma = pt.as_tensor_variable(sigma_1S)[..., None]
    level = V_1S + sigma * x  # (..., nodes)
    f = _fraction_list(
        pt.as_tensor_variable(potential_V)[..., None],
        level,
        pt.as_tensor_variable(V_C)[..., None],
        pt.as_tensor_variable(temperature_K)[..., None],
        g_e,
    )  # g_e + 1 arrays (..., nodes)
    # average each fraction over the nodes before stacking: no (..., nodes, n) array is joined (and split
    # again in the gradient), so each reduction fuses with the elementwise pass that feeds it
    return pt.stack([pt.sum(x * w, axis=-1) for x in f], axis=-1)


def charge_fractions_uniform(mean_electrons, g_e=2):
    """Uniform doping: f_0..f_{g_e} (last axis) when every QD holds floor(<n_e>) or ceil(<n_e>) electrons.

    f_n = max(0, 1 - |n - <n_e>|), <n_e> clipped to [0, g_e]: f_floor = 1 - frac, f_ceil = frac, the others 0, so
    sum_n f_n = 1 and sum_n n f_n = <n_e>.  Piecewise linear in <n_e> (kinks at the integers, the kink of SI
    Fig. S6b); the gradient is 1 or -1 between them.
    """
    m = pt.clip(pt.as_tensor_variable(mean_electrons), 0.0, float(g_e))
    return pt.stack([pt.maximum(0.0, 1.0 - pt.abs(m - float(n))) for n in range(g_e + 1)], axis=-1)


def mean_electrons(charge_fractions):
    """<n_e> = sum_n n f_n (eq. S14); last axis of ``charge_fractions`` is n."""
    f = pt.as_tensor_variable(charge_fractions)
    n = pt.arange(f.shape[-1], dtype="float64")
    return pt.sum(f * n, axis=-1)


def effective_temperature_K(sigma_1S, temperature_K=293.0):
    """Temperature (K) whose Fermi-Dirac width matches Gaussian level disorder ``sigma_1S`` (V).

    At V_C = 0, <n_e>(V)/g_e is a logistic CDF of scale kT; disorder convolves it with a normal of
    width sigma_1S.  Matching variances, (pi^2/3) kT_eff^2 = (pi^2/3) kT^2 + sigma^2.  An
    approximation (the convolution is not exactly logistic): for sigma_1S = 110 mV at 293 K it gives
    ~760 K, against the 841 K of the paper's separate effective-temperature fit.
    """
    kT = BOLTZMANN_EV_PER_K * pt.as_tensor_variable(temperature_K)
    sigma = pt.as_tensor_variable(sigma_1S)
    return pt.sqrt(kT**2 + 3.0 * sigma**2 / np.pi**2) / BOLTZMANN_EV_PER_K
