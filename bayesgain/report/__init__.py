"""The report of a Bayesian fit: CSV tables, a Markdown report and PNG figures (paper Fig. 5 with posterior bands).

:func:`write_report` takes a fitted :class:`~bayesgain.model.core.GainModel` (or one reopened with
``GainModel.load``) and writes, atomically, into ``out_dir``:

* ``summary.csv`` -- ArviZ summary of every physical parameter (mean, sd, 94 % HDI, ESS, R-hat) with units;
* ``thresholds.csv`` -- <N_gain> (excitons/QD) versus <n_e> (101 levels from 0 to g_e): columns
  ``n_e, median, hdi_low, hdi_high``; ``#`` comment lines above the header say what it is and, where
  it applies, ``SYNTHETIC`` and ``NOT CONVERGED`` (read it with ``pandas.read_csv(path, comment="#")``);
* ``thresholds_measured.csv`` -- per film TA potential the measured threshold (window A* at the gain delay
  crossing 0, :mod:`bayesgain.model.measured_thresholds`), the prediction of the same read-out and their
  difference: columns ``potential_V, n_e, measured_median, measured_hdi_low, measured_hdi_high,
  predicted_median, difference_median, difference_hdi_low, difference_hdi_high`` (``#`` comment lines above);
* ``report.md`` -- what was fitted, the convergence verdict and table, parameters with 94 % HDI and
  units, thresholds at the measured potentials, gain lifetimes, lowest single-wavelength thresholds,
  the Bayesian-versus-classic table (when classic rows are given), and links to the figures;
* PNG figures at :data:`DPI` dpi, units on every axis, SYNTHETIC in the title of synthetic data:

  ===============================  ===========================================================
  ``fig5a_charging.png``           <n_e>(V) posterior band with the SEC data points
  ``fig5b_threshold_vs_doping``    <N_gain> versus <n_e> with its band (+ classic estimates)
  ``fig5c_gain_lifetime.png``      gain lifetime versus <N> at several doping levels
  ``fig5d_single_wavelength.png``  single-wavelength threshold spectrum (log axis), g >= 50 cm^-1
  ``fig5e_gain_coefficient.png``   window gain coefficient versus <N> per potential
  ``trace.png`` / ``rank.png``     trace + marginal and rank plots of the physical parameters
  ``ppc.png``                      posterior predictive check of every observed component
  ``prior_posterior.png``          prior versus posterior of every physical parameter
  ``chirp.png``                    chirp t0(lambda) on the uncorrected TA map (only when an experiment had one)
  ===============================  ===========================================================

A fit of several experiments gets the figures of one experiment (Fig. 5a-e, rank, prior versus posterior) once
per experiment, named ``STEM-EXPERIMENT.png`` (e.g. ``fig5b_threshold_vs_doping-film-a.png``) and each linked from
``report.md``; the tables and the report.md sections are of the first experiment.

A figure the model cannot make (e.g. gain lifetimes without a dynamics component) is listed as
skipped with the reason; a figure that fails is listed with its error -- neither stops the report.
A fit that did not converge says so at the top of ``report.md``, in ``thresholds.csv`` and in the
title of every figure, and its thresholds are marked as not final.
"""

from ..classic.dataset import read_classic_csv
from .cache import Skip, _Cache
from .common import DPI, G_MIN_PER_CM, HDI
from .figures import (CHIRP_FIGURE, CHIRP_FIGURE_TEXT, FIGURES, fig_charging, fig_chirp, fig_gain_coefficient,
                      fig_lifetime, fig_ppc, fig_prior_posterior, fig_rank, fig_residuals, fig_single_wavelength,
                      fig_threshold, fig_trace)
from .markdown import _report_text, _section_measured
from .outputs import write_fit_outputs, write_report
from .tables import _measured_csv_text, _threshold_csv_text

__all__ = ["write_report", "write_fit_outputs", "read_classic_csv", "DPI", "HDI", "G_MIN_PER_CM", "FIGURES",
           "CHIRP_FIGURE", "CHIRP_FIGURE_TEXT", "Skip", "fig_charging", "fig_threshold", "fig_lifetime",
           "fig_single_wavelength", "fig_gain_coefficient", "fig_trace", "fig_rank", "fig_ppc", "fig_residuals",
           "fig_prior_posterior", "fig_chirp",
           # the internals the tests reach, importable here as from the single module before
           "_Cache", "_report_text", "_section_measured", "_measured_csv_text", "_threshold_csv_text"]
