"""Matrices with an axis row and an axis column: the Helios (Ultrafast Systems / Surface Xplorer) CSV and the
KiMoPack tab matrix.

* **helios** - row 0 = delays (ps) or potentials (V), column 0 = wavelengths (nm), cell (0,0) unused; free-text
  metadata lines may follow the matrix (it ends at the first empty line or first row whose first cell is not a
  number).
* **kimopack** - header cell ``Time in ps``, header row = wavelengths (nm), delays (ps) down the first column.

Without a declared format, which axis holds the wavelengths is decided from the axes themselves
(:func:`~bayesgain.io.layout.orient`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...safety.containment import cell_excerpt
from ..errors import ExperimentError
from ..layout import orient
from .registry import Parsed, register_reader
from .table import AXES, _Table
from .text import _detect_separator, _number, _split


def _is_kimopack(lines: list[str]) -> bool:
    first = next((ln for ln in lines if ln.strip()), "")
    cells = _split(first, _detect_separator(lines))
    return bool(cells) and cells[0].lower().startswith("time in")


def parse(path: Path, lines: list[str], axis: str, format: str | None) -> Parsed:
    """The header matrix of ``path``, oriented by ``format`` ("helios": wavelengths down column 0, "kimopack": along
    row 0) or, when None, by its axes."""
    unit = AXES[axis]
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
        fmt = format
        wl_in = "rows" if fmt == "helios" else "cols"
        how = f"format = \"{fmt}\" in the manifest"
    units = "OD" if fmt == "helios" else "unknown"  # Helios exports dA in OD; KiMoPack never says
    head = f"header cell {corner.strip()!r}" if _number(corner) is None else f"no header text (corner cell {corner.strip()!r})"
    layout = ((f"matrix, wavelengths (nm) down the first column, {axis}s ({unit}) along the first row"
               if wl_in == "rows" else
               f"matrix, wavelengths (nm) along the first row, {axis}s ({unit}) down the first column")
              + f", {head}; {how}")
    return Parsed(table, wl_in, fmt, units, layout)


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


# KiMoPack by its corner cell; Helios is the layout of any other header matrix (the fallback, tried last)
register_reader("helios", lambda lines: True, parse, priority=0)
register_reader("kimopack", _is_kimopack, parse, priority=10)
