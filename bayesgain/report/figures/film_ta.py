"""Film TA figures beside the Fig. 5 panels: residuals of the physics versus delay, the chirp on the raw TA map."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from ..cache import Skip
from .saving import _save


def fig_residuals(model, cache, path):
    """Standardised residual of the physics (posterior median of (y - mu_physics) / sd) versus delay, a panel per
    potential, a colour per fluence: smooth structure along delay is what the physics does not explain."""
    chk = cache.residuals()
    d = model.data
    r = chk["standardized_residual"]
    delay = d["ta_point_delay"].values
    pot = d["ta_point_potential"].values
    fl = d["ta_point_fluence"].values.astype(int)
    pots = np.unique(pot)
    ncol = min(3, pots.size)
    nrow = int(math.ceil(pots.size / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.0 * ncol, 2.8 * nrow + 0.6), squeeze=False, sharey=True)
    cmap = plt.get_cmap("viridis")
    n_fl = max(int(fl.max()) + 1, 2)
    for k, V in enumerate(pots):
        ax = axes.flat[k]
        for j in np.unique(fl):
            sel = np.nonzero((pot == V) & (fl == j))[0]
            o = sel[np.argsort(delay[sel])]
            ax.plot(delay[o], r[o], ".-", ms=2.5, lw=0.6, color=cmap(j / (n_fl - 1)))
        ax.axhline(0, color="0.3", lw=0.6)
        ax.set_xscale("log")
        ax.set_title(f"{V:+.3f} V", fontsize=8)
        ax.set_xlabel("delay (ps)")
        if k % ncol == 0:
            ax.set_ylabel("residual / sd")
    for ax in list(axes.flat)[pots.size:]:
        ax.set_visible(False)
    verdict = "structure along delay" if chk["flagged"] else "no structure detected"
    return _save(fig, model, path, f"film TA residuals of the physics (colour: fluence); lag-1 autocorrelation "
                                   f"{chk['T_observed']:.2f}, p = {chk['p_value']:.3f}: {verdict}")


def fig_chirp(model, cache, path):
    """The chirp t0(lambda) on the uncorrected TA map of every experiment that had a chirp correction."""
    from ...chirp_figure import draw_chirp_map
    from ...io.chirp import chirp_map_from_attrs

    maps = [(n, chirp_map_from_attrs(model.data.attrs, f"{n}:")) for n in model.names]
    maps = [(n, ds) for n, ds in maps if ds is not None]
    if not maps:
        raise Skip("no experiment had a chirp correction")
    fig, axes = plt.subplots(len(maps), 1, figsize=(7.0, 4.2 * len(maps)), squeeze=False)
    for ax, (n, ds) in zip(axes[:, 0], maps):
        draw_chirp_map(ax, ds)
        ax.set_title(f"{n}: {ax.get_title()}", fontsize=8.5)
    return _save(fig, model, path, "chirp correction: t0(lambda) on the TA map before the correction")
