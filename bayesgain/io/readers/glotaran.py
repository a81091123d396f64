"""glotaran ``Time explicit`` / ``Wavelength explicit`` ascii (blank or tab separated, Fortran fixed-width columns
accepted): free header lines, the explicit line, ``intervalnr N``, N axis values (possibly wrapped), then rows of
the other axis value + N values."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...safety.containment import cell_excerpt
from ..errors import ExperimentError
from .registry import Parsed, register_reader
from .table import AXES, _Table
from .text import _infer_units, _number, _tokens_fortran


def _is_glotaran(lines: list[str]) -> bool:
    return any(ln.strip().lower() in ("time explicit", "wavelength explicit") for ln in lines[:50])


def parse(path: Path, lines: list[str], axis: str, format: str | None) -> Parsed:
    """The matrix of a glotaran file: the explicit axis is the delays ("Time explicit": one row per wavelength) or the
    wavelengths ("Wavelength explicit": one row per delay or potential)."""
    table, explicit = _parse_glotaran(path, lines)
    wl_in = "rows" if explicit == "time" else "cols"
    layout = (f"glotaran '{explicit.capitalize()} explicit' ascii: "
              + (f"{axis}s ({AXES[axis]}) in the axis block, one row per wavelength" if wl_in == "rows"
                 else f"wavelengths in the axis block, one row per {axis}"))
    return Parsed(table, wl_in, "glotaran", _infer_units(table.header_text), layout)


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


register_reader("glotaran", _is_glotaran, parse, priority=20)
