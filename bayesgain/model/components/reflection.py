"""Reflection from sub-gap TR: the corrected sub-gap Delta A = -(s_V - 1) S_subgap + noise (the true Delta A is ~0
there), with s_V the Delta R scale of each film TA potential (read by the film TA component too)."""

from __future__ import annotations

from ..layout import index_within_experiment
from ..priors import prior_table
from .base import Component, register


@register
class Reflection(Component):
    name = "reflection"
    switches = ("reflection",)
    switch_docs = {"reflection": "Delta R scale per potential, informed by the sub-gap region where the true Delta A is zero"}
    requires = ("gain", "dynamics")
    observed = ("reflection",)
    data = ("subgap_dA", "subgap_point_experiment", "subgap_point_potential", "subgap_reflection_sensitivity",
            "ta_potential_V", "ta_potential_experiment")
    order = 50
    # the priors of the parameters this component owns (defaults of every spec; [priors] overrides them); a
    # prior without a condition is used whenever the component is on
    priors = {
        "subgap_noise_rel": prior_table(
            "HalfNormal", "A0_1S",
            "scatter of the corrected sub-gap Delta A",
            sigma=0.05),
    }

    def parameters(self, ctx):
        ctx.reflection_scale = ctx.prior("reflection_scale", dims="ta_potential")
        ctx.subgap_noise = ctx.prior("subgap_noise_rel")

    def add(self, ctx):
        d = ctx.data
        e = d["subgap_point_experiment"].values
        pot_sub = index_within_experiment(d["subgap_point_potential"].values, d["ta_potential_V"].values, e,
                                          d["ta_potential_experiment"].values)
        mu = -(ctx.reflection_scale[pot_sub] - 1.0) * d["subgap_reflection_sensitivity"].values
        ctx.observe("reflection", mu, ctx.error_sd(ctx.A0[e] * ctx.subgap_noise[e], "subgap_dA_sem"),
                    d["subgap_dA"].values, "subgap_point")
