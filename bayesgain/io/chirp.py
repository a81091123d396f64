"""Chirp (wavelength-dependent time zero) of TA matrices: read, fit from the rise, correct.

Convention (KiMoPack ``Fix_Chirp``, the file ``<data>_chirp.dat``): one line of comma-separated
polynomial coefficients, highest power first, giving the time zero in ps at a probe wavelength in
nm, ``t0(lambda) = numpy.polyval(c, lambda)``; the corrected matrix is
``dA_corr(lambda, t) = dA(lambda, t + t0(lambda))``.  Old KiMoPack files hold 6 numbers: the last
is an offset subtracted from the constant term.

:func:`apply_chirp` interpolates each wavelength linearly onto the file's own delays and keeps only
the delays that every wavelength covers after its shift (no extrapolation, no filled zeros).
:func:`fit_chirp` fits, per wavelength, a Gaussian-IRF step ``b + a Phi((t - t0) / sigma)`` to the
rise of the signal, then a polynomial through the t0 (one robust pass); the IRF width is the median
sigma of the wavelengths whose step stands clear of the noise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import ExperimentError

__all__ = ["Chirp", "read_chirp_file", "apply_chirp", "fit_chirp", "chirp_map", "chirp_map_attrs",
           "chirp_map_from_attrs", "CHIRP_MAP_KEYS"]

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass
class Chirp:
    """A chirp correction: ``coefficients`` (highest power first, ps at nm), where it came from, and
    the Gaussian IRF sigma (ps) when it was fitted."""

    coefficients: np.ndarray
    source: str
    irf_sigma_ps: float | None = None
    n_wavelengths_fitted: int | None = None

    def t0(self, wavelength) -> np.ndarray:
        return np.polyval(self.coefficients, np.asarray(wavelength, float))

    def describe(self, wavelength: np.ndarray) -> str:
        """One line for ``check``: t0 at the ends and middle of the probe range, IRF width."""
        lam = np.asarray(wavelength, float)
        pts = [lam.min(), lam[lam.size // 2], lam.max()]
        t0 = ", ".join(f"{self.t0(w):+.3f} ps at {w:g} nm" for w in pts)
        irf = "" if self.irf_sigma_ps is None else \
            f"; Gaussian IRF sigma {self.irf_sigma_ps:.3f} ps (FWHM {self.irf_sigma_ps * _FWHM_PER_SIGMA:.3f} ps)"
        return f"chirp ({self.source}): t0 {t0}{irf}"


def read_chirp_file(path) -> Chirp:
    """A KiMoPack chirp file: one line of 5 (or old-style 6) comma-separated coefficients."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
    except FileNotFoundError:
        raise ExperimentError("chirp file not found", file=path) from None
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    try:
        c = np.array([float(x) for x in line.replace(";", ",").split(",") if x.strip()], float)
    except ValueError:
        raise ExperimentError(f"chirp file line {line[:60]!r} is not comma-separated numbers; expected the "
                              "polynomial coefficients of t0(lambda) in ps, highest power first (KiMoPack "
                              "_chirp.dat)", file=path, line=1) from None
    if c.size == 6:  # old KiMoPack files: the last value is an offset of the constant term
        c = np.concatenate([c[:4], [c[4] - c[5]]])
    if c.size < 1 or c.size > 6 or not np.all(np.isfinite(c)):
        raise ExperimentError(f"chirp file holds {c.size} value(s); expected 5 finite coefficients "
                              "(KiMoPack), highest power first", file=path, line=1)
    return Chirp(c, f"KiMoPack polynomial from {path.name}")


