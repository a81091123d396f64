"""SEC sweep files: the sweep direction from the order of the potentials, and down-and-up files split.

A potentiostat run is often exported as one file per cycle holding the sweep towards negative
potential and the way back (potentials 0, -0.1, ..., -1.6, ..., -0.1, 0).  :func:`read_sweeps`
returns one :class:`Sweep` per monotonic stretch of such a file: the direction of each is the order
of its potentials in the file (decreasing = ``"forward"``, the project's convention: forward sweeps
go towards negative potential, as in ``bayesgain.simulate``), and the turning point, measured
once, belongs to both stretches so that they share one potential grid.

Only the Helios layout (row 0 = potentials, column 0 = wavelengths) holds SEC sweeps, so only it is
split; the other layouts are read by :func:`~bayesgain.io.readers.read_matrix` unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .errors import ExperimentError
from .readers import read_matrix, registry
from .readers.header_matrix import _parse_header_matrix
from .readers.table import _table_to_array, _Table
from .readers.text import _read_lines

__all__ = ["Sweep", "read_sweeps", "direction_of", "split_at_turning_points"]


@dataclass
class Sweep:
    """One monotonic sweep of a file: its matrix (potentials ascending, as every reader returns
    them), its direction, and how it was found (``"manifest"``, ``"order"`` or ``"split"``)."""

    data: xr.DataArray
    direction: str | None
    how: str
    potentials_in_file_order: np.ndarray


def direction_of(potentials) -> str:
    """``"forward"`` for potentials decreasing in file order (towards negative), else ``"backward"``."""
    v = np.asarray(potentials, float)
    return "forward" if v[-1] < v[0] else "backward"


def split_at_turning_points(potentials) -> list[np.ndarray]:
    """Column indices of the monotonic stretches of ``potentials`` (file order).

    A turning point measured once starts the next stretch too (both stretches then share the
    extreme potential); one measured twice in a row (-1.6, -1.6) is split between them.  A
    potential repeated anywhere else is not a turning point and ends up in one stretch, where the
    reader's monotonicity check reports it.
    """
    v = np.asarray(potentials, float)
    if v.size < 3:
        return [np.arange(v.size)]
    step = np.sign(np.diff(v))
    out, start, k = [], 0, 1
    while k < step.size:
        if step[k] != 0 and step[k - 1] != 0 and step[k] != step[k - 1]:  # turn at column k
            out.append(np.arange(start, k + 1))
            start = k
        elif step[k] == 0 and k + 1 < step.size and step[k - 1] != 0 and step[k + 1] == -step[k - 1]:
            out.append(np.arange(start, k + 1))  # turn measured twice: columns k and k+1
            start = k + 1
            k += 1
        k += 1
    out.append(np.arange(start, v.size))
    return out


def read_sweeps(path, format: str | None = None, *, nan: str = "error",
                direction: str | None = None) -> list[Sweep]:
    """The sweeps of one SEC matrix file, each a ``("wavelength", "potential")`` DataArray.

    With ``direction`` (the manifest's) the file must hold one monotonic sweep and keeps that
    direction (exports often sort the potentials, so their order does not overrule the manifest).
    Without it, a Helios file's potential order gives the direction, and a file with one turning
    point (a down-and-up sweep) is split there into its two sweeps.  More than one turning point
    (several cycles in one file) is refused: each cycle needs its own manifest entry.
    """
    lines = _read_lines(path)
    fmt = format or registry.detect(lines).name
    if fmt != "helios":
        da = read_matrix(path, format=fmt, axis="potential", nan=nan)
        if direction is None:
            raise ExperimentError(f"no sweep direction: the order of the potentials is read from Helios-layout "
                                  f"SEC files only, this one is {fmt}; expected direction = \"forward\" or "
                                  "\"backward\" in its manifest entry", file=path)
        return [Sweep(da, direction, "manifest", da["potential"].values)]
    table = _parse_header_matrix(path, lines)
    pots = table.cols
    stretches = split_at_turning_points(pots) if np.all(np.isfinite(pots)) else [np.arange(pots.size)]
    if len(stretches) > 2:
        turns = ", ".join(f"{pots[s[-1]]:g} V" for s in stretches[:-1])
        raise ExperimentError(f"the potentials turn {len(stretches) - 1} times (at {turns}); expected one sweep "
                              "or one down-and-up sweep per file (give each cycle its own [[film.sec]] entry)",
                              file=path, line=table.header_line)
    if len(stretches) == 2 and direction is not None:
        raise ExperimentError(f"the file holds two sweeps (the potentials turn at {pots[stretches[0][-1]]:g} V) but "
                              f"the manifest says direction = {direction!r}; expected no direction key for a "
                              "down-and-up file (it is split at its turning point)", file=path,
                              line=table.header_line)
    out = []
    for cols in stretches:
        sub = _Table(table.path, pots[cols], table.rows, table.values[:, cols], table.header_line,
                     table.row_lines, [table.col_fields[j] for j in cols], header_text=table.header_text)
        da = _table_to_array(path, sub, "rows", "potential", fmt, nan, "OD")
        if direction is not None:
            out.append(Sweep(da, direction, "manifest", pots[cols]))
        else:
            out.append(Sweep(da, direction_of(pots[cols]), "split" if len(stretches) == 2 else "order", pots[cols]))
    return out
