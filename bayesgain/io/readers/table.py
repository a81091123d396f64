"""A parsed matrix (:class:`_Table`) and what every matrix reader does with it: axis checks (finite, distinct,
monotonic, plausible, not transposed), the NaN policy, invalid-pixel sentinels, merged final delays, and the
sorted ``values[wavelength, axis]`` DataArray (:func:`_table_to_array`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import ExperimentError
from ..layout import (POTENTIAL_LIMIT_V, WAVELENGTH_RANGE_NM, fmt_range as _fmt_range, mark_sentinels,
                      merge_final_repeats, plausible_potentials as _plausible_potentials,
                      plausible_wavelengths as _plausible_wavelengths)

NAN_POLICIES = ("error", "zero", "drop-wavelengths", "missing")
AXES = {"delay": "ps", "potential": "V"}


@dataclass
class _Table:
    """A matrix as laid out in the file: ``values[i, j]`` at (row ``rows[i]``, column ``cols[j]``).

    ``row_lines[i]`` is the 1-based file line of row i; ``col_fields[j]`` the 1-based column
    (field) of column j within a row; ``header_line`` the line holding the column axis.
    """

    path: Path
    cols: np.ndarray
    rows: np.ndarray
    values: np.ndarray
    header_line: int
    row_lines: list[int]
    col_fields: list[int]
    header_text: str = ""
    cell_where: object = field(default=None, repr=False)  # (i, j) -> (line, column)

    def where(self, i: int, j: int) -> tuple[int, int]:
        if self.cell_where is not None:
            return self.cell_where(i, j)
        return self.row_lines[i], self.col_fields[j]


def _check_monotonic(path: Path, values: np.ndarray, what: str, unit: str, positions) -> None:
    """Axis values must be finite, distinct and strictly monotonic (either direction).

    ``positions(k)`` gives (line, column) of the k-th axis value for the message.
    """
    for k, v in enumerate(values):
        if not np.isfinite(v):
            line, col = positions(k)
            raise ExperimentError(f"{what} axis value is {v}; expected a finite number ({unit})",
                                  file=path, line=line, column=col)
    if values.size < 2:
        return
    seen = {}
    for k, v in enumerate(values):
        if v in seen:
            line, col = positions(k)
            l0, c0 = positions(seen[v])
            where0 = f"line {l0}" + (f", column {c0}" if c0 is not None else "")
            raise ExperimentError(f"duplicate {what} {v:g} {unit} (also at {where0}); expected "
                                  f"strictly monotonic {what}s", file=path, line=line, column=col)
        seen[v] = k
    d = np.diff(values)
    sign = np.sign(d[0])
    bad = np.nonzero(np.sign(d) != sign)[0]
    if bad.size:
        k = int(bad[0]) + 1
        line, col = positions(k)
        raise ExperimentError(
            f"{what} axis is not strictly monotonic: {values[k - 1]:g} then {values[k]:g} {unit}; "
            f"expected strictly {'increasing' if sign > 0 else 'decreasing'} {what}s", file=path,
            line=line, column=col)


def _transposed_message(row_name, row_vals, col_name, col_vals, expect) -> str:
    return (f"looks transposed: the first row holds {_fmt_range(row_vals)} which look like "
            f"{row_name} and the first column holds {_fmt_range(col_vals)} which look like "
            f"{col_name}; expected {expect} (pass format=... or transpose the file)")


def _check_layout(path: Path, table: _Table, wl_in: str, axis: str, fmt: str) -> None:
    """Refuse files whose axes do not look like what the declared layout says they are."""
    wl = table.rows if wl_in == "rows" else table.cols
    other = table.cols if wl_in == "rows" else table.rows
    unit = AXES[axis]
    if wl_in == "rows":
        expect = f"row 0 = {axis}s ({unit}), column 0 = wavelengths (nm) [{fmt} layout]"
    else:
        expect = f"row 0 = wavelengths (nm), column 0 = {axis}s ({unit}) [{fmt} layout]"
    row_name_t = "wavelengths (nm)" if wl_in == "rows" else f"{axis}s ({unit})"
    col_name_t = f"{axis}s ({unit})" if wl_in == "rows" else "wavelengths (nm)"
    wl_ok = _plausible_wavelengths(wl)
    if axis == "potential":
        other_ok = _plausible_potentials(other)
        swapped = _plausible_wavelengths(other) and _plausible_potentials(wl)
    else:
        other_ok = True
        # A delay axis that cannot be wavelengths (negative, zero, or spanning decades) while the
        # wavelength axis cannot be wavelengths either is the signature of a transposed file.
        swapped = _plausible_wavelengths(other) and not wl_ok
    if (not wl_ok or not other_ok) and swapped:
        raise ExperimentError(_transposed_message(row_name_t, table.cols, col_name_t, table.rows,
                                                  expect), file=path)
    where = "column 0" if wl_in == "rows" else f"line {table.header_line}"
    if not wl_ok:
        raise ExperimentError(
            f"wavelength axis ({where}) holds {_fmt_range(wl)}; expected wavelengths in nm "
            f"between {WAVELENGTH_RANGE_NM[0]:g} and {WAVELENGTH_RANGE_NM[1]:g}", file=path)
    if not other_ok:
        where = f"line {table.header_line}" if wl_in == "rows" else "column 0"
        raise ExperimentError(
            f"potential axis ({where}) holds {_fmt_range(other)}; expected potentials in V "
            f"within +-{POTENTIAL_LIMIT_V:g} V", file=path)


def _apply_nan_policy(path: Path, table: _Table, values: np.ndarray, wl_axis: int, nan: str, sentinel=None):
    """Handle missing cells: NaN/inf in the file and, where ``sentinel`` marks them, invalid-pixel
    markers.  Returns (values, keep_wavelength_mask, attrs).

    Sentinel cells are never an error (the instrument says they are invalid); under "error" and
    "missing" they stay NaN, under "zero" / "drop-wavelengths" they follow that policy.
    """
    if nan not in NAN_POLICIES:
        raise ExperimentError(f"nan policy {nan!r}; expected one of {', '.join(NAN_POLICIES)}", file=path)
    sentinel = np.zeros(values.shape, bool) if sentinel is None else sentinel
    bad = ~np.isfinite(values)
    keep = np.ones(values.shape[wl_axis], bool)
    if not bad.any():
        return values, keep, {}
    count = int(bad.sum())
    if nan == "error" and (bad & ~sentinel).any():
        i, j = (int(x[0]) for x in np.nonzero(bad & ~sentinel))
        line, col = table.where(i, j)
        raise ExperimentError(
            f"value {values[i, j]} ({int((bad & ~sentinel).sum())} NaN/inf cell(s) in the file); expected "
            "finite numbers, or set nan = \"zero\" or \"drop-wavelengths\" (or \"missing\") for this file "
            "in the manifest", file=path, line=line, column=col)
    if nan in ("error", "missing"):
        return np.where(bad, np.nan, values), keep, {"nan_policy": "missing", "missing_cells": count}
    if nan == "zero":
        return np.where(bad, 0.0, values), keep, {"nan_policy": "zero", "nan_cells_zeroed": count}
    keep = ~bad.any(axis=1 - wl_axis)
    if not keep.any():
        raise ExperimentError("every wavelength holds a NaN/inf value; nothing left after "
                              "nan = \"drop-wavelengths\"", file=path)
    return values, keep, {"nan_policy": "drop-wavelengths",
                          "wavelengths_dropped": int((~keep).sum())}


def _table_to_array(path: Path, table, wl_in: str, axis: str, fmt: str, nan: str, units: str, layout: str = "",
                    repairs: list | None = None) -> xr.DataArray:
    """Checked, repaired, sorted ``values[wavelength, axis]`` DataArray of a parsed table (see :func:`read_matrix`)."""
    unit = AXES[axis]
    repairs = list(repairs or [])
    # invalid-pixel markers become missing before anything is averaged
    literal = ~np.isfinite(table.values)
    values, n_sentinel = mark_sentinels(table.values)
    extra: dict = {}
    if n_sentinel:
        repairs.append(f"{n_sentinel} invalid-pixel sentinel cell(s) (e.g. -21.47483647) set missing")
        extra["sentinel_cells"] = n_sentinel
    # a delay stage parked at its end writes the final delay on several rows: merge them
    if wl_in == "cols" and axis == "delay":
        rows, values, note = merge_final_repeats(table.rows, values, 0, axis, unit)
        if note:
            _, lit, _ = merge_final_repeats(table.rows, literal.astype(float), 0, axis, unit)
            literal = lit > 0
            table.rows = rows
            repairs.append(note)
            extra["merged_final_rows"] = int(len(table.row_lines) - rows.size + 1)
    literal &= np.isnan(values)
    sentinel = np.isnan(values) & ~literal
    _check_monotonic(path, table.cols, "wavelength" if wl_in == "cols" else axis,
                     "nm" if wl_in == "cols" else unit,
                     lambda k: (table.header_line, table.col_fields[k]))
    _check_monotonic(path, table.rows, "wavelength" if wl_in == "rows" else axis,
                     "nm" if wl_in == "rows" else unit, lambda k: (table.row_lines[k], 1))
    _check_layout(path, table, wl_in, axis, fmt)
    wl_axis = 0 if wl_in == "rows" else 1
    if n_sentinel:
        # a wavelength with no valid cell at all is a dead pixel: drop it rather than carry NaNs
        dead = sentinel.all(axis=1 - wl_axis)
        if dead.all():
            raise ExperimentError("every cell is an invalid-pixel sentinel; expected measured values", file=path)
        if dead.any():
            keep_idx = np.nonzero(~dead)[0]
            values, sentinel = np.take(values, keep_idx, axis=wl_axis), np.take(sentinel, keep_idx, axis=wl_axis)
            if wl_in == "rows":
                table.rows = table.rows[keep_idx]
            else:
                table.cols = table.cols[keep_idx]
            repairs.append(f"{int(dead.sum())} wavelength(s) with only sentinel cells dropped")
            extra["dead_wavelengths_dropped"] = int(dead.sum())
    values, keep, nan_attrs = _apply_nan_policy(path, table, values, wl_axis, nan, sentinel)
    extra.update(nan_attrs)
    if nan_attrs.get("missing_cells"):
        repairs.append(f"{nan_attrs['missing_cells']} cell(s) remain missing (NaN), left out of averages")
    elif nan_attrs.get("nan_cells_zeroed"):
        repairs.append(f"{nan_attrs['nan_cells_zeroed']} NaN/inf cell(s) set to 0 (nan = \"zero\")")
    elif nan_attrs.get("wavelengths_dropped"):
        repairs.append(f"{nan_attrs['wavelengths_dropped']} wavelength(s) with NaN/inf dropped "
                       "(nan = \"drop-wavelengths\")")
    if wl_in == "rows":
        wl, other, vals = table.rows[keep], table.cols, values[keep, :]
    else:
        wl, other, vals = table.cols[keep], table.rows, values[:, keep].T
    # sort both axes ascending in NumPy (xarray's sortby is ~100x slower on small arrays)
    iw, io = np.argsort(wl, kind="stable"), np.argsort(other, kind="stable")
    wl, other, vals = wl[iw], other[io], vals[np.ix_(iw, io)]
    da = xr.DataArray(
        np.ascontiguousarray(vals, dtype=float), dims=("wavelength", axis),
        coords={"wavelength": ("wavelength", wl, {"units": "nm", "long_name": "probe wavelength"}),
                axis: (axis, other, {"units": unit,
                                     "long_name": "pump-probe delay" if axis == "delay" else "electrode potential"})},
        attrs={"units": units, "source_file": os.fspath(path), "format": fmt, "layout": layout,
               "repairs": "; ".join(repairs) if repairs else "none", **extra},
    )
    return da
