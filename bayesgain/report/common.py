"""What every part of the report shares: the fit's state (SYNTHETIC, converged), posterior access, the 94 % HDI
of draws and the number format of the tables."""

from __future__ import annotations

import math

import numpy as np

DPI = 200
HDI = 0.94
G_MIN_PER_CM = 50.0


def _synthetic(model):
    d = model.data
    return "experiment_synthetic" in d and bool(np.any(np.asarray(d["experiment_synthetic"].values) > 0))


def _converged(model):
    conv = getattr(model, "convergence", None)
    return conv is not None and conv.ok


def _post(model):
    return model.idata["posterior"]


def _has(model, *names):
    return all(n in _post(model) for n in names)


def _hdi(x, axis=0, prob=HDI):
    """median, low, high of the finite values along ``axis`` (NaN where none)."""
    import xarray as xr

    from ..model.quantities import hdi_table

    x = np.moveaxis(np.asarray(x, float), axis, 0)
    shape = x.shape[1:]
    da = xr.DataArray(x.reshape(x.shape[0], -1), dims=("sample", "i"))
    t = hdi_table(da, prob=prob)
    return tuple(np.asarray(t[k].values).reshape(shape) for k in ("median", "hdi_low", "hdi_high"))


def _fmt(x, digits=4):
    if x is None:
        return "--"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return "--"
    if math.isinf(x):
        return "inf"
    return f"{x:.{digits}g}"


def _conv_stats(model):
    conv = model.convergence
    if conv is None:
        return "no convergence report"
    return conv.text().split(":", 1)[-1].strip() if ":" in conv.text() else conv.text()


def _not_final(model):
    return "" if _converged(model) else " **(NOT FINAL: the fit did not converge)**"


def _physical_scalars(model):
    """Physical parameters (dims chain, draw, experiment only) present in the posterior."""
    from ..model.core import PHYSICAL_PARAMETERS

    post = _post(model)
    out = []
    for n in PHYSICAL_PARAMETERS:
        if n in post and set(post[n].dims) <= {"chain", "draw", "experiment"}:
            out.append(n)
    return out


def _unit(model, name):
    p = model.spec.priors.get(name)
    return p.get("unit", "") if p else ""


def _of_experiment(da, experiment):
    """``da`` of one experiment where it has an ``experiment`` dim (a parameter shared by all has none)."""
    return da.isel(experiment=experiment) if "experiment" in da.dims else da