def apply_chirp(da: xr.DataArray, chirp: Chirp) -> xr.DataArray:
    """``da(wavelength, delay)`` (or with leading dims) shifted to a common time zero.

    Each wavelength is interpolated at ``t + t0(lambda)`` over its finite cells; delays that some
    wavelength would need extrapolated are dropped.  Raises ValueError when none are left.
    """
    t = da["delay"].values
    lam = da["wavelength"].values
    t0 = chirp.t0(lam)
    keep = (t[:, None] + t0[None, :] >= t.min() - 1e-12) & (t[:, None] + t0[None, :] <= t.max() + 1e-12)
    keep = keep.all(axis=1)
    if keep.sum() < 2:
        raise ValueError(f"chirp shifts of {t0.min():+.3g}..{t0.max():+.3g} ps leave {int(keep.sum())} delay(s) "
                         f"of {t.min():g}..{t.max():g} ps covered by every wavelength")
    tk = t[keep]
    src = da.transpose(..., "wavelength", "delay").values
    flat = src.reshape(-1, lam.size, t.size)
    out = np.full((flat.shape[0], lam.size, tk.size), np.nan)
    for i in range(flat.shape[0]):
        for j in range(lam.size):
            y = flat[i, j]
            ok = np.isfinite(y)
            if ok.sum() >= 2:
                out[i, j] = np.interp(tk + t0[j], t[ok], y[ok], left=np.nan, right=np.nan)
    dims = da.transpose(..., "wavelength", "delay").dims
    res = xr.DataArray(out.reshape(src.shape[:-1] + (tk.size,)), dims=dims,
                       coords={d: da[d] for d in dims if d != "delay" and d in da.coords}, attrs=dict(da.attrs))
    res = res.assign_coords(delay=("delay", tk, dict(da["delay"].attrs))).transpose(*da.dims)
    res.attrs["chirp"] = chirp.describe(lam)
    res.attrs["chirp_coefficients_ps"] = [float(v) for v in chirp.coefficients]
    res.attrs["chirp_delays_dropped"] = int((~keep).sum())
    return res


def _step(t, b, a, t0, sigma):
    from scipy.special import ndtr

    return b + a * ndtr((t - t0) / sigma)


