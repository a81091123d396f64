"""Least-squares helpers shared by the classic analysis and the model's sizing.

* :func:`fit_saturation` / :func:`fit_saturation_many` -- y = a (1 - exp(-b x)), one series or many at once.
* :func:`fit_cross_section` -- absorption cross-section from the 1-3 ns solution bleach (SI eq. S34).
* :func:`fit_fermi_dirac` / :func:`fit_fermi_dirac_effective_temperature` -- <n_e>(V) with Gaussian level
  disorder or with a free temperature (:func:`bayesgain.physics.charge_fractions`), errors from the Jacobian.

Both :mod:`bayesgain.classic` (the paper's estimates) and :mod:`bayesgain.model` (Poisson truncation and
disorder quadrature sized from quick fits) call these, so the model never imports the classic analysis.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize

from . import physics as ph

__all__ = [
    "check_series",
    "curve_fit_checked",
    "fit_saturation",
    "fit_saturation_many",
    "fit_cross_section",
    "V_C_BOUNDS_V",
    "fit_fermi_dirac",
    "fit_fermi_dirac_effective_temperature",
]


def check_series(x, y, name, minimum=3):
    x = np.asarray(x, float).ravel()
    y = np.asarray(y, float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{name}: x and y differ in length ({x.size} vs {y.size})")
    if x.size < minimum:
        raise ValueError(f"{name}: a fluence/delay series needs at least {minimum} points, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"{name}: NaN or inf in the data")
    return x, y


def curve_fit_checked(f, x, y, p0, name, sigma=None, bounds=(-np.inf, np.inf)):
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
def saturation_curve(x, a, b):
    """a (1 - exp(-b x)): the paper's saturating bleach, versus <N> (threshold fits) or fluence (eq. S34, b = sigma)."""
    return a * -np.expm1(-b * x)


def fit_saturation(x, y, sigma=None, name="saturation fit"):
    """Fit y = a (1 - exp(-b x)); returns (popt [a, b], pcov).  At least 3 points."""
    x, y = check_series(x, y, name)
    scale_x = np.max(np.abs(x)) or 1.0
    scale_y = np.max(np.abs(y)) or 1.0
    xs, ys = x / scale_x, y / scale_y
    b0 = 1.0
    a0 = max(ys.max(), 1e-12) / -math.expm1(-b0)
    s = None if sigma is None else np.asarray(sigma, float) / scale_y
    popt, pcov = curve_fit_checked(saturation_curve, xs, ys, [a0, b0], name, sigma=s, bounds=([0.0, 0.0], [np.inf, np.inf]))
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

def fit_saturation_many(x, Y, n_grid=801, b_range=(1e-5, 1e3)):
    """Least squares of y = a (1 - exp(-b x)) for many series at once (rows of ``Y``, shape (S, F)).

    Same estimator and covariance as :func:`fit_saturation` (``curve_fit`` with absolute_sigma False:
    cov = s^2 (J^T J)^-1, s^2 = SSR / (F - 2)), vectorised: the linear amplitude is profiled out, the
    rate b (in units of 1 / max x) is found on a log grid over ``b_range``, refined on a finer grid and
    polished with Gauss-Newton steps.  A NaN in ``Y`` is a point not measured (a fluence one potential
    lacks): each series is fitted on its own points, as :func:`fit_saturation` on them would.
    Returns (popt (S, 2), pcov (S, 2, 2), msg (S,) str): ``msg`` is
    '' for a good fit, else why the fit is not usable (inf data, fewer than 3 measured points, amplitude
    <= 0, rate at the edge of the grid: the data do not identify it); such rows are NaN.
    """
    x = np.asarray(x, float).ravel()
    Y = np.atleast_2d(np.asarray(Y, float))
    S, F = Y.shape
    if x.size != F:
        raise ValueError(f"fit_saturation_many: x has {x.size} points, Y rows have {F}")
    msg = np.full(S, "", dtype=object)
    popt = np.full((S, 2), np.nan)
    pcov = np.full((S, 2, 2), np.nan)
    if not np.all(np.isfinite(x)):
        msg[:] = "NaN or inf in the fluences"
        return popt, pcov, msg.astype(str)
    # NaN = not measured (a fluence this potential lacks): each series is fitted on its own points
    w = (~np.isnan(Y)).astype(float)
    n_pts = w.sum(axis=1)
    ok = ~np.isinf(Y).any(axis=1) & (n_pts >= 3)
    msg[n_pts < 3] = [f"a fluence series needs at least 3 measured points (NaN = not measured), got {int(n)}"
                      for n in n_pts[n_pts < 3]]
    msg[(n_pts >= 3) & ~ok] = "NaN or inf in the data"
    sx = np.max(np.abs(x)) or 1.0
    xs = x / sx
    finite = np.isfinite(Y)
    sy = np.max(np.abs(Y), axis=1, where=finite, initial=0.0)
    sy = np.where(sy > 0, sy, 1.0)
    Yn = np.where(ok[:, None] & finite, Y, 0.0) / sy[:, None]
    w = w * ok[:, None]
    A, b, k = _saturation_grid_search(Yn, xs, n_grid, b_range, w)
    edge = (k == 0) | (k == n_grid - 1)
    A, b = _saturation_gauss_newton(Yn, xs, A, b, w)
    cov, det = _saturation_covariance(Yn, xs, A, b, w)
    D = np.stack([sy, np.full(S, 1.0 / sx)], axis=-1)                 # back to data units
    with np.errstate(invalid="ignore", over="ignore"):
        P = np.stack([A, b], axis=-1) * D
        C = cov * D[:, :, None] * D[:, None, :]
    bad = ~ok
    msg[ok & edge & (k == 0)] = ("bleach linear in fluence (no saturation): rate B -> 0 and A -> inf, "
                                  "not identified")
    msg[ok & edge & (k == n_grid - 1)] = "bleach saturated at every fluence: rate B not identified"
    msg[ok & ~edge & ~(A > 0)] = "fitted amplitude A <= 0 (no saturating bleach)"
    fin = np.all(np.isfinite(P), axis=1) & np.all(np.isfinite(C), axis=(1, 2)) & (det > 0)
    msg[ok & (msg == "") & ~fin] = "non-finite parameter or covariance (data do not constrain it)"
    use = (msg == "") & ~bad
    popt[use], pcov[use] = P[use], C[use]
    return popt, pcov, msg.astype(str)


