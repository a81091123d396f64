"""Text of instrument files: lines read-only, separators, cells, numbers (Fortran exponents and fixed-width fields),
and the value unit a header states.  Shared by every reader of :mod:`bayesgain.io.readers`."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ExperimentError
from ..tomlfile import looks_utf16

_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[EeDd][-+]?\d+)?")


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


def _infer_units(text: str) -> str:
    """Units of the values if the file's header says so ("mOD" or "OD"), else "unknown"."""
    low = text.lower()
    if re.search(r"\bm\s*od\b|\bmilli\s*od\b|\bmoD\b", low):
        return "mOD"
    if re.search(r"\b(delta\s*)?od\b|\babsorbance\b", low):
        return "OD"
    return "unknown"
