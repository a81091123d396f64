"""Preprocessing of a loaded experiment (:func:`bayesgain.io.load_experiment`) for the classic analysis.

Every function takes and returns labelled xarray objects whose variables carry a ``units`` attr.
Inputs are never modified.

* :func:`reflection_correct_film` -- SI eq. S33 on the raw film TA ("extinction" Delta A*) with the
  transient reflection Delta R measured at open circuit, used for *every* potential (the paper's
  approximation, SI section 1.6), plus a sub-gap residual report (before / after) that shows how
  well that approximation removes the below-gap artefact.
* :func:`band_edge_window` -- 1S window from a Gaussian fit of the steady-state absorbance, or the
  manifest's ``[analysis] band_edge_window_nm`` (an attr of the spectrum, see :func:`film_absorbance`).
* :func:`resolve_window` -- the window every function uses by default: call argument > manifest
  (tree attr ``band_edge_window_nm`` / ``solution_band_edge_window_nm``) > Gaussian fit.
* :func:`window_average` -- mean and standard error of the mean over wavelength (SI "Error
  calculations": sigma_mean = sigma / sqrt(n), sigma the sample standard deviation, ddof = 1).
* :func:`film_absorbance` -- A_0 of the film from the absorbed fraction, A_0 = -log10(1 - F_A)
  (SI eq. S27/S28).
* :func:`excited_state_absorption` -- A* = A_0 + Delta A_SEC(V) + Delta A_TA and the gain
  coefficient g = -A* ln(10) / d.
* :func:`sec_electrons` -- <n_e>(V) = g_e (-Delta A_1S) / A_0,1S per cycle and sweep direction,
  from window averages (default) or Gaussian fits of the 1S bleach (:func:`fit_1s_amplitudes`),
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
    "resolve_window",
    "fit_1s_amplitudes",
    "window_average",
    "film_absorbance",
    "reflection_correct_film",
    "sec_absorption_mean",
    "excited_state_absorption",
    "sec_electrons",
    "GAIN_DELAY_PS",
    "SPECTRAL_GAIN_DELAYS_PS",
    "delay_selection",
    "film_ta_measured",
]

FWHM_PER_SD = 2.0 * math.sqrt(2.0 * math.log(2.0))

# ----------------------------------------------------------------------------- read-out delays
GAIN_DELAY_PS = 5.0  # the paper reads gain at 5 ps, after the carriers have thermalised to the band edge
# per-wavelength fits have no window average to beat the noise: average the delays within 20 % of 5 ps
SPECTRAL_GAIN_DELAYS_PS = (0.8 * GAIN_DELAY_PS, 1.2 * GAIN_DELAY_PS)
_NEAREST_TOLERANCE = 0.25  # a single read-out delay must lie within 25 % of the one asked for


def delay_selection(delays, delays_ps):
    """Indices of the delays that ``delays_ps`` asks for and a phrase naming them.

    ``delays_ps`` is one delay (the nearest measured one, which must lie within 25 % of it) or a
    (lo, hi) pair (every measured delay in the closed range, averaged by the callers)."""
    d = np.asarray(delays, float)
    spec = np.atleast_1d(np.asarray(delays_ps, float)).ravel()
    if spec.size == 1:
        want = float(spec[0])
        if not np.isfinite(want):
            raise ValueError(f"read-out delay must be finite, got {delays_ps!r}")
        i = int(np.argmin(np.abs(d - want)))
        if abs(d[i] - want) > _NEAREST_TOLERANCE * max(abs(want), 1e-12):
            raise ValueError(f"no measured delay within 25 % of {want:g} ps (nearest {d[i]:g} ps)")
        return np.array([i]), f"at {d[i]:.3g} ps (measured delay nearest {want:g} ps)"
    if spec.size != 2 or not np.all(np.isfinite(spec)) or spec[0] > spec[1]:
        raise ValueError(f"delays_ps must be one delay or a (lo, hi) pair with lo <= hi, got {delays_ps!r}")
    idx = np.nonzero((d >= spec[0]) & (d <= spec[1]))[0]
    if idx.size == 0:
        raise ValueError(f"no delays within ({spec[0]:g}, {spec[1]:g}) ps")
    return idx, f"averaged over {idx.size} delays in {spec[0]:g}-{spec[1]:g} ps"


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


def film_ta_measured(tree):
    """(potential, fluence) bool: which film TA cells hold a file (a lab's grid may have holes; NaN there)."""
    ta = tree["film/ta"]
    if "measured" in ta.data_vars:
        return ta["measured"]
    # an experiment saved before holes were allowed: every cell was measured
    return xr.DataArray(np.ones((ta.sizes["potential"], ta.sizes["fluence"]), bool), dims=("potential", "fluence"),
                        coords={"potential": ta["potential"], "fluence": ta["fluence"]})


def _where_measured(fn, values, *args):
    """``fn(values, *args)`` where ``values`` is finite, NaN elsewhere: NaN marks a point a file did not
    measure (files on different grids), which the NumPy physics functions rightly refuse."""
    fin = np.isfinite(values)
    if fin.all():
        return fn(values, *args)
    out = np.full(values.shape, np.nan)
    out[fin] = fn(values[fin], *[a[fin] if np.ndim(a) else a for a in args])
    return out


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


def _gaussian_1s_fit(spectrum):
    """Gaussian + linear background fit of the reddest 1S peak of ``spectrum`` (1-D).  Returns
    (amplitude, centre nm, sd nm, (fit_lo, fit_hi) nm); ValueError when no peak / no fit."""
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
    return float(a), float(c), float(s), (float(x[sel].min()), float(x[sel].max()))


def band_edge_window(spectrum, window=None, probe_wavelengths=None, half_widths=1.0):
    """1S band-edge window (nm) of a steady-state absorbance spectrum ``spectrum`` (1-D DataArray, OD).

    The 1S peak is the reddest local maximum with a prominence of at least 5 % of its height; a
    Gaussian (in wavelength) on a linear local background is fitted over centre - 1.5 HWHM ..
    centre + 3 HWHM (the red side is clean; the blue side rises into 2S).  The window is centre +-
    ``half_widths`` HWHM.  ``window=(lo, hi)`` overrides the fit.  With ``probe_wavelengths`` the
    window must lie inside their range (else ValueError).  Returns a :class:`BandEdgeWindow`.

    Without ``window``, a ``band_edge_window_nm`` attr of ``spectrum`` (set by :func:`film_absorbance`
    from the manifest's ``[analysis] band_edge_window_nm``, and on the solution absorbance by the
    loader from ``solution_band_edge_window_nm``) overrides the fit (``source`` "manifest"; its
    ``center`` / ``hwhm`` are the midpoint and half width of the window).  Precedence: call argument
    > manifest > Gaussian fit.
    """
    probe = None if probe_wavelengths is None else np.asarray(probe_wavelengths, float)
    manifest = None if window is not None else getattr(spectrum, "attrs", {}).get("band_edge_window_nm")
    if manifest is not None:
        lo, hi = (float(v) for v in np.asarray(manifest, float).ravel())
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise ValueError(f"manifest [analysis] band_edge_window_nm must be [lo, hi] nm with lo < hi, "
                             f"got {list(np.asarray(manifest).ravel())}")
        out = BandEdgeWindow(lo, hi, 0.5 * (lo + hi), 0.5 * (hi - lo), source="manifest")
    elif window is not None:
        lo, hi = (float(v) for v in window)
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise ValueError(f"window must be (lo, hi) nm with lo < hi, got {window!r}")
        out = BandEdgeWindow(lo, hi, source="explicit")
    else:
        a, c, s, _ = _gaussian_1s_fit(spectrum)
        hwhm = s * FWHM_PER_SD / 2.0
        out = BandEdgeWindow(float(c - half_widths * hwhm), float(c + half_widths * hwhm), float(c), float(hwhm),
                             float(a))
    if probe is not None and (out.lo < probe.min() or out.hi > probe.max()):
        origin = " (manifest [analysis] band_edge_window_nm)" if out.source == "manifest" else ""
        raise ValueError(f"band-edge window {out.lo:.1f}..{out.hi:.1f} nm{origin} lies outside the probe range "
                         f"{probe.min():.1f}..{probe.max():.1f} nm")
    return out


def resolve_window(tree, window=None, probe_wavelengths=None, which="film"):
    """The 1S window a function uses: ``window`` (a :class:`BandEdgeWindow` is returned as is, a
    (lo, hi) pair is checked) > the manifest's window (tree attr ``band_edge_window_nm`` for
    ``which="film"``, ``solution_band_edge_window_nm`` for ``"solution"``) > the Gaussian fit of the
    film A_0 (:func:`film_absorbance`) or of the solution absorbance.  ``probe_wavelengths``: the
    window must lie inside their range (ValueError)."""
    if isinstance(window, BandEdgeWindow):
        return window
    if which == "film":
        spec = film_absorbance(tree)
    elif which == "solution":
        spec = tree["solution"]["absorbance"]
        win = tree.attrs.get("solution_band_edge_window_nm")
        if win is not None and window is None:
            spec = spec.copy().assign_attrs(band_edge_window_nm=list(np.asarray(win, float).ravel()))
    else:
        raise ValueError(f"which must be 'film' or 'solution', got {which!r}")
    return band_edge_window(spec, window=window, probe_wavelengths=probe_wavelengths)


def _bounds(window):
    if isinstance(window, BandEdgeWindow):
        return window.bounds
    lo, hi = (float(v) for v in window)
    if not hi > lo:
        raise ValueError(f"window must be (lo, hi) with lo < hi, got {window!r}")
    return lo, hi


def window_average(da, window, dim=None, pixel_sem=None):
    """Mean and standard error of the mean of ``da`` over wavelengths inside ``window`` (lo, hi nm).

    SI "Error calculations": sigma_mean = sigma / sqrt(n), sigma the sample standard deviation
    (ddof = 1) of the n points.  Returns ``(mean, sem)`` DataArrays (units of ``da``).  Fewer than
    two points in the window -> ValueError.

    ``pixel_sem`` (same dims as ``da``): a measured standard error per pixel, e.g. the scan-to-scan
    standard error of averaged scans.  Where it is finite at every pixel of the window, the SEM is
    that of the mean of independent pixels, sqrt(sum s_i^2) / n, instead of the spread over
    wavelengths (attr ``sem_source``).

    NaN marks a point a file did not measure (files on different grids, stored on their union by
    :func:`bayesgain.io.load_experiment`) or a missing cell (an instrument's invalid pixel): each
    spectrum is then averaged over its own n measured wavelengths in the window (sigma / sqrt(n) with
    its n), a spectrum not measured at all stays NaN, and a measured spectrum with fewer than two
    points in the window is an error.
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
    n_each, n_attr = n, n
    if np.isnan(sub.values).any():
        count = sub.count(dim)
        measured = da.count(dim) > 0
        few = measured & (count < 2)
        if bool(few.any()):
            first = {k: v.values[0].item() for k, v in few.where(few, drop=True).coords.items() if v.ndim == 1}
            raise ValueError(f"window {lo:.1f}..{hi:.1f} nm holds fewer than 2 measured points of {dim} for a "
                             f"spectrum on another grid (first at {first}); need at least 2")
        n_each, n_attr = count, int(count.where(measured).min())
    mean = sub.mean(dim).assign_attrs(units=units, window_nm=[lo, hi], n_points=n_attr)
    sem = (sub.std(dim, ddof=1) / np.sqrt(n_each)).assign_attrs(units=units, window_nm=[lo, hi], n_points=n_attr)
    if pixel_sem is not None:
        ps = pixel_sem.isel({dim: np.nonzero(sel)[0]})
        measured_sem = np.sqrt((ps ** 2).sum(dim)) / n_each
        sem = xr.where(ps.notnull().all(dim), measured_sem, sem).assign_attrs(
            units=units, window_nm=[lo, hi], n_points=n_attr,
            sem_source="per-pixel scan standard errors where every window pixel has one, else the spread")
    return mean, sem


# ----------------------------------------------------------------------------- film spectra
def film_absorbance(tree, wavelength=None):
    """A_0 = -log10(1 - F_A) (SI eq. S27/S28) of the film, on ``wavelength`` (nm) if given (interpolated).

    When the tree carries the manifest's 1S window (root attr ``band_edge_window_nm``), the result
    carries it as an attr too, so that :func:`band_edge_window` of it uses the manifest's window."""
    FA = tree["film"]["absorptance"]
    A0 = ph.optics.absorbance_from_absorptance(FA)
    A0 = A0.rename(wavelength_spectrum="wavelength") if "wavelength_spectrum" in A0.dims else A0
    if wavelength is not None:
        A0 = _to_grid(A0, "wavelength", wavelength, "film absorbance A_0")
    attrs = dict(units="OD", long_name="film absorbance -log10(1 - F_A)")
    win = tree.attrs.get("band_edge_window_nm")
    if win is not None:
        attrs["band_edge_window_nm"] = [float(v) for v in np.asarray(win, float).ravel()]
    return A0.rename("A0").assign_attrs(attrs)


def _film_fractions(tree, wavelength):
    film = tree["film"]
    FA = _to_grid(film["absorptance"].rename(wavelength_spectrum="wavelength"), "wavelength", wavelength, "F_A")
    FR = _to_grid(film["reflectance"].rename(wavelength_spectrum="wavelength"), "wavelength", wavelength, "F_R")
    return FA, FR


# ----------------------------------------------------------------------------- reflection correction
def reflection_correct_film(tree, window=None, subgap_start_hwhm=2.0, subgap_delays_ps=(0.5, 10.0),
                            fluence_rtol=1e-6):
    """Reflection-corrected film TA (SI eq. S33) with Delta R at open circuit for every potential.

    Returns a Dataset: ``dA`` (potential, fluence, wavelength, delay; OD, corrected; NaN in cells not
    measured), ``measured`` (potential, fluence; :func:`film_ta_measured`),
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
    bw, subgap = _subgap_window(tree, lam, window, subgap_start_hwhm)
    corrected = dA_raw if bool(done.all()) else _reflection_corrected(tree, dA_raw, done, fluence_rtol)
    corrected = corrected.rename("dA").assign_attrs(units="OD", reflection_corrected=True,
                                                    long_name="reflection-corrected film Delta A (SI eq. S33)")
    out = xr.Dataset({
        "dA": corrected,
        "subgap_before": _subgap_residual(dA_raw, subgap, subgap_delays_ps).assign_attrs(
            long_name="mean |Delta A*| in the sub-gap window, raw"),
        "subgap_after": _subgap_residual(corrected, subgap, subgap_delays_ps).assign_attrs(
            long_name="mean |Delta A| in the sub-gap window, corrected"),
        "A0": A0,
        "measured": film_ta_measured(tree),
    })
    out.attrs.update(subgap_window_nm=list(subgap), subgap_delays_ps=list(subgap_delays_ps),
                     band_edge_center_nm=bw.center, band_edge_hwhm_nm=bw.hwhm,
                     note="Delta R measured at open circuit used for every potential (SI section 1.6)")
    return out


def _subgap_window(tree, lam, window, subgap_start_hwhm):
    """The band-edge window and the sub-gap window (nm) from ``subgap_start_hwhm`` HWHM past its centre to the
    probe's red end."""
    if window is None:  # manifest window (centre/HWHM from its bounds) or the Gaussian fit
        bw = band_edge_window(film_absorbance(tree), probe_wavelengths=lam)
    else:  # explicit (lo, hi) or a BandEdgeWindow: centre and HWHM from its bounds
        lo, hi = _bounds(window)
        bw = BandEdgeWindow(lo, hi, 0.5 * (lo + hi), 0.5 * (hi - lo), source="explicit")
    sub_lo = bw.center + subgap_start_hwhm * bw.hwhm
    if sub_lo >= lam.max() - 1e-9 or (lam >= sub_lo).sum() < 2:
        raise ValueError(f"sub-gap window starts at {sub_lo:.1f} nm, beyond the probe range (max {lam.max():.1f} nm)")
    return bw, (sub_lo, float(lam.max()))


def _reflection_corrected(tree, dA_raw, done, fluence_rtol):
    """SI eq. S33 applied to the entries not yet corrected, with Delta R at open circuit of the same fluence."""
    dR = _tr_on_ta_grid(tree, dA_raw, fluence_rtol)
    lam = dA_raw["wavelength"].values
    FA, FR = _film_fractions(tree, lam)
    dA4, dR4, FA4, FR4 = xr.broadcast(dA_raw, dR, FA, FR)
    order = dA_raw.dims
    values = _where_measured(ph.reflection_correct, dA4.transpose(*order).values, dR4.transpose(*order).values,
                             FA4.transpose(*order).values, FR4.transpose(*order).values)
    corrected = dA_raw.copy(data=values)
    return xr.where(done, dA_raw, corrected).transpose(*dA_raw.dims)


def _tr_on_ta_grid(tree, dA_raw, fluence_rtol):
    """Delta R at the TR potential nearest open circuit, per TA fluence, on the TA wavelength and delay grid."""
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
    dR = _to_grid(dR, "wavelength", dA_raw["wavelength"].values, "Delta R wavelength")
    return _to_grid(dR, "delay", dA_raw["delay"].values, "Delta R delay")


def _subgap_residual(da, subgap, subgap_delays_ps):
    """Mean |da| over the sub-gap window ``subgap`` (nm) and the delays in ``subgap_delays_ps``, per spectrum."""
    d = da["delay"].values
    dsel = (d >= subgap_delays_ps[0]) & (d <= subgap_delays_ps[1])
    if not dsel.any():
        raise ValueError(f"no delays within {subgap_delays_ps} ps for the sub-gap report")
    sel = da.sel(wavelength=slice(subgap[0], subgap[1])).isel(delay=np.nonzero(dsel)[0])
    return abs(sel).mean(("wavelength", "delay")).assign_attrs(units="OD")


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
    g = A_star.copy(data=_where_measured(ph.gain_coefficient_per_cm, A_star.values, d)).rename("gain_per_cm").assign_attrs(
        units="1/cm", long_name="gain coefficient -A* ln(10) / d", thickness_nm=d)
    return xr.Dataset({"A_star": A_star, "gain_per_cm": g, "A0": A0, "dA_sec": sec, "A_pre": A_pre})


def fit_1s_amplitudes(da, center_nm, sd_nm, fit_range_nm, dim=None):
    """Amplitude of a Gaussian of fixed centre and width on a linear background, by linear least squares.

    Every spectrum of ``da`` (any dims plus a wavelength dim) is fitted over the wavelengths in
    ``fit_range_nm`` (lo, hi) with y = a exp(-(x - c)^2 / (2 s^2)) + b0 + b1 (x - c), c =
    ``center_nm`` and s = ``sd_nm`` fixed: the model is linear in (a, b0, b1), so all spectra are
    solved at once.  Standard errors from the ordinary least-squares covariance s_r^2 (X^T X)^-1,
    s_r^2 = SSR / (n - 3).  Returns ``(amplitude, amplitude_se)`` DataArrays (units of ``da``).
    Fewer than 5 points in the range -> ValueError.
    """
    dim = dim or _wavelength_dim(da)
    lo, hi = (float(v) for v in fit_range_nm)
    x = np.asarray(da[dim].values, float)
    sel = (x >= lo) & (x <= hi)
    n = int(sel.sum())
    if n < 5:
        raise ValueError(f"Gaussian 1S fit: {n} point(s) of {dim} within {lo:.1f}..{hi:.1f} nm; need at least 5")
    if not (np.isfinite(center_nm) and np.isfinite(sd_nm) and sd_nm > 0):
        raise ValueError(f"Gaussian 1S fit: centre {center_nm!r} nm and sd {sd_nm!r} nm must be finite, sd > 0")
    xs = x[sel]
    X = np.stack([np.exp(-0.5 * ((xs - center_nm) / sd_nm) ** 2), np.ones_like(xs), xs - center_nm], axis=1)
    sub = da.isel({dim: np.nonzero(sel)[0]}).transpose(..., dim)
    Y = np.asarray(sub.values, float)
    if not np.all(np.isfinite(Y)):
        raise ValueError("Gaussian 1S fit: NaN/inf in the spectra")
    XtX_inv = np.linalg.inv(X.T @ X)
    beta = Y @ (X @ XtX_inv)                        # (..., 3) = (X^T X)^-1 X^T y for every spectrum
    resid = Y - beta @ X.T
    s2 = np.sum(resid**2, axis=-1) / (n - 3)
    se = np.sqrt(s2 * XtX_inv[0, 0])
    dims = sub.dims[:-1]
    coords = {k: v for k, v in sub.coords.items() if dim not in v.dims}
    attrs = dict(units=da.attrs.get("units", ""), fit_range_nm=[lo, hi], center_nm=float(center_nm),
                 sd_nm=float(sd_nm), n_points=n)
    amp = xr.DataArray(beta[..., 0], dims=dims, coords=coords, attrs=attrs)
    amp_se = xr.DataArray(se, dims=dims, coords=coords, attrs=attrs)
    return amp, amp_se


def sec_electrons(tree, window=None, pl_background_counts=0.0, method="window"):
    """<n_e>(V) = g_e (-Delta A_1S) / A_0,1S per cycle and sweep direction (kept apart), and normalised PL.

    ``method="window"`` (default; the Bayesian models use it): Delta A_1S and A_0,1S are window
    averages over the 1S window (``window``: (lo, hi) nm or a :class:`BandEdgeWindow`; default: the
    manifest's ``band_edge_window_nm``, else the Gaussian fit of the film A_0).  The standard error
    combines the window SEMs of both.

    ``method="gaussian"`` (the issue's "Gaussian fits of the 1S bleach"): the 1S line shape (centre,
    sd) is fixed from the Gaussian fit of the film A_0 (:func:`band_edge_window`'s fit, always the
    fit, whatever the window), and the amplitude of that Gaussian on a linear background is fitted
    to -Delta A_SEC of every potential, cycle and direction and to A_0 on the SEC grid, over the A_0
    fit range (1S centre - 1.5 .. + 3 HWHM; :func:`fit_1s_amplitudes`).  <n_e> = g_e a_bleach /
    a_0; standard error from both amplitude errors.  ``window`` is not used by this method.

    PL: the spectrum minus ``pl_background_counts`` integrated over wavelength (trapezoid) and
    divided by its value at the potential nearest open circuit, per cycle and direction.  Returns a
    Dataset: ``n_e``, ``n_e_sem`` (cycle, direction, potential), ``pl_norm`` (same dims, when PL
    sweeps exist); attrs ``method``, ``A0_1S_OD``, ``A0_1S_sem_OD``, ``window_nm`` (the window or the
    fit range).
    """
    if method not in ("window", "gaussian"):
        raise ValueError(f"method must be 'window' or 'gaussian', got {method!r}")
    sec = tree["film/sec"]
    dA = sec["absorption"]
    lam = dA["wavelength"].values
    A0 = film_absorbance(tree, lam)
    g_e = int(tree.attrs.get("g_e", 2))
    if method == "window":
        bw = resolve_window(tree, window, probe_wavelengths=lam)
        bleach, bleach_sem = window_average(-dA, bw)
        a0, a0_sem = window_average(A0, bw)
        rng = [bw.lo, bw.hi]
    else:
        _, c, sd, rng = _gaussian_1s_fit(film_absorbance(tree))
        rng = [max(rng[0], float(lam.min())), min(rng[1], float(lam.max()))]
        bleach, bleach_sem = fit_1s_amplitudes(-dA, c, sd, rng)
        a0, a0_sem = fit_1s_amplitudes(A0, c, sd, rng)
    a0, a0_sem = float(a0), float(a0_sem)
    if a0 <= 0:
        raise ValueError(f"1S A_0 over {rng[0]:.1f}..{rng[1]:.1f} nm ({method}) is {a0:g} <= 0")
    n_e = g_e * bleach / a0
    n_sem = np.abs(n_e) * np.sqrt((bleach_sem / np.maximum(np.abs(bleach), 1e-300)) ** 2 + (a0_sem / a0) ** 2)
    n_sem = xr.where(np.abs(bleach) > 0, n_sem, g_e * bleach_sem / a0)
    how = "window average" if method == "window" else "Gaussian fit (fixed 1S centre/width + linear background)"
    out = xr.Dataset({
        "n_e": n_e.assign_attrs(units="1", long_name=f"<n_e> electrons per QD from the 1S SEC bleach ({how})"),
        "n_e_sem": n_sem.assign_attrs(units="1", long_name="standard error of <n_e>"),
    })
    out.attrs.update(window_nm=list(rng), A0_1S_OD=a0, A0_1S_sem_OD=a0_sem, g_e=g_e, method=method)
    if method == "gaussian":
        out.attrs.update(center_1S_nm=float(c), sd_1S_nm=float(sd))
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
