"""The classic analysis of a loaded experiment, section by section: solution (cross-section, threshold), the
reflection correction's sub-gap residual, charging (Fermi-Dirac), film thresholds, lowest single-wavelength
thresholds, biexciton lifetime, gain lifetimes.  Each section gives rows of classic.csv
(:func:`~bayesgain.classic.dataset.make_row`); :func:`classic_dataset` turns them into the results Dataset."""

from __future__ import annotations

from .. import preprocess as pp
from ..preprocess import GAIN_DELAY_PS
from .charging import fermi_dirac_rows
from .dataset import classic_dataset, make_row
from .kinetics import biexciton_rows, gain_lifetime_rows
from .saturation import film_threshold_rows, solution_rows
from .single_wavelength import lowest_threshold_rows


def classic_analysis(tree, V_C=None, threshold_delays_ps=GAIN_DELAY_PS, biexciton_fluence_indices=None,
                     gain_lifetime_confirm=1, g_min_per_cm=50.0, gain_lifetime_method="crossing"):
    """Run the classic analysis on a loaded experiment; returns a list of rows
    dict(name, value, uncertainty, unit, method, note) (:func:`classic_dataset` makes the Dataset of them).  A
    step that cannot be done gives a row with value NaN and the reason in ``note`` (never a bare NaN).

    ``g_min_per_cm``: gain coefficient of the lowest single-wavelength threshold rows
    (``lowest_threshold_g50_excitons[V=...]``, ``..._photons_cm2``, ``..._nJ_cm2``; the tag is
    ``g{g_min:g}``); None skips them.  ``threshold_delays_ps``: the read-out of the gain thresholds
    (:func:`delay_selection`: one delay, the nearest measured, or a (lo, hi) range averaged); the
    default 5 ps is the paper's, after thermalisation; the method column names the delays used.
    ``biexciton_fluence_indices``: None (default) for :func:`biexciton_lifetime_robust` (fluences
    chosen by <N>, NaN with the reason when not resolved), or indices for the literal nested fits.
    ``gain_lifetime_method``: "crossing" (raw crossing,
    :func:`gain_lifetime`), "fit" (Fig. S28 multi-exponential fit, :func:`gain_lifetime_fit`, rows
    ``gain_lifetime_fit_ps[...]``) or "both"."""
    if gain_lifetime_method not in ("crossing", "fit", "both"):
        raise ValueError(f"gain_lifetime_method must be 'crossing', 'fit' or 'both', got {gain_lifetime_method!r}")
    rows, sigma, cs_sd = [], None, 0.0
    if pp._has(tree, "solution"):
        rows, sigma, cs_sd = solution_rows(tree, threshold_delays_ps)
    if not pp._has(tree, "film/ta"):
        return rows
    corrected = pp.reflection_correct_film(tree)
    rows += subgap_rows(corrected)
    if pp._has(tree, "film/sec"):
        rows += fermi_dirac_rows(tree, V_C)
    if sigma is not None:
        rows += film_threshold_rows(tree, corrected, sigma, threshold_delays_ps)
        if g_min_per_cm is not None:
            rows += lowest_threshold_rows(tree, corrected, sigma, cs_sd, threshold_delays_ps, g_min_per_cm)
    rows += biexciton_rows(tree, corrected, sigma, biexciton_fluence_indices)
    return rows + gain_lifetime_rows(tree, corrected, gain_lifetime_confirm, gain_lifetime_method)


def classic_results(tree, **options):
    """:func:`classic_analysis` as its Dataset (:func:`classic_dataset`)."""
    return classic_dataset(classic_analysis(tree, **options))


def subgap_rows(corrected):
    """Rows ``subgap_residual_OD`` per (potential, fluence): mean |dA| in the sub-gap window after the reflection
    correction (a diagnostic without uncertainty; the value before the correction in the note)."""
    rows = []
    for V in corrected["potential"].values:
        for F in corrected["fluence"].values:
            if "measured" in corrected and not bool(corrected["measured"].sel(potential=V, fluence=F)):
                continue  # a hole in a sparse grid: no file, no row
            rows.append(make_row("subgap_residual_OD", float(corrected["subgap_after"].sel(potential=V, fluence=F)),
                                 float("nan"), "OD", "mean |dA| in the sub-gap window after reflection correction",
                                 "no uncertainty (a diagnostic); before correction: "
                                 f"{float(corrected['subgap_before'].sel(potential=V, fluence=F)):.3g} OD",
                                 potential=V, fluence=F))
    return rows