def _saturation_profile(Yn, xs, bgrid, w):
    """Amplitude a and SSR of each series (rows of ``Yn``, points weighted 1 or 0 by ``w``: measured or not)
    with the rate fixed at each of ``bgrid`` ((S, G) or (G,)): the linear amplitude profiled out."""
    phi = -np.expm1(-bgrid[..., None] * xs)                      # (..., G, F)
    if bgrid.ndim == 1:
        yp = Yn @ phi.T                                          # (S, G); Yn is 0 where w is
        pp_ = w @ (phi * phi).T
    else:
        yp = np.einsum("sf,sgf->sg", Yn, phi)
        pp_ = np.einsum("sf,sgf->sg", w, phi * phi)
    with np.errstate(divide="ignore", invalid="ignore"):  # a series with no points: marked bad by the caller
        a = yp / pp_
    ssr = np.sum(Yn**2, axis=1)[:, None] - yp * a
    return a, ssr


def _saturation_grid_search(Yn, xs, n_grid, b_range, w):
    """(A, b, k): the best amplitude and rate of each series on a log grid of ``n_grid`` rates over ``b_range``,
    refined on a finer grid around it; ``k`` the index of the coarse grid's best rate (at an edge: unidentified)."""
    S = Yn.shape[0]
    lg = np.linspace(math.log(b_range[0]), math.log(b_range[1]), n_grid)
    a, ssr = _saturation_profile(Yn, xs, np.exp(lg), w)
    k = np.argmin(np.nan_to_num(ssr, nan=np.inf), axis=1)
    step = lg[1] - lg[0]
    fine = lg[k][:, None] + np.linspace(-step, step, 101)[None, :]
    a2, ssr2 = _saturation_profile(Yn, xs, np.exp(fine), w)
    k2 = np.argmin(np.nan_to_num(ssr2, nan=np.inf), axis=1)
    b = np.exp(fine[np.arange(S), k2])
    A = a2[np.arange(S), k2]
    return A, b, k


def _saturation_gauss_newton(Yn, xs, A, b, w, steps=5):
    """Gauss-Newton polish of (A, b) per series (points weighted by ``w``); a step that is singular or makes
    b <= 0 is not taken."""
    for _ in range(steps):
        e = np.exp(-b[:, None] * xs)
        r = (Yn - A[:, None] * (1 - e)) * w
        J = np.stack([1 - e, A[:, None] * xs * e], axis=-1) * w[:, :, None]        # (S, F, 2)
        JTJ = np.einsum("sfi,sfj->sij", J, J)
        JTr = np.einsum("sfi,sf->si", J, r)
        det = JTJ[:, 0, 0] * JTJ[:, 1, 1] - JTJ[:, 0, 1] ** 2
        good = np.abs(det) > 1e-300
        dA_ = np.where(good, (JTJ[:, 1, 1] * JTr[:, 0] - JTJ[:, 0, 1] * JTr[:, 1]) / np.where(good, det, 1), 0)
        db = np.where(good, (JTJ[:, 0, 0] * JTr[:, 1] - JTJ[:, 0, 1] * JTr[:, 0]) / np.where(good, det, 1), 0)
        A_new, b_new = A + dA_, b + db
        accept = good & (b_new > 0)
        A, b = np.where(accept, A_new, A), np.where(accept, b_new, b)
    return A, b


