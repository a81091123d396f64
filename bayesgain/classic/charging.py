"""Charging of the film: Fermi-Dirac fits (Gaussian level disorder, SI eq. S10-S16) of <n_e>(V) from the SEC 1S
bleach, as rows of classic.csv: V_1S, sigma_1S, V_C, the effective-temperature variant, and the same fit of
<n_e>(V) from Gaussian fits of the bleach (``[sec=gaussian]``).  The fits themselves live in
:mod:`bayesgain.fitting`, shared with the model's sizing."""

from __future__ import annotations

import numpy as np

from .. import preprocess as pp
from ..fitting import V_C_BOUNDS_V, fit_fermi_dirac, fit_fermi_dirac_effective_temperature
from .dataset import make_row


def fermi_dirac_rows(tree, V_C):
    """Rows ``V_1S_V``, ``sigma_1S_V``, ``V_C_V`` (``V_C`` None: free), ``T_eff_K`` from the integrated SEC
    bleach, then :func:`_fermi_dirac_gaussian_rows`; a failed fit gives a NaN row (``V_1S_V``, or ``T_eff_K``
    for the effective-temperature variant) with the reason."""
    try:
        ne = pp.sec_electrons(tree)["n_e"]
        Vs = np.broadcast_to(ne["potential"].values, ne.shape).ravel()
        fd = fit_fermi_dirac(Vs, ne.values.ravel(), V_C=V_C, temperature_K=float(tree.attrs["temperature_K"]),
                             g_e=int(tree.attrs.get("g_e", 2)))
    except ValueError as err:
        failed = make_row("V_1S_V", np.nan, np.nan, "V", "Fermi-Dirac fit", f"failed: {err}")
        return [failed] + _fermi_dirac_gaussian_rows(tree, V_C)
    how = "least-squares Fermi-Dirac fit with Gaussian disorder of <n_e>(V) from the SEC 1S bleach (all sweeps)"
    rows = [make_row("V_1S_V", *fd["V_1S"], "V", how), make_row("sigma_1S_V", *fd["sigma_1S"], "V", how),
            make_row("V_C_V", *fd["V_C"], "V", how, _charging_energy_note(fd, V_C))]
    how = "Fermi-Dirac fit without disorder, temperature free (the paper's effective-temperature variant)"
    try:
        te = fit_fermi_dirac_effective_temperature(Vs, ne.values.ravel(), V_C=0.0 if V_C is None else V_C,
                                                   g_e=int(tree.attrs.get("g_e", 2)))
        rows.append(make_row("T_eff_K", *te["T_eff_K"], "K", how, f"V_1S = {te['V_1S'][0]:.4f} V"))
    except ValueError as err:
        rows.append(make_row("T_eff_K", np.nan, np.nan, "K", how, f"failed: {err}"))
    return rows + _fermi_dirac_gaussian_rows(tree, V_C)


def _charging_energy_note(fd, V_C):
    """Note of the V_C row: fixed, or free with its bound and its correlation with sigma_1S."""
    if V_C is not None:
        return "fixed"
    lo, hi = V_C_BOUNDS_V
    v_lo, v_hi = fd["V_C_interval"]
    note = (f"free in [{lo * 1e3:g}, {hi * 1e3:g}] mV; sd = half the profile 68 % interval "
            f"{v_lo * 1e3:.3g}-{v_hi * 1e3:.3g} mV")
    if any(fd["V_C_interval_open"]):
        note += " (reaches a bound: V_C weakly identified, the data pin ~sigma_1S^2 + kT V_C)"
    if fd["V_C_at_bound"]:
        note += "; best fit AT THE BOUND"
    return note


def _fermi_dirac_gaussian_rows(tree, V_C):
    """Fermi-Dirac rows from <n_e>(V) by Gaussian fits of the 1S bleach (``sec_electrons(method=
    "gaussian")``), named ``..._V[sec=gaussian]``; a failure gives a NaN row with the reason."""
    how = ("least-squares Fermi-Dirac fit with Gaussian disorder of <n_e>(V) from Gaussian fits of the SEC 1S "
           "bleach (line shape fixed from the A_0 fit; all sweeps)")
    try:
        ne = pp.sec_electrons(tree, method="gaussian")["n_e"]
        Vs = np.broadcast_to(ne["potential"].values, ne.shape)
        fd = fit_fermi_dirac(Vs.ravel(), ne.values.ravel(), V_C=V_C, temperature_K=float(tree.attrs["temperature_K"]),
                             g_e=int(tree.attrs.get("g_e", 2)))
    except ValueError as err:
        return [make_row("V_1S_V[sec=gaussian]", np.nan, np.nan, "V", how, f"failed: {err}")]
    return [make_row("V_1S_V[sec=gaussian]", *fd["V_1S"], "V", how),
            make_row("sigma_1S_V[sec=gaussian]", *fd["sigma_1S"], "V", how)]
