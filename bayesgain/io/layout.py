"""Which axis of a header matrix is which, and the repairs raw instrument files need.

A header matrix (first line = one axis, first column = the other) is written both ways by labs:
Helios puts delays along the first row, KiMoPack puts wavelengths there, and raw scans may carry
no header text that says which.  :func:`orient` decides from the axes themselves: a wavelength
axis is finite, strictly monotonic and inside a spectrometer's range (nm); a delay axis is
monotonic (its final value may repeat) and usually reaches zero or below, or spans decades.

Repairs, each reported in words so that ``bayesgain check`` can print it:

* :func:`merge_final_repeats` - a delay stage that parks at its last position writes that delay
  on several rows; the rows are averaged into one.
* :func:`mark_sentinels` - detector software writes invalid pixels as a fixed number
  (-2^31 / 10^8 = -21.47483648, or -21.47483647 from (1 - 2^31) / 10^8); those cells become
  missing (NaN).
"""

from __future__ import annotations

import numpy as np

from .errors import ExperimentError

__all__ = ["SENTINELS", "WAVELENGTH_RANGE_NM", "POTENTIAL_LIMIT_V", "orient", "merge_final_repeats",
           "mark_sentinels", "plausible_wavelengths", "plausible_potentials", "fmt_range"]

# Plausibility windows used to recognise which axis is which.  Wavelengths of UV-vis-NIR TA/SEC
# are positive and typically 200-2500 nm; the window is a little wider for unusual spectrometers.
WAVELENGTH_RANGE_NM = (150.0, 3000.0)
# Potentials against any common reference electrode lie well within +-10 V.
POTENTIAL_LIMIT_V = 10.0
# Invalid-pixel markers of 32-bit integer detector software scaled by 1e-8 (KiMoPack/Pascher raw
# scans), and the raw 32-bit extremes themselves.
SENTINELS = (-2.0 ** 31 / 1e8, (1.0 - 2.0 ** 31) / 1e8, -2.0 ** 31, 2.0 ** 31 - 1.0)
# A wavelength grid spans at most 3000/150 = 20x; delay grids on log steps span decades.
_DECADES = 50.0


def fmt_range(values: np.ndarray) -> str:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "no finite values"
    return f"{finite.min():g} to {finite.max():g}"


def plausible_wavelengths(values: np.ndarray) -> bool:
    lo, hi = WAVELENGTH_RANGE_NM
    return bool(values.size and np.all(np.isfinite(values)) and values.min() >= lo and values.max() <= hi)


def plausible_potentials(values: np.ndarray) -> bool:
    return bool(values.size and np.all(np.isfinite(values)) and np.abs(values).max() <= POTENTIAL_LIMIT_V)


def _strictly_monotonic(v: np.ndarray) -> bool:
    if v.size < 2:
        return True
    d = np.diff(v)
    return bool(np.all(d > 0) or np.all(d < 0))


def _final_repeats(v: np.ndarray) -> int:
    """How many trailing values equal the last one, beyond the first of them."""
    n = 0
    while n + 1 < v.size and v[-2 - n] == v[-1]:
        n += 1
    return n


def _looks_like(v: np.ndarray, axis: str, down_column: bool) -> bool:
    """Could ``v`` be the non-wavelength axis (delays in ps or potentials in V)?  Only delays
    down the first column may repeat their final value (a parked delay stage, one row per shot)."""
    if not np.all(np.isfinite(v)):
        return False
    core = v[: v.size - _final_repeats(v)] if axis == "delay" and down_column else v
    if not _strictly_monotonic(core):
        return False
    if axis == "potential":
        return plausible_potentials(v)
    return True


def _delay_signature(v: np.ndarray) -> bool:
    """Something no wavelength grid shows: a value <= 0, a repeated final value, or decades."""
    if v.size == 0 or not np.all(np.isfinite(v)):
        return False
    pos = v[v > 0]
    decades = pos.size >= 2 and pos.max() / pos.min() > _DECADES
    return bool(v.min() <= 0 or _final_repeats(v) > 0 or decades)


