"""The variables several components share, created first in every build: the physical parameters (per
experiment, partially pooled across experiments when [pooling] names them), the Student-t degrees of freedom,
and the Auger cascade (rate tables, transition tables, Bateman coefficients, the fluence calibration spread)
of the components that count excitons (cross-section, film TA)."""

from __future__ import annotations

import types

import numpy as np

from .base import prior_variable, registered
from .charging_laws import law_for

__all__ = ["PHYSICAL_PARAMETERS", "add_shared", "model_coords"]

PHYSICAL_PARAMETERS = ("cross_section_cm2", "film_cross_section_ratio", "V_1S_V", "V_C_V", "sigma_1S_V", "T_eff_K",
                       "tau_xx_ps", "k_x_per_ns", "trion_rate_factor", "triexciton_rate_factor", "hole_trap_fraction",
                       "pl_yield_1", "pl_yield_2", "reflection_scale", "fluence_log_sd")


def physical(ctx, name, rv_name=None):
    """A physical parameter with dim experiment; partially pooled when [pooling] names it.

    ``rv_name``: the variable's name in the model when it differs from the prior's (reparametrisation).
    """
    import pymc as pm
    import pytensor.tensor as pt

    spec = ctx.spec
    p = spec.priors[name]
    label = rv_name or name
    if name in spec.pooling and ctx.n_exp > 1:
        pool = spec.pooling[name]
        mu = pm.Normal(f"{label}__population", p["mu"], p["sigma"])
        spread = prior_variable(f"{label}__pooling_sd", pool)
        z = pm.Normal(f"{label}__z", 0.0, 1.0, dims="experiment")
        inner = mu + spread * z
        value = pt.exp(inner) if p["dist"] == "LogNormal" else inner
        return pm.Deterministic(label, value, dims="experiment")
    kw = {}
    if name == "V_C_V" and spec.options["charging_energy_transform"] == "softplus":
        from ..transforms import ScaledSoftplus

        kw["default_transform"] = ScaledSoftplus(1e-3)  # volts: linear above a few mV
    return prior_variable(label, p, dims="experiment", **kw)


def fluence_log_sd(ctx):
    """Spread of the per-file log fluence calibrations: ``fluence_log_sd_floor`` plus a variable with the spec's prior.

    Without a floor the centred calibrations form a funnel whenever the true spread is below the precision
    with which the data pin each file's <N> (true fluence = nominal: the data pin the spread near 0 and
    sd and every log c shrink together; measured R-hat 1.08-1.56 and chains 240 nats apart on such an
    experiment).  No pump is reproducible to better than ~1 % per run, so a floor of that order is
    physics, and it keeps the calibrations' conditional scale above their data precision.
    """
    import pymc as pm

    floor = float(ctx.options["fluence_log_sd_floor"])
    if floor <= 0:
        return ctx.prior("fluence_log_sd")
    excess = prior_variable("fluence_log_sd_excess", ctx.spec.priors["fluence_log_sd"], dims="experiment")
    return pm.Deterministic("fluence_log_sd", floor + excess, dims="experiment")


def cascade(ctx):
    """Rates, transition tables and Bateman coefficients of the Auger cascade, per experiment."""
    import pymc as pm
    import pytensor.tensor as pt

    from ...physics import auger, transitions

    P, g_e, g_h, M = ctx.P, ctx.g_e, ctx.g_h, ctx.n_max
    k_xx = pm.Deterministic("k_xx_per_ps", 1.0 / P["tau_xx_ps"], dims="experiment")
    k_x = P["k_x_per_ns"] * 1e-3 if "k_x_per_ns" in P else pt.zeros(ctx.n_exp)
    rates = auger.rate_table(M, g_e, k_xx[:, None, None], k_x[:, None, None])  # (E, S, M)
    if ctx.options["auger"] == "free":
        rates = auger.free_auger_rates(rates, M, g_e, k_x[:, None, None], P["trion_rate_factor"][:, None, None],
                                       P["triexciton_rate_factor"][:, None, None])
    table = transitions.transition_table(M, g_e, g_h)  # (M+1, S)
    emission = transitions.emission_table(M, g_e, g_h)
    occupancy = transitions.occupancy_table(M, g_e)
    charged = transitions.charged_exciton_table(M, g_e, g_h)
    J_sat = max(g_e, g_h)
    # Bateman coefficients once per experiment at the longer truncation, shared by the solution and
    # film cascades (exact: see auger.cascade_absorption); one coefficient graph to compile, not two
    coeff = [auger.bateman_coefficients(rates[k], n_rows=J_sat) for k in range(ctx.n_exp)]
    return types.SimpleNamespace(k_xx=k_xx, k_x=k_x, rates=rates, table=table, emission=emission,
                                 occupancy=occupancy, charged=charged, J_sat=J_sat, coeff=coeff, fl_sd=fluence_log_sd(ctx))


