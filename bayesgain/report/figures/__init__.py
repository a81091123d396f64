"""The report's figures: the file name of each, what it shows, and the function that draws it."""

from __future__ import annotations

import re

from ...chirp_figure import CHIRP_FIGURE_NAME as CHIRP_FIGURE
from .diagnostics import fig_ppc, fig_prior_posterior, fig_rank, fig_trace
from .fig5 import fig_charging, fig_gain_coefficient, fig_lifetime, fig_single_wavelength, fig_threshold
from .film_ta import fig_chirp, fig_residuals


FIGURES = {
    "fig5a_charging.png": "<n_e>(V): posterior band of the charging model with the SEC data (paper Fig. 5a)",
    "fig5b_threshold_vs_doping.png": "<N_gain> versus <n_e> with the 94 % HDI band (paper Fig. 5b)",
    "fig5c_gain_lifetime.png": "gain lifetime versus <N> at several doping levels (paper Fig. 5c)",
    "fig5d_single_wavelength.png": "single-wavelength threshold spectrum, g >= 50 cm^-1 region (paper Fig. 5d-f)",
    "fig5e_gain_coefficient.png": "window gain coefficient versus <N> (paper Fig. 5)",
    "trace.png": "trace and marginal posterior of each physical parameter (per chain)",
    "rank.png": "rank histograms per chain of the physical parameters (uniform when the chains agree)",
    "ppc.png": "posterior predictive checks of every observed component",
    "residuals.png": "film TA residuals of the physics (without the discrepancy term) versus delay, per potential",
    "prior_posterior.png": "prior versus posterior of every physical parameter",
}
CHIRP_FIGURE_TEXT = ("chirp t0(lambda) (and +-3 IRF sigma) on the TA map before the chirp correction, per experiment "
                     "that had one")


_FIGURE_FUNCS = {
    "fig5a_charging.png": fig_charging,
    "fig5b_threshold_vs_doping.png": fig_threshold,
    "fig5c_gain_lifetime.png": fig_lifetime,
    "fig5d_single_wavelength.png": fig_single_wavelength,
    "fig5e_gain_coefficient.png": fig_gain_coefficient,
    "trace.png": fig_trace,
    "rank.png": fig_rank,
    "ppc.png": fig_ppc,
    "residuals.png": fig_residuals,
    "prior_posterior.png": fig_prior_posterior,
    CHIRP_FIGURE: fig_chirp,
}
# figures of one experiment: a fit of several gets one file per experiment (trace, ppc, residuals and the chirp
# already show every experiment in one figure)
PER_EXPERIMENT = ("fig5a_charging.png", "fig5b_threshold_vs_doping.png", "fig5c_gain_lifetime.png",
                  "fig5d_single_wavelength.png", "fig5e_gain_coefficient.png", "rank.png", "prior_posterior.png")


def figure_files(model, name):
    """(file name, experiment index) of every file of figure ``name``: ``name`` itself (experiment None for a figure
    of the whole fit, 0 for a single-experiment fit), or ``stem-EXPERIMENT.png`` per experiment of a fit of several."""
    if name not in PER_EXPERIMENT:
        return [(name, None)]
    if len(model.names) < 2:
        return [(name, 0)]
    slugs = [re.sub(r"[^A-Za-z0-9._-]+", "_", str(n)).strip("._") or "experiment" for n in model.names]
    if len(set(slugs)) < len(slugs):  # names that differ only in characters a file name cannot carry
        slugs = [f"{i}-{s}" for i, s in enumerate(slugs)]
    stem = name.removesuffix(".png")
    return [(f"{stem}-{s}.png", i) for i, s in enumerate(slugs)]
