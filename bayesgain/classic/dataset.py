"""The classic analysis's results as an :class:`xarray.Dataset`, and classic.csv written from it and read back.

Layout of the Dataset (:func:`classic_dataset`):

* one variable per quantity, named as the rows of classic.csv without their brackets: scalars
  (``cross_section_cm2``, ``V_1S_V``, ``sigma_1S_V``, ``V_C_V``, ``T_eff_K``, ``biexciton_lifetime_ps``,
  ``solution_threshold_excitons``), over ``potential`` (``threshold_excitons``,
  ``lowest_threshold_g50_excitons`` / ``_photons_cm2`` / ``_nJ_cm2``) or over (``potential``, ``fluence``)
  (``gain_lifetime_ps``, ``gain_lifetime_fit_ps``, ``subgap_residual_OD``).  A row of another variant of a
  quantity (``V_1S_V[sec=gaussian]``) is its own scalar variable, ``V_1S_V_sec_gaussian``;
* attrs of each: ``unit``, ``method``, ``row_base`` (the row name without brackets) and ``variant``
  (``sec=gaussian``, when there is one);
* companions on the same coordinates: ``<name>_uncertainty`` (1 sd, NaN when none) and ``<name>_note`` (a string
  per element: the note of classic.csv; a NaN value always has one saying why).  An element that has no row
  (its variable does not cover every potential or fluence of the Dataset) has no note (NaN) and is not written;
* coordinates ``potential`` (V) and ``fluence`` (photons/cm^2) hold the values the row names carry (1 mV,
  3 significant digits), so that the Dataset read back from classic.csv equals the one written.

Row names are formatted in one place (:func:`row_name`) and parsed in one place (:func:`parse_row_name`).
"""

from __future__ import annotations

import csv
import math
import re

import numpy as np
import xarray as xr

from .._atomic import atomic_path

FIELDS = ["name", "value", "uncertainty", "unit", "method", "note"]
# bracket key -> (dimension, format of the value in the row name, unit of the coordinate)
COORDS = {"V": ("potential", "{:+.3f}", "V"), "J": ("fluence", "{:.3g}", "photons/cm^2")}
_KEY_OF = {dim: key for key, (dim, _, _) in COORDS.items()}
_NAME = re.compile(r"^([^\[\],=]+)(?:\[([^\[\]]*)\])?$")


def row_name(base, potential=None, fluence=None):
    """The row name of classic.csv: ``base`` with its coordinates in brackets, ``threshold_excitons[V=-1.562]``."""
    items = [COORDS[_KEY_OF[dim]][1].format(float(v)) for dim, v in (("potential", potential), ("fluence", fluence))
             if v is not None]
    keys = [_KEY_OF[dim] for dim, v in (("potential", potential), ("fluence", fluence)) if v is not None]
    return _join(base, [f"{k}={s}" for k, s in zip(keys, items)])


def _join(base, items):
    """``base`` with ``items`` in brackets; ``base`` may already hold a variant (``V_1S_V[sec=gaussian]``)."""
    if not items:
        return base
    if base.endswith("]"):
        return base[:-1] + "," + ",".join(items) + "]"
    return f"{base}[{','.join(items)}]"


def make_row(name, value, uncertainty, unit, method, note="", potential=None, fluence=None):
    """One row of classic.csv (dict name, value, uncertainty, unit, method, note); ``name`` is the quantity and
    ``potential`` / ``fluence`` its coordinates, formatted into the row name by :func:`row_name`."""
    return dict(name=row_name(name, potential, fluence), value=float(value), uncertainty=float(uncertainty),
                unit=unit, method=method, note=note)