def add_shared(ctx):
    """Physical parameters, V_1S through the half-filling potential, Student-t nu, and the cascade if needed."""
    import pymc as pm

    spec, P = ctx.spec, ctx.P
    ctx.law = law_for(spec)
    for name in spec.priors:
        if name in PHYSICAL_PARAMETERS and name not in ("reflection_scale", "fluence_log_sd", "V_1S_V"):
            P[name] = physical(ctx, name)
    if "k_x_per_ns" in P:  # the lifetime beside the rate: what the readers of a fit (and the paper) quote
        P["tau_x_ps"] = pm.Deterministic("tau_x_ps", 1e3 / P["k_x_per_ns"], dims="experiment")
    if "V_1S_V" in spec.priors:
        # The SEC data pin the half-filling potential V_1S - V_C/2 (g_e = 2: <n_e> = 1 there), not V_1S
        # and V_C apart, and V_C is prior-dominated: sampling (V_1S, V_C) directly gave a curved ridge
        # (bulk ESS ~110 of 1000 draws).  So the V_1S prior is placed on the midpoint and V_1S is derived;
        # with V_C (mV) << the prior width (0.2 V) the implied prior on V_1S is the stated one to < 2 %.
        mid = physical(ctx, "V_1S_V", rv_name="V_half_filling_V")
        half = P["V_C_V"] * (ctx.g_e - 1) / 2.0 if "V_C_V" in P else 0.0
        P["V_1S_V"] = pm.Deterministic("V_1S_V", mid + half, dims="experiment")
    if ctx.options["likelihood"] == "student-t":
        ctx.nu = ctx.prior("student_nu", None)
    if ctx.components["hole_trapping"]:
        ctx.eta = P["hole_trap_fraction"]
    if any(c.needs_cascade for c in registered() if c.is_on(spec)):
        ctx.cascade = cascade(ctx)


def model_coords(spec, data, names):
    """The dims of a model of ``data`` and their coordinates."""
    d = data
    c = {"experiment": list(names)}
    for dim in ("sweep", "ta_potential", "ta_fluence", "sol_fluence"):
        if dim in d.dims:
            c[dim] = np.arange(d.sizes[dim])
    if "ta_point_component" in d:
        comp = d["ta_point_component"].values
        for label in ("gain", "dynamics"):
            if spec.components[label]:
                c[f"{label}_point"] = np.nonzero(comp == label)[0]
    for dim in ("sol_point", "sec_point", "subgap_point"):
        if dim in d.dims:
            c[dim] = np.arange(d.sizes[dim])
    if "ta_file_fluence" in d:  # the film TA files there are (a grid may have holes)
        c["ta_file"] = np.arange(d.sizes["ta_file"])
    elif "ta_potential" in d.dims:  # a fit saved before: every potential x fluence cell is a file
        c["ta_file"] = np.arange(sum(int((d["ta_potential_experiment"] == e).sum()) *
                                     int((d["ta_fluence_experiment"] == e).sum()) for e in range(len(names))))
    c["charge_state"] = np.arange(int(d["experiment_g_e"].values[0]) + 1)
    if spec.options["discrepancy"] != "none" and "ta_potential" in d.dims:
        c["discrepancy_basis"] = np.arange(int(spec.options["discrepancy_basis"]))
    if spec.options["discrepancy"] == "window-tail-basis":
        c["window_tail_time"] = [float(t) for t in spec.options["window_tail_times_ps"]]
    return c
