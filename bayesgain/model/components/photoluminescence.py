"""Photoluminescence from SEC: PL(V)/PL(V_oc) = f_0 + q_1 f_1 + q_2 f_2, the charge fractions of the charging
component's sweeps (same offsets) weighted by the relative quantum yields of charged QDs."""

from __future__ import annotations

from ..priors import prior_table
from .base import Component, register


@register
class Photoluminescence(Component):
    name = "photoluminescence"
    switches = ("photoluminescence",)
    switch_docs = {"photoluminescence": "SEC integrated PL versus potential -> relative quantum yields of charged QDs"}
    default_on = False
    requires = ("charging",)
    requires_why = "it shares the sweeps"
    observed = ("photoluminescence",)
    data = ("sec_pl", "sec_point_experiment")
    order = 30  # after charging: it reads ctx.sec_fractions
    # the priors of the parameters this component owns (defaults of every spec; [priors] overrides them); a
    # prior without a condition is used whenever the component is on
    priors = {
        "pl_noise": prior_table(
            "HalfNormal", "1",
            "scatter of the normalised PL",
            sigma=0.1),
    }

    def add(self, ctx):
        if ctx.g_e != 2:
            raise ValueError("the photoluminescence component is written for g_e = 2")
        f, P = ctx.sec_fractions, ctx.P
        e = ctx.data["sec_point_experiment"].values
        mu_pl = f[:, 0] + P["pl_yield_1"][e] * f[:, 1] + P["pl_yield_2"][e] * f[:, 2]
        ctx.observe("photoluminescence", mu_pl, ctx.prior("pl_noise")[e], ctx.data["sec_pl"].values, "sec_point")
