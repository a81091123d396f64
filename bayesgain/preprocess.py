"""Preprocessing of a loaded experiment (:func:`bayesgain.io.load_experiment`) for the classic analysis.

Every function takes and returns labelled xarray objects whose variables carry a ``units`` attr.
Inputs are never modified.

* :func:`reflection_correct_film` -- SI eq. S33 on the raw film TA ("extinction" Delta A*) with the
  transient reflection Delta R measured at open circuit, used for *every* potential (the paper's
  approximation, SI section 1.6), plus a sub-gap residual report (before / after) that shows how
  well that approximation removes the below-gap artefact.
* :func:`band_edge_window` -- 1S window from a Gaussian fit of the steady-state absorbance.
* :func:`window_average` -- mean and standard error of the mean over wavelength (SI "Error
  calculations": sigma_mean = sigma / sqrt(n), sigma the sample standard deviation, ddof = 1).
* :func:`film_absorbance` -- A_0 of the film from the absorbed fraction, A_0 = -log10(1 - F_A)
  (SI eq. S27/S28).
* :func:`excited_state_absorption` -- A* = A_0 + Delta A_SEC(V) + Delta A_TA and the gain
  coefficient g = -A* ln(10) / d.
* :func:`sec_electrons` -- <n_e>(V) = g_e (-Delta A_1S) / A_0,1S per cycle and sweep direction,
  and the normalised integrated PL.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import xarray as xr
from scipy import optimize, signal

from . import physics as ph

__all__ = [
    "BandEdgeWindow",
    "band_edge_window",
    "window_average",
    "film_absorbance",
    "reflection_correct_film",
    "sec_absorption_mean",
    "excited_state_absorption",
    "sec_electrons",
]

FWHM_PER_SD = 2.0 * math.sqrt(2.0 * math.log(2.0))


# ----------------------------------------------------------------------------- helpers
def _spectrum_dim(da):
    if da.ndim != 1:
        raise ValueError(f"expected a 1-D spectrum, got dims {da.dims}")
    return da.dims[0]


def _to_grid(da, dim, target, name):
    """Interpolate ``da`` along ``dim`` onto the values ``target`` (1-D array); refuse extrapolation."""
    x = np.asarray(da[dim].values, float)
    t = np.asarray(target, float)
    if t.min() < x.min() - 1e-9 or t.max() > x.max() + 1e-9:
        raise ValueError(f"{name}: target {dim} range {t.min():g}..{t.max():g} is outside the data range "
                         f"{x.min():g}..{x.max():g} (no extrapolation)")
    if x.size == t.size and np.allclose(x, t, rtol=0, atol=1e-9):
        return da.assign_coords({dim: t})
    return da.interp({dim: t})


def _has(tree, path):
    try:
        tree[path]
    except KeyError:
        return False
    return True


def _wavelength_dim(da):
    for d in ("wavelength", "wavelength_spectrum", "wavelength_pl"):
        if d in da.dims:
            return d
    raise ValueError(f"no wavelength dimension among {da.dims}")


# ----------------------------------------------------------------------------- band-edge window
@dataclasses.dataclass(frozen=True)
class BandEdgeWindow:
    """1S window (nm): ``lo``..``hi``; ``center``/``hwhm``/``amplitude`` from the fit (NaN when overridden)."""

    lo: float
    hi: float
    center: float = float("nan")
    hwhm: float = float("nan")
    amplitude: float = float("nan")
    source: str = "gaussian fit"

    @property
    def bounds(self):
        return (self.lo, self.hi)


def _gauss_lin(x, a, c, s, b0, b1):
    return a * np.exp(-0.5 * ((x - c) / s) ** 2) + b0 + b1 * (x - c)


def band_edge_window(spectrum, window=None, probe_wavelengths=None, half_widths=1.0):
    """1S band-edge window (nm) of a steady-state absorbance spectrum ``spectrum`` (1-D DataArray, OD).

    The 1S peak is the reddest local maximum with a prominence of at least 5 % of its height; a
    Gaussian (in wavelength) on a linear local background is fitted over centre - 1.5 HWHM ..
    centre + 3 HWHM (the red side is clean; the blue side rises into 2S).  The window is centre +-
    ``half_widths`` HWHM.  ``window=(lo, hi)`` overrides the fit.  With ``probe_wavelengths`` the
    window must lie inside their range (else ValueError).  Returns a :class:`BandEdgeWindow`.
    """
    probe = None if probe_wavelengths is None else np.asarray(probe_wavelengths, float)
    if window is not None:
        lo, hi = (float(v) for v in window)
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise ValueError(f"window must be (lo, hi) nm with lo < hi, got {window!r}")
        out = BandEdgeWindow(lo, hi, source="explicit")
    else:
        dim = _spectrum_dim(spectrum)
        x = np.asarray(spectrum[dim].values, float)
        y = np.asarray(spectrum.values, float)
        if not np.all(np.isfinite(y)):
            raise ValueError("band_edge_window: the spectrum holds NaN/inf")
        peaks, props = signal.find_peaks(y, prominence=0.0)
        keep = [p for p, pr in zip(peaks, props["prominences"]) if y[p] > 0 and pr >= 0.05 * y[p]]
        if not keep:
            raise ValueError("band_edge_window: no 1S peak found (no local maximum with >= 5 % prominence); "
                             "give window=(lo, hi) explicitly")
        i = max(keep, key=lambda p: x[p])  # reddest peak
        peak, c0 = y[i], x[i]
        red = np.nonzero((x > c0) & (y <= 0.5 * peak))[0]
        hw0 = (x[red[0]] - c0) if red.size else 10.0
        hw0 = max(hw0, 2.0 * np.median(np.diff(x)))
        sel = (x >= c0 - 1.5 * hw0) & (x <= c0 + 3.0 * hw0)
        if sel.sum() < 6:
            raise ValueError(f"band_edge_window: only {int(sel.sum())} points around the 1S peak at {c0:g} nm; "
                             "too few for the Gaussian fit; give window=(lo, hi)")
        p0 = [peak, c0, hw0 / math.sqrt(2 * math.log(2)), 0.0, 0.0]
        try:
            popt, _ = optimize.curve_fit(_gauss_lin, x[sel], y[sel], p0=p0, maxfev=5000)
        except (RuntimeError, optimize.OptimizeWarning) as err:
            raise ValueError(f"band_edge_window: Gaussian fit of the 1S peak near {c0:g} nm failed ({err}); "
                             "give window=(lo, hi)") from err
        a, c, s = popt[0], popt[1], abs(popt[2])
        if not (a > 0 and np.isfinite(c) and x[sel].min() <= c <= x[sel].max() and 0 < s < 5 * hw0):
            raise ValueError(f"band_edge_window: Gaussian fit near {c0:g} nm is not a peak (amplitude {a:g}, "
                             f"centre {c:g} nm, sd {s:g} nm); give window=(lo, hi)")
        hwhm = s * FWHM_PER_SD / 2.0
        out = BandEdgeWindow(float(c - half_widths * hwhm), float(c + half_widths * hwhm), float(c), float(hwhm),
                             float(a))
    if probe is not None and (out.lo < probe.min() or out.hi > probe.max()):
        raise ValueError(f"band-edge window {out.lo:.1f}..{out.hi:.1f} nm lies outside the probe range "
                         f"{probe.min():.1f}..{probe.max():.1f} nm")
    return out


def _bounds(window):
    if isinstance(window, BandEdgeWindow):
        return window.bounds
    lo, hi = (float(v) for v in window)
    if not hi > lo:
        raise ValueError(f"window must be (lo, hi) with lo < hi, got {window!r}")
    return lo, hi


def window_average(da, window, dim=None):
    """Mean and standard error of the mean of ``da`` over wavelengths inside ``window`` (lo, hi nm).

    SI "Error calculations": sigma_mean = sigma / sqrt(n), sigma the sample standard deviation
    (ddof = 1) of the n points.  Returns ``(mean, sem)`` DataArrays (units of ``da``).  Fewer than
    two points in the window -> ValueError.
    """
    dim = dim or _wavelength_dim(da)
    lo, hi = _bounds(window)
    x = da[dim].values
    sel = (x >= lo) & (x <= hi)
    n = int(sel.sum())
    if n < 2:
        raise ValueError(f"window {lo:.1f}..{hi:.1f} nm holds {n} point(s) of {dim} "
                         f"(range {x.min():.1f}..{x.max():.1f} nm); need at least 2")
    sub = da.isel({dim: np.nonzero(sel)[0]})
    units = da.attrs.get("units", "")
    mean = sub.mean(dim).assign_attrs(units=units, window_nm=[lo, hi], n_points=n)
    sem = (sub.std(dim, ddof=1) / math.sqrt(n)).assign_attrs(units=units, window_nm=[lo, hi], n_points=n)
    return mean, sem


# ----------------------------------------------------------------------------- film spectra
def film_absorbance(tree, wavelength=None):
    """A_0 = -log10(1 - F_A) (SI eq. S27/S28) of the film, on ``wavelength`` (nm) if given (interpolated)."""
    FA = tree["film"]["absorptance"]
    A0 = -np.log10(1.0 - FA)
    A0 = A0.rename(wavelength_spectrum="wavelength") if "wavelength_spectrum" in A0.dims else A0
    if wavelength is not None:
        A0 = _to_grid(A0, "wavelength", wavelength, "film absorbance A_0")
    return A0.rename("A0").assign_attrs(units="OD", long_name="film absorbance -log10(1 - F_A)")


def _film_fractions(tree, wavelength):
    film = tree["film"]
    FA = _to_grid(film["absorptance"].rename(wavelength_spectrum="wavelength"), "wavelength", wavelength, "F_A")
    FR = _to_grid(film["reflectance"].rename(wavelength_spectrum="wavelength"), "wavelength", wavelength, "F_R")
    return FA, FR


# ----------------------------------------------------------------------------- reflection correction
def reflection_correct_film(tree, window=None, subgap_start_hwhm=2.0, subgap_delays_ps=(0.5, 10.0),
                            fluence_rtol=1e-6):
    """Reflection-corrected film TA (SI eq. S33) with Delta R at open circuit for every potential.

    Returns a Dataset: ``dA`` (potential, fluence, wavelength, delay; OD, corrected),
    ``subgap_before`` / ``subgap_after`` (potential, fluence; OD): the mean |Delta A| over the
    sub-gap window (wavelengths >= 1S centre + ``subgap_start_hwhm`` HWHM, to the red end of the
    probe) and the delays in ``subgap_delays_ps``, before and after the correction; the window is
    in the attr ``subgap_window_nm``.  Entries already ``reflection_corrected`` pass through.  The
    TR matrix of the same fluence (relative tolerance ``fluence_rtol``) at the TR potential nearest
    open circuit is interpolated onto the TA wavelength/delay grid when the grids differ.
    ``window`` ((lo, hi) nm or a :class:`BandEdgeWindow`) gives the 1S centre (lo + hi) / 2 and HWHM
    (hi - lo) / 2; default: Gaussian fit of the film A_0 (:func:`band_edge_window`).
    """
    ta = tree["film/ta"]
    dA_raw = ta["dA"]
    lam = dA_raw["wavelength"].values
    done = ta["reflection_corrected"]
    A0 = film_absorbance(tree, lam)
    if window is None:
        bw = band_edge_window(film_absorbance(tree), probe_wavelengths=lam)
    else:  # explicit (lo, hi) or a BandEdgeWindow: centre and HWHM from its bounds
        lo, hi = _bounds(window)
        bw = BandEdgeWindow(lo, hi, 0.5 * (lo + hi), 0.5 * (hi - lo), source="explicit")
    sub_lo = bw.center + subgap_start_hwhm * bw.hwhm
    if sub_lo >= lam.max() - 1e-9 or (lam >= sub_lo).sum() < 2:
        raise ValueError(f"sub-gap window starts at {sub_lo:.1f} nm, beyond the probe range (max {lam.max():.1f} nm)")
    subgap = (sub_lo, float(lam.max()))

    if bool(done.all()):
        corrected = dA_raw
    else:
        if not _has(tree, "film/tr"):
            raise ValueError("film TA is not reflection corrected and the experiment has no film transient "
                             "reflection (/film/tr) to correct it with")
        tr = tree["film/tr"]["dR"]
        V_oc = float(tree["film"].attrs["open_circuit_potential_V"])
        iv = int(np.argmin(np.abs(tr["potential"].values - V_oc)))
        if abs(tr["potential"].values[iv] - V_oc) > 0.01:
            raise ValueError(f"no transient reflection at open circuit ({V_oc:g} V); TR potentials are "
                             f"{list(tr['potential'].values)}")
        dR = tr.isel(potential=iv, drop=True)
        # match fluences
        F_ta = dA_raw["fluence"].values
        F_tr = dR["fluence"].values
        idx = []
        for F in F_ta:
            j = int(np.argmin(np.abs(F_tr - F)))
            if abs(F_tr[j] - F) > fluence_rtol * F:
                raise ValueError(f"no transient reflection at fluence {F:.4g} photons/cm^2 (TR fluences: "
                                 f"{', '.join(f'{v:.4g}' for v in F_tr)})")
            idx.append(j)
        dR = dR.isel(fluence=idx).assign_coords(fluence=F_ta)
        dR = _to_grid(dR, "wavelength", lam, "Delta R wavelength")
        dR = _to_grid(dR, "delay", dA_raw["delay"].values, "Delta R delay")
        FA, FR = _film_fractions(tree, lam)
        dA4, dR4, FA4, FR4 = xr.broadcast(dA_raw, dR, FA, FR)
        order = dA_raw.dims
        values = ph.reflection_correct(dA4.transpose(*order).values, dR4.transpose(*order).values,
                                       FA4.transpose(*order).values, FR4.transpose(*order).values)
        corrected = dA_raw.copy(data=values)
        corrected = xr.where(done, dA_raw, corrected).transpose(*dA_raw.dims)
    corrected = corrected.rename("dA").assign_attrs(units="OD", reflection_corrected=True,
                                                    long_name="reflection-corrected film Delta A (SI eq. S33)")

    def residual(da):
        d = da["delay"].values
        dsel = (d >= subgap_delays_ps[0]) & (d <= subgap_delays_ps[1])
        if not dsel.any():
            raise ValueError(f"no delays within {subgap_delays_ps} ps for the sub-gap report")
        sel = da.sel(wavelength=slice(subgap[0], subgap[1])).isel(delay=np.nonzero(dsel)[0])
        return abs(sel).mean(("wavelength", "delay")).assign_attrs(units="OD")

    out = xr.Dataset({
        "dA": corrected,
        "subgap_before": residual(dA_raw).assign_attrs(long_name="mean |Delta A*| in the sub-gap window, raw"),
        "subgap_after": residual(corrected).assign_attrs(long_name="mean |Delta A| in the sub-gap window, corrected"),
        "A0": A0,
    })
    out.attrs.update(subgap_window_nm=list(subgap), subgap_delays_ps=list(subgap_delays_ps),
                     band_edge_center_nm=bw.center, band_edge_hwhm_nm=bw.hwhm,
                     note="Delta R measured at open circuit used for every potential (SI section 1.6)")
    return out


# ----------------------------------------------------------------------------- SEC and A*
def sec_absorption_mean(tree):
    """Delta A_SEC (potential, wavelength), OD vs open circuit: mean over cycles and sweep directions."""
    sec = tree["film/sec"]["absorption"]
    return sec.mean(("cycle", "direction")).assign_attrs(units="OD",
                                                          long_name="Delta A_SEC, mean of cycles and directions")


def excited_state_absorption(tree, corrected=None, thickness_nm=None):
    """A* = A_0 + Delta A_SEC(V) + Delta A_TA and the gain coefficient g = -A* ln(10) / d.

    ``corrected`` is the output of :func:`reflection_correct_film` (computed when absent).  A_0 from
    F_A (eq. S27/S28) interpolated onto the TA wavelengths; Delta A_SEC at each TA potential by linear
    interpolation of the cycle/direction-averaged sweeps (potential and wavelength).  Returns a
    Dataset with ``A_star`` and ``gain_per_cm`` (potential, fluence, wavelength, delay), ``A0``
    (wavelength), ``dA_sec`` (potential, wavelength), ``A_pre`` = A_0 + Delta A_SEC (potential, wavelength).
    """
    corrected = reflection_correct_film(tree) if corrected is None else corrected
    dA = corrected["dA"]
    lam = dA["wavelength"].values
    A0 = film_absorbance(tree, lam)
    if _has(tree, "film/sec") and "absorption" in tree["film/sec"]:
        sec = sec_absorption_mean(tree)
        sec = _to_grid(sec, "wavelength", lam, "SEC wavelength")
        sec = _to_grid(sec, "potential", dA["potential"].values, "SEC potential")
    else:
        V_oc = float(tree["film"].attrs["open_circuit_potential_V"])
        if not np.allclose(dA["potential"].values, V_oc, atol=1e-3):
            raise ValueError("film TA away from open circuit needs SEC absorption sweeps (/film/sec)")
        sec = xr.zeros_like(A0).expand_dims(potential=dA["potential"].values)
    sec = sec.rename("dA_sec").assign_attrs(units="OD")
    A_pre = (A0 + sec).transpose("potential", "wavelength").rename("A_pre").assign_attrs(
        units="OD", long_name="A_0 + Delta A_SEC")
    A_star = (A_pre + dA).transpose(*dA.dims).rename("A_star").assign_attrs(
        units="OD", long_name="excited-state absorption A_0 + Delta A_SEC + Delta A_TA")
    d = float(tree.attrs["film_thickness_nm"] if thickness_nm is None else thickness_nm)
    g = A_star.copy(data=ph.gain_coefficient_per_cm(A_star.values, d)).rename("gain_per_cm").assign_attrs(
        units="1/cm", long_name="gain coefficient -A* ln(10) / d", thickness_nm=d)
    return xr.Dataset({"A_star": A_star, "gain_per_cm": g, "A0": A0, "dA_sec": sec, "A_pre": A_pre})


def sec_electrons(tree, window=None, pl_background_counts=0.0):
    """<n_e>(V) = g_e (-Delta A_1S) / A_0,1S per cycle and sweep direction (kept apart), and normalised PL.

    Delta A_1S and A_0,1S are window averages over the 1S window (``window``: (lo, hi) nm or a
    :class:`BandEdgeWindow`; default: Gaussian fit of the film A_0).  The standard error combines
    the window SEMs of both.  PL: the spectrum minus ``pl_background_counts`` integrated over
    wavelength (trapezoid) and divided by its value at the potential nearest open circuit, per
    cycle and direction.  Returns a Dataset: ``n_e``, ``n_e_sem`` (cycle, direction, potential),
    ``pl_norm`` (same dims, when PL sweeps exist).
    """
    sec = tree["film/sec"]
    dA = sec["absorption"]
    lam = dA["wavelength"].values
    A0 = film_absorbance(tree, lam)
    if isinstance(window, BandEdgeWindow):
        bw = window
    else:
        bw = band_edge_window(film_absorbance(tree), window=window, probe_wavelengths=lam)
    g_e = int(tree.attrs.get("g_e", 2))
    bleach, bleach_sem = window_average(-dA, bw)
    a0, a0_sem = window_average(A0, bw)
    a0, a0_sem = float(a0), float(a0_sem)
    if a0 <= 0:
        raise ValueError(f"window-averaged A_0 over {bw.lo:.1f}..{bw.hi:.1f} nm is {a0:g} <= 0")
    n_e = g_e * bleach / a0
    n_sem = np.abs(n_e) * np.sqrt((bleach_sem / np.maximum(np.abs(bleach), 1e-300)) ** 2 + (a0_sem / a0) ** 2)
    n_sem = xr.where(np.abs(bleach) > 0, n_sem, g_e * bleach_sem / a0)
    out = xr.Dataset({
        "n_e": n_e.assign_attrs(units="1", long_name="<n_e> electrons per QD from the 1S SEC bleach"),
        "n_e_sem": n_sem.assign_attrs(units="1", long_name="standard error of <n_e>"),
    })
    out.attrs.update(window_nm=[bw.lo, bw.hi], A0_1S_OD=a0, A0_1S_sem_OD=a0_sem, g_e=g_e)
    if "photoluminescence" in sec:
        pl = sec["photoluminescence"] - pl_background_counts
        total = pl.integrate("wavelength_pl")
        V_oc = float(tree["film"].attrs["open_circuit_potential_V"])
        ref = total.sel(potential=V_oc, method="nearest")
        if np.any(ref <= 0):
            raise ValueError("integrated PL at open circuit is <= 0; cannot normalise")
        out["pl_norm"] = (total / ref).drop_vars("potential", errors="ignore").assign_attrs(
            units="1", long_name="integrated PL / its open-circuit value")
        out["pl_norm"] = out["pl_norm"].transpose(*out["n_e"].dims)
    return out