def _saturation_covariance(Yn, xs, A, b, w):
    """(cov (S, 2, 2), det (S,)): curve_fit's s^2 (J^T J)^-1 at (A, b) in the scaled units (over each series'
    own points, weights ``w``), and det(J^T J)."""
    F = w.sum(axis=1)
    e = np.exp(-b[:, None] * xs)
    with np.errstate(invalid="ignore", over="ignore"):
        r = (Yn - A[:, None] * (1 - e)) * w
        J = np.stack([1 - e, A[:, None] * xs * e], axis=-1) * w[:, :, None]
    JTJ = np.einsum("sfi,sfj->sij", J, J)
    s2 = np.sum(r * r, axis=1) / np.maximum(F - 2, 1)
    det = JTJ[:, 0, 0] * JTJ[:, 1, 1] - JTJ[:, 0, 1] ** 2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # singular fits are marked bad by the caller
        inv = np.stack([np.stack([JTJ[:, 1, 1], -JTJ[:, 0, 1]], -1),
                        np.stack([-JTJ[:, 0, 1], JTJ[:, 0, 0]], -1)], -2) / det[:, None, None]
        cov = inv * s2[:, None, None]
    return cov, det


# ----------------------------------------------------------------------------- Fermi-Dirac
V_C_BOUNDS_V = (0.0, 0.05)  # the charging energy is repulsive and, in these QDs, a few meV (paper: ~5 meV)


def fit_fermi_dirac(potential_V, mean_electrons, V_C=None, temperature_K=293.0, g_e=2, p0=None,
                    V_C_bounds=V_C_BOUNDS_V):
    """Least-squares fit of <n_e>(V) with Gaussian disorder: parameters V_1S, sigma_1S and, as the
    paper fits it, the charging energy V_C (free within ``V_C_bounds``, V) -- or V_C fixed at the
    value given.  Standard errors from the Jacobian at the optimum, cov = s^2 (J^T J)^-1 with
    s^2 = SSR / (m - p).  Returns a dict name -> (value, sd) plus ``rms`` and ``cov``; with V_C free
    also ``V_C_at_bound`` (True when the optimum sits on a bound: its sd is then a one-sided
    curvature, not a symmetric error) and ``V_C_correlation`` (with sigma_1S).  These errors treat the
    residuals as independent; systematic residuals (sweep drift, hysteresis) make them too small.
    With disorder sigma_1S >> V_C the data pin about sigma_1S^2 + kT V_C, so V_C and sigma_1S are
    nearly collinear and V_C's error is wide (it says so, it is not hidden).
    """
    V, n = check_series(potential_V, mean_electrons, "Fermi-Dirac fit", minimum=4)
    free_vc = V_C is None
    vc_lo, vc_hi = (float(V_C_bounds[0]), float(V_C_bounds[1])) if free_vc else (0.0, 0.0)
    if free_vc and not (np.isfinite(vc_lo) and np.isfinite(vc_hi) and vc_lo < vc_hi):
        raise ValueError(f"Fermi-Dirac fit: V_C_bounds must be finite with lo < hi, got {V_C_bounds!r}")
    if p0 is None:
        order = np.argsort(V)
        half = g_e / 2.0
        # potential where <n_e> crosses g_e/2 (n decreases with V)
        cross = V[order][np.argmin(np.abs(n[order] - half))]
        p0 = [cross, 0.05] + ([min(max(0.005, vc_lo), vc_hi)] if free_vc else [])
    p0 = np.asarray(p0, float)
    lo = [V.min() - 1.0, 1e-4] + ([vc_lo] if free_vc else [])
    hi = [V.max() + 1.0, 1.0] + ([vc_hi] if free_vc else [])

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
        if not free_vc:  # with V_C free the profile below gives the errors
            raise ValueError("Fermi-Dirac fit: singular Jacobian (parameters not identifiable)") from err
        cov = np.full((k, k), np.nan)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    out = {"V_1S": (float(res.x[0]), float(sd[0])), "sigma_1S": (float(res.x[1]), float(sd[1]))}
    out["V_C"] = (float(V_C), 0.0) if not free_vc else (float(res.x[2]), float(sd[2]))
    out["rms"] = math.sqrt(float(res.fun @ res.fun) / m)
    out["cov"] = cov
    if free_vc:
        out.update(_profile_charging_energy(V, n, res, s2, (vc_lo, vc_hi), temperature_K, g_e))
    return out


