"""Measured gain thresholds with credible intervals, beside the transition-counting prediction (paper Fig. 5b).

The paper's point is the comparison of the thresholds *measured* at each potential (black squares, e.g.
0.80 excitons/QD at <n_e> ~ 0.94) with transition counting's *prediction* (red line, 1.06 there).
:func:`~.quantities.thresholds_at_potentials` gives the prediction; this module gives the measurement:
per film TA potential, the <N> at which the window A* at the gain delay (the measured delay nearest
5 ps, :data:`bayesgain.preprocess.GAIN_DELAY_PS`) crosses zero, from a curve of A* versus <N> that does not
use transition counting.  The prediction it is compared with (:func:`predicted_readout_thresholds`) is
transition counting's for the same read-out: the same delay (the Auger cascade to it) on the measured
pre-pump absorbance, in transition counting's own scale (A_0 = g_e g_h units), without the fit's window terms;
at t = 0 it is the paper's red line.  The t = 0 threshold is kept beside it (``predicted_t0``): measured
against it, a 5 ps read-out sits ~0.05 excitons/QD high on data that follow transition counting (batch A:
+0.04-0.08, HDIs excluding 0 at 3 of 6 potentials), from the Auger decay by 5 ps and the absorption under
the band edge the pump does not bleach.  The latter remains in the comparison: a small known bias
towards "measured above predicted".  Measured term by term on the batch A demo fit (SYNTHETIC;
``benchmarks/readout_bias.py`` prints the table), at <n_e> = 0: +0.080 against
t = 0, +0.061 against the read-out (Auger to 5 ps: 0.019), +0.028 with the fitted bleach scale
gamma = 0.983 A_0 / g_e g_h in place of A_0 / g_e g_h (the unbleached window absorbance: 0.033), +0.024 with
the shift loss and occupancy bleach; every interval from the gamma row on holds 0.

It is a post-processing step of the posterior (the data are not used twice in one likelihood).  For each
thinned posterior draw:

1. <N> of every film TA file is that draw's ``ta_mean_excitons`` (the fit's film cross-section and
   fluence calibration); the observation is the window A* at the gain delay, with the draw's
   reflection-scale correction ``(s_V - 1) S`` added back when the fit has one (a calibration of the
   measurement, fitted on the sub-gap data), and its noise sd is the draw's ``ta_noise_rel x A_0``
   (with the window SEM in quadrature under ``measurement_error = "sem+scatter"``);
2. a noise-perturbed replicate of the observations is drawn (parametric bootstrap: the curve fit's own
   uncertainty on top of the posterior's);
3. per potential the curve is fitted by weighted least squares and its first zero in [0, largest
   measured <N>] is the draw's measured threshold.

The curve family (:func:`ladder_curve`) is a Poisson mixture of a *free* per-QD absorption ladder::

    A(<N>) = sum_N P(N; <N>) b_N,  b_0 = A_pre (measured),  b_1 .. b_{K-1}, b_K = b_{>=K} free

written as A(<N>) = A_pre - sum_{j=1..K} d_j P(N >= j; <N>), linear in d.  With K = max(g_e, g_h)
(every carrier level full: a QD's band-edge absorption cannot change beyond K excitons) it holds every
per-QD absorption that depends on the number of excitons -- transition counting's at any doping mixture
exactly (b_N = sum_n f_n A*(N, n)), but also any other (an extra emission channel, a bleach of charged
dots) -- while assuming only Poisson excitation statistics, which the cross-section's definition
<N> = sigma J already implies.  Measured on transition-counting curves with the window's shift loss
(kappa = 0.3-0.6) and occupancy bleach at nine fluences over <N> = 0.3-7, the threshold error is below
0.005 excitons/QD at every doping; a saturating exponential A_pre + (A_inf - A_pre)(1 - e^{-N/N_s})
was off by up to 0.02 with residuals of 2-3 % of A_0, a stretched exponential by up to 0.02, a Hill curve
by up to 0.06.  Where a potential has fewer fluences than K + 1, K is lowered to (fluences - 1).

No extrapolation: the curve is anchored at <N> = 0 by the measured A_pre and read only up to the largest
measured <N> of the draw; a draw whose curve stays above zero there has no measured threshold (NaN).  A
potential is reported only when at least ``1 - (1 - prob) / 2`` of the draws cross (else NaN with the
reason), so the interval is not made of a truncated set of draws.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..physics.api import band_edge_absorption

__all__ = ["ladder_basis", "ladder_curve", "fit_ladder", "crossings", "measured_thresholds_from_draws", "screen",
           "compare", "gain_delay_points", "predicted_readout_thresholds", "measured_thresholds", "threshold_comparison", "COLUMNS"]

COLUMNS = ["potential_V", "n_e", "measured_median", "measured_hdi_low", "measured_hdi_high", "predicted_median",
           "difference_median", "difference_hdi_low", "difference_hdi_high"]
_GRID = 2001  # points of the crossing search per draw and potential: error < (largest <N>) / 2000 before refinement


def ladder_basis(mean_excitons, K):
    """P(N >= j; <N>) for j = 1..K: array (..., K) (the survival functions of the Poisson distribution)."""
    from scipy import special

    m = np.asarray(mean_excitons, float)[..., None]
    # pdtrc(j - 1, m) = P(N >= j): scipy.stats.poisson.sf's own kernel, without its per-call argument handling
    return special.pdtrc(np.arange(K), m)


def ladder_curve(mean_excitons, A_pre, d):
    """A(<N>) = A_pre - sum_j d_j P(N >= j; <N>); ``d`` (..., K) broadcast against ``mean_excitons`` (..., G)."""
    d = np.asarray(d, float)
    B = ladder_basis(mean_excitons, d.shape[-1])  # (..., G, K)
    return np.asarray(A_pre, float)[..., None] - np.einsum("...gk,...k->...g", B, d)


def fit_ladder(mean_excitons, A, sd, A_pre, K):
    """Weighted least-squares ladder steps d (..., K) of A(<N>) through points (..., F) with sd (..., F)."""
    X = ladder_basis(mean_excitons, K)  # (..., F, K)
    w = 1.0 / np.asarray(sd, float) ** 2
    y = np.asarray(A_pre, float)[..., None] - np.asarray(A, float)
    XtW = X.swapaxes(-1, -2) * w[..., None, :]
    # the normal equations with a tiny ridge: the ladder basis is well conditioned (cond ~ 1e2 for K = 4 over
    # <N> = 0.3-7) but a draw whose files crowd together must not make the solve singular
    H = XtW @ X
    H = H + 1e-12 * np.trace(H, axis1=-2, axis2=-1)[..., None, None] * np.eye(K)
    return np.linalg.solve(H, (XtW @ y[..., None]))[..., 0]


def crossings(A_pre, d, upper):
    """First <N> in [0, upper] where the ladder curve reaches 0 (linear interpolation on a fine grid), NaN if none.

    ``A_pre`` (...), ``d`` (..., K), ``upper`` (...).  0 where A_pre <= 0 (transparent before the pump)."""
    grid = np.asarray(upper, float)[..., None] * np.linspace(0.0, 1.0, _GRID)  # (..., G)
    out = _first_zero(grid, ladder_curve(grid, A_pre, d))
    return np.where(np.isinf(out), np.nan, out)


def measured_thresholds_from_draws(mean_excitons, observed, noise_sd, A_pre, potential_of_file, levels,
                                   seed=0, bootstrap=True):
    """Measured threshold per draw and potential from per-draw <N> and observations: (D, P) array.

    ``mean_excitons`` (D, F): each draw's <N> of every file; ``observed`` (F,) or (D, F): window A* at the
    gain delay (per draw when a per-draw correction was applied); ``noise_sd`` broadcastable to (D, F);
    ``A_pre`` (P,): measured pre-pump window absorbance; ``potential_of_file`` (F,) ints in 0..P-1;
    ``levels``: K of the ladder (max(g_e, g_h)).  ``bootstrap``: add one N(0, sd) replicate noise per draw
    (the curve fit's own uncertainty).  NaN where the curve stays above 0 up to the draw's largest <N>.
    """
    N = np.atleast_2d(np.asarray(mean_excitons, float))
    D, F = N.shape
    y = np.broadcast_to(np.asarray(observed, float), (D, F)).copy()
    sd = np.broadcast_to(np.asarray(noise_sd, float), (D, F))
    if np.any(~np.isfinite(sd)) or np.any(sd <= 0):
        raise ValueError("noise_sd must be finite and positive for every file and draw")
    if bootstrap:
        y = y + sd * np.random.default_rng(seed).standard_normal((D, F))
    pof = np.asarray(potential_of_file, int)
    A_pre = np.asarray(A_pre, float)
    out = np.full((D, A_pre.size), np.nan)
    for p in range(A_pre.size):
        cols = np.nonzero(pof == p)[0]
        if cols.size < 2:
            continue
        K = int(min(levels, cols.size - 1))
        d = fit_ladder(N[:, cols], y[:, cols], sd[:, cols], np.full(D, A_pre[p]), K)
        out[:, p] = crossings(np.full(D, A_pre[p]), d, N[:, cols].max(axis=1))
    return out


def screen(measured, n_files, upper, prob=0.94):
    """Potentials whose measured threshold can be reported: (measured with NaN columns where not, reasons).

    A potential needs two or more files, and at least ``1 - (1 - prob) / 2`` of its draws must cross 0 within
    their measured <N> (else the interval would be built from a truncated set of draws).  ``upper`` (D, P):
    each draw's largest measured <N> per potential (for the reason's text)."""
    meas = np.array(measured, float, copy=True)
    need = 1.0 - (1.0 - prob) / 2.0
    reasons = []
    for p in range(meas.shape[1]):
        ok = np.isfinite(meas[:, p])
        if n_files[p] < 2:
            reasons.append(f"{n_files[p]} film TA file(s) at this potential: a curve needs two or more")
        elif ok.mean() < need:
            reasons.append(f"A* does not reach 0 within the measured <N> range (up to "
                           f"{np.median(upper[:, p]):.3g} excitons/QD) in {1 - ok.mean():.0%} of the draws; "
                           "not extrapolated")
        else:
            reasons.append("")
        if reasons[-1]:
            meas[:, p] = np.nan
    return meas, reasons


def compare(measured, predicted, prob=0.94):
    """Median and HDI of measured, and of measured - predicted per draw, per potential: list of dicts with
    ``measured_*``, ``predicted_median``, ``difference_*`` (``prob`` HDIs) and ``excludes_zero``.

    ``excludes_zero`` reads the difference's *simultaneous* interval over the reported potentials (each at
    1 - (1 - prob) / P, Bonferroni), also in ``difference_sim_low/high``: with six potentials, six 94 % intervals
    exclude 0 somewhere by chance in ~30 % of matched experiments (seen on matched SYNTHETIC data: -0.04
    [-0.040, -0.006] at the most charged potential), the simultaneous ones in ~6 %."""
    from .quantities import hdi_table

    dims = ("sample", "potential")
    meas = np.asarray(measured, float)
    pred = np.asarray(predicted, float)
    mt = hdi_table(xr.DataArray(meas, dims=dims), prob=prob)
    dt = hdi_table(xr.DataArray(meas - pred, dims=dims), prob=prob)
    n_reported = max(int(np.sum(np.isfinite(meas).any(axis=0))), 1)
    st = hdi_table(xr.DataArray(meas - pred, dims=dims), prob=1.0 - (1.0 - prob) / n_reported)
    pm = np.nanmedian(np.where(np.isfinite(pred), pred, np.nan), axis=0)
    rows = []
    for k in range(meas.shape[1]):
        lo, hi = float(dt["hdi_low"].values[k]), float(dt["hdi_high"].values[k])
        slo, shi = float(st["hdi_low"].values[k]), float(st["hdi_high"].values[k])
        rows.append({"measured_median": float(mt["median"].values[k]), "measured_hdi_low": float(mt["hdi_low"].values[k]),
                     "measured_hdi_high": float(mt["hdi_high"].values[k]), "predicted_median": float(pm[k]),
                     "difference_median": float(dt["median"].values[k]), "difference_hdi_low": lo,
                     "difference_hdi_high": hi, "difference_sim_low": slo, "difference_sim_high": shi,
                     "excludes_zero": bool(np.isfinite(slo) and np.isfinite(shi) and (slo > 0 or shi < 0))})
    return rows


def gain_delay_points(model, experiment=0, delay_ps=None):
    """The film TA point read at the gain delay for every file of one experiment.

    Returns (points (F,), file ids (F,), potential index (F,), phrase naming the delays): per file, the
    "gain" point at the measured delay nearest ``delay_ps`` (default :data:`bayesgain.preprocess.GAIN_DELAY_PS`,
    within 25 %, :func:`bayesgain.preprocess.delay_selection`)."""
    from ..preprocess import GAIN_DELAY_PS, delay_selection

    delay_ps = GAIN_DELAY_PS if delay_ps is None else float(delay_ps)
    d = model.data
    gain = np.nonzero((d["ta_point_component"].values == "gain") & (d["ta_point_experiment"].values == experiment))[0]
    if gain.size == 0:
        raise ValueError("measured thresholds need the gain component (film TA points at the gain delays)")
    files = np.unique(model.file_index[gain])
    points, phrases = [], set()
    for f in files:
        mine = gain[model.file_index[gain] == f]
        idx, how = delay_selection(d["ta_point_delay"].values[mine], delay_ps)
        points.append(int(mine[idx[0]]))
        phrases.add(how)
    points = np.asarray(points)
    return points, files, model.ta_potential_index[points], "; ".join(sorted(phrases))


def _draws(model, names, experiment, take):
    from .quantities import posterior_samples

    s, _ = posterior_samples(model, names, experiment)
    return {k: (None if v is None else v[take]) for k, v in s.items()}


def predicted_readout_thresholds(model, experiment, take, delay_ps, upper, n_grid=241):
    """Transition counting's prediction of the measured threshold: per draw and potential, the <N> where
    A_pre(V) + (A_0 / g_e g_h) [A_TC(<N>, f, t) - A_TC(0, f)] reaches 0 at the read-out delay t: (D, P); inf where
    it stays above 0 up to ``upper`` (D,).

    A_TC is the ensemble absorption of transition counting through the Auger cascade to t (the draw's rates,
    hole trapping and charge fractions; at t = 0 its zero is :func:`.quantities.thresholds_at_potentials`),
    A_pre the measured pre-pump window absorbance of the potential and A_0 the measured neutral one: transition
    counting's own scale (the neutral band edge is g_e g_h units), not the fit's window terms (gamma, the
    occupancy bleach, the shift loss), which a film departing from transition counting bends to fit and would
    hide the departure (measured: on the ``charged-extra-emission`` scenario the fit took gamma = 2.0 x A_0 / g_e g_h
    and a window bleach of -1.5 A_0 per electron, and its own read-out crossing then matched the data).  Against
    the t = 0 threshold this removes the Auger decay by the read-out delay (+0.02 excitons/QD on batch A); it
    keeps the absorption under the band edge that the pump does not bleach (+0.03 there), which only the fitted
    gamma describes (``benchmarks/readout_bias.py``)."""
    from .quantities import CASCADE_PARAMETERS, _cascade_draw_fn, _trap_form, cascade_arguments

    d = model.data
    g_e = int(d["experiment_g_e"].values[experiment])
    g_h = int(d["experiment_g_h"].values[experiment])
    sel = np.nonzero(d["ta_potential_experiment"].values == experiment)[0]
    s = _draws(model, [*CASCADE_PARAMETERS, "ta_charge_fractions"], experiment, take)
    D = take.size
    f = s["ta_charge_fractions"][:, sel]  # (D, P, S)
    P, S = f.shape[1:]
    A_tc0 = f @ band_edge_absorption(np.zeros(S), np.arange(S), g_e, g_h)  # A*(0, n) of eq. S6
    a_pre = d["ta_potential_A_pre_OD"].values[sel]
    scale = float(d["experiment_film_A0_1S_OD"].values[experiment]) / (g_e * g_h)
    u = np.linspace(0.0, 1.0, n_grid)
    fn = _cascade_draw_fn(g_e, g_h, max(int(model.n_max_film or model.n_max), g_h + 1), hole_trapping=_trap_form(model))
    out = np.full((D, P), np.inf)
    for i in range(D):
        N = upper[i] * u
        A = fn(*cascade_arguments(s, i), np.tile(N, P), np.repeat(f[i], n_grid, axis=0),
               np.array([float(delay_ps)]))[:, 0].reshape(P, n_grid)
        out[i] = _first_zero(N, a_pre[:, None] + scale * (A - A_tc0[i][:, None]))
    return out


def _first_zero(x, y):
    """First x where y (..., G) reaches 0, linearly interpolated; 0 where y[..., 0] <= 0, inf where never.
    ``x``: (G,) shared or (..., G)."""
    x = np.broadcast_to(np.asarray(x, float), y.shape)
    below = y <= 0
    j = np.clip(np.argmax(below, axis=-1), 1, y.shape[-1] - 1)[..., None]
    a0, a1 = np.take_along_axis(y, j - 1, -1)[..., 0], np.take_along_axis(y, j, -1)[..., 0]
    x0, x1 = np.take_along_axis(x, j - 1, -1)[..., 0], np.take_along_axis(x, j, -1)[..., 0]
    frac = np.where(a0 != a1, a0 / np.where(a0 != a1, a0 - a1, 1.0), 0.0)
    out = np.where(below.any(axis=-1), x0 + np.clip(frac, 0.0, 1.0) * (x1 - x0), np.inf)
    return np.where(y[..., 0] <= 0, 0.0, out)


def measured_thresholds(model, experiment=0, max_samples=400, seed=0, delay_ps=None, prob=0.94):
    """Measured and predicted thresholds and their difference at every film TA potential of one experiment.

    Returns an ``xarray.Dataset`` with ``measured``, ``predicted``, ``difference`` (measured - predicted, per
    draw) and ``mean_electrons`` on (sample, potential), and ``reason`` (potential; empty where reported);
    attrs: the read-out delay and the curve family.  Draws are thinned to ``max_samples`` (the same draws for
    both)."""
    from .quantities import posterior_samples, thresholds_at_potentials

    d = model.data
    points, files, pot_index, how = gain_delay_points(model, experiment, delay_ps)
    sel = np.nonzero(d["ta_potential_experiment"].values == experiment)[0]
    names = ["ta_mean_excitons", "ta_noise_rel", "reflection_scale"]
    s, take = posterior_samples(model, names, experiment, max_samples, seed)
    N = s["ta_mean_excitons"][:, files]
    y = d["ta_A"].values[points][None, :]
    if s["reflection_scale"] is not None and "ta_reflection_sensitivity" in d:
        y = y + (s["reflection_scale"][:, pot_index] - 1.0) * d["ta_reflection_sensitivity"].values[points]
    A0 = float(d["experiment_film_A0_1S_OD"].values[experiment])
    sd = (A0 * s["ta_noise_rel"])[:, None] * np.ones(points.size)
    if model.spec.options.get("measurement_error") == "sem+scatter" and "ta_A_sem" in d:
        sd = np.sqrt(sd**2 + d["ta_A_sem"].values[points] ** 2)
    local = np.searchsorted(sel, pot_index)  # position of each file's potential within the experiment
    g_e = int(d["experiment_g_e"].values[experiment])
    g_h = int(d["experiment_g_h"].values[experiment])
    A_pre = d["ta_potential_A_pre_OD"].values[sel]
    meas = measured_thresholds_from_draws(N, y, sd, A_pre, local, max(g_e, g_h), seed=seed)
    at = thresholds_at_potentials(model, experiment)
    pred_t0 = at["threshold_mean_excitons"].values[take]
    ne = at["mean_electrons"].values[take]
    delay = float(d["ta_point_delay"].values[points[0]])
    pred = predicted_readout_thresholds(model, experiment, take, delay, N.max(axis=1))
    n_files = np.bincount(local, minlength=sel.size)
    upper = np.stack([N[:, local == p].max(axis=1) if n_files[p] else np.zeros(N.shape[0]) for p in range(sel.size)], 1)
    meas, reasons = screen(meas, n_files, upper, prob)
    diff = meas - pred
    dims = ("sample", "potential")
    V = d["ta_potential_V"].values[sel]
    return xr.Dataset(
        {"measured": (dims, meas, {"units": "excitons/QD"}), "predicted": (dims, pred, {"units": "excitons/QD"}),
         "difference": (dims, diff, {"units": "excitons/QD"}), "mean_electrons": (dims, ne),
         "predicted_t0": (dims, pred_t0, {"units": "excitons/QD"}), "difference_t0": (dims, meas - pred_t0),
         "reason": (("potential",), np.array(reasons, dtype=object))},
        coords={"potential": V},
        attrs={"read_out": how, "family": f"Poisson mixture of a free absorption ladder, K = {max(g_e, g_h)}",
               "hdi_prob": prob, "draws": int(take.size)})


def threshold_comparison(model, experiment=0, max_samples=400, seed=0, prob=0.94):
    """Rows of thresholds_measured.csv (dicts with :data:`COLUMNS`, plus ``reason`` and ``excludes_zero``)
    and the Dataset of :func:`measured_thresholds`."""
    ds = measured_thresholds(model, experiment, max_samples, seed, prob=prob)
    rows = compare(ds["measured"].values, ds["predicted"].values, prob)
    for k, (row, V) in enumerate(zip(rows, ds["potential"].values)):
        row.update(potential_V=float(V), n_e=float(np.median(ds["mean_electrons"].values[:, k])),
                   reason=str(ds["reason"].values[k]))
    return rows, ds
