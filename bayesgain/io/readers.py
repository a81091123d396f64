"""Readers for spectrum and matrix files written by instrument software.

Supported layouts (see ``docs/experiment-format.md``):

* **spectrum** - comma-, tab- or blank-separated text, an optional header row, then two columns:
  wavelength (nm), value.
* **helios** - Ultrafast Systems (Helios / Surface Xplorer) CSV: row 0 = delays (ps) or
  potentials (V), column 0 = wavelengths (nm), cell (0,0) unused; free-text metadata lines may
  follow the matrix (the matrix ends at the first empty line or first row whose first cell is
  not a number).
* **glotaran** - ``Time explicit`` / ``Wavelength explicit`` ascii (blank or tab separated,
  Fortran fixed-width columns accepted).
* **kimopack** - tab matrix with header cell ``Time in ps``, header row = wavelengths (nm),
  delays (ps) down the first column.

Files are only ever opened read-only (``rb``) and never modified.  CR, LF and CRLF line endings
read the same.  Every error is an :class:`~bayesgain.io.errors.ExperimentError` that names the
file, the line (1-based) and column (1-based) where one applies, and what was expected.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..safety.containment import cell_excerpt
from .errors import ExperimentError
from .layout import (POTENTIAL_LIMIT_V, WAVELENGTH_RANGE_NM, fmt_range as _fmt_range, mark_sentinels,
                     merge_final_repeats, orient, plausible_potentials as _plausible_potentials,
                     plausible_wavelengths as _plausible_wavelengths)
from .tomlfile import looks_utf16

__all__ = ["read_spectrum", "read_matrix", "detect_format", "FORMATS", "NAN_POLICIES"]

FORMATS = ("helios", "glotaran", "kimopack")
NAN_POLICIES = ("error", "zero", "drop-wavelengths", "missing")
AXES = {"delay": "ps", "potential": "V"}

_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[EeDd][-+]?\d+)?")


# ----------------------------------------------------------------------------- text helpers
def _read_lines(path: Path) -> list[str]:
    """All lines of a text file, opened read-only; CR, LF and CRLF all end a line."""
    try:
        with open(path, "rb") as fh:  # binary read-only: the file is never touched
            data = fh.read()
    except FileNotFoundError:
        raise ExperimentError("file not found", file=path) from None
    except IsADirectoryError:
        raise ExperimentError("expected a file, found a directory", file=path) from None
    except OSError as exc:
        raise ExperimentError(f"cannot read file ({exc.strerror})", file=path) from None
    if looks_utf16(data):
        raise ExperimentError("UTF-16 text; expected UTF-8 (or latin-1) text: save the file as UTF-8", file=path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # instrument software often writes cp1252/latin-1 headers
    # str.splitlines also splits on form feeds etc.; only CR/LF/CRLF are line ends here.
    return re.split(r"\r\n|\r|\n", text.rstrip("\r\n")) if text.strip() else []


def _detect_separator(lines: list[str]) -> str | None:
    """Tab, comma, or ``None`` (runs of blanks), judged from the first non-empty lines."""
    head = [ln for ln in lines[:10] if ln.strip()][:5]
    if any("\t" in ln for ln in head):
        return "\t"
    if any("," in ln for ln in head):
        return ","
    return None


def _split(line: str, sep: str | None) -> list[str]:
    """Cells of one line; trailing empty cells (a trailing separator) are dropped."""
    if sep is None:
        return line.split()
    cells = [c.strip() for c in line.split(sep)]
    while cells and cells[-1] == "":
        cells.pop()
    return cells


def _number(cell: str) -> float | None:
    """The float in a cell, or None if the cell is not a number (``nan``/``inf`` are numbers)."""
    s = cell.strip()
    if not s or "_" in s:
        return None
    try:
        return float(s)
    except ValueError:
        pass
    if re.fullmatch(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)[Dd][-+]?\d+", s):  # Fortran double exponent
        return float(s.replace("D", "E").replace("d", "e"))
    return None


def _tokens_fortran(line: str) -> list[str]:
    """Blank/tab/comma separated tokens; Fortran fixed-width fields that touch are split apart.

    ``2.99999993E-02-0.209999993`` (two fields of a fixed-width format with no blank between
    them) becomes two tokens; anything that is not a clean concatenation of numbers stays one
    token so that the caller reports it as non-numeric.
    """
    out = []
    for tok in re.split(r"[\s,]+", line.strip()):
        if not tok:
            continue
        if _number(tok) is None:
            parts = _NUMBER_RE.findall(tok)
            if len(parts) > 1 and "".join(parts) == tok and all(p[0] in "+-" for p in parts[1:]):
                out.extend(parts)
                continue
        out.append(tok)
    return out


# ----------------------------------------------------------------------------- parsed matrix
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


def _parse_header_matrix(path: Path, lines: list[str]) -> _Table:
    """A matrix whose first line holds the column axis and whose first column holds the row axis.

    This is the Helios CSV and the KiMoPack layout; the caller decides which axis is which.
    Reading stops at the first empty line or first row whose first cell is not a number (the
    start of free-text metadata), but only if no numeric data row follows - otherwise a typo in
    a wavelength cell would silently cut the matrix short.
    """
    start = next((k for k, ln in enumerate(lines) if ln.strip()), None)
    if start is None:
        raise ExperimentError("file is empty; expected a matrix with an axis row and data rows", file=path)
    sep = _detect_separator(lines[start:])
    header = _split(lines[start], sep)
    header_line = start + 1
    if len(header) < 2:
        raise ExperimentError(
            f"first line has {len(header)} cell(s); expected a header row: an unused cell then "
            "one axis value per column", file=path, line=header_line)
    cols = []
    for j, cell in enumerate(header[1:], start=2):
        v = _number(cell)
        if v is None:
            raise ExperimentError(f"non-numeric axis cell {cell_excerpt(cell)}; expected a number", file=path,
                                  line=header_line, column=j)
        cols.append(v)
    ncol = len(cols)
    rows, values, row_lines = [], [], []
    end = len(lines)
    for k in range(start + 1, len(lines)):
        cells = _split(lines[k], sep)
        first = _number(cells[0]) if cells else None
        if first is None:
            end = k
            break
        if len(cells) - 1 != ncol:
            raise ExperimentError(
                f"row has {len(cells) - 1} value(s) after the axis cell; expected {ncol} "
                f"(one per column of line {header_line})", file=path, line=k + 1)
        row = []
        for j, cell in enumerate(cells[1:], start=2):
            v = _number(cell)
            if v is None:
                what = "empty cell" if cell == "" else f"non-numeric cell {cell_excerpt(cell)}"
                raise ExperimentError(f"{what}; expected a number", file=path, line=k + 1, column=j)
            row.append(v)
        rows.append(first)
        values.append(row)
        row_lines.append(k + 1)
    # Anything numeric after the stop would be data we silently dropped: refuse instead.
    for k in range(end + 1, len(lines)):
        cells = _split(lines[k], sep)
        if cells and len(cells) == ncol + 1 and all(_number(c) is not None for c in cells):
            stop = lines[end].strip()
            reason = "an empty line" if not stop else f"a row whose first cell {cell_excerpt(_split(lines[end], sep)[0])} is not a number"
            raise ExperimentError(
                f"the matrix stops at {reason}, but numeric data rows follow at line {k + 1}; "
                "expected the matrix rows to be contiguous (metadata only after the matrix)",
                file=path, line=end + 1)
    if not rows:
        raise ExperimentError(f"no data rows after the header row (line {header_line}); expected "
                              "rows of: axis value, then one value per column", file=path,
                              line=header_line + 1)
    return _Table(path, np.asarray(cols, float), np.asarray(rows, float), np.asarray(values, float),
                  header_line, row_lines, list(range(2, ncol + 2)), header_text=lines[start])


def _parse_glotaran(path: Path, lines: list[str]) -> tuple[_Table, str]:
    """A glotaran ascii file: returns (table, explicit axis: "time" or "wavelength").

    Layout: free header lines, ``Time explicit`` or ``Wavelength explicit``, ``intervalnr N``,
    N axis values (possibly wrapped over lines), then rows of: other-axis value + N values.
    A row may wrap over lines but must end at the end of a line.
    """
    kind_line, n = _glotaran_kind_and_count(path, lines)
    explicit = lines[kind_line].strip().lower().split()[0]
    header_text = "\n".join(lines[:kind_line])
    axis, k = _glotaran_axis(path, lines, kind_line + 2, n)
    header_line = kind_line + 3  # 1-based line of the first axis value
    rows, values, row_lines, where = _glotaran_rows(path, lines, k, n)
    if not rows:
        raise ExperimentError("no data rows after the axis values", file=path, line=header_line + 1)
    table = _Table(path, np.asarray(axis, float), np.asarray(rows, float), np.asarray(values, float),
                   header_line, row_lines, list(range(2, n + 2)), header_text=header_text,
                   cell_where=lambda i, j: where[i][j])
    return table, explicit


def _glotaran_kind_and_count(path: Path, lines: list[str]) -> tuple[int, int]:
    """(index of the ``Time/Wavelength explicit`` line, N of the ``intervalnr N`` line after it)."""
    kind_line = None
    for k, ln in enumerate(lines[:50]):
        s = ln.strip().lower()
        if s in ("time explicit", "wavelength explicit"):
            kind_line = k
            break
    if kind_line is None:
        raise ExperimentError("not a glotaran ascii file: expected a line 'Time explicit' or "
                              "'Wavelength explicit' within the first 50 lines", file=path)
    k = kind_line + 1
    m = re.fullmatch(r"\s*intervalnr\s+(\d+)\s*", lines[k] if k < len(lines) else "", re.IGNORECASE)
    if m is None:
        raise ExperimentError("expected 'intervalnr N' (the number of axis values) after "
                              f"'{lines[kind_line].strip()}'", file=path, line=k + 1)
    n = int(m.group(1))
    if n < 1:
        raise ExperimentError("intervalnr must be >= 1", file=path, line=k + 1)
    return kind_line, n


def _glotaran_axis(path: Path, lines: list[str], k: int, n: int) -> tuple[list[float], int]:
    """The ``n`` axis values from line index ``k`` on (wrapped over lines); returns them and the next line index."""
    axis, header_line = [], k + 1
    while len(axis) < n and k < len(lines):
        for f, tok in enumerate(_tokens_fortran(lines[k]), start=1):
            v = _number(tok)
            if v is None:
                raise ExperimentError(f"non-numeric axis value {cell_excerpt(tok)}; expected {n} numbers "
                                      "(intervalnr)", file=path, line=k + 1, column=f)
            axis.append(v)
        k += 1
    if len(axis) != n:
        raise ExperimentError(f"found {len(axis)} axis values; intervalnr says {n}", file=path,
                              line=header_line)
    return axis, k


def _glotaran_rows(path: Path, lines: list[str], k: int, n: int):
    """The matrix rows from line index ``k`` on, each the axis value + ``n`` values, possibly wrapped over lines.

    Returns (axis values, value rows, first line of each row, (line, field) of each value), 1-based lines."""
    rows, values, row_lines, where = [], [], [], []
    current, cur_where, cur_line = [], [], None
    while k < len(lines):
        toks = _tokens_fortran(lines[k])
        k += 1
        if not toks:
            if current:
                raise ExperimentError(f"row is incomplete: {len(current) - 1} of {n} values "
                                      "before an empty line", file=path, line=cur_line)
            continue
        if cur_line is None:
            cur_line = k
        line_values = _glotaran_line_values(path, lines, k, n, toks, in_row=bool(current), after_rows=bool(rows))
        if line_values is None:
            break  # free text after the matrix ends it, as in the Helios layout
        current += line_values
        cur_where += [(k, f) for f in range(1, len(line_values) + 1)]
        if len(current) == n + 1:
            rows.append(current[0])
            values.append(current[1:])
            row_lines.append(cur_line)
            where.append(cur_where[1:])
            current, cur_where, cur_line = [], [], None
        elif len(current) > n + 1:
            raise ExperimentError(
                f"row holds {len(current) - 1} values after its axis value; expected {n} "
                "(intervalnr) ending at the end of a line", file=path, line=cur_line)
    if current:
        raise ExperimentError(f"row is incomplete: {len(current) - 1} of {n} values", file=path,
                              line=cur_line)
    return rows, values, row_lines, where


def _glotaran_line_values(path: Path, lines: list[str], k: int, n: int, toks: list[str], in_row: bool,
                          after_rows: bool) -> list[float] | None:
    """The numbers of matrix line ``k`` (1-based), or None where it is free text after the matrix's last row."""
    out = []
    for f, tok in enumerate(toks, start=1):
        v = _number(tok)
        if v is None:
            if f == 1 and not in_row and after_rows:
                _refuse_rows_after_text(path, lines, k, n, tok)
                return None
            raise ExperimentError(f"non-numeric cell {cell_excerpt(tok)}; expected a number", file=path,
                                  line=k, column=f)
        out.append(v)
    return out


