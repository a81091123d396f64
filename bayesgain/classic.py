"""Classic analysis: the paper's own fitting methods, each returning a value and its uncertainty.

These are the baselines the Bayesian models are compared with (NOTES.md):

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
* :func:`classic_analysis` runs everything on a loaded experiment; :func:`write_classic_csv`.

Degenerate inputs (too few points, fits that do not converge, thresholds not reached) raise
ValueError with a message; :func:`classic_analysis` turns those into rows with ``value`` NaN and the
message in ``note`` -- a NaN never appears without a note.
"""

from __future__ import annotations

import csv
import math
import warnings

import numpy as np
from scipy import optimize

from . import physics as ph
from . import preprocess as pp
from ._atomic import atomic_path

__all__ = [
    "ThresholdNotReached",
    "fit_saturation",
    "fit_cross_section",
    "cross_section_from_tree",
    "threshold_from_bleach",
    "film_thresholds",
    "solution_threshold",
    "fit_fermi_dirac",
    "nested_exponential_fits",
    "biexciton_lifetime",
    "gain_lifetime",
    "classic_analysis",
    "write_classic_csv",
]


class ThresholdNotReached(ValueError):
    """The fitted saturation amplitude A does not exceed the absorption A_0: no gain at any fluence."""


def _check_series(x, y, name, minimum=3):
    x = np.asarray(x, float).ravel()
    y = np.asarray(y, float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{name}: x and y differ in length ({x.size} vs {y.size})")
    if x.size < minimum:
        raise ValueError(f"{name}: a fluence/delay series needs at least {minimum} points, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"{name}: NaN or inf in the data")
    return x, y


def _curve_fit(f, x, y, p0, name, sigma=None, bounds=(-np.inf, np.inf)):
    with warnings.catch_warnings():
        warnings.simplefilter("error", optimize.OptimizeWarning)
        try:
            popt, pcov = optimize.curve_fit(f, x, y, p0=p0, sigma=sigma, bounds=bounds, maxfev=20000)
        except (RuntimeError, ValueError, optimize.OptimizeWarning) as err:
            raise ValueError(f"{name}: fit did not converge ({err})") from err
    if not (np.all(np.isfinite(popt)) and np.all(np.isfinite(pcov))):
        raise ValueError(f"{name}: fit gave a non-finite parameter or covariance (data do not constrain it)")
    return popt, pcov


# ----------------------------------------------------------------------------- saturation fits
def _saturation(x, a, b):
    return a * -np.expm1(-b * x)


def fit_saturation(x, y, sigma=None, name="saturation fit"):
    """Fit y = a (1 - exp(-b x)); returns (popt [a, b], pcov).  At least 3 points."""
    x, y = _check_series(x, y, name)
    scale_x = np.max(np.abs(x)) or 1.0
    scale_y = np.max(np.abs(y)) or 1.0
    xs, ys = x / scale_x, y / scale_y
    b0 = 1.0
    a0 = max(ys.max(), 1e-12) / -math.expm1(-b0)
    s = None if sigma is None else np.asarray(sigma, float) / scale_y
    popt, pcov = _curve_fit(_saturation, xs, ys, [a0, b0], name, sigma=s, bounds=([0.0, 0.0], [np.inf, np.inf]))
    D = np.diag([scale_y, 1.0 / scale_x])
    return popt * np.diag(D), D @ pcov @ D


def fit_cross_section(fluence_photons_cm2, bleach_OD, pump_absorbance_OD=0.0, sigma_OD=None):
    """Cross-section (cm^2) from |Delta A_1-3 ns| = a (1 - exp(-sigma J')) (SI eq. S34).

    J' is the fluence averaged over the cuvette depth (:func:`bayesgain.physics.depth_averaged_fluence`
    with ``pump_absorbance_OD``; 0 for a thin sample).  Returns a dict: ``value``/``uncertainty``
    (sigma and its standard error, cm^2), ``amplitude``/``amplitude_sd`` (OD), ``fluence_avg``.
    """
    J = np.asarray(fluence_photons_cm2, float)
    Jp = ph.depth_averaged_fluence(J, pump_absorbance_OD)
    popt, pcov = fit_saturation(Jp, np.abs(np.asarray(bleach_OD, float)), sigma_OD, name="cross-section fit (eq. S34)")
    return dict(value=float(popt[1]), uncertainty=float(math.sqrt(pcov[1, 1])), amplitude=float(popt[0]),
                amplitude_sd=float(math.sqrt(pcov[0, 0])), fluence_avg=Jp, unit="cm^2")


def cross_section_from_tree(tree, window=None, delays_ps=(1000.0, 3000.0)):
    """Solution cross-section: window-averaged bleach (1S window of the solution absorbance) averaged
    over ``delays_ps``, fitted with :func:`fit_cross_section`."""
    sol = tree["solution"]
    ta = sol["ta"]
    bw = window if isinstance(window, pp.BandEdgeWindow) else pp.band_edge_window(
        sol["absorbance"], window=window, probe_wavelengths=ta["wavelength"].values)
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
    d = da["delay"].values
    sel = (d >= delays_ps[0]) & (d <= delays_ps[1])
    if not sel.any():
        raise ValueError(f"no delays within {delays_ps} ps")
    return da.isel(delay=np.nonzero(sel)[0]).mean("delay").assign_attrs(units="OD")


def film_thresholds(tree, cross_section_cm2, corrected=None, window=None, delays_ps=(1.0, 3.0)):
    """Gain threshold per film TA potential (SI Fig. S26 method).

    Bleach: -Delta A_TA (reflection corrected) averaged over the 1S window and ``delays_ps``;
    level: window average of A_0 + Delta A_SEC(V) (the absorption left before the pump);
    <N> = sigma J.  Returns {potential: dict or ValueError}.
    """
    corrected = pp.reflection_correct_film(tree) if corrected is None else corrected
    esa = pp.excited_state_absorption(tree, corrected)
    lam = corrected["dA"]["wavelength"].values
    bw = window if isinstance(window, pp.BandEdgeWindow) else pp.band_edge_window(
        pp.film_absorbance(tree), window=window, probe_wavelengths=lam)
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


def solution_threshold(tree, cross_section_cm2, window=None, delays_ps=(1.0, 3.0)):
    """Gain threshold of the QD solution: -Delta A over the 1S window (solution absorbance fit) and
    ``delays_ps`` versus <N> = sigma J' (depth-averaged fluence), solved for the window-averaged
    absorbance A_0 of the solution (interpolated onto the TA grid).  Returns the
    :func:`threshold_from_bleach` dict."""
    sol = tree["solution"]
    ta = sol["ta"]
    lam = ta["wavelength"].values
    bw = window if isinstance(window, pp.BandEdgeWindow) else pp.band_edge_window(
        sol["absorbance"], window=window, probe_wavelengths=lam)
    bleach, _ = pp.window_average(-_delay_mean(ta, delays_ps), bw)
    A0 = sol["absorbance"].rename(wavelength_spectrum="wavelength").interp(wavelength=lam).assign_attrs(units="OD")
    level, level_sem = pp.window_average(A0, bw)
    N = cross_section_cm2 * ph.depth_averaged_fluence(ta["fluence"].values, float(sol.attrs["pump_absorbance"]))
    return threshold_from_bleach(N, bleach.values, float(level), float(level_sem))


# ----------------------------------------------------------------------------- Fermi-Dirac
def fit_fermi_dirac(potential_V, mean_electrons, V_C=0.0, temperature_K=293.0, g_e=2, p0=None):
    """Least-squares fit of <n_e>(V) with Gaussian disorder: parameters V_1S, sigma_1S (and V_C if
    ``V_C`` is None, else fixed at that value, V).  Standard errors from the Jacobian at the optimum,
    cov = s^2 (J^T J)^-1 with s^2 = SSR / (m - p).  Returns a dict name -> (value, sd) plus ``rms``
    and ``cov``.  These errors treat the residuals as independent; systematic residuals (sweep drift,
    hysteresis) make them too small.  With ``V_C`` free and disorder sigma_1S >> V_C, V_C and V_1S
    are nearly collinear and their standard errors are huge (they say so, they are not hidden).
    """
    V, n = _check_series(potential_V, mean_electrons, "Fermi-Dirac fit", minimum=4)
    free_vc = V_C is None
    if p0 is None:
        order = np.argsort(V)
        half = g_e / 2.0
        # potential where <n_e> crosses g_e/2 (n decreases with V)
        cross = V[order][np.argmin(np.abs(n[order] - half))]
        p0 = [cross, 0.05] + ([0.005] if free_vc else [])
    p0 = np.asarray(p0, float)
    lo = [V.min() - 1.0, 1e-4] + ([-0.5] if free_vc else [])
    hi = [V.max() + 1.0, 1.0] + ([0.5] if free_vc else [])

    def model(p):
        vc = p[2] if free_vc else V_C
        return ph.mean_electrons(ph.charge_fractions(V, p[0], vc, p[1], temperature_K, g_e))

    x_scale = [0.05, 0.05] + ([0.01] if free_vc else [])
    res = optimize.least_squares(lambda p: model(p) - n, p0, bounds=(lo, hi), x_scale=x_scale,
                                 diff_step=1e-6)
    if not res.success:
        raise ValueError(f"Fermi-Dirac fit did not converge: {res.message}")
    m, k = n.size, res.x.size
    if m <= k:
        raise ValueError(f"Fermi-Dirac fit: {m} points for {k} parameters")
    J = res.jac
    s2 = float(res.fun @ res.fun) / (m - k)
    try:
        cov = np.linalg.inv(J.T @ J) * s2
    except np.linalg.LinAlgError as err:
        raise ValueError("Fermi-Dirac fit: singular Jacobian (parameters not identifiable)") from err
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    out = {"V_1S": (float(res.x[0]), float(sd[0])), "sigma_1S": (float(res.x[1]), float(sd[1]))}
    out["V_C"] = (float(res.x[2]), float(sd[2])) if free_vc else (float(V_C), 0.0)
    out["rms"] = math.sqrt(float(res.fun @ res.fun) / m)
    out["cov"] = cov
    return out


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
        _check_series(ts, y, f"exponential fit of order {k + 1}")
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
                popt, pcov = _curve_fit(f, ts, yn, p0, f"exponential fit of order {k + 1} (eq. S35)",
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
    bw = window if isinstance(window, pp.BandEdgeWindow) else pp.band_edge_window(
        pp.film_absorbance(tree), window=window, probe_wavelengths=lam)
    V = float(tree["film"].attrs["open_circuit_potential_V"]) if potential is None else float(potential)
    sub = dA.sel(potential=V, method="nearest")
    bleach, _ = pp.window_average(-sub, bw)
    traces = bleach.isel(fluence=list(fluence_indices)).transpose("fluence", "delay").values
    fits = nested_exponential_fits(dA["delay"].values, traces, n_terms=len(fluence_indices), t_min_ps=t_min_ps)
    out = dict(fits[1])
    out["r1_lifetime_ps"] = fits[0]["lifetime_ps"]
    out["fluences"] = [float(dA["fluence"].values[i]) for i in fluence_indices]
    return out


# ----------------------------------------------------------------------------- gain lifetime
def gain_lifetime(delays_ps, A_star, confirm=1):
    """First delay (ps) at which ``A_star`` (window-averaged, 1-D over delay) returns to >= 0 after
    being negative, by linear interpolation between delays.  With ``confirm`` > 1 a return counts
    only if A* stays >= 0 at that many consecutive delays (guards against a noise crossing).
    ValueError when A* is never negative at t >= 0 (no gain) or no confirmed return happens before
    the last delay (lifetime longer than the window)."""
    t, a = _check_series(delays_ps, A_star, "gain lifetime", minimum=2)
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


# ----------------------------------------------------------------------------- driver
def _row(name, value, uncertainty, unit, method, note=""):
    return dict(name=name, value=float(value), uncertainty=float(uncertainty), unit=unit, method=method, note=note)


def classic_analysis(tree, V_C=0.0, threshold_delays_ps=(1.0, 3.0), biexciton_fluence_indices=(0, 3),
                     gain_lifetime_confirm=1):
    """Run the classic analysis on a loaded experiment; returns a list of rows
    dict(name, value, uncertainty, unit, method, note).  A step that cannot be done gives a row with
    value NaN and the reason in ``note`` (never a bare NaN)."""
    rows = []
    sigma = None
    if pp._has(tree, "solution"):
        try:
            cs = cross_section_from_tree(tree)
            sigma = cs["value"]
            rows.append(_row("cross_section_cm2", cs["value"], cs["uncertainty"], "cm^2",
                             "eq. S34 fit of the 1-3 ns solution bleach vs depth-averaged fluence"))
        except ValueError as err:
            rows.append(_row("cross_section_cm2", np.nan, np.nan, "cm^2", "eq. S34", f"failed: {err}"))
        if sigma is not None:
            how = "fit |dA_avg| = A(1-exp(-B N)) solved for |dA| = A_0 (1S window), N = sigma J' (depth-averaged)"
            try:
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
            rows.append(_row("V_C_V", *fd["V_C"], "V", how, "" if V_C is None else "fixed"))
        except ValueError as err:
            rows.append(_row("V_1S_V", np.nan, np.nan, "V", "Fermi-Dirac fit", f"failed: {err}"))
    if sigma is not None:
        thr = film_thresholds(tree, sigma, corrected, delays_ps=threshold_delays_ps)
        for V, res in thr.items():
            name = f"threshold_excitons[V={V:+.3f}]"
            how = "fit |dA_avg| = A(1-exp(-B N)) solved for |dA| = A_0 + dA_SEC (1S window), N = sigma J"
            if isinstance(res, Exception):
                rows.append(_row(name, np.nan, np.nan, "excitons/QD", how, str(res)))
            else:
                rows.append(_row(name, res["value"], res["uncertainty"], "excitons/QD", how,
                                 f"A = {res['A']:.4g} OD, B = {res['B']:.4g}, sigma = {sigma:.4g} cm^2"))
    try:
        bx = biexciton_lifetime(tree, corrected, fluence_indices=biexciton_fluence_indices)
        rows.append(_row("biexciton_lifetime_ps", bx["lifetime_ps"], bx["lifetime_sd_ps"], "ps",
                         "eq. S35 nested exponential fits on the neutral film band-edge bleach",
                         f"single-exponential lifetime {bx['r1_lifetime_ps']:.4g} ps"))
    except ValueError as err:
        rows.append(_row("biexciton_lifetime_ps", np.nan, np.nan, "ps", "eq. S35", f"failed: {err}"))
    esa = pp.excited_state_absorption(tree, corrected)
    bw = pp.band_edge_window(pp.film_absorbance(tree), probe_wavelengths=corrected["wavelength"].values)
    astar, _ = pp.window_average(esa["A_star"], bw)
    for V in astar["potential"].values:
        for F in astar["fluence"].values:
            name = f"gain_lifetime_ps[V={V:+.3f},J={F:.3g}]"
            how = "first delay where the 1S-window-averaged A* returns to >= 0 (linear interpolation)"
            try:
                rows.append(_row(name, gain_lifetime(astar["delay"].values, astar.sel(potential=V, fluence=F).values,
                                                           gain_lifetime_confirm),
                                 np.nan, "ps", how, "no uncertainty (interpolated crossing)"))
            except ValueError as err:
                rows.append(_row(name, np.nan, np.nan, "ps", how, str(err)))
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
