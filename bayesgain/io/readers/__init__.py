"""Readers for spectrum and matrix files written by instrument software, one file per format.

Matrix formats (see ``docs/experiment-format.md``), each registered by its own module through
:func:`~bayesgain.io.readers.registry.register_reader`:

* ``helios`` and ``kimopack`` (:mod:`.header_matrix`): an axis row and an axis column;
* ``glotaran`` (:mod:`.glotaran`): ``Time explicit`` / ``Wavelength explicit`` ascii.

Spectra (wavelength, value columns): :mod:`.spectrum`.  Every matrix passes the same checks after parsing
(:mod:`.table`: axes, NaN policy, sentinels, merged final delays, sorting).

Files are only ever opened read-only (``rb``) and never modified.  CR, LF and CRLF line endings read the same.
Every error is an :class:`~bayesgain.io.errors.ExperimentError` that names the file, the line (1-based) and
column (1-based) where one applies, and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from ..errors import ExperimentError
from . import registry
from .header_matrix import parse as _header_matrix  # noqa: F401  (each format module registers itself at import)
from .glotaran import parse as _glotaran  # noqa: F401
from .registry import register_reader
from .spectrum import read_spectrum
from .table import AXES, NAN_POLICIES, _table_to_array
from .text import _read_lines

__all__ = ["read_spectrum", "read_matrix", "detect_format", "register_reader", "FORMATS", "NAN_POLICIES"]

FORMATS = registry.registered()  # the shipped formats (a format registered later joins registry.registered())


def detect_format(path) -> str:
    """Guess the matrix format of ``path`` from its content (the registered readers' tests, e.g. "glotaran" by
    its ``Time explicit`` line, "kimopack" by its corner cell, else "helios")."""
    return registry.detect(_read_lines(Path(path))).name


def read_matrix(path, format: str | None = None, axis: str = "delay", *, nan: str = "error",
                units: str | None = None) -> xr.DataArray:
    """Read a 2-D matrix file into a DataArray with dims ``("wavelength", axis)``.

    Parameters
    ----------
    path : path-like
        The file (opened read-only).
    format : one of :data:`FORMATS` ("helios", "glotaran", "kimopack") or None
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
    if format is not None and format not in registry.registered():
        raise ExperimentError(f"format {format!r}; expected one of {', '.join(registry.registered())}", file=path)
    lines = _read_lines(path)
    chosen = registry.reader(format) if format is not None else registry.detect(lines)
    p = chosen.parse(path, lines, axis, format)
    return _table_to_array(path, p.table, p.wl_in, axis, p.format, nan, units or p.units, p.layout, [])