def orient(path, cols: np.ndarray, rows: np.ndarray, axis: str, corner: str) -> tuple[str, str]:
    """Decide where the wavelengths are: ``("rows", why)`` (down the first column, Helios) or
    ``("cols", why)`` (along the first row, KiMoPack); ``why`` says which evidence decided.

    Only an axis inside :data:`WAVELENGTH_RANGE_NM` can hold wavelengths; when both can, the one
    that is strictly monotonic beside a monotonic other axis wins, then a ``Time in ...`` corner
    cell, then a delay signature on the other axis.  Still tied -> :class:`ExperimentError`.
    """
    unit = "ps" if axis == "delay" else "V"
    in_rows, in_cols = plausible_wavelengths(rows), plausible_wavelengths(cols)
    if in_rows and not in_cols:
        return "rows", f"first row {fmt_range(cols)} {unit} cannot be wavelengths"
    if in_cols and not in_rows:
        return "cols", f"first column {fmt_range(rows)} {unit} cannot be wavelengths"
    if not in_rows:
        # nothing looks like wavelengths: keep the common Helios reading so that the axis checks
        # name the offending axis and its values
        return "rows", "no axis looks like wavelengths; Helios convention assumed"
    wl_rows = _strictly_monotonic(rows) and _looks_like(cols, axis, False)
    wl_cols = _strictly_monotonic(cols) and _looks_like(rows, axis, True)
    if wl_rows != wl_cols:
        return ("rows", "only the first column is a strictly monotonic wavelength axis beside a "
                        f"monotonic {axis} axis") if wl_rows else \
            ("cols", "only the first row is a strictly monotonic wavelength axis beside a "
                     f"monotonic {axis} axis")
    if corner.strip().lower().startswith("time in"):
        return "cols", f"corner cell {corner.strip()!r} names the first column"
    if axis == "delay":
        sig_rows, sig_cols = _delay_signature(rows), _delay_signature(cols)
        if sig_rows != sig_cols:
            return ("cols", f"first column {fmt_range(rows)} ps has a delay signature (<= 0, repeated "
                            "final value or decades)") if sig_rows else \
                ("rows", f"first row {fmt_range(cols)} ps has a delay signature (<= 0 or decades)")
    raise ExperimentError(
        f"both axes could be wavelengths (first row {fmt_range(cols)}, first column "
        f"{fmt_range(rows)}); expected format = \"helios\" (wavelengths down the first column) or "
        "\"kimopack\" (wavelengths along the first row) in the manifest entry", file=path)


def merge_final_repeats(axis_values: np.ndarray, values: np.ndarray, along: int, what: str, unit: str):
    """Average the trailing entries of ``axis_values`` that repeat the last value into one.

    ``values`` holds the axis along dimension ``along``.  Returns ``(axis, values, note)``;
    ``note`` is None when nothing was merged.  Missing (NaN) cells are left out of the mean.
    """
    n = _final_repeats(axis_values)
    if n == 0:
        return axis_values, values, None
    k = axis_values.size - n - 1
    block = np.take(values, np.arange(k, axis_values.size), axis=along)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(block)
        count = finite.sum(axis=along, keepdims=True)
        merged = np.where(count > 0, np.where(finite, block, 0.0).sum(axis=along, keepdims=True)
                          / np.maximum(count, 1), np.nan)
    out = np.concatenate([np.take(values, np.arange(k), axis=along), merged], axis=along)
    note = f"final {what} {axis_values[-1]:.10g} {unit} written {n + 1} times: merged into their mean"
    return axis_values[: k + 1], out, note


def mark_sentinels(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Cells equal to a known invalid-pixel marker -> NaN; returns (values, count)."""
    bad = np.zeros(values.shape, bool)
    for s in SENTINELS:
        bad |= np.isclose(values, s, rtol=0.0, atol=abs(s) * 1e-12)
    if not bad.any():
        return values, 0
    return np.where(bad, np.nan, values), int(bad.sum())
