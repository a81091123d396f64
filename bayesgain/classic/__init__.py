"""Classic analysis: the paper's own fitting methods, each returning a value and its uncertainty.

These are the baselines the Bayesian models are compared with.  The least-squares helpers (saturation,
cross-section, Fermi-Dirac fits) live in :mod:`bayesgain.fitting`, shared with the model's sizing, and the
read-out delays in :mod:`bayesgain.preprocess`; both are re-exported here.  One module per idea:

* :mod:`.saturation` -- :func:`cross_section_from_tree` (SI eq. S34: |Delta A| = a (1 - exp(-sigma J')) of the
  1-3 ns solution bleach versus depth-averaged fluence); :func:`threshold_from_bleach` /
  :func:`threshold_at_level`, the heuristic |Delta A_avg| = A (1 - exp(-B <N>)) solved for the absorption
  left before the pump (SI "Error calculations"; the uncertainty is the delta-method *variance* g^T Sigma g,
  printed as if it were a standard deviation: its square root is returned); :func:`film_thresholds`,
  :func:`solution_threshold`.
* :mod:`.charging` -- Fermi-Dirac fits of <n_e>(V) with Gaussian level disorder (:func:`fit_fermi_dirac`).
* :mod:`.kinetics` -- :func:`nested_exponential_fits` / :func:`biexciton_lifetime` (SI eq. S35: the lowest
  fluence fitted with one exponential plus a background, its rate fixed for the next fit),
  :func:`biexciton_lifetime_robust`; :func:`gain_lifetime` (first delay at which the window-averaged A*
  returns to >= 0) and :func:`gain_lifetime_fit` (Fig. S28: zero crossing of a multi-exponential fit).
* :mod:`.single_wavelength` -- :func:`single_wavelength_thresholds` / :func:`lowest_gain_threshold`: the same
  heuristic fit at every probe wavelength, solved for A*(lambda) = -g_min d / ln10 (main text Fig. 5d-f).
* :mod:`.analysis` -- :func:`classic_analysis` runs every section on a loaded experiment (rows of classic.csv).
* :mod:`.dataset` -- the results as an :class:`xarray.Dataset` (:func:`classic_dataset`: variables on
  ``potential`` / ``fluence`` coordinates, ``<name>_uncertainty`` and ``<name>_note`` beside each);
  classic.csv written from it (:func:`write_classic_csv`) and read back into it (:func:`read_classic_csv`).
* :mod:`.figures` -- PNG figures of the methods (imported on its own: it loads matplotlib).

Degenerate inputs (too few points, fits that do not converge, thresholds not reached) raise
ValueError with a message; :func:`classic_analysis` turns those into rows with ``value`` NaN and the
message in ``note`` -- a NaN never appears without a note.
"""

from __future__ import annotations

from ..fitting import (V_C_BOUNDS_V, fit_cross_section, fit_fermi_dirac, fit_fermi_dirac_effective_temperature,
                       fit_saturation, fit_saturation_many)
from ..preprocess import GAIN_DELAY_PS, SPECTRAL_GAIN_DELAYS_PS, delay_selection
from .analysis import classic_analysis, classic_results
from .dataset import classic_dataset, classic_rows, read_classic_csv, variable_rows, write_classic_csv
from .kinetics import (biexciton_lifetime, biexciton_lifetime_from_traces, biexciton_lifetime_robust, gain_lifetime,
                       gain_lifetime_fit, gain_lifetime_with_uncertainty, nested_exponential_fits)
from .saturation import (ThresholdNotReached, cross_section_from_tree, film_thresholds,
                         solution_threshold, threshold_at_level, threshold_from_bleach)
from .single_wavelength import lowest_gain_threshold, single_wavelength_thresholds

__all__ = [
    "ThresholdNotReached",
    "GAIN_DELAY_PS",
    "SPECTRAL_GAIN_DELAYS_PS",
    "delay_selection",
    "fit_saturation",
    "fit_cross_section",
    "cross_section_from_tree",
    "threshold_from_bleach",
    "film_thresholds",
    "solution_threshold",
    "fit_fermi_dirac",
    "V_C_BOUNDS_V",
    "fit_fermi_dirac_effective_temperature",
    "nested_exponential_fits",
    "biexciton_lifetime",
    "biexciton_lifetime_robust",
    "biexciton_lifetime_from_traces",
    "gain_lifetime",
    "gain_lifetime_with_uncertainty",
    "classic_analysis",
    "classic_results",
    "classic_dataset",
    "classic_rows",
    "variable_rows",
    "write_classic_csv",
    "read_classic_csv",
    "threshold_at_level",
    "fit_saturation_many",
    "single_wavelength_thresholds",
    "lowest_gain_threshold",
    "gain_lifetime_fit",
]