def _profile_charging_energy(V, n, res, s2, bounds, temperature_K, g_e, n_grid=26):
    """Errors of the V_C-free Fermi-Dirac fit from the profile of the sum of squares over V_C.

    To first order a small V_C only shifts the curve by V_C / 2 (the two steps split symmetrically),
    so the Jacobian is near-singular and its linear errors run far outside the bounds.  Instead: fit
    (V_1S, sigma_1S) at each V_C of a grid over the bounds; the 68 % interval of V_C is where
    (SSR - SSR_min) / s^2 <= 1 (clipped at the bounds), its half-width the sd; the sd of V_1S and
    sigma_1S adds in quadrature their conditional sd and half their spread over that interval."""
    lo, hi = bounds
    best_vc = float(res.x[2])
    grid = np.unique(np.r_[np.linspace(lo, hi, n_grid), best_vc])
    ssr, par, psd = [], [], []
    p0 = res.x[:2]
    for vc in grid:
        f = fit_fermi_dirac(V, n, V_C=float(vc), temperature_K=temperature_K, g_e=g_e, p0=p0)
        ssr.append((f["rms"] ** 2) * n.size)
        par.append([f["V_1S"][0], f["sigma_1S"][0]])
        psd.append([f["V_1S"][1], f["sigma_1S"][1]])
    ssr, par, psd = np.array(ssr), np.array(par), np.array(psd)
    ssr_min = min(float(ssr.min()), float(res.fun @ res.fun))
    delta = (ssr - ssr_min) / s2
    inside = delta <= 1.0
    k = int(np.argmin(np.abs(grid - best_vc)))

    def edge(step):  # walk out from the optimum to where delta crosses 1, interpolated
        j = k
        while 0 <= j + step < grid.size and inside[j + step]:
            j += step
        if not 0 <= j + step < grid.size:
            return float(grid[j]), True
        d0, d1 = delta[j], delta[j + step]
        return float(grid[j] + (grid[j + step] - grid[j]) * (1.0 - d0) / (d1 - d0)), False

    v_lo, open_lo = edge(-1)
    v_hi, open_hi = edge(+1)
    band = (grid >= v_lo - 1e-12) & (grid <= v_hi + 1e-12)
    spread = 0.5 * (par[band].max(axis=0) - par[band].min(axis=0))
    sd = np.sqrt(psd[k] ** 2 + spread**2)
    span = hi - lo
    return {"V_1S": (float(par[k, 0]), float(sd[0])), "sigma_1S": (float(par[k, 1]), float(sd[1])),
            "V_C": (best_vc, 0.5 * (v_hi - v_lo)), "V_C_interval": (v_lo, v_hi),
            "V_C_interval_open": (bool(open_lo), bool(open_hi)),
            "V_C_at_bound": bool(min(best_vc - lo, hi - best_vc) < 1e-3 * span),
            "V_C_profile": (grid, delta)}


def fit_fermi_dirac_effective_temperature(potential_V, mean_electrons, V_C=0.0, g_e=2, p0=None):
    """Least-squares fit of <n_e>(V) without level disorder but with a free temperature (SI: the
    paper's effective-temperature variant, 841 K): parameters V_1S (V) and T_eff (K), V_C fixed.
    Errors as in :func:`fit_fermi_dirac` (independent residuals assumed)."""
    V, n = check_series(potential_V, mean_electrons, "effective-temperature fit", minimum=4)
    if p0 is None:
        order = np.argsort(V)
        p0 = [V[order][np.argmin(np.abs(n[order] - g_e / 2.0))], 800.0]

    def resid(p):
        return ph.mean_electrons(ph.charge_fractions(V, p[0], V_C, 0.0, p[1], g_e)) - n

    res = optimize.least_squares(resid, np.asarray(p0, float), bounds=([V.min() - 1.0, 10.0], [V.max() + 1.0, 2e4]),
                                 x_scale=[0.05, 100.0], diff_step=1e-6)
    if not res.success:
        raise ValueError(f"effective-temperature fit did not converge: {res.message}")
    m = n.size
    s2 = float(res.fun @ res.fun) / (m - 2)
    try:
        cov = np.linalg.inv(res.jac.T @ res.jac) * s2
    except np.linalg.LinAlgError as err:
        raise ValueError("effective-temperature fit: singular Jacobian") from err
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return {"V_1S": (float(res.x[0]), float(sd[0])), "T_eff_K": (float(res.x[1]), float(sd[1])),
            "rms": math.sqrt(float(res.fun @ res.fun) / m), "cov": cov}
