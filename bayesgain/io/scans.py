"""Several scans of one TA measurement: file list or glob, per-pixel average, scan scatter.

Labs record a TA matrix as repeated scans and average them; the scan-to-scan scatter is the best
noise estimate they have.  :func:`average_scans` returns the per-pixel mean and its standard error
over scans (sample standard deviation, ddof = 1, over sqrt(number of valid scans)); the error
flows into the standard errors of the window averages (:func:`bayesgain.preprocess.window_average`).

Outlier rejection (``scan_outliers`` in the manifest):

* ``"none"`` - every valid cell is averaged.
* ``"sigma-clip-3"`` - cells further than 3 sigma from the median of the other scans at their
  pixel are left out, once; sigma is the robust scatter (1.4826 x median absolute deviation) of
  all such deviations at that wavelength (pooled over scans and delays).  Robust and pooled because
  with a few scans a per-pixel mean/std clip can never reject anything: the largest |z| of n
  samples is (n - 1) / sqrt(n).
"""

from __future__ import annotations

import glob
import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import ExperimentError

__all__ = ["SCAN_OUTLIERS", "resolve_scan_files", "average_scans"]

SCAN_OUTLIERS = ("none", "sigma-clip-3")
_MAD_TO_SIGMA = 1.4826  # sigma of a normal distribution per median absolute deviation
_GRID_RTOL = 1e-6


def resolve_scan_files(folder: Path, files, field: str) -> list[str]:
    """The scan files an entry names (a list, or one glob pattern), relative to ``folder``.

    Every file must lie inside the experiment folder; a glob must match at least two files.
    """
    root = Path(folder).resolve()
    patterns = [files] if isinstance(files, str) else list(files)
    out: list[str] = []
    for pat in patterns:
        if os.path.isabs(pat) or ".." in Path(pat).parts:
            raise ExperimentError(f"scan file {pat!r} points outside the experiment folder; expected a "
                                  "path relative to it", file=root / "experiment.toml", field=f"{field}.files")
        if isinstance(files, str):
            matches = sorted(glob.glob(pat, root_dir=root))
            if len(matches) < 2:
                raise ExperimentError(f"glob {pat!r} matches {len(matches)} file(s) in {root}; expected at "
                                      "least 2 scans", file=root / "experiment.toml", field=f"{field}.files")
        else:
            matches = [pat]
        for m in matches:
            if not (root / m).resolve().is_relative_to(root):  # a symlink out of the folder
                raise ExperimentError(f"scan file {m!r} resolves outside the experiment folder",
                                      file=root / "experiment.toml", field=f"{field}.files")
            out.append(m)
    if len(out) < 2:
        raise ExperimentError(f"files lists {len(out)} scan; expected at least 2 (use file = \"...\" for one)",
                              file=root / "experiment.toml", field=f"{field}.files")
    if len(set(out)) != len(out):
        raise ExperimentError("the same scan file is listed twice", file=root / "experiment.toml",
                              field=f"{field}.files")
    return out


def average_scans(scans: list[tuple[str, xr.DataArray]], outliers: str = "none"):
    """Per-pixel mean over scans and its standard error.

    ``scans``: (file name, DataArray(wavelength, delay)) pairs on the same delay grid; wavelengths
    may differ by dropped dead pixels (the union is used).  Returns ``(mean, sem, note)``: mean and
    sem DataArrays on the union grid (sem NaN where fewer than 2 scans are valid) and a note in
    words for ``check``.
    """
    if outliers not in SCAN_OUTLIERS:
        raise ValueError(f"scan_outliers {outliers!r}; expected one of {SCAN_OUTLIERS}")
    name0, ref = scans[0]
    for name, da in scans[1:]:
        d0, d = ref["delay"].values, da["delay"].values
        if d.shape != d0.shape or not np.allclose(d, d0, rtol=_GRID_RTOL, atol=1e-9):
            raise ExperimentError(f"delay grid differs from scan {name0} ({d.size} vs {d0.size} delays, "
                                  f"{d.min():g}..{d.max():g} vs {d0.min():g}..{d0.max():g} ps); expected the "
                                  "scans of one measurement on one delay grid", file=name)
    wl = np.unique(np.concatenate([da["wavelength"].values for _, da in scans]))
    stack = np.stack([da.assign_coords(delay=ref["delay"].values).reindex(wavelength=wl).values
                      for _, da in scans])
    valid = np.isfinite(stack)
    rejected = 0
    if outliers == "sigma-clip-3":
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels (dead in every scan)
            # each cell against the median of the OTHER scans: a cell never pulls its own reference,
            # and the deviations are independent of it (deviations from the full median are
            # shrunk towards 0 for few scans and would clip honest cells)
            dev = np.stack([stack[i] - np.nanmedian(np.delete(stack, i, axis=0), axis=0)
                            for i in range(stack.shape[0])])
            # one robust scale per wavelength, pooled over scans and delays: a per-pixel scale from
            # a handful of scans is itself too noisy to clip with
            scale = _MAD_TO_SIGMA * np.nanmedian(np.abs(dev), axis=(0, 2))
        out = valid & (np.abs(dev) > 3.0 * scale[None, :, None]) & (scale[None, :, None] > 0)
        rejected = int(out.sum())
        valid &= ~out
    n = valid.sum(axis=0)
    x = np.where(valid, stack, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, x.sum(axis=0) / np.maximum(n, 1), np.nan)
        var = np.where(valid, (stack - mean) ** 2, 0.0).sum(axis=0) / np.maximum(n - 1, 1)
        sem = np.where(n >= 2, np.sqrt(var / np.maximum(n, 1)), np.nan)
    coords = {"wavelength": ("wavelength", wl, dict(ref["wavelength"].attrs)),
              "delay": ("delay", ref["delay"].values, dict(ref["delay"].attrs))}
    mean_da = xr.DataArray(mean, dims=("wavelength", "delay"), coords=coords, attrs=dict(ref.attrs))
    sem_da = xr.DataArray(sem, dims=("wavelength", "delay"), coords=coords,
                          attrs={"units": ref.attrs.get("units", ""),
                                 "long_name": "standard error of the per-pixel mean over scans"})
    note = (f"{len(scans)} scans averaged per pixel (scan_outliers = \"{outliers}\""
            + (f", {rejected} cell(s) rejected" if outliers != "none" else "") + ")")
    return mean_da, sem_da, note
