"""The matrix-reader registry: a format is a name, a content test and a parser (one file per format).

A new format is one file that calls :func:`register_reader` at import and is imported by
``bayesgain/io/readers/__init__.py``; ``read_matrix``, ``detect_format``, the manifest's ``format`` key and the
sweep reader then know it.  Detection tries the content tests from the highest ``priority`` down; the first
that answers True names the format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .table import _Table


@dataclass
class Parsed:
    """What a parser hands to the shared checks: the table as laid out in the file, where the wavelengths are
    ("rows": down column 0, "cols": along the axis row), the format's name, the value unit the file states
    ("unknown" where it says none) and the layout in words for the ``layout`` attr."""

    table: _Table
    wl_in: str
    format: str
    units: str
    layout: str


@dataclass(frozen=True)
class MatrixReader:
    name: str
    detect: Callable[[list[str]], bool]  # the file's lines -> is this the format
    parse: Callable[[Path, list[str], str, "str | None"], Parsed]  # (path, lines, axis, declared format or None)
    priority: int


_READERS: dict[str, MatrixReader] = {}


def register_reader(name: str, detect, parse, priority: int = 0) -> MatrixReader:
    """Register the matrix format ``name``: ``detect(lines) -> bool`` and ``parse(path, lines, axis, format)
    -> Parsed`` (``format`` is ``name`` when the manifest declares it, None when it was detected).  A name
    registered twice is an error: two readers would claim the same files."""
    if name in _READERS:
        raise ValueError(f"matrix format {name!r} is registered twice")
    reader = MatrixReader(name, detect, parse, int(priority))
    _READERS[name] = reader
    return reader


def reader(name: str) -> MatrixReader:
    return _READERS[name]


def registered() -> tuple[str, ...]:
    """The registered formats, in the order they registered."""
    return tuple(_READERS)


def names() -> tuple[str, ...]:
    """The registered formats, in the order detection tries them."""
    return tuple(r.name for r in sorted(_READERS.values(), key=lambda r: -r.priority))


def detect(lines: list[str]) -> MatrixReader:
    """The reader whose content test answers first (highest priority first)."""
    for name in names():
        if _READERS[name].detect(lines):
            return _READERS[name]
    raise LookupError("no matrix reader is registered")
