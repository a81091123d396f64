"""Charging from SEC: <n_e>_obs(V) = s_SEC <n_e>(V + offset_sweep) with the fractions of eq. S10-S16 (sign-corrected)
under the spec's charging law (:mod:`.charging_laws`); offset_sweep ~ Normal(0, sweep_offset_sd_V) from the
nominal potential scale on which the film TA potentials are set (drift and hysteresis of each sweep; not
centred, so a drift common to all sweeps widens V_1S instead of shifting it)."""

from __future__ import annotations

from ..priors import prior_table
from .base import Component, register


@register
class Charging(Component):
    name = "charging"
    switches = ("charging",)
    switch_docs = {"charging": "SEC band-edge bleach versus potential, every sweep -> V_1S, V_C, sigma_1S"}
    observed = ("charging",)
    data = ("sec_n_e", "sec_point_experiment", "sec_point_potential", "sec_point_sweep")
    order = 20
    # the priors of the parameters this component owns (defaults of every spec; [priors] overrides them); a
    # prior without a condition is used whenever the component is on
    priors = {
        "sec_bleach_scale": prior_table(
            "LogNormal", "1",
            "scale of the SEC <n_e> (window holds 2S tail and background)",
            mu=0.0, sigma=0.1),
        "sec_noise": prior_table(
            "HalfNormal", "electrons/QD",
            "extra scatter of the SEC <n_e> beyond the window SEM",
            sigma=0.1),
    }

    def add(self, ctx):
        import pymc as pm

        from ...physics import charging

        d = ctx.data
        sd_off = float(ctx.options["sweep_offset_sd_V"])
        # each sweep's offset (reference drift, hysteresis) from the nominal potential scale, the scale
        # the film TA potentials are set on.  Not centred: SEC alone cannot tell a drift common to all
        # sweeps from V_1S (its uncertainty belongs in V_1S), and the TA data can.  Centring them put
        # the mean drift of batch B (-0.9 mV) into V_1S and pulled <n_e> at the TA potentials 5 sd off.
        offset = pm.Normal("sweep_offset_V", 0.0, sd_off, dims="sweep")
        e = d["sec_point_experiment"].values
        V = d["sec_point_potential"].values + offset[d["sec_point_sweep"].values]
        f = ctx.fractions(V, e)
        ctx.sec_fractions = f  # the photoluminescence component reads the same sweeps
        scale = ctx.prior("sec_bleach_scale")
        noise = ctx.prior("sec_noise")
        mu = scale[e] * charging.mean_electrons(f)
        ctx.observe("charging", mu, ctx.error_sd(noise[e], "sec_n_e_sem"), d["sec_n_e"].values, "sec_point")