def parse_row_name(name):
    """(variable, row_base, variant, coords) of a row name: ``gain_lifetime_ps[V=-1.562,J=2.5e+13]`` ->
    (``gain_lifetime_ps``, ``gain_lifetime_ps``, ``""``, {potential: -1.562, fluence: 2.5e13});
    ``V_1S_V[sec=gaussian]`` -> (``V_1S_V_sec_gaussian``, ``V_1S_V``, ``sec=gaussian``, {}).  ValueError names
    what is wrong."""
    m = _NAME.match(name.strip()) if isinstance(name, str) else None
    if m is None:
        raise ValueError(f"row name {name!r} is not 'quantity' or 'quantity[key=value,...]'")
    base, inner = m.group(1), m.group(2)
    variant, coords = [], {}
    for item in ([] if inner is None else inner.split(",")):
        key, eq, text = item.partition("=")
        if not (eq and key and text):
            raise ValueError(f"row name {name!r}: expected key=value in the brackets, got {item!r}")
        if key not in COORDS:
            variant.append(f"{key}={text}")
            continue
        dim = COORDS[key][0]
        if dim in coords:
            raise ValueError(f"row name {name!r}: {key} given twice")
        try:
            coords[dim] = float(text)
        except ValueError:
            raise ValueError(f"row name {name!r}: {key} = {text!r} is not a number") from None
        if not math.isfinite(coords[dim]):
            raise ValueError(f"row name {name!r}: {key} = {text!r} is not a finite number")
    var = base + "".join("_" + v.replace("=", "_") for v in variant)
    return var, base, ",".join(variant), coords


def _group_rows(rows):
    """{variable: dict(base, variant, dims, rows=[(coords, row)], first, last)} in order of first appearance."""
    out = {}
    for i, r in enumerate(rows):
        var, base, variant, coords = parse_row_name(r["name"])
        g = out.setdefault(var, dict(base=base, variant=variant, dims=tuple(coords), rows=[], first=i, last=i))
        if tuple(coords) != g["dims"]:
            raise ValueError(f"row {r['name']!r}: coordinates {list(coords) or 'none'} differ from the other rows of "
                             f"{var} ({list(g['dims']) or 'none'})")
        for key in ("unit", "method"):
            if g["rows"] and (r.get(key) or "") != (g["rows"][0][1].get(key) or ""):
                raise ValueError(f"row {r['name']!r}: its {key} differs from the other rows of {var}")
        g["rows"].append((coords, r))
        g["last"] = i
    return out


def _interleaved(groups):
    """{variable: first variable of its group} for variables whose rows alternate in classic.csv (the lowest
    single-wavelength threshold in three units, per potential): written element by element, all units together."""
    names = list(groups)
    lead = {}
    for k, a in enumerate(names):
        for b in names[k + 1:]:
            if groups[b]["first"] < groups[a]["last"] and groups[b]["dims"] == groups[a]["dims"]:
                lead[b] = lead.get(a, a)
                lead.setdefault(a, a)
    return lead


def classic_dataset(results):
    """The Dataset of :func:`~bayesgain.classic.classic_analysis`'s rows (the module docstring describes it);
    a Dataset is returned as it is.  ValueError when a row name cannot be parsed or the rows of one quantity
    disagree (coordinates, unit, method)."""
    if isinstance(results, xr.Dataset):
        return results
    rows = list(results)
    groups = _group_rows(rows)
    axes = {}
    for g in groups.values():
        for coords, _ in g["rows"]:
            for dim, v in coords.items():
                axes.setdefault(dim, {}).setdefault(v, None)
    axes = {dim: np.array(list(vals), float) for dim, vals in axes.items()}
    lead = _interleaved(groups)
    data = {}
    for var, g in groups.items():
        shape = tuple(axes[d].size for d in g["dims"])
        value, unc = np.full(shape, np.nan), np.full(shape, np.nan)
        note = np.full(shape, None, dtype=object)
        for coords, r in g["rows"]:
            idx = tuple(int(np.flatnonzero(axes[d] == coords[d])[0]) for d in g["dims"])
            value[idx], unc[idx] = float(r["value"]), float(r["uncertainty"])
            note[idx] = r.get("note") or ""
        first = g["rows"][0][1]
        attrs = dict(unit=first.get("unit") or "", method=first.get("method") or "", row_base=g["base"])
        if g["variant"]:
            attrs["variant"] = g["variant"]
        if var in lead:
            attrs["row_group"] = lead[var]
        data[var] = (g["dims"], value, attrs)
        data[f"{var}_uncertainty"] = (g["dims"], unc, dict(unit=attrs["unit"], long_name=f"1 sd of {var}"))
        data[f"{var}_note"] = (g["dims"], note, dict(long_name=f"note of {var} (why, when NaN)"))
    coords = {dim: (dim, v, dict(units=COORDS[_KEY_OF[dim]][2])) for dim, v in axes.items()}
    ds = xr.Dataset(data, coords=coords)
    ds.attrs["description"] = ("classic analysis (the paper's point estimates); <name>_uncertainty is 1 sd, "
                               "<name>_note says why a value is NaN")
    return ds