def _refuse_rows_after_text(path: Path, lines: list[str], stop: int, n: int, tok: str):
    """Refuse numeric matrix rows after the text (line ``stop``, 1-based) that ended the matrix."""
    for k2 in range(stop, len(lines)):
        later = _tokens_fortran(lines[k2])
        if len(later) == n + 1 and all(_number(t) is not None for t in later):
            raise ExperimentError(
                f"the matrix stops at the text {cell_excerpt(tok)}, but numeric data rows follow at "
                f"line {k2 + 1}; expected the matrix rows to be contiguous", file=path,
                line=stop, column=1)


# ----------------------------------------------------------------------------- format detection
def detect_format(path) -> str:
    """Guess the matrix format of ``path`` from its content: "helios", "glotaran" or "kimopack"."""
    path = Path(path)
    return _detect_format(path, _read_lines(path))


def _detect_format(path: Path, lines: list[str]) -> str:
    for ln in lines[:50]:
        if ln.strip().lower() in ("time explicit", "wavelength explicit"):
            return "glotaran"
    first = next((ln for ln in lines if ln.strip()), "")
    cells = _split(first, _detect_separator(lines))
    if cells and cells[0].lower().startswith("time in"):
        return "kimopack"
    return "helios"


def _infer_units(text: str) -> str:
    """Units of the values if the file's header says so ("mOD" or "OD"), else "unknown"."""
    low = text.lower()
    if re.search(r"\bm\s*od\b|\bmilli\s*od\b|\bmoD\b", low):
        return "mOD"
    if re.search(r"\b(delta\s*)?od\b|\babsorbance\b", low):
        return "OD"
    return "unknown"