def fit_chirp(da: xr.DataArray, degree: int = 2, rise_window_ps: float = 3.0, max_wavelengths: int = 80,
              min_snr: float = 8.0) -> Chirp:
    """Fit the chirp of ``da(wavelength, delay)`` from the rise of the signal at each wavelength.

    Per wavelength (at most ``max_wavelengths``, evenly spaced): the half-rise crossing gives a
    start, then ``b + a Phi((t - t0)/sigma)`` is fitted to the delays within ``rise_window_ps``
    of it.  Steps smaller than ``min_snr`` times the pre-rise noise are skipped.  A polynomial of
    ``degree`` is fitted through the t0 with one 3-MAD rejection pass.  Raises ValueError when
    fewer than ``degree + 2`` wavelengths show a rise.
    """
    from scipy.optimize import curve_fit

    t = da["delay"].values
    lam_all = da["wavelength"].values
    step = max(1, lam_all.size // max_wavelengths)
    lam_idx = np.arange(0, lam_all.size, step)
    vals = da.transpose("wavelength", "delay").values
    t0s, sigmas, lams = [], [], []
    for j in lam_idx:
        y = vals[j]
        ok = np.isfinite(y)
        tt, yy = t[ok], y[ok]
        if tt.size < 8:
            continue
        early = yy[: max(3, tt.size // 10)]  # the first tenth of the delays: before the pump arrives
        base, noise = float(np.median(early)), float(np.std(early, ddof=1)) if early.size > 1 else 0.0
        dev = yy - base
        k_peak = int(np.argmax(np.abs(dev)))
        amp = dev[k_peak]
        if noise > 0 and abs(amp) < min_snr * noise:
            continue
        # first crossing of half the peak deviation, before the peak
        cross = np.nonzero(np.abs(dev[: k_peak + 1]) >= 0.5 * abs(amp))[0]
        if cross.size == 0:
            continue
        tc = float(tt[cross[0]])
        sel = (tt >= tc - rise_window_ps) & (tt <= tc + rise_window_ps)
        if sel.sum() < 6:
            continue
        dt = np.diff(tt[sel]).min()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, _ = curve_fit(_step, tt[sel], yy[sel], p0=(base, amp, tc, max(2 * dt, 0.05)),
                                 bounds=([-np.inf, -np.inf, tc - rise_window_ps, dt / 10],
                                         [np.inf, np.inf, tc + rise_window_ps, rise_window_ps]), maxfev=4000)
        except (RuntimeError, ValueError):
            continue
        t0s.append(p[2])
        sigmas.append(p[3])
        lams.append(lam_all[j])
    t0s, sigmas, lams = np.asarray(t0s), np.asarray(sigmas), np.asarray(lams)
    if lams.size < degree + 2:
        raise ValueError(f"a rise was found at {lams.size} wavelength(s); the chirp fit needs at least "
                         f"{degree + 2} (give a chirp_file instead)")
    c = np.polyfit(lams, t0s, degree)
    r = t0s - np.polyval(c, lams)
    mad = np.median(np.abs(r - np.median(r)))
    good = np.abs(r) <= 3.0 * 1.4826 * mad if mad > 0 else np.ones(r.size, bool)
    if good.sum() >= degree + 2:
        c = np.polyfit(lams[good], t0s[good], degree)
    return Chirp(c, f"fitted to the rise at {int(good.sum())} wavelengths, degree {degree}",
                 irf_sigma_ps=float(np.median(sigmas[good])), n_wavelengths_fitted=int(good.sum()))


# ----------------------------------------------------------------------------- the map shown with the chirp
_MAP_MAX_WAVELENGTHS = 160
_MAP_MAX_DELAYS = 160
CHIRP_MAP_KEYS = ("chirp_map_OD", "chirp_map_wavelength_nm", "chirp_map_delay_ps", "chirp_coefficients_ps",
                  "chirp_source", "chirp_file", "chirp_units", "irf_sigma_ps")


def chirp_map(da: xr.DataArray, chirp: Chirp, file: str, field: str, units: str) -> xr.Dataset:
    """The uncorrected map ``da(wavelength, delay)`` around the chirp's time zeros, to draw t0(lambda) on.

    Delays from 2 ps before the earliest t0 to 5 ps after the latest (at most 160 of them), every
    k-th wavelength (at most 160): small enough to travel in a fit's attrs.
    """
    lam = da["wavelength"].values
    t = da["delay"].values
    t0 = chirp.t0(lam)
    near = np.nonzero((t >= t0.min() - 2.0) & (t <= t0.max() + 5.0))[0]
    if near.size < 2:
        near = np.arange(t.size)
    di = near[:: max(1, near.size // _MAP_MAX_DELAYS)]
    wi = np.arange(0, lam.size, max(1, lam.size // _MAP_MAX_WAVELENGTHS))
    vals = da.transpose("wavelength", "delay").values[np.ix_(wi, di)]
    attrs = {"chirp_coefficients_ps": [float(v) for v in chirp.coefficients], "chirp_source": chirp.source,
             "chirp_file": file, "chirp_field": field, "chirp_units": units}
    if chirp.irf_sigma_ps is not None:
        attrs["irf_sigma_ps"] = float(chirp.irf_sigma_ps)
    return xr.Dataset(
        {"dA_uncorrected": (("wavelength", "delay"), vals,
                            {"units": units, "long_name": f"{file} before the chirp correction"})},
        coords={"wavelength": ("wavelength", lam[wi], {"units": "nm"}), "delay": ("delay", t[di], {"units": "ps"})},
        attrs=attrs)


def chirp_map_attrs(ds: xr.Dataset) -> dict:
    """:func:`chirp_map`'s Dataset as flat attrs (1-D arrays and strings: what NetCDF attrs hold)."""
    out = {"chirp_map_OD": np.asarray(ds["dA_uncorrected"].values, float).ravel(),
           "chirp_map_wavelength_nm": np.asarray(ds["wavelength"].values, float),
           "chirp_map_delay_ps": np.asarray(ds["delay"].values, float)}
    out.update({k: ds.attrs[k] for k in CHIRP_MAP_KEYS if k in ds.attrs})
    return out


def chirp_map_from_attrs(attrs: dict, prefix: str = "") -> xr.Dataset | None:
    """The inverse of :func:`chirp_map_attrs` (keys ``prefix + key``); None when there is no map."""
    if prefix + "chirp_map_OD" not in attrs:
        return None
    lam = np.atleast_1d(np.asarray(attrs[prefix + "chirp_map_wavelength_nm"], float))
    t = np.atleast_1d(np.asarray(attrs[prefix + "chirp_map_delay_ps"], float))
    vals = np.asarray(attrs[prefix + "chirp_map_OD"], float).reshape(lam.size, t.size)
    meta = {k: attrs[prefix + k] for k in CHIRP_MAP_KEYS[3:] if prefix + k in attrs}
    units = str(meta.get("chirp_units", ""))
    return xr.Dataset({"dA_uncorrected": (("wavelength", "delay"), vals, {"units": units})},
                      coords={"wavelength": lam, "delay": t}, attrs=meta)