def _is_quantity(ds, var):
    """A quantity is a variable with a ``<name>_note`` beside it (the notes say which elements are rows)."""
    return f"{var}_note" in ds.data_vars


def variable_rows(ds, var):
    """[(coords, row)] of one variable: the rows of classic.csv it holds, in coordinate order (elements without
    a note string have no row; a missing ``<name>_uncertainty`` reads as NaN).  ``coords`` is
    {dimension: float}."""
    da = ds[var]
    note = ds[f"{var}_note"].transpose(*da.dims).values
    unc = ds.get(f"{var}_uncertainty", xr.full_like(da, np.nan, dtype=float)).transpose(*da.dims).values
    base = _join(da.attrs.get("row_base", var), [da.attrs["variant"]] if da.attrs.get("variant") else [])
    out = []
    for idx in np.ndindex(da.shape):
        if not isinstance(note[idx], str):
            continue
        coords = {d: float(ds[d].values[i]) for d, i in zip(da.dims, idx)}
        out.append((coords, dict(name=row_name(base, **coords), value=float(da.values[idx]),
                                 uncertainty=float(unc[idx]), unit=da.attrs.get("unit", ""),
                                 method=da.attrs.get("method", ""), note=str(note[idx]))))
    return out


def classic_rows(ds):
    """The rows of classic.csv (dicts name, value, uncertainty, unit, method, note) of a classic Dataset, in the
    order :func:`~bayesgain.classic.classic_analysis` makes them."""
    rows, done = [], set()
    for var in ds.data_vars:
        if var in done or not _is_quantity(ds, var):
            continue
        lead = ds[var].attrs.get("row_group")
        members = [v for v in ds.data_vars if lead is not None and ds[v].attrs.get("row_group") == lead] or [var]
        done.update(members)
        per = [variable_rows(ds, v) for v in members]
        order = sorted({tuple(c.items()) for p in per for c, _ in p},
                       key=lambda c: tuple(int(np.flatnonzero(ds[d].values == v)[0]) for d, v in c))
        for c in order:
            rows += [r for p in per for cc, r in p if tuple(cc.items()) == c]
    return rows


def write_classic_csv(results, path):
    """Write classic.csv atomically from a classic Dataset (or from rows, through :func:`classic_dataset`)."""
    rows = classic_rows(classic_dataset(results))
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=FIELDS)
            w.writeheader()
            for r in rows:
                w.writerow({k: r.get(k, "") for k in FIELDS})
    return path


def _number(text):
    try:
        return float(text or "nan")
    except ValueError:
        return float("nan")


def read_classic_csv(path):
    """The classic Dataset of a classic.csv (as :func:`write_classic_csv` writes it).  ValueError naming the
    file when it has no rows, lacks a column or holds a row name that cannot be parsed."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in FIELDS[:4] if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: expected the columns name, value, uncertainty, unit; missing {missing}")
        rows = [dict(r, value=_number(r.get("value")), uncertainty=_number(r.get("uncertainty"))) for r in reader]
    if not rows:
        raise ValueError(f"{path}: no rows")
    try:
        return classic_dataset(rows)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