# ----------------------------------------------------------------------------- axis checks
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


# ----------------------------------------------------------------------------- NaN policy
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


# ----------------------------------------------------------------------------- public readers
def read_matrix(path, format: str | None = None, axis: str = "delay", *, nan: str = "error",
                units: str | None = None) -> xr.DataArray:
    """Read a 2-D matrix file into a DataArray with dims ``("wavelength", axis)``.

    Parameters
    ----------
    path : path-like
        The file (opened read-only).
    format : {"helios", "glotaran", "kimopack"} or None
        File layout; ``None`` detects it from the content: glotaran by its ``Time explicit``
        line, otherwise which axis holds the wavelengths is decided from the axes themselves
        (:func:`~bayesgain.io.layout.orient`).  A given format is taken as the truth.
    axis : {"delay", "potential"}
        What the non-wavelength axis is: pump-probe delay in ps (TA/TR) or electrode potential
        in V (SEC matrices, Helios layout with potentials in row 0).
    nan : {"error", "zero", "drop-wavelengths", "missing"}
        What to do with NaN/inf cells: raise (default), replace by 0, drop every wavelength that
        holds one, or keep them as missing (NaN, counted in ``missing_cells``).  Invalid-pixel
        sentinels (:data:`~bayesgain.io.layout.SENTINELS`) are missing under "error" too;
        wavelengths holding nothing but sentinels are dropped.  NaN in an axis is always an error.
    units : str or None
        Units of the values.  ``None`` infers them: "OD" for Helios files (the export writes dA in
        OD), for glotaran/KiMoPack files whatever their header states ("mOD"/"OD") or "unknown".
        The values are returned as they are in the file - never rescaled.

    Returns
    -------
    xarray.DataArray
        ``values[wavelength, axis]``, both coordinates sorted ascending, with ``units`` attrs on
        the array ("OD"/"mOD"/...) and coordinates ("nm", "ps" or "V"), plus ``source_file`` and
        ``format`` attrs, ``layout`` (the layout in words and how it was decided) and ``repairs``
        ("none" or "; "-separated: merged final delays, sentinel and missing cells, dropped
        wavelengths).
    """
    path = Path(path)
    if axis not in AXES:
        raise ExperimentError(f"axis {axis!r}; expected 'delay' or 'potential'", file=path)
    if format is not None and format not in FORMATS:
        raise ExperimentError(f"format {format!r}; expected one of {', '.join(FORMATS)}", file=path)
    lines = _read_lines(path)
    detected = _detect_format(path, lines)
    fmt = format or detected
    unit = AXES[axis]
    repairs: list[str] = []
    inferred = "unknown"
    if fmt == "glotaran":
        table, explicit = _parse_glotaran(path, lines)
        wl_in = "rows" if explicit == "time" else "cols"
        inferred = _infer_units(table.header_text)
        layout = (f"glotaran '{explicit.capitalize()} explicit' ascii: "
                  + (f"{axis}s ({unit}) in the axis block, one row per wavelength" if wl_in == "rows"
                     else f"wavelengths in the axis block, one row per {axis}"))
    else:
        table = _parse_header_matrix(path, lines)
        corner = _split(table.header_text, _detect_separator(lines))[0] if table.header_text else ""
        if axis == "delay" and corner.strip().lower().startswith("time in") and corner.strip().lower() != "time in ps":
            # KiMoPack names the delay unit here; anything but ps would be silently misread
            raise ExperimentError(f"corner cell {cell_excerpt(corner)}; expected 'Time in ps' (delays in ps)",
                                  file=path, line=table.header_line, column=1)
        if format is None:
            wl_in, why = orient(path, table.cols, table.rows, axis, corner)
            fmt = "helios" if wl_in == "rows" else "kimopack"
            how = f"detected from the axes: {why}"
        else:
            wl_in = "rows" if fmt == "helios" else "cols"
            how = f"format = \"{fmt}\" in the manifest"
        inferred = "OD" if fmt == "helios" else "unknown"  # Helios exports dA in OD; KiMoPack never says
        head = f"header cell {corner.strip()!r}" if _number(corner) is None else f"no header text (corner cell {corner.strip()!r})"
        layout = ((f"matrix, wavelengths (nm) down the first column, {axis}s ({unit}) along the first row"
                   if wl_in == "rows" else
                   f"matrix, wavelengths (nm) along the first row, {axis}s ({unit}) down the first column")
                  + f", {head}; {how}")
    return _table_to_array(path, table, wl_in, axis, fmt, nan, units or inferred, layout, repairs)


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
