"""Classic analysis: the paper's own fitting methods, each returning a value and its uncertainty.

These are the baselines the Bayesian models are compared with.  The least-squares helpers (saturation,
cross-section, Fermi-Dirac fits) live in :mod:`bayesgain.fitting`, shared with the model's sizing, and the
read-out delays in :mod:`bayesgain.preprocess`; both are re-exported here:

* :func:`fit_cross_section` -- absorption cross-section at the pump wavelength from the 1-3 ns
  solution bleach versus depth-averaged fluence, |Delta A| = a (1 - exp(-sigma J')) (SI eq. S34).
* :func:`threshold_from_bleach` -- heuristic |Delta A_avg| = A (1 - exp(-B <N>)) solved for
  |Delta A| = A_0 (SI "Error calculations"); the uncertainty is the delta-method *variance*
  g^T Sigma g (the printed formula mixes variances and standard deviations; we return its square root).
* :func:`fit_fermi_dirac` -- least squares of <n_e>(V) with Gaussian level disorder
  (:func:`bayesgain.physics.charge_fractions`), standard errors from the Jacobian.
* :func:`nested_exponential_fits` / :func:`biexciton_lifetime` -- SI eq. S35: the lowest fluence
  is fitted with one exponential plus a constant background, its rate is then fixed and one more
  exponential is added for the next fit.
* :func:`gain_lifetime` -- first delay at which the window-averaged A* returns to >= 0.
* :func:`single_wavelength_thresholds` / :func:`lowest_gain_threshold` -- the same heuristic fit at
  every probe wavelength, solved for A*(lambda) = -g_min d / ln10 (main text Fig. 5d-f): the lowest
  <N> (and photons/cm^2, nJ/cm^2) at which the gain coefficient reaches g_min (50 cm^-1).
* :func:`gain_lifetime_fit` -- Fig. S28: zero crossing of a sum of exponentials + constant fitted to -A*(t).
* :func:`classic_analysis` runs everything on a loaded experiment; :func:`write_classic_csv`.

Degenerate inputs (too few points, fits that do not converge, thresholds not reached) raise
ValueError with a message; :func:`classic_analysis` turns those into rows with ``value`` NaN and the
message in ``note`` -- a NaN never appears without a note.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import xarray as xr
from scipy import optimize

from . import physics as ph
from . import preprocess as pp
from ._atomic import atomic_path
from .fitting import (V_C_BOUNDS_V, check_series, curve_fit_checked, fit_cross_section, fit_fermi_dirac,
                      fit_fermi_dirac_effective_temperature, fit_saturation, fit_saturation_many)
from .physics.constants import LN10
from .preprocess import GAIN_DELAY_PS, SPECTRAL_GAIN_DELAYS_PS, delay_selection

__all__ = [
    "ThresholdNotReached",
    "GAIN_DELAY_PS",
    "SPECTRAL_GAIN_DELAYS_PS",
    "delay_selection",
    "fit_saturation",
    "fit_cross_section",
    "cross_section_from_tree",
    "threshold_from_bleach",
    "film_thresholds",
    "solution_threshold",
    "fit_fermi_dirac",
    "V_C_BOUNDS_V",
    "fit_fermi_dirac_effective_temperature",
    "nested_exponential_fits",
    "biexciton_lifetime",
    "biexciton_lifetime_robust",
    "biexciton_lifetime_from_traces",
    "gain_lifetime",
    "gain_lifetime_with_uncertainty",
    "classic_analysis",
    "write_classic_csv",
    "threshold_at_level",
    "fit_saturation_many",
    "single_wavelength_thresholds",
    "lowest_gain_threshold",
    "gain_lifetime_fit",
]


class ThresholdNotReached(ValueError):
    """The fitted saturation amplitude A does not exceed the absorption A_0: no gain at any fluence."""


def cross_section_from_tree(tree, window=None, delays_ps=(1000.0, 3000.0)):
    """Solution cross-section: window-averaged bleach (1S window of the solution absorbance) averaged
    over ``delays_ps``, fitted with :func:`fit_cross_section`."""
    sol = tree["solution"]
    ta = sol["ta"]
    bw = pp.resolve_window(tree, window, probe_wavelengths=ta["wavelength"].values, which="solution")
    d = ta["delay"].values
    dsel = (d >= delays_ps[0]) & (d <= delays_ps[1])
    if not dsel.any():
        raise ValueError(f"no solution TA delays within {delays_ps} ps (range {d.min():g}..{d.max():g} ps)")
    late = ta.isel(delay=np.nonzero(dsel)[0]).mean("delay").assign_attrs(units="OD")
    mean, sem = pp.window_average(late, bw)
    out = fit_cross_section(ta["fluence"].values, -mean.values, float(sol.attrs["pump_absorbance"]))
    out["window_nm"] = bw.bounds
    return out


# ----------------------------------------------------------------------------- threshold
def threshold_from_bleach(mean_excitons, bleach_OD, A0_OD, A0_sd_OD=0.0, sigma_OD=None):
    """Gain threshold <N_gain> from |Delta A_avg| = A (1 - exp(-B <N>)) solved for |Delta A| = A_0.

    <N_gain> = -ln(1 - A_0/A) / B.  Its variance is the delta method g^T Sigma g with g = (df/dA,
    df/dB) and Sigma the fit covariance (plus (df/dA_0)^2 A0_sd^2, A_0 independent of the fit); the
    SI formula is this variance although it is printed as sigma.  Returns a dict with ``value``,
    ``uncertainty`` (standard deviation), ``A``, ``B``, ``cov``.  Raises :class:`ThresholdNotReached`
    when A_0 >= A (the bleach saturates below the absorption) and ValueError when A_0 <= 0 (the film
    is already transparent without pump: the threshold is 0 by definition).
    """
    A0 = float(A0_OD)
    if not np.isfinite(A0):
        raise ValueError("A_0 is not finite")
    if A0 <= 0:
        raise ValueError(f"absorption A_0 = {A0:.3g} OD <= 0 before the pump: already transparent, threshold 0")
    popt, pcov = fit_saturation(mean_excitons, np.abs(np.asarray(bleach_OD, float)), sigma_OD,
                                name="threshold fit |dA| = A (1 - exp(-B N))")
    A, B = popt
    if B <= 0:
        raise ValueError(f"threshold fit: rate B = {B:g} <= 0")
    if A0 >= A:
        raise ThresholdNotReached(f"threshold not reached: fitted saturation bleach A = {A:.3g} OD "
                                  f"<= A_0 = {A0:.3g} OD")
    u = A0 / A
    f = -math.log1p(-u) / B
    dfdA = -(A0 / A**2) / ((1.0 - u) * B)
    dfdB = -f / B
    dfdA0 = 1.0 / (A * (1.0 - u) * B)
    g = np.array([dfdA, dfdB])
    var = float(g @ pcov @ g) + dfdA0**2 * float(A0_sd_OD) ** 2
    return dict(value=f, uncertainty=math.sqrt(max(var, 0.0)), A=float(A), B=float(B), cov=pcov, unit="excitons/QD")


def _delay_mean(da, delays_ps):
    idx, how = delay_selection(da["delay"].values, delays_ps)
    return da.isel(delay=idx).mean("delay").assign_attrs(units="OD", read_out=how)


def film_thresholds(tree, cross_section_cm2, corrected=None, window=None, delays_ps=GAIN_DELAY_PS):
    """Gain threshold per film TA potential (SI Fig. S26 method).

    Bleach: -Delta A_TA (reflection corrected) averaged over the 1S window, read at ``delays_ps``
    (:func:`delay_selection`: default the delay nearest 5 ps, as the paper, after thermalisation);
    level: window average of A_0 + Delta A_SEC(V) (the absorption left before the pump);
    <N> = sigma J.  Returns {potential: dict or ValueError}.
    """
    corrected = pp.reflection_correct_film(tree) if corrected is None else corrected
    esa = pp.excited_state_absorption(tree, corrected)
    lam = corrected["dA"]["wavelength"].values
    bw = pp.resolve_window(tree, window, probe_wavelengths=lam)
    bleach, bleach_sem = pp.window_average(-_delay_mean(corrected["dA"], delays_ps), bw)
    level, level_sem = pp.window_average(esa["A_pre"], bw)
    N = cross_section_cm2 * corrected["fluence"].values
    out = {}
    for V in corrected["potential"].values:
        try:
            out[float(V)] = threshold_from_bleach(N, bleach.sel(potential=V).values, float(level.sel(potential=V)),
                                                  float(level_sem.sel(potential=V)))
        except ValueError as err:
            out[float(V)] = err
    return out


def solution_threshold(tree, cross_section_cm2, window=None, delays_ps=GAIN_DELAY_PS):
    """Gain threshold of the QD solution: -Delta A over the 1S window (solution absorbance fit) and
    ``delays_ps`` (:func:`delay_selection`, default 5 ps) versus <N> = sigma J' (depth-averaged fluence), solved for the window-averaged
    absorbance A_0 of the solution (interpolated onto the TA grid).  Returns the
    :func:`threshold_from_bleach` dict."""
    sol = tree["solution"]
    ta = sol["ta"]
    lam = ta["wavelength"].values
    bw = pp.resolve_window(tree, window, probe_wavelengths=lam, which="solution")
    bleach, _ = pp.window_average(-_delay_mean(ta, delays_ps), bw)
    A0 = sol["absorbance"].rename(wavelength_spectrum="wavelength").interp(wavelength=lam).assign_attrs(units="OD")
    level, level_sem = pp.window_average(A0, bw)
    N = cross_section_cm2 * ph.depth_averaged_fluence(ta["fluence"].values, float(sol.attrs["pump_absorbance"]))
    return threshold_from_bleach(N, bleach.values, float(level), float(level_sem))


# ----------------------------------------------------------------------------- multi-exponentials
def nested_exponential_fits(delays_ps, traces, n_terms=2, t_min_ps=1.0):
    """SI eq. S35: -Delta A(t) = BG + sum_i A_i exp(-r_i t), fitted with increasing order.

    ``traces`` (F, T): -Delta A per fluence (lowest first); fit k (k = 1..n_terms) uses trace k-1
    with the rates r_1..r_{k-1} of the earlier fits fixed and a new free rate r_k.  Only delays >=
    ``t_min_ps`` are used.  Returns a list of dicts (one per order): ``rate`` (1/ps), ``rate_sd``,
    ``lifetime_ps``, ``lifetime_sd_ps``, ``popt``.
    """
    t = np.asarray(delays_ps, float)
    Y = np.atleast_2d(np.asarray(traces, float))
    if Y.shape[0] < n_terms:
        raise ValueError(f"nested fits need {n_terms} traces, got {Y.shape[0]}")
    sel = t >= t_min_ps
    if sel.sum() < 2 * n_terms + 3:
        raise ValueError(f"only {int(sel.sum())} delays >= {t_min_ps} ps for a {n_terms}-term fit")
    t = t[sel]
    tscale = t.max()
    ts = t / tscale
    fixed = []
    out = []
    for k in range(n_terms):
        y = Y[k, sel]
        check_series(ts, y, f"exponential fit of order {k + 1}")
        ys = np.max(np.abs(y)) or 1.0
        yn = y / ys
        nf = len(fixed)

        def f(x, bg, *p, _fixed=tuple(fixed), _nf=nf):
            amps = p[:_nf + 1]
            r_new = p[_nf + 1]
            val = bg + sum(a * np.exp(-r * x) for a, r in zip(amps[:_nf], _fixed))
            return val + amps[_nf] * np.exp(-r_new * x)

        best = None
        for r_try in (3.0, 10.0, 30.0, 100.0):
            p0 = [yn[-1]] + [yn[0] / (nf + 1)] * (nf + 1) + [r_try]
            try:
                popt, pcov = curve_fit_checked(f, ts, yn, p0, f"exponential fit of order {k + 1} (eq. S35)",
                                        bounds=([-np.inf] * (nf + 2) + [1e-6], [np.inf] * (nf + 2) + [1e4]))
            except ValueError as err:
                last = err
                continue
            ssr = float(np.sum((f(ts, *popt) - yn) ** 2))
            if best is None or ssr < best[0]:
                best = (ssr, popt, pcov)
        if best is None:
            raise last
        _, popt, pcov = best
        r = popt[-1] / tscale
        r_sd = math.sqrt(pcov[-1, -1]) / tscale
        if r <= 0 or popt[nf + 1] == 0:
            raise ValueError(f"exponential fit of order {k + 1}: degenerate term (rate {r:g}/ps)")
        fixed.append(popt[-1])
        out.append(dict(rate=float(r), rate_sd=float(r_sd), lifetime_ps=float(1.0 / r),
                        lifetime_sd_ps=float(r_sd / r**2), popt=popt, order=k + 1))
    return out


XX_DOMINANCE = 0.5  # largest P(N>=3)/P(N>=2) at which biexcitons still dominate the multi-exciton decay


def _smooth_reference(x, y):
    """The reference trace as a smooth curve (constant + two exponentials, no meaning attached), so that
    its noise does not enter the next fit as an error in a regressor; the raw trace if no fit converges."""
    best = None
    for r0 in ((1.0, 10.0), (3.0, 30.0), (0.3, 10.0), (0.1, 3.0)):
        p0 = [y[-1], 0.5 * (y[0] - y[-1]), r0[0], 0.5 * (y[0] - y[-1]), r0[1]]
        try:
            popt, _ = curve_fit_checked(_multi_exp, x, y, p0, "reference smoothing")
        except ValueError:
            continue
        ssr = float(np.sum((_multi_exp(x, *popt) - y) ** 2))
        if best is None or ssr < best[0]:
            best = (ssr, _multi_exp(x, *popt))
    return y if best is None else best[1]


def biexciton_lifetime_from_traces(delays_ps, traces, mean_excitons, t_min_ps=1.0, min_significance=3.0):
    """Biexciton lifetime from band-edge bleach traces -Delta A(t) at several <N> (eq. S35, made robust).

    Why the plain nested fit fails: the single-exciton lifetime (~20 ns) is far beyond a 3 ns window,
    so the "one exponential + background" fit of the lowest fluence picks up its biexciton decay
    (~13 % of the amplitude at <N> = 0.3) and returns roughly tau_XX; the order-2 fit with that rate
    fixed then invents a faster term (triexciton, line shift) and reports it, tightly, as tau_XX.

    Here the lowest-fluence trace itself (smoothed) is the fixed lower-order term: each higher trace
    is fitted as y(t) = c y_ref(t) + A exp(-t / tau) over t >= ``t_min_ps``, whatever the single
    exciton does within the window.  Only traces where biexcitons dominate the multi-exciton
    population are used (Poisson P(N>=3)/P(N>=2) <= 0.5, <N> >= 1.5 <N>_ref).  A fit counts only when
    its biexciton amplitude A is resolved (A >= ``min_significance`` sd), the rate is determined
    (sd < 50 %, |correlation| with c and A < 0.995) and tau lies inside the fitted delays.  The value is
    that of the highest such <N> (largest biexciton signal); its sd adds in quadrature half the
    spread of the values over the usable fluences (the method's own dependence on the choice).
    Raises ValueError with the reason when no fluence qualifies.  Returns dict(lifetime_ps,
    lifetime_sd_ps, lifetime_stat_sd_ps, mean_excitons, index, candidates, note).
    """
    t = np.asarray(delays_ps, float)
    Y = np.atleast_2d(np.asarray(traces, float))
    N = np.asarray(mean_excitons, float).ravel()
    if Y.shape != (N.size, t.size):
        raise ValueError(f"biexciton lifetime: traces {Y.shape} do not match {N.size} fluences x {t.size} delays")
    if N.size < 2 or not np.all(np.isfinite(N) & (N > 0)):
        raise ValueError("biexciton lifetime: needs at least 2 fluences with finite <N> > 0")
    sel = t >= t_min_ps
    if sel.sum() < 8:
        raise ValueError(f"biexciton lifetime: only {int(sel.sum())} delays >= {t_min_ps} ps")
    order = np.argsort(N)
    ref_i = int(order[0])
    ts = t[sel].max()
    x = t[sel] / ts
    y_ref = Y[ref_i, sel]
    check_series(x, y_ref, "reference trace")
    p2 = -np.expm1(-N) - N * np.exp(-N)                   # Poisson P(N >= 2)
    p3 = p2 - 0.5 * N**2 * np.exp(-N)                      # P(N >= 3)
    ratio = p3 / p2
    eligible = [int(i) for i in order[1:] if N[i] >= 1.5 * N[ref_i] and ratio[i] <= XX_DOMINANCE]
    if not eligible:
        raise ValueError(f"no fluence where biexcitons dominate: need <N> >= {1.5 * N[ref_i]:.2g} with "
                         f"P(N>=3)/P(N>=2) <= {XX_DOMINANCE:g} (<N> <= ~1.8); <N> = "
                         + ", ".join(f"{v:.2g}" for v in N[order]))
    candidates, reasons = [], []
    for i in eligible:
        y = Y[i, sel]
        check_series(x, y, f"trace at <N> = {N[i]:.2g}")
        sy = np.max(np.abs(y)) or 1.0
        ref = _smooth_reference(x, y_ref / sy)
        c0 = y[-1] / y_ref[-1] if y_ref[-1] else 1.0

        def f(xx, c, a, r, _ref=ref):
            with np.errstate(over="ignore"):  # trial rates far below 0 overflow harmlessly
                return c * _ref + a * np.exp(-r * xx)

        best = None
        for r0 in (1.0, 3.0, 10.0, 30.0, 100.0):
            try:
                popt, pcov = curve_fit_checked(f, x, y / sy, [c0, (y[0] - c0 * y_ref[0]) / sy, r0],
                                        f"biexciton fit at <N> = {N[i]:.2g}")
            except ValueError:
                continue
            ssr = float(np.sum((f(x, *popt) - y / sy) ** 2))
            if best is None or ssr < best[0]:
                best = (ssr, popt, pcov)
        where = f"<N> = {N[i]:.2g}"
        if best is None:
            reasons.append(f"{where}: fit did not converge")
            continue
        _, popt, pcov = best
        sd = np.sqrt(np.clip(np.diag(pcov), 0.0, None))
        c, a, r = popt
        tau = ts / r if r > 0 else np.inf
        tau_sd = tau * sd[2] / r if r > 0 else np.inf
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = pcov[2, :2] / (sd[2] * sd[:2])
        if not a > min_significance * sd[1]:
            reasons.append(f"{where}: biexciton amplitude not resolved (A = {a * sy:.2g} +- {sd[1] * sy:.2g} OD)")
        elif not sd[2] < 0.5 * r:
            reasons.append(f"{where}: rate not determined (tau = {tau:.3g} +- {tau_sd:.2g} ps)")
        elif not np.all(np.abs(corr) < 0.995):
            reasons.append(f"{where}: ill-conditioned fit (|corr(rate, c/A)| = {np.nanmax(np.abs(corr)):.4f})")
        elif not t_min_ps < tau < t[sel].max():
            reasons.append(f"{where}: tau = {tau:.3g} ps outside the fitted delays {t_min_ps:g}-{t[sel].max():g} ps")
        else:
            candidates.append(dict(index=i, mean_excitons=float(N[i]), lifetime_ps=float(tau),
                                   lifetime_sd_ps=float(tau_sd)))
    if not candidates:
        raise ValueError("biexciton lifetime not resolved: " + "; ".join(reasons))
    pick = candidates[-1]
    vals = np.array([cnd["lifetime_ps"] for cnd in candidates])
    spread = 0.5 * float(vals.max() - vals.min())
    total = math.hypot(pick["lifetime_sd_ps"], spread)
    note = (f"reference <N> = {N[ref_i]:.2g} (smoothed, fixed), biexciton trace <N> = {pick['mean_excitons']:.2g}; "
            f"fit sd {pick['lifetime_sd_ps']:.2g} ps, spread over {len(candidates)} usable fluence(s) "
            + ", ".join(f"{v:.3g}" for v in vals) + " ps")
    if reasons:
        note += "; not used: " + "; ".join(reasons)
    return dict(lifetime_ps=pick["lifetime_ps"], lifetime_sd_ps=total, lifetime_stat_sd_ps=pick["lifetime_sd_ps"],
                mean_excitons=pick["mean_excitons"], index=pick["index"], candidates=candidates, note=note)


def biexciton_lifetime_robust(tree, corrected=None, window=None, potential=None, cross_section_cm2=None,
                              t_min_ps=1.0):
    """:func:`biexciton_lifetime_from_traces` on the neutral film's band-edge bleach; <N> = sigma J with
    sigma from :func:`cross_section_from_tree` unless given.  ValueError (with the reason) if not resolved."""
    corrected = pp.reflection_correct_film(tree) if corrected is None else corrected
    dA = corrected["dA"]
    bw = pp.resolve_window(tree, window, probe_wavelengths=dA["wavelength"].values)
    V = float(tree["film"].attrs["open_circuit_potential_V"]) if potential is None else float(potential)
    bleach, _ = pp.window_average(-dA.sel(potential=V, method="nearest"), bw)
    if cross_section_cm2 is None:
        if not pp._has(tree, "solution"):
            raise ValueError("biexciton lifetime needs <N> = sigma J: no /solution group for the cross-section")
        cross_section_cm2 = cross_section_from_tree(tree)["value"]
    N = float(cross_section_cm2) * dA["fluence"].values
    traces = bleach.transpose("fluence", "delay").values
    out = biexciton_lifetime_from_traces(dA["delay"].values, traces, N, t_min_ps=t_min_ps)
    out["fluence"] = float(dA["fluence"].values[out["index"]])
    return out


def biexciton_lifetime(tree, corrected=None, window=None, potential=None, fluence_indices=(0, 3), t_min_ps=1.0):
    """Biexciton lifetime (ps) on the neutral film (SI Fig. S27): band-edge -Delta A(t) at the
    fluences ``fluence_indices`` (single exponential at the first, fixed; second term = biexciton).
    The default (0, 3) follows the paper (biexciton from <N> = 1.3, Fig. S27c); on synthetic batch A
    (truth 310 ps) it gives 203 +- 32 ps against 164 +- 94 ps for (0, 1): the nested method is biased
    low because the "single-exciton" fit at <N> = 0.3 already absorbs ~13 % biexciton decay.
    ``potential`` defaults to the TA potential nearest open circuit.  Returns the order-2 dict of
    :func:`nested_exponential_fits` plus the single-exponential lifetime (``r1_lifetime_ps``)."""
    corrected = pp.reflection_correct_film(tree) if corrected is None else corrected
    dA = corrected["dA"]
    lam = dA["wavelength"].values
    bw = pp.resolve_window(tree, window, probe_wavelengths=lam)
    V = float(tree["film"].attrs["open_circuit_potential_V"]) if potential is None else float(potential)
    sub = dA.sel(potential=V, method="nearest")
    bleach, _ = pp.window_average(-sub, bw)
    traces = bleach.isel(fluence=list(fluence_indices)).transpose("fluence", "delay").values
    common = np.isfinite(traces).all(axis=0)  # files on different delay grids: the delays all of them measured
    fits = nested_exponential_fits(dA["delay"].values[common], traces[:, common], n_terms=len(fluence_indices),
                                   t_min_ps=t_min_ps)
    out = dict(fits[1])
    out["r1_lifetime_ps"] = fits[0]["lifetime_ps"]
    # A third fluence adds the triexciton term (Fig. S27d).  Not in classic_analysis: on synthetic
    # batch A (true tau_XXX = tau_XX / 4.5 = 69 ps) the nested value depends on the fluence/delay
    # choice far more than its sd says: fluence indices (0, 3, 6) -> 346 +- 159 ps (t >= 1 ps) /
    # 516 +- 200 ps (t >= 5 ps); (0, 3, 5) 312 +- 125 / 290 +- 81; (0, 3, 7) 126 +- 33 / 196 +- 51;
    # (0, 2, 4) 104 +- 79; (0, 2, 5) 233 +- 144; (0, 1, 4) 428 +- 251; (0, 4, 8) 11 +- 4; (1, 3, 6)
    # 9 +- 6; (0, 1, 3) 6 +- 6.  Some land within 2 sd of 69 ps only through a large sd, none is
    # accurate for a principled reason (picking the window that matches the truth would be
    # cherry-picking): the nested method compounds the bias of the first two terms (biexciton 164-339
    # ps vs 310 ps true, single-exciton fit contaminated by biexciton decay).
    if len(fits) > 2:
        out["triexciton_lifetime_ps"] = fits[2]["lifetime_ps"]
        out["triexciton_lifetime_sd_ps"] = fits[2]["lifetime_sd_ps"]
    out["fluences"] = [float(dA["fluence"].values[i]) for i in fluence_indices]
    return out


# ----------------------------------------------------------------------------- gain lifetime
def gain_lifetime(delays_ps, A_star, confirm=1):
    """First delay (ps) at which ``A_star`` (window-averaged, 1-D over delay) returns to >= 0 after
    being negative, by linear interpolation between delays.  With ``confirm`` > 1 a return counts
    only if A* stays >= 0 at that many consecutive delays (guards against a noise crossing).
    ValueError when A* is never negative at t >= 0 (no gain) or no confirmed return happens before
    the last delay (lifetime longer than the window)."""
    t, a = check_series(delays_ps, A_star, "gain lifetime", minimum=2)
    if int(confirm) < 1:
        raise ValueError(f"confirm must be >= 1, got {confirm!r}")
    order = np.argsort(t)
    t, a = t[order], a[order]
    neg = np.nonzero((a < 0) & (t >= 0))[0]
    if neg.size == 0:
        raise ValueError("no gain: the window-averaged A* is never negative")
    i0 = neg[0]
    for j in range(i0 + 1, t.size - int(confirm) + 1):
        if a[j - 1] < 0 and np.all(a[j:j + int(confirm)] >= 0):
            return float(t[j - 1] + (0.0 - a[j - 1]) * (t[j] - t[j - 1]) / (a[j] - a[j - 1]))
    raise ValueError(f"gain lasts beyond the last delay ({t[-1]:g} ps)")


def _first_up_crossing(t, y, start):
    """First t >= t[start] where y (linear between delays) reaches >= 0; t[start] if y[start] >= 0;
    None if never."""
    if y[start] >= 0:
        return float(t[start])
    for k in range(start + 1, t.size):
        if y[k] >= 0:
            return float(t[k - 1] + (0.0 - y[k - 1]) * (t[k] - t[k - 1]) / (y[k] - y[k - 1]))
    return None


def gain_lifetime_with_uncertainty(delays_ps, A_star, A_star_sem, confirm=1):
    """:func:`gain_lifetime` with an uncertainty from the standard error of the window average.

    ``A_star_sem`` (same shape as ``A_star``) is the SEM of the window-averaged A* at each delay
    (:func:`bayesgain.preprocess.window_average`).  The crossing t* is that of :func:`gain_lifetime`.
    Two uncertainties are returned:

    * ``interval`` (t_lo, t_hi): the delays over which A* is within +-1 SEM of zero around the
      crossing -- t_lo the first delay (after the first negative A*) where A* + SEM reaches 0, t_hi
      the first delay at or after the crossing segment where A* - SEM reaches 0 (both by linear
      interpolation).  ``uncertainty`` = (t_hi - t_lo) / 2 (the reported one).  When A* - SEM never
      reaches 0 before the last delay, t_hi is the last delay and ``open_interval`` is True (the
      uncertainty is then a lower bound).
    * ``uncertainty_interp``: error propagation through the linear interpolation between the two
      delays (t0, a0), (t1, a1) that bracket the crossing, independent errors s0, s1:
      sd^2 = (t1 - t0)^2 (a1^2 s0^2 + a0^2 s1^2) / (a1 - a0)^4.  It ignores the curvature of A*(t)
      and the chance of an earlier noise crossing, so it is usually smaller.

    Returns dict(value, uncertainty, interval, open_interval, uncertainty_interp, unit="ps")."""
    t, a = check_series(delays_ps, A_star, "gain lifetime", minimum=2)
    _, e = check_series(delays_ps, A_star_sem, "gain lifetime SEM", minimum=2)
    if np.any(e < 0):
        raise ValueError("gain lifetime: negative standard error")
    value = gain_lifetime(t, a, confirm)
    order = np.argsort(t)
    t, a, e = t[order], a[order], e[order]
    i0 = int(np.nonzero((a < 0) & (t >= 0))[0][0])
    j = int(np.searchsorted(t, value, side="left"))
    j = min(max(j, i0 + 1), t.size - 1)  # crossing lies in (t[j-1], t[j]]
    t_lo = _first_up_crossing(t, a + e, i0)
    t_lo = value if t_lo is None else min(t_lo, value)
    t_hi = _first_up_crossing(t, a - e, j - 1)
    open_interval = t_hi is None
    t_hi = float(t[-1]) if t_hi is None else max(t_hi, value)
    t0, t1, a0, a1, s0, s1 = t[j - 1], t[j], a[j - 1], a[j], e[j - 1], e[j]
    if a1 != a0:
        sd_interp = abs(t1 - t0) * math.sqrt(a1**2 * s0**2 + a0**2 * s1**2) / (a1 - a0) ** 2
    else:
        sd_interp = float("nan")
    return dict(value=value, uncertainty=0.5 * (t_hi - t_lo), interval=(t_lo, t_hi), open_interval=open_interval,
                uncertainty_interp=float(sd_interp), unit="ps")


# ----------------------------------------------------------------------------- driver
def _row(name, value, uncertainty, unit, method, note=""):
    return dict(name=name, value=float(value), uncertainty=float(uncertainty), unit=unit, method=method, note=note)


def classic_analysis(tree, V_C=None, threshold_delays_ps=GAIN_DELAY_PS, biexciton_fluence_indices=None,
                     gain_lifetime_confirm=1, g_min_per_cm=50.0, gain_lifetime_method="crossing"):
    """Run the classic analysis on a loaded experiment; returns a list of rows
    dict(name, value, uncertainty, unit, method, note).  A step that cannot be done gives a row with
    value NaN and the reason in ``note`` (never a bare NaN).

    ``g_min_per_cm``: gain coefficient of the lowest single-wavelength threshold rows
    (``lowest_threshold_g50_excitons[V=...]``, ``..._photons_cm2``, ``..._nJ_cm2``; the tag is
    ``g{g_min:g}``); None skips them.  ``threshold_delays_ps``: the read-out of the gain thresholds
    (:func:`delay_selection`: one delay, the nearest measured, or a (lo, hi) range averaged); the
    default 5 ps is the paper's, after thermalisation; the method column names the delays used.
    ``biexciton_fluence_indices``: None (default) for :func:`biexciton_lifetime_robust` (fluences
    chosen by <N>, NaN with the reason when not resolved), or indices for the literal nested fits.
    ``gain_lifetime_method``: "crossing" (raw crossing,
    :func:`gain_lifetime`), "fit" (Fig. S28 multi-exponential fit, :func:`gain_lifetime_fit`, rows
    ``gain_lifetime_fit_ps[...]``) or "both"."""
    if gain_lifetime_method not in ("crossing", "fit", "both"):
        raise ValueError(f"gain_lifetime_method must be 'crossing', 'fit' or 'both', got {gain_lifetime_method!r}")
    cs_sd = 0.0
    rows = []
    sigma = None
    if pp._has(tree, "solution"):
        try:
            cs = cross_section_from_tree(tree)
            sigma, cs_sd = cs["value"], cs["uncertainty"]
            rows.append(_row("cross_section_cm2", cs["value"], cs["uncertainty"], "cm^2",
                             "eq. S34 fit of the 1-3 ns solution bleach vs depth-averaged fluence"))
        except ValueError as err:
            rows.append(_row("cross_section_cm2", np.nan, np.nan, "cm^2", "eq. S34", f"failed: {err}"))
        if sigma is not None:
            how = "fit |dA_avg| = A(1-exp(-B N)) solved for |dA| = A_0 (1S window), N = sigma J' (depth-averaged)"
            try:
                how += "; bleach " + delay_selection(tree["solution"]["ta"]["delay"].values, threshold_delays_ps)[1]
                st = solution_threshold(tree, sigma, delays_ps=threshold_delays_ps)
                rows.append(_row("solution_threshold_excitons", st["value"], st["uncertainty"], "excitons/QD", how))
            except ValueError as err:
                rows.append(_row("solution_threshold_excitons", np.nan, np.nan, "excitons/QD", how, str(err)))
    if not pp._has(tree, "film/ta"):
        return rows
    corrected = pp.reflection_correct_film(tree)
    for V in corrected["potential"].values:
        for F in corrected["fluence"].values:
            rows.append(_row(f"subgap_residual_OD[V={V:+.3f},J={F:.3g}]",
                             float(corrected["subgap_after"].sel(potential=V, fluence=F)), np.nan, "OD",
                             "mean |dA| in the sub-gap window after reflection correction",
                             "no uncertainty (a diagnostic); before correction: "
                             f"{float(corrected['subgap_before'].sel(potential=V, fluence=F)):.3g} OD"))
    if pp._has(tree, "film/sec"):
        try:
            sec = pp.sec_electrons(tree)
            ne = sec["n_e"]
            Vs = np.broadcast_to(ne["potential"].values, ne.shape)
            fd = fit_fermi_dirac(Vs.ravel(), ne.values.ravel(), V_C=V_C,
                                 temperature_K=float(tree.attrs["temperature_K"]), g_e=int(tree.attrs.get("g_e", 2)))
            how = "least-squares Fermi-Dirac fit with Gaussian disorder of <n_e>(V) from the SEC 1S bleach (all sweeps)"
            rows.append(_row("V_1S_V", *fd["V_1S"], "V", how))
            rows.append(_row("sigma_1S_V", *fd["sigma_1S"], "V", how))
            rows.append(_row("V_C_V", *fd["V_C"], "V", how, _charging_energy_note(fd, V_C)))
            te = fit_fermi_dirac_effective_temperature(Vs.ravel(), ne.values.ravel(), V_C=0.0 if V_C is None else V_C,
                                                       g_e=int(tree.attrs.get("g_e", 2)))
            rows.append(_row("T_eff_K", *te["T_eff_K"], "K", "Fermi-Dirac fit without disorder, temperature free "
                             "(the paper's effective-temperature variant)", f"V_1S = {te['V_1S'][0]:.4f} V"))
        except ValueError as err:
            rows.append(_row("V_1S_V", np.nan, np.nan, "V", "Fermi-Dirac fit", f"failed: {err}"))
        rows.extend(_fermi_dirac_gaussian_rows(tree, V_C))
    if sigma is not None:
        how = "fit |dA_avg| = A(1-exp(-B N)) solved for |dA| = A_0 + dA_SEC (1S window), N = sigma J"
        try:
            how += "; bleach " + delay_selection(corrected["delay"].values, threshold_delays_ps)[1]
            thr = film_thresholds(tree, sigma, corrected, delays_ps=threshold_delays_ps)
        except ValueError as err:
            thr = {}
            rows.append(_row("threshold_excitons", np.nan, np.nan, "excitons/QD", how, f"failed: {err}"))
        for V, res in thr.items():
            name = f"threshold_excitons[V={V:+.3f}]"
            if isinstance(res, Exception):
                rows.append(_row(name, np.nan, np.nan, "excitons/QD", how, str(res)))
            else:
                rows.append(_row(name, res["value"], res["uncertainty"], "excitons/QD", how,
                                 f"A = {res['A']:.4g} OD, B = {res['B']:.4g}, sigma = {sigma:.4g} cm^2"))
        if g_min_per_cm is not None:
            rows.extend(_lowest_threshold_rows(tree, corrected, sigma, cs_sd, threshold_delays_ps, g_min_per_cm))
    if biexciton_fluence_indices is None:
        how = ("eq. S35 nested fits made robust: trace at a biexciton-dominated <N> = c x (smoothed lowest-fluence "
               "trace) + A exp(-t/tau_XX), neutral film band-edge bleach, t >= 1 ps")
        try:
            bx = biexciton_lifetime_robust(tree, corrected, cross_section_cm2=sigma)
            rows.append(_row("biexciton_lifetime_ps", bx["lifetime_ps"], bx["lifetime_sd_ps"], "ps", how, bx["note"]))
        except ValueError as err:
            rows.append(_row("biexciton_lifetime_ps", np.nan, np.nan, "ps", how, str(err)))
    else:
        try:
            bx = biexciton_lifetime(tree, corrected, fluence_indices=biexciton_fluence_indices)
            rows.append(_row("biexciton_lifetime_ps", bx["lifetime_ps"], bx["lifetime_sd_ps"], "ps",
                             "eq. S35 nested exponential fits on the neutral film band-edge bleach (fluence indices "
                             f"{tuple(biexciton_fluence_indices)})",
                             f"single-exponential lifetime {bx['r1_lifetime_ps']:.4g} ps; biased when the single "
                             "exciton does not decay within the delays (see biexciton_lifetime_robust)"))
        except ValueError as err:
            rows.append(_row("biexciton_lifetime_ps", np.nan, np.nan, "ps", "eq. S35", f"failed: {err}"))
    esa = pp.excited_state_absorption(tree, corrected)
    bw = pp.resolve_window(tree, probe_wavelengths=corrected["wavelength"].values)
    astar, astar_sem = pp.window_average(esa["A_star"], bw)
    for V in astar["potential"].values:
        for F in astar["fluence"].values:
            name = f"gain_lifetime_ps[V={V:+.3f},J={F:.3g}]"
            how = ("first delay where the 1S-window-averaged A* returns to >= 0 (linear interpolation); "
                   "uncertainty: half the delay interval where A* is within +-1 window SEM of 0")
            # the delays this file measured (files on different grids carry NaN elsewhere)
            own = np.isfinite(astar.sel(potential=V, fluence=F).values)
            try:
                gl = gain_lifetime_with_uncertainty(astar["delay"].values[own],
                                                    astar.sel(potential=V, fluence=F).values[own],
                                                    astar_sem.sel(potential=V, fluence=F).values[own],
                                                    gain_lifetime_confirm)
                lo_, hi_ = gl["interval"]
                note = (f"+-1 SEM interval {lo_:.4g}..{hi_:.4g} ps"
                        + (" (open: A* - SEM stays < 0 to the last delay; lower bound)" if gl["open_interval"] else "")
                        + f"; interpolation error propagation {gl['uncertainty_interp']:.3g} ps")
                rows.append(_row(name, gl["value"], gl["uncertainty"], "ps", how, note))
            except ValueError as err:
                rows.append(_row(name, np.nan, np.nan, "ps", how, str(err)))
    if gain_lifetime_method in ("fit", "both"):
        how = ("Fig. S28: -A*(t) (1S window) fitted with up to 2 exponentials + constant (t >= 0.5 ps); "
               "first zero crossing of the fit")
        for V in astar["potential"].values:
            for F in astar["fluence"].values:
                name = f"gain_lifetime_fit_ps[V={V:+.3f},J={F:.3g}]"
                own = np.isfinite(astar.sel(potential=V, fluence=F).values)
                try:
                    gl = gain_lifetime_fit(astar["delay"].values[own], astar.sel(potential=V, fluence=F).values[own])
                    rows.append(_row(name, gl["value"], np.nan, "ps", how,
                                     f"no uncertainty (crossing of the fitted curve); {gl['n_exp']} exponential(s)"))
                except ValueError as err:
                    rows.append(_row(name, np.nan, np.nan, "ps", how, str(err)))
    if gain_lifetime_method == "fit":
        rows = [r for r in rows if not r["name"].startswith("gain_lifetime_ps[")]
    return rows


def _charging_energy_note(fd, V_C):
    """Note of the V_C row: fixed, or free with its bound and its correlation with sigma_1S."""
    if V_C is not None:
        return "fixed"
    lo, hi = V_C_BOUNDS_V
    v_lo, v_hi = fd["V_C_interval"]
    note = (f"free in [{lo * 1e3:g}, {hi * 1e3:g}] mV; sd = half the profile 68 % interval "
            f"{v_lo * 1e3:.3g}-{v_hi * 1e3:.3g} mV")
    if any(fd["V_C_interval_open"]):
        note += " (reaches a bound: V_C weakly identified, the data pin ~sigma_1S^2 + kT V_C)"
    if fd["V_C_at_bound"]:
        note += "; best fit AT THE BOUND"
    return note


def _fermi_dirac_gaussian_rows(tree, V_C):
    """Fermi-Dirac rows from <n_e>(V) by Gaussian fits of the 1S bleach (``sec_electrons(method=
    "gaussian")``), named ``..._V[sec=gaussian]``; a failure gives a NaN row with the reason."""
    how = ("least-squares Fermi-Dirac fit with Gaussian disorder of <n_e>(V) from Gaussian fits of the SEC 1S "
           "bleach (line shape fixed from the A_0 fit; all sweeps)")
    try:
        ne = pp.sec_electrons(tree, method="gaussian")["n_e"]
        Vs = np.broadcast_to(ne["potential"].values, ne.shape)
        fd = fit_fermi_dirac(Vs.ravel(), ne.values.ravel(), V_C=V_C, temperature_K=float(tree.attrs["temperature_K"]),
                             g_e=int(tree.attrs.get("g_e", 2)))
    except ValueError as err:
        return [_row("V_1S_V[sec=gaussian]", np.nan, np.nan, "V", how, f"failed: {err}")]
    return [_row("V_1S_V[sec=gaussian]", *fd["V_1S"], "V", how),
            _row("sigma_1S_V[sec=gaussian]", *fd["sigma_1S"], "V", how)]


def _lowest_threshold_rows(tree, corrected, sigma, sigma_sd, delays_ps, g_min_per_cm):
    tag = f"g{float(g_min_per_cm):g}"
    if np.size(delays_ps) == 1:  # one delay asked: average its +-20 % for the per-wavelength fits
        delays_ps = (0.8 * float(np.ravel(delays_ps)[0]), 1.2 * float(np.ravel(delays_ps)[0]))
    try:
        read_out = delay_selection(corrected["delay"].values, delays_ps)[1]
    except ValueError as err:
        read_out = f"delays {delays_ps!r} unusable: {err}"
    how = (f"lowest over probe wavelengths of the single-wavelength threshold: -dA(lambda) ({read_out}) = "
           f"A(1-exp(-B N)) fitted over fluences (N = sigma J) and solved for A* = A_0 + dA_SEC + dA_TA = "
           f"-g d/ln10 with g = {float(g_min_per_cm):g} cm^-1 (main text Fig. 5d-f); sd from g^T Sigma g")
    try:
        lo = lowest_gain_threshold(tree, corrected, delays_ps=delays_ps, g_min_per_cm=g_min_per_cm,
                                   cross_section_cm2=sigma, cross_section_sd_cm2=sigma_sd)
    except ValueError as err:
        return [_row(f"lowest_threshold_{tag}_excitons", np.nan, np.nan, "excitons/QD", how, f"failed: {err}")]
    rows = []
    lam_pump = lo.attrs["pump_wavelength_nm"]
    for i, V in enumerate(lo["potential"].values):
        r = lo.isel(potential=i)
        N = float(r["threshold_excitons"])
        if not np.isfinite(N):
            why = str(r["reason"].values)
            for unit_tag, unit in (("excitons", "excitons/QD"), ("photons_cm2", "photons/cm^2"), ("nJ_cm2", "nJ/cm^2")):
                rows.append(_row(f"lowest_threshold_{tag}_{unit_tag}[V={V:+.3f}]", np.nan, np.nan, unit, how, why))
            continue
        lam = float(r["wavelength_nm"])
        ext = " EXTRAPOLATED: outside the measured <N> range;" if bool(r["extrapolated"]) else ""
        note = (f"at {lam:g} nm;{ext} {int(r['n_reachable'])} wavelengths reach it; sd includes the "
                f"cross-section error (fit only: {float(r['threshold_sd_excitons']):.3g}); the minimum over "
                "wavelengths is biased low")
        rows.append(_row(f"lowest_threshold_{tag}_excitons[V={V:+.3f}]", N, float(r["threshold_total_sd_excitons"]),
                         "excitons/QD", how, note))
        note_J = (f"at {lam:g} nm;{ext} J = <N>/sigma (sigma = {sigma:.4g} cm^2); independent of sigma, sd from the "
                  "fit and level only")
        rows.append(_row(f"lowest_threshold_{tag}_photons_cm2[V={V:+.3f}]", float(r["threshold_photons_cm2"]),
                         float(r["threshold_sd_photons_cm2"]), "photons/cm^2", how, note_J))
        rows.append(_row(f"lowest_threshold_{tag}_nJ_cm2[V={V:+.3f}]", float(r["threshold_nJ_cm2"]),
                         float(r["threshold_sd_nJ_cm2"]), "nJ/cm^2", how,
                         note_J + f"; photon energy at the pump wavelength {lam_pump:g} nm"))
    return rows


def write_classic_csv(rows, path):
    """Write the rows of :func:`classic_analysis` to a CSV file atomically."""
    fields = ["name", "value", "uncertainty", "unit", "method", "note"]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            for r in rows:
                w.writerow({k: r.get(k, "") for k in fields})
    return path


# ----------------------------------------------------------------------------- single-wavelength thresholds


def threshold_at_level(A, B, cov, level, level_sd=0.0):
    """<N> where the saturating bleach A (1 - exp(-B N)) reaches ``level`` (OD), with its standard deviation.

    N* = -ln(1 - L/A) / B.  Variance: the delta method g^T Sigma g with g = (dN*/dA, dN*/dB) and
    Sigma = ``cov`` (the 2x2 fit covariance of (A, B)), plus (dN*/dL)^2 level_sd^2 (L independent of
    the fit).  The SI formula for this quantity is a variance (NOTES.md); the square root is returned.
    ``level`` <= 0: reached without pump (N* = 0, sd 0).  Raises :class:`ThresholdNotReached` when
    L >= A and ValueError for B <= 0.
    """
    A, B, L = float(A), float(B), float(level)
    if not (np.isfinite(A) and np.isfinite(B) and np.isfinite(L)):
        raise ValueError(f"non-finite input (A={A}, B={B}, level={L})")
    if L <= 0.0:
        return 0.0, 0.0
    if B <= 0:
        raise ValueError(f"rate B = {B:g} <= 0")
    if L >= A:
        raise ThresholdNotReached(f"bleach saturates at A = {A:.3g} OD <= required {L:.3g} OD")
    u = L / A
    f = -math.log1p(-u) / B
    g = np.array([-(L / A**2) / ((1.0 - u) * B), -f / B])
    dfdL = 1.0 / (A * (1.0 - u) * B)
    var = float(g @ np.asarray(cov, float) @ g) + dfdL**2 * float(level_sd) ** 2
    return f, math.sqrt(max(var, 0.0))


def _sec_sem(tree, lam, potentials):
    """Standard error of the cycle/direction mean of Delta A_SEC on (potential, wavelength); zeros without SEC."""
    if not (pp._has(tree, "film/sec") and "absorption" in tree["film/sec"]):
        return xr.DataArray(np.zeros((len(potentials), len(lam))), dims=("potential", "wavelength"),
                            coords=dict(potential=potentials, wavelength=lam))
    sec = tree["film/sec"]["absorption"].stack(sweep=("cycle", "direction"))
    n = sec.sizes["sweep"]
    sem = sec.std("sweep", ddof=1) / math.sqrt(n) if n > 1 else sec.isel(sweep=0, drop=True) * 0.0
    sem = pp._to_grid(sem, "wavelength", lam, "SEC wavelength")
    sem = pp._to_grid(sem, "potential", potentials, "SEC potential")
    return sem.transpose("potential", "wavelength")


def _bleach_noise_sem(dA, bleach, N, Afit, Bfit, n_avg, noise_before_ps):
    """Standard error (OD) of the delay-averaged bleach per (potential, wavelength): the sd over
    fluences and delays <= ``noise_before_ps`` (before time zero) divided by sqrt(``n_avg``), when at
    least 3 such delays exist; else the residual rms of the saturation fit, sqrt(SSR / (F - 2))."""
    d = dA["delay"].values
    pre = d <= noise_before_ps
    if pre.sum() >= 3:
        sd = dA.isel(delay=np.nonzero(pre)[0]).std(("fluence", "delay"), ddof=1)
        return sd.transpose("potential", "wavelength").values / math.sqrt(max(n_avg, 1)), "pre-time-zero scatter"
    with np.errstate(invalid="ignore", over="ignore"):
        model = Afit[:, None, :] * -np.expm1(-Bfit[:, None, :] * N[None, :, None])   # (P, F, W)
        ssr = np.sum((bleach - model) ** 2, axis=1)
    return np.sqrt(ssr / max(N.size - 2, 1)), "saturation-fit residual rms"


def single_wavelength_thresholds(tree, corrected=None, delays_ps=SPECTRAL_GAIN_DELAYS_PS, potential=None, g_min_per_cm=0.0,
                                 cross_section_cm2=None, cross_section_sd_cm2=None, thickness_nm=None,
                                 thickness_sd_nm=None, min_significance=3.0, noise_before_ps=-0.5):
    """Single-wavelength gain thresholds (main text Fig. 5d-f, SI "Error calculations" per wavelength).

    At every probe wavelength lambda and TA potential: the bleach b(lambda) = -Delta A_TA
    (reflection corrected, read at ``delays_ps``: :func:`delay_selection`, default 5 ps) versus <N> = sigma J is fitted with
    b = A (1 - exp(-B <N>)) (:func:`fit_saturation`) and solved for
    A*(lambda) = A_0 + Delta A_SEC(V) - b = -g_min d / ln10, i.e. b = L = A_pre + g_min d / ln10
    (g = -A* ln10 / d; ``g_min_per_cm`` = 0: transparency).  The bleach is fitted signed: where the pump
    induces absorption the fit fails or saturates below L and the wavelength is flagged.

    Wavelengths where the fit is not meaningful are masked (NaN, ``reason`` starting "not
    meaningful"), so that noise cannot produce spurious tiny thresholds (with g_min = 0 the sub-gap
    red edge, where A_0 ~ 0, otherwise gives thresholds ~0.003 excitons/QD with sd ~0.4 on batch A):

    * no transition to invert: the film's neutral absorption |A_0| < ``min_significance`` x the
      standard error of the delay-averaged bleach (noise from the sd over fluences and delays before
      ``noise_before_ps``, divided by sqrt(number of averaged delays); without >= 3 such delays, the
      residual rms of the saturation fit).  A_0 rather than A_pre = A_0 + dA_SEC: a doped film has
      A_pre ~ 0 at the 1S line because the electrons fill it, and its (small, real) threshold must stay;
    * the fitted saturation amplitude is not significant: A < ``min_significance`` x sd(A).

    ``min_significance`` = 0 switches the masking off.

    ``cross_section_cm2`` defaults to :func:`cross_section_from_tree`; ``thickness_nm`` /
    ``thickness_sd_nm`` to the tree attrs ``film_thickness_nm`` / ``film_thickness_sd_nm``.
    ``potential``: None (all TA potentials), one value or a list (nearest TA potentials).

    Returns a Dataset over (potential, wavelength):

    * ``threshold_excitons`` / ``threshold_sd_excitons``: <N*> and the standard deviation of the
      fit (variance g^T Sigma g, Sigma the (A, B) covariance, plus the level term from the SEC
      sweep spread and, for g_min > 0, the film thickness); NaN where not reached.
    * ``threshold_total_sd_excitons``: adds the cross-section error, sd^2 + (J* sd_sigma)^2 (the
      threshold fluence J* = <N*>/sigma does not depend on sigma, <N*> does).
    * ``threshold_photons_cm2`` / ``threshold_sd_photons_cm2``: J* = <N*>/sigma (fit error only).
    * ``reachable`` (bool), ``reason`` (str: '' when reached by the pump, 'reached without pump'
      when A_pre <= -g_min d/ln10 (threshold 0), else why it is NaN), ``extrapolated`` (threshold
      outside the measured <N> range), ``level_OD``, ``level_sd_OD``,
      ``A_OD``, ``B_per_exciton``, ``A_pre_OD``.
    """
    corrected = pp.reflection_correct_film(tree) if corrected is None else corrected
    esa = pp.excited_state_absorption(tree, corrected, thickness_nm=thickness_nm)
    if cross_section_cm2 is None:
        cs = cross_section_from_tree(tree)
        cross_section_cm2, cs_sd = cs["value"], cs["uncertainty"]
    else:
        cs_sd = 0.0 if cross_section_sd_cm2 is None else float(cross_section_sd_cm2)
    sigma = float(cross_section_cm2)
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"cross_section_cm2 must be > 0, got {cross_section_cm2!r}")
    d = float(tree.attrs["film_thickness_nm"] if thickness_nm is None else thickness_nm)
    d_sd = float(tree.attrs.get("film_thickness_sd_nm", 0.0) if thickness_sd_nm is None else thickness_sd_nm)
    g_min = float(g_min_per_cm)
    if not (np.isfinite(g_min) and g_min >= 0):
        raise ValueError(f"g_min_per_cm must be >= 0, got {g_min_per_cm!r}")
    offset = g_min * d * 1e-7 / LN10          # OD: -A* needed for g = g_min
    offset_sd = g_min * d_sd * 1e-7 / LN10

    dA = corrected["dA"]
    pots = dA["potential"].values
    if potential is not None:
        want = np.atleast_1d(np.asarray(potential, float))
        pots = np.array([pots[int(np.argmin(np.abs(pots - v)))] for v in want])
    lam = dA["wavelength"].values
    d_idx, read_out = delay_selection(dA["delay"].values, delays_ps)
    bleach = -dA.sel(potential=pots).isel(delay=d_idx).mean("delay")
    bleach = bleach.transpose("potential", "fluence", "wavelength").values
    A_pre = esa["A_pre"].sel(potential=pots).transpose("potential", "wavelength").values
    pre_sd = _sec_sem(tree, lam, pots).values
    N = sigma * dA["fluence"].values

    shape = (pots.size, lam.size)
    thr, sd = np.full(shape, np.nan), np.full(shape, np.nan)
    reason = np.full(shape, "", dtype=object)
    level = A_pre + offset
    level_sd = np.sqrt(pre_sd**2 + offset_sd**2)
    # one vectorised fit for all (potential, wavelength) series: (P*W, F)
    Y = np.moveaxis(bleach, 1, 2).reshape(-1, N.size)
    popt, pcov, fit_msg = fit_saturation_many(N, Y)
    Afit = popt[:, 0].reshape(shape)
    Bfit = popt[:, 1].reshape(shape)
    pcov = pcov.reshape(shape + (2, 2))
    fit_msg = fit_msg.reshape(shape)
    A_sd = np.sqrt(np.clip(pcov[..., 0, 0], 0.0, None))
    noise_sem, noise_how = _bleach_noise_sem(dA.sel(potential=pots), bleach, N, Afit, Bfit, int(d_idx.size),
                                             float(noise_before_ps))
    A0_neutral = esa["A0"].values
    k_sig = float(min_significance)
    for i in range(pots.size):
        for j in range(lam.size):
            L = level[i, j]
            if not np.isfinite(L):
                reason[i, j] = "absorption A_0 + dA_SEC not finite at this wavelength"
                continue
            if k_sig > 0 and np.isfinite(noise_sem[i, j]) and abs(A0_neutral[j]) < k_sig * noise_sem[i, j]:
                reason[i, j] = (f"not meaningful: film absorption A_0 = {A0_neutral[j]:.2g} OD is below "
                                f"{k_sig:g} noise SEMs of the bleach ({k_sig * noise_sem[i, j]:.2g} OD; "
                                f"{noise_how}): no band-edge transition at {lam[j]:g} nm")
                continue
            if L <= 0:
                thr[i, j], sd[i, j] = 0.0, 0.0
                reason[i, j] = (f"reached without pump: A_0 + dA_SEC = {A_pre[i, j]:.3g} OD <= "
                                f"{-offset:.3g} OD (g >= {g_min:g}/cm at <N> = 0)")
                continue
            if not np.any(bleach[i, :, j] > 0):
                reason[i, j] = "not reached: no bleach (pump-induced absorption) at this wavelength"
                continue
            if fit_msg[i, j]:
                reason[i, j] = f"not reached: saturation fit at {lam[j]:g} nm failed ({fit_msg[i, j]})"
                continue
            if k_sig > 0 and not Afit[i, j] >= k_sig * A_sd[i, j]:
                reason[i, j] = (f"not meaningful: saturation amplitude A = {Afit[i, j]:.2g} +- {A_sd[i, j]:.2g} OD "
                                f"is not significant (< {k_sig:g} sd)")
                continue
            try:
                thr[i, j], sd[i, j] = threshold_at_level(Afit[i, j], Bfit[i, j], pcov[i, j], L, level_sd[i, j])
            except ValueError as err:  # ThresholdNotReached included
                reason[i, j] = f"not reached: {err}"
    reachable = np.isfinite(thr)
    J = thr / sigma
    total_sd = np.sqrt(sd**2 + (J * cs_sd) ** 2)
    coords = dict(potential=pots, wavelength=lam)
    dims = ("potential", "wavelength")

    def da(v, units, long_name):
        return xr.DataArray(v, dims=dims, coords=coords, attrs=dict(units=units, long_name=long_name))

    out = xr.Dataset({
        "threshold_excitons": da(thr, "excitons/QD", f"<N> at which g reaches {g_min:g}/cm"),
        "threshold_sd_excitons": da(sd, "excitons/QD", "sd of the threshold, fit + level (g^T Sigma g)"),
        "threshold_total_sd_excitons": da(total_sd, "excitons/QD", "sd including the cross-section error"),
        "threshold_photons_cm2": da(J, "photons/cm^2", "threshold pump fluence <N>/sigma"),
        "threshold_sd_photons_cm2": da(sd / sigma, "photons/cm^2", "sd of the threshold fluence"),
        "reachable": da(reachable, "1", "threshold reached (by the pump or without it)"),
        "extrapolated": da(reachable & ((thr < N.min()) | (thr > N.max())) & (thr > 0), "1",
                           "threshold outside the measured <N> range (fit extrapolated)"),
        "reason": da(reason.astype(str), "", "why the threshold is NaN or 0 ('' when reached by the pump)"),
        "level_OD": da(level, "OD", "bleach needed: A_0 + dA_SEC + g_min d / ln10"),
        "level_sd_OD": da(level_sd, "OD", "sd of the level (SEC sweep spread, film thickness)"),
        "A_OD": da(Afit, "OD", "fitted saturation bleach A"),
        "A_sd_OD": da(A_sd, "OD", "standard error of the fitted saturation bleach A"),
        "noise_sem_OD": da(noise_sem, "OD", f"standard error of the delay-averaged bleach ({noise_how})"),
        "A0_OD": da(np.broadcast_to(A0_neutral, shape).copy(), "OD", "neutral film absorption A_0"),
        "B_per_exciton": da(Bfit, "1/exciton", "fitted saturation rate B"),
        "A_pre_OD": da(A_pre, "OD", "A_0 + dA_SEC before the pump"),
    })
    out.attrs.update(g_min_per_cm=g_min, thickness_nm=d, thickness_sd_nm=d_sd, cross_section_cm2=sigma,
                     min_significance=k_sig, noise_before_ps=float(noise_before_ps),
                     cross_section_sd_cm2=float(cs_sd), read_out=read_out,
                     delays_ps=[float(x) for x in np.atleast_1d(delays_ps)],
                     method="fit -dA(lambda) = A(1-exp(-B N)) over fluences, N = sigma J, solved for "
                            "A* = A_0 + dA_SEC + dA_TA = -g_min d/ln10")
    return out


def lowest_gain_threshold(tree, corrected=None, delays_ps=SPECTRAL_GAIN_DELAYS_PS, potential=None, g_min_per_cm=50.0,
                          cross_section_cm2=None, cross_section_sd_cm2=None, thickness_nm=None,
                          thickness_sd_nm=None, pump_wavelength_nm=None, spectral=None, min_significance=3.0):
    """Lowest single-wavelength threshold at which g >= ``g_min_per_cm`` is reached, per potential.

    Runs :func:`single_wavelength_thresholds` (or uses ``spectral``, its output) and takes the minimum
    over wavelengths of the thresholds reached by the pump (wavelengths with gain already without
    pump are counted separately in ``n_reached_without_pump``; they would give 0).  Units: excitons/QD,
    pump fluence J* = <N>/sigma (photons/cm^2) and energy density (nJ/cm^2) at the pump wavelength
    (tree attr ``pump_wavelength_nm``).  Returns a Dataset over potential: ``threshold_excitons``,
    ``threshold_sd_excitons`` (fit), ``threshold_total_sd_excitons`` (with sigma error),
    ``threshold_photons_cm2`` / ``_sd_``, ``threshold_nJ_cm2`` / ``_sd_`` (fit error only: J* does
    not depend on sigma), ``wavelength_nm``, ``extrapolated`` (below/above the measured <N>),
    ``n_reachable``, ``n_reached_without_pump``, ``reason`` ('' or why NaN).  The minimum over ~100
    noisy estimates is biased low; its sd is that of the one wavelength picked, not of the selection.
    Sub-gap wavelengths (A_0 ~ 0) and insignificant saturation amplitudes are masked by
    :func:`single_wavelength_thresholds` (``min_significance``; their count is ``n_not_meaningful``),
    so that with ``g_min_per_cm`` = 0 (transparency) noise does not give trivially small minima.
    """
    sp = spectral if spectral is not None else single_wavelength_thresholds(
        tree, corrected, delays_ps, potential, g_min_per_cm, cross_section_cm2, cross_section_sd_cm2,
        thickness_nm, thickness_sd_nm, min_significance=min_significance)
    lam_pump = float(tree.attrs["pump_wavelength_nm"] if pump_wavelength_nm is None else pump_wavelength_nm)
    e_photon_nJ = float(ph.fluence_to_energy_density_nJ_cm2(1.0, lam_pump))  # nJ/cm^2 per photon/cm^2
    sigma = float(sp.attrs["cross_section_cm2"])
    pots = sp["potential"].values
    keys = ["threshold_excitons", "threshold_sd_excitons", "threshold_total_sd_excitons", "threshold_photons_cm2",
            "threshold_sd_photons_cm2", "threshold_nJ_cm2", "threshold_sd_nJ_cm2", "wavelength_nm"]
    vals = {k: np.full(pots.size, np.nan) for k in keys}
    n_reach = np.zeros(pots.size, int)
    n_free = np.zeros(pots.size, int)
    extrap = np.zeros(pots.size, bool)
    reasons = []
    for i, V in enumerate(pots):
        row = sp.isel(potential=i)
        t = row["threshold_excitons"].values
        free = row["reachable"].values & (t == 0.0)
        pumped = row["reachable"].values & (t > 0.0)
        n_free[i], n_reach[i] = int(free.sum()), int(pumped.sum())
        if not pumped.any():
            why = "no wavelength reaches g >= %g/cm at any pump fluence" % sp.attrs["g_min_per_cm"]
            if free.any():
                why += f" by the pump ({int(free.sum())} wavelength(s) already have it without pump)"
            else:
                counts = {}
                for r in row["reason"].values:
                    key = r.split(":")[0] + ": " + (r.split(":")[1].strip().split(" ")[0] if ":" in r else "")
                    counts[key] = counts.get(key, 0) + 1
                why += " (" + "; ".join(f"{k.strip()} x{v}" for k, v in counts.items()) + ")"
            reasons.append(why)
            continue
        j = int(np.nanargmin(np.where(pumped, t, np.nan)))
        N = float(t[j])
        sdN = float(row["threshold_sd_excitons"].values[j])
        J, sdJ = N / sigma, sdN / sigma
        vals["threshold_excitons"][i] = N
        vals["threshold_sd_excitons"][i] = sdN
        vals["threshold_total_sd_excitons"][i] = float(row["threshold_total_sd_excitons"].values[j])
        vals["threshold_photons_cm2"][i], vals["threshold_sd_photons_cm2"][i] = J, sdJ
        vals["threshold_nJ_cm2"][i] = J * e_photon_nJ
        vals["threshold_sd_nJ_cm2"][i] = sdJ * e_photon_nJ
        vals["wavelength_nm"][i] = float(row["wavelength"].values[j])
        extrap[i] = bool(row["extrapolated"].values[j])
        reasons.append("")
    units = ["excitons/QD"] * 3 + ["photons/cm^2"] * 2 + ["nJ/cm^2"] * 2 + ["nm"]
    out = xr.Dataset({k: xr.DataArray(vals[k], dims="potential", coords=dict(potential=pots), attrs=dict(units=u))
                      for k, u in zip(keys, units)})
    out["n_reachable"] = xr.DataArray(n_reach, dims="potential", coords=dict(potential=pots))
    out["extrapolated"] = xr.DataArray(extrap, dims="potential", coords=dict(potential=pots))
    out["n_reached_without_pump"] = xr.DataArray(n_free, dims="potential", coords=dict(potential=pots))
    n_masked = np.array([int(np.char.startswith(sp["reason"].isel(potential=i).values.astype(str),
                                                "not meaningful").sum()) for i in range(pots.size)])
    out["n_not_meaningful"] = xr.DataArray(n_masked, dims="potential", coords=dict(potential=pots),
                                           attrs=dict(long_name="wavelengths masked as not meaningful"))
    out["reason"] = xr.DataArray(np.array(reasons, dtype=str), dims="potential", coords=dict(potential=pots))
    out.attrs.update(sp.attrs)
    out.attrs.update(pump_wavelength_nm=lam_pump, photon_energy_nJ=e_photon_nJ)
    return out


# ----------------------------------------------------------------------------- gain lifetime (Fig. S28 fit)
def _multi_exp(t, c, *p):
    n = len(p) // 2
    return c + sum(p[2 * k] * np.exp(-p[2 * k + 1] * t) for k in range(n))


def gain_lifetime_fit(delays_ps, A_star, n_exp=2, t_min_ps=0.5):
    """Gain lifetime from a fit (SI Fig. S28): -A*(t) = c + sum_k a_k exp(-r_k t) over t >= ``t_min_ps``,
    then the first zero crossing of the fitted curve (bisection on the fit, after its first negative-A*
    point).  More robust to noise than :func:`gain_lifetime` (raw crossing).  Tries ``n_exp`` and
    fewer terms, keeps the smallest residual.  Returns dict(value (ps), n_exp, popt).  ValueError when
    the fit never shows gain (fitted -A* <= 0 at all fitted delays) or never crosses zero before the
    last delay (the fitted constant c > 0 means gain that outlives the window)."""
    t, a = check_series(delays_ps, A_star, "gain lifetime fit", minimum=4)
    order = np.argsort(t)
    t, a = t[order], a[order]
    sel = t >= t_min_ps
    t, y = t[sel], -a[sel]
    if t.size < 2 * n_exp + 2:
        raise ValueError(f"gain lifetime fit: only {t.size} delays >= {t_min_ps} ps for {n_exp} exponentials")
    ts = t.max()
    x = t / ts
    ys = np.max(np.abs(y)) or 1.0
    yn = y / ys
    best = None
    for k in range(1, int(n_exp) + 1):
        for r0 in ((3.0,), (30.0, 3.0), (100.0, 10.0, 1.0))[min(k, 3) - 1:min(k, 3)]:
            p0 = [yn[-1]]
            for r in (list(r0) + [1.0] * k)[:k]:
                p0 += [yn[0] / k, r]
            lo = [-np.inf] + [-np.inf, 1e-4] * k
            hi = [np.inf] + [np.inf, 1e4] * k
            try:
                popt, _ = curve_fit_checked(_multi_exp, x, yn, p0, "gain lifetime fit", bounds=(lo, hi))
            except ValueError:
                continue
            ssr = float(np.sum((_multi_exp(x, *popt) - yn) ** 2))
            if best is None or ssr < best[0] * 0.999:
                best = (ssr, popt, k)
    if best is None:
        raise ValueError("gain lifetime fit: no multi-exponential fit converged")
    _, popt, k = best
    grid = np.linspace(x[0], x[-1], 4000)
    fit = _multi_exp(grid, *popt)
    pos = np.nonzero(fit > 0)[0]
    if pos.size == 0:
        raise ValueError("no gain: the fitted -A* is never positive")
    after = np.nonzero(fit[pos[0]:] <= 0)[0]
    if after.size == 0:
        raise ValueError(f"fitted gain lasts beyond the last delay ({t[-1]:g} ps)")
    j = pos[0] + after[0]
    root = optimize.brentq(lambda z: _multi_exp(z, *popt), grid[j - 1], grid[j])
    return dict(value=float(root * ts), n_exp=k, popt=popt, unit="ps")
