"""Spectra: comma-, tab- or blank-separated text, an optional header row, then wavelength (nm) and one or more
value columns (``column`` chooses one)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from ...safety.containment import cell_excerpt
from ..errors import ExperimentError
from ..layout import WAVELENGTH_RANGE_NM, fmt_range as _fmt_range, plausible_wavelengths as _plausible_wavelengths
from .table import _apply_nan_policy, _check_monotonic, _Table
from .text import _detect_separator, _number, _read_lines, _split


def read_spectrum(path, *, nan: str = "error", units: str = "unknown", column=None) -> xr.DataArray:
    """Read a spectrum (wavelength in nm, value) into a DataArray with dim "wavelength".

    Comma-, tab- or blank-separated; an optional header row (first row not numeric) is skipped
    and kept in the ``header`` attr.  Trailing empty lines are allowed, data after an empty line
    is not.  ``nan`` as in :func:`read_matrix` ("drop-wavelengths" drops the row).  The result is
    sorted by wavelength; ``units`` is the value unit to record (the file does not say it).

    The first column holds the wavelengths.  A file with more than one value column (e.g. a
    header ``wavelength ocp red diff``) needs ``column``: a header name, or the 1-based column
    number as in error messages (2 = the first value column); without it the file is refused with
    the list of its columns.  The chosen column is kept in the ``column`` attr, the header names
    in ``columns``.
    """
    path = Path(path)
    lines = _read_lines(path)
    sep = _detect_separator(lines)
    idx = [k for k, ln in enumerate(lines) if ln.strip()]
    if not idx:
        raise ExperimentError("file is empty; expected two columns: wavelength (nm), value", file=path)
    header = ""
    first_cells = _split(lines[idx[0]], sep)
    names: list[str] = []
    if any(_number(c) is None for c in first_cells):
        header = lines[idx[0]].strip()
        names = first_cells
        idx = idx[1:]
    if not idx:
        raise ExperimentError("no data rows after the header; expected two columns: wavelength (nm), value",
                              file=path)
    ncell = len(names) if names else len(_split(lines[idx[0]], sep))
    vcol = _spectrum_value_column(path, column, names, ncell, idx[0])
    wl, val, where = _spectrum_rows(path, lines, sep, idx, ncell, vcol)
    wl_a, val_a = np.asarray(wl, float), np.asarray(val, float)
    _check_monotonic(path, wl_a, "wavelength", "nm", lambda k: (where[k], 1))
    if not _plausible_wavelengths(wl_a):
        raise ExperimentError(f"wavelength column holds {_fmt_range(wl_a)}; expected wavelengths in "
                              f"nm between {WAVELENGTH_RANGE_NM[0]:g} and {WAVELENGTH_RANGE_NM[1]:g}",
                              file=path)
    table = _Table(path, np.array([0.0]), wl_a, val_a[:, None], where[0] if where else 1, where, [2])
    values, keep, extra = _apply_nan_policy(path, table, val_a[:, None], 0, nan)
    order = np.argsort(wl_a[keep], kind="stable")
    da = xr.DataArray(values[keep, 0][order], dims=("wavelength",),
                      coords={"wavelength": ("wavelength", wl_a[keep][order], {"units": "nm", "long_name": "wavelength"})},
                      attrs={"units": units, "source_file": os.fspath(path), **({"header": header} if header else {}),
                             **({"columns": ", ".join(names)} if names else {}),
                             **({"column": names[vcol - 1] if names else vcol} if ncell > 2 else {}), **extra})
    return da


def _spectrum_value_column(path: Path, column, names: list[str], ncell: int, first: int) -> int:
    """The 1-based column of a spectrum's values: ``column`` (a header name or number), or 2 in a two-column file.
    ``first``: index of the first data line (the header is the line before it)."""
    shown = ", ".join(f"{j} = {n!r}" for j, n in enumerate(names, start=1) if j > 1) if names else \
        ", ".join(str(j) for j in range(2, ncell + 1))
    if column is None:
        if ncell > 2:
            raise ExperimentError(
                f"{ncell - 1} value columns ({shown}); expected column = \"name\" or a column number in the "
                "manifest entry to say which one to read", file=path, line=first + (0 if names else 1))
        return 2
    if isinstance(column, str) and not isinstance(column, bool):
        if column not in names:
            raise ExperimentError(f"column {column!r} not in the header; expected one of: {shown or 'no header'}",
                                  file=path, line=first)
        vcol = names.index(column) + 1
        if vcol == 1:
            raise ExperimentError(f"column {column!r} is the wavelength column; expected a value column "
                                  f"({shown})", file=path, line=first)
        return vcol
    vcol = int(column)
    if not 2 <= vcol <= ncell:
        raise ExperimentError(f"column {column} outside the value columns; expected 2..{ncell} ({shown})",
                              file=path)
    return vcol


def _spectrum_rows(path: Path, lines: list[str], sep: str | None, idx: list[int], ncell: int, vcol: int):
    """(wavelengths, values of column ``vcol``, 1-based line of each) of the data lines ``idx`` (contiguous)."""
    # Data must be contiguous: an empty line inside the data would hide rows from a reader.
    last = idx[-1]
    for k in range(idx[0], last + 1):
        if not lines[k].strip():
            raise ExperimentError("empty line inside the data; expected contiguous rows", file=path, line=k + 1)
    wl, val, where = [], [], []
    for k in idx:
        cells = _split(lines[k], sep)
        if len(cells) != ncell:
            expect = "2: wavelength (nm), value" if ncell == 2 else f"{ncell} (as in the first row)"
            raise ExperimentError(f"row has {len(cells)} cell(s); expected {expect}",
                                  file=path, line=k + 1)
        nums = []
        for j in (1, vcol):
            c = cells[j - 1]
            v = _number(c)
            if v is None:
                what = "empty cell" if c == "" else f"non-numeric cell {cell_excerpt(c)}"
                raise ExperimentError(f"{what}; expected a number", file=path, line=k + 1, column=j)
            nums.append(v)
        wl.append(nums[0])
        val.append(nums[1])
        where.append(k + 1)
    return wl, val, where
