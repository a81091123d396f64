"""Single-wavelength gain thresholds (main text Fig. 5d-f): the heuristic saturation fit at every probe wavelength
solved for A*(lambda) = -g_min d / ln10, and the lowest such threshold per potential, with its rows for
classic.csv."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from .. import physics as ph
from .. import preprocess as pp
from ..fitting import fit_saturation_many, saturation_curve
from ..physics.constants import LN10
from ..preprocess import SPECTRAL_GAIN_DELAYS_PS, delay_selection
from .dataset import make_row
from .saturation import cross_section_from_tree, threshold_at_level



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
        model = saturation_curve(N[None, :, None], Afit[:, None, :], Bfit[:, None, :])   # (P, F, W)
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
    sigma, cs_sd = _cross_section(tree, cross_section_cm2, cross_section_sd_cm2)
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
    g = _saturation_grid(dA.sel(potential=pots), bleach, N, int(d_idx.size), float(noise_before_ps))
    g.update(bleach=bleach, A_pre=A_pre, level=A_pre + offset, level_sd=np.sqrt(pre_sd**2 + offset_sd**2),
             A0=esa["A0"].values, lam=lam, offset=offset, g_min=g_min, k_sig=float(min_significance))
    thr, sd, reason = _threshold_grid(g)
    out = _spectral_dataset(g, pots, thr, sd, reason, sigma, cs_sd, N)
    out.attrs.update(g_min_per_cm=g_min, thickness_nm=d, thickness_sd_nm=d_sd, cross_section_cm2=sigma,
                     min_significance=g["k_sig"], noise_before_ps=float(noise_before_ps),
                     cross_section_sd_cm2=float(cs_sd), read_out=read_out,
                     delays_ps=[float(x) for x in np.atleast_1d(delays_ps)],
                     method="fit -dA(lambda) = A(1-exp(-B N)) over fluences, N = sigma J, solved for "
                            "A* = A_0 + dA_SEC + dA_TA = -g_min d/ln10")
    return out


def _cross_section(tree, cross_section_cm2, cross_section_sd_cm2):
    """(sigma, sd) given, or fitted by :func:`cross_section_from_tree`; ValueError unless sigma > 0."""
    if cross_section_cm2 is None:
        cs = cross_section_from_tree(tree)
        cross_section_cm2, cs_sd = cs["value"], cs["uncertainty"]
    else:
        cs_sd = 0.0 if cross_section_sd_cm2 is None else float(cross_section_sd_cm2)
    sigma = float(cross_section_cm2)
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"cross_section_cm2 must be > 0, got {cross_section_cm2!r}")
    return sigma, cs_sd


def _saturation_grid(dA, bleach, N, n_avg, noise_before_ps):
    """One vectorised saturation fit of the bleach (P, F, W) for every (potential, wavelength) series: dict
    A, B, cov, msg (fit failure, '' when fine), A_sd, noise_sem, noise_how on (P, W)."""
    shape = (bleach.shape[0], bleach.shape[2])
    popt, pcov, fit_msg = fit_saturation_many(N, np.moveaxis(bleach, 1, 2).reshape(-1, N.size))
    A, B = popt[:, 0].reshape(shape), popt[:, 1].reshape(shape)
    pcov = pcov.reshape(shape + (2, 2))
    noise_sem, noise_how = _bleach_noise_sem(dA, bleach, N, A, B, n_avg, noise_before_ps)
    return dict(A=A, B=B, cov=pcov, msg=fit_msg.reshape(shape), A_sd=np.sqrt(np.clip(pcov[..., 0, 0], 0.0, None)),
                noise_sem=noise_sem, noise_how=noise_how)


def _threshold_grid(g):
    """(threshold, sd, reason) on (potential, wavelength) from the grid ``g`` of :func:`_saturation_grid` plus the
    level: NaN with the reason where not reached or not meaningful, 0 where reached without pump."""
    level, level_sd, A_pre, A0_neutral, lam = g["level"], g["level_sd"], g["A_pre"], g["A0"], g["lam"]
    Afit, Bfit, pcov, fit_msg, A_sd = g["A"], g["B"], g["cov"], g["msg"], g["A_sd"]
    noise_sem, noise_how, bleach = g["noise_sem"], g["noise_how"], g["bleach"]
    offset, g_min, k_sig = g["offset"], g["g_min"], g["k_sig"]
    thr, sd = np.full(level.shape, np.nan), np.full(level.shape, np.nan)
    reason = np.full(level.shape, "", dtype=object)
    for i in range(level.shape[0]):
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
    return thr, sd, reason


def _spectral_dataset(g, pots, thr, sd, reason, sigma, cs_sd, N):
    """The Dataset of :func:`single_wavelength_thresholds` on (potential, wavelength)."""
    lam, g_min, shape = g["lam"], g["g_min"], thr.shape
    level, level_sd, Afit, A_sd, Bfit = g["level"], g["level_sd"], g["A"], g["A_sd"], g["B"]
    noise_sem, noise_how, A0_neutral, A_pre = g["noise_sem"], g["noise_how"], g["A0"], g["A_pre"]
    reachable = np.isfinite(thr)
    J = thr / sigma
    total_sd = np.sqrt(sd**2 + (J * cs_sd) ** 2)
    coords = dict(potential=pots, wavelength=lam)
    dims = ("potential", "wavelength")

    def da(v, units, long_name):
        return xr.DataArray(v, dims=dims, coords=coords, attrs=dict(units=units, long_name=long_name))

    return xr.Dataset({
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



# ----------------------------------------------------------------------------- rows of classic.csv
_LOWEST_UNITS = (("excitons", "excitons/QD"), ("photons_cm2", "photons/cm^2"), ("nJ_cm2", "nJ/cm^2"))


def lowest_threshold_rows(tree, corrected, sigma, sigma_sd, delays_ps, g_min_per_cm):
    """Rows ``lowest_threshold_g<g>_excitons`` / ``_photons_cm2`` / ``_nJ_cm2`` per potential (the three units
    of one potential together) from :func:`lowest_gain_threshold`; one NaN row when it fails."""
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
        return [make_row(f"lowest_threshold_{tag}_excitons", np.nan, np.nan, "excitons/QD", how, f"failed: {err}")]
    rows = []
    for i, V in enumerate(lo["potential"].values):
        r = lo.isel(potential=i)
        if not np.isfinite(float(r["threshold_excitons"])):
            rows += [make_row(f"lowest_threshold_{tag}_{unit_tag}", np.nan, np.nan, unit, how, str(r["reason"].values),
                              potential=V) for unit_tag, unit in _LOWEST_UNITS]
            continue
        lam = float(r["wavelength_nm"])
        ext = " EXTRAPOLATED: outside the measured <N> range;" if bool(r["extrapolated"]) else ""
        note = (f"at {lam:g} nm;{ext} {int(r['n_reachable'])} wavelengths reach it; sd includes the "
                f"cross-section error (fit only: {float(r['threshold_sd_excitons']):.3g}); the minimum over "
                "wavelengths is biased low")
        note_J = (f"at {lam:g} nm;{ext} J = <N>/sigma (sigma = {sigma:.4g} cm^2); independent of sigma, sd from the "
                  "fit and level only")
        values = ((r["threshold_excitons"], r["threshold_total_sd_excitons"], note),
                  (r["threshold_photons_cm2"], r["threshold_sd_photons_cm2"], note_J),
                  (r["threshold_nJ_cm2"], r["threshold_sd_nJ_cm2"],
                   note_J + f"; photon energy at the pump wavelength {lo.attrs['pump_wavelength_nm']:g} nm"))
        rows += [make_row(f"lowest_threshold_{tag}_{unit_tag}", float(v), float(u), unit, how, n, potential=V)
                 for (unit_tag, unit), (v, u, n) in zip(_LOWEST_UNITS, values)]
    return rows
