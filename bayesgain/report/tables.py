"""The report's tables: the classic results read by coordinate, thresholds.csv and thresholds_measured.csv as text,
the summary."""

from __future__ import annotations

import csv
import io

import numpy as np

from ..classic.dataset import variable_rows
from .common import HDI, _conv_stats, _converged, _synthetic


# ----------------------------------------------------------------------------- classic results
def _classic_value(ds, name):
    """The row (dict name, value, uncertainty, unit, method, note) of the scalar ``name`` of the classic Dataset,
    or None when it has none."""
    if ds is None or name not in ds or ds[name].dims:
        return None
    rows = variable_rows(ds, name)
    return rows[0][1] if rows else None


def _classic_rows_by_potential(ds, name):
    """[(V, row)] of the classic Dataset's ``name`` over potential, read by coordinate; [] when it has none."""
    if ds is None or name not in ds or ds[name].dims != ("potential",):
        return []
    return [(c["potential"], r) for c, r in variable_rows(ds, name)]


def _classic_thresholds(ds):
    """(V, value, uncertainty) of the classic ``threshold_excitons`` at each of its potentials."""
    out = []
    for V, _ in _classic_rows_by_potential(ds, "threshold_excitons"):
        out.append((V, float(ds["threshold_excitons"].sel(potential=V)),
                    float(ds["threshold_excitons_uncertainty"].sel(potential=V))))
    return out


def _summary(model):
    s = model.summary()
    return s


def _threshold_csv_text(model, table):
    lines = ["# <N_gain> (excitons/QD, t = 0, transition counting) versus <n_e> (electrons/QD); median and "
             f"{HDI:.0%} HDI; model '{model.spec.name}'"]
    if _synthetic(model):
        lines.append("# SYNTHETIC data (made by bayesgain.simulate): not a measurement")
    if not _converged(model):
        lines.append("# NOT CONVERGED: these thresholds are not final -- " + _conv_stats(model))
    fin = np.asarray(table["fraction_inf"].values)
    if np.any(fin > 0):
        lines.append("# some draws reach no threshold (inf); the HDI is over the finite draws")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["n_e", "median", "hdi_low", "hdi_high"])
    for n, m, lo, hi in zip(table["n_e"].values, table["median"].values, table["hdi_low"].values,
                            table["hdi_high"].values):
        w.writerow([f"{n:.6g}", f"{m:.6g}", f"{lo:.6g}", f"{hi:.6g}"])
    return "\n".join(lines) + "\n" + buf.getvalue()


def _measured_csv_text(model, rows, ds):
    from ..model.measured_thresholds import COLUMNS

    lines = [f"# gain thresholds at the film TA potentials (excitons/QD): measured = <N> where the window A* "
             f"{ds.attrs['read_out']} crosses 0 ({ds.attrs['family']}, per posterior draw, {ds.attrs['draws']} draws); "
             "predicted = transition counting's crossing of the same read-out (cascade to that delay, measured A_pre, "
             "A_0 = g_e g_h units); difference = measured - "
             f"predicted per draw; medians and {HDI:.0%} HDIs; model '{model.spec.name}'"]
    if _synthetic(model):
        lines.append("# SYNTHETIC data (made by bayesgain.simulate): not a measurement")
    if not _converged(model):
        lines.append("# NOT CONVERGED: these thresholds are not final -- " + _conv_stats(model))
    lines += [f"# {r['potential_V']:+.3f} V: nan -- {r['reason']}" for r in rows if r["reason"]]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([f"{r[c]:.6g}" for c in COLUMNS])
    return "\n".join(lines) + "\n" + buf.getvalue()
