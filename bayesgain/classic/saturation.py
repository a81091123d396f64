"""Saturation of the bleach: the solution's cross-section (SI eq. S34) and the heuristic gain thresholds of the
solution and the film (|Delta A_avg| = A (1 - exp(-B <N>)) solved for the absorption left before the pump, SI
"Error calculations"), with their rows for classic.csv.

The uncertainty of a threshold is the delta-method *variance* g^T Sigma g of the SI (printed as if it were a
standard deviation); the square root is returned.
"""

from __future__ import annotations

import math

import numpy as np

from .. import physics as ph
from .. import preprocess as pp
from ..fitting import fit_cross_section, fit_saturation
from ..preprocess import GAIN_DELAY_PS, delay_selection
from .dataset import make_row


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


def threshold_at_level(A, B, cov, level, level_sd=0.0):
    """<N> where the saturating bleach A (1 - exp(-B N)) reaches ``level`` (OD), with its standard deviation.

    N* = -ln(1 - L/A) / B.  Variance: the delta method g^T Sigma g with g = (dN*/dA, dN*/dB) and
    Sigma = ``cov`` (the 2x2 fit covariance of (A, B)), plus (dN*/dL)^2 level_sd^2 (L independent of
    the fit).  The SI formula for this quantity is a variance (docs/paper-conventions.md); the square root is returned.
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
    f, sd = threshold_at_level(A, B, pcov, A0, A0_sd_OD)
    return dict(value=f, uncertainty=sd, A=float(A), B=float(B), cov=pcov, unit="excitons/QD")


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
        b = bleach.sel(potential=V).values
        own = ~np.isnan(b)  # the fluences measured at this potential (a sparse grid has holes)
        try:
            out[float(V)] = threshold_from_bleach(N[own], b[own], float(level.sel(potential=V)),
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



# ----------------------------------------------------------------------------- rows of classic.csv
def solution_rows(tree, threshold_delays_ps):
    """Rows ``cross_section_cm2`` and ``solution_threshold_excitons``; returns (rows, sigma, sigma_sd) with
    sigma None when the cross-section fit fails (no threshold row then)."""
    try:
        cs = cross_section_from_tree(tree)
    except ValueError as err:
        return [make_row("cross_section_cm2", np.nan, np.nan, "cm^2", "eq. S34", f"failed: {err}")], None, 0.0
    sigma, cs_sd = cs["value"], cs["uncertainty"]
    rows = [make_row("cross_section_cm2", cs["value"], cs["uncertainty"], "cm^2",
                     "eq. S34 fit of the 1-3 ns solution bleach vs depth-averaged fluence")]
    how = "fit |dA_avg| = A(1-exp(-B N)) solved for |dA| = A_0 (1S window), N = sigma J' (depth-averaged)"
    try:
        how += "; bleach " + delay_selection(tree["solution"]["ta"]["delay"].values, threshold_delays_ps)[1]
        st = solution_threshold(tree, sigma, delays_ps=threshold_delays_ps)
        rows.append(make_row("solution_threshold_excitons", st["value"], st["uncertainty"], "excitons/QD", how))
    except ValueError as err:
        rows.append(make_row("solution_threshold_excitons", np.nan, np.nan, "excitons/QD", how, str(err)))
    return rows, sigma, cs_sd


def film_threshold_rows(tree, corrected, sigma, threshold_delays_ps):
    """Rows ``threshold_excitons`` per film TA potential (one unlocated NaN row when the read-out fails)."""
    how = "fit |dA_avg| = A(1-exp(-B N)) solved for |dA| = A_0 + dA_SEC (1S window), N = sigma J"
    try:
        how += "; bleach " + delay_selection(corrected["delay"].values, threshold_delays_ps)[1]
        thr = film_thresholds(tree, sigma, corrected, delays_ps=threshold_delays_ps)
    except ValueError as err:
        return [make_row("threshold_excitons", np.nan, np.nan, "excitons/QD", how, f"failed: {err}")]
    rows = []
    for V, res in thr.items():
        if isinstance(res, Exception):
            rows.append(make_row("threshold_excitons", np.nan, np.nan, "excitons/QD", how, str(res), potential=V))
        else:
            rows.append(make_row("threshold_excitons", res["value"], res["uncertainty"], "excitons/QD", how,
                                 f"A = {res['A']:.4g} OD, B = {res['B']:.4g}, sigma = {sigma:.4g} cm^2", potential=V))
    return rows
