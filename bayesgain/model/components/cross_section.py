"""Cross-section from solution TA: Delta A_sol(F, t) = gamma_sol [A_ens(<N>, neutral, t) - g_e g_h] at 1-3 ns with
<N> = sigma J' c_F (J' depth-averaged nominal fluence, c_F a latent calibration factor per file,
log c_F ~ Normal(0, fluence_log_sd)).  The Auger cascade (not only eq. S34's 1 - e^{-<N>}) is used, so
biexcitons still alive at 1 ns do not bias sigma."""

from __future__ import annotations

import numpy as np

from ..priors import prior_table
from .base import Component, register


@register
class CrossSection(Component):
    name = "cross_section"
    switches = ("cross_section",)
    switch_docs = {"cross_section": "solution bleach at 1-3 ns versus depth-averaged fluence -> 400 nm cross-section"}
    observed = ("cross_section",)
    data = ("sol_dA", "sol_point_experiment", "sol_point_fluence", "sol_point_delay", "sol_fluence_eff_photons_cm2",
            "sol_fluence_experiment", "experiment_solution_A0_1S_OD")
    needs_cascade = True
    order = 10
    # the priors of the parameters this component owns (defaults of every spec; [priors] overrides them); a
    # prior without a condition is used whenever the component is on
    priors = {
        "solution_gamma_scale": prior_table(
            "LogNormal", "1",
            "band-edge OD scale of the solution / (A0_1S / g_e g_h)",
            mu=0.0, sigma=0.3),
        "solution_noise_rel": prior_table(
            "HalfNormal", "A0_1S",
            "extra scatter of the solution bleach (solution A0 units)",
            sigma=0.05),
    }

    def add(self, ctx):
        import pytensor.tensor as pt

        d, cas = ctx.data, ctx.cascade
        log_cal_sol = ctx.log_calibration("fluence_log_cal_solution", "sol_fluence",
                                          cas.fl_sd[d["sol_fluence_experiment"].values])
        gamma_sol = d["experiment_solution_A0_1S_OD"].values / ctx.gg * ctx.prior("solution_gamma_scale")
        sol_noise = ctx.prior("solution_noise_rel")
        e = d["sol_point_experiment"].values
        fi = d["sol_point_fluence"].values
        J_sol = np.zeros(d.sizes["sol_fluence"])
        J_sol[fi] = d["sol_fluence_eff_photons_cm2"].values
        mus = []
        for k in range(ctx.n_exp):
            # the cascade is evaluated once per fluence on the shared delays, then gathered
            sel = np.nonzero(e == k)[0]
            files, f_loc = np.unique(fi[sel], return_inverse=True)
            delays, t_loc = np.unique(d["sol_point_delay"].values[sel], return_inverse=True)
            mean_f = ctx.P["cross_section_cm2"][k] * J_sol[files] * pt.exp(log_cal_sol[files])
            A = self._absorption(ctx, k, mean_f, files.size, delays)
            mus.append(gamma_sol[k] * (A[f_loc, t_loc] - ctx.gg))
        mu = pt.concatenate(mus)
        sd = ctx.error_sd(d["experiment_solution_A0_1S_OD"].values[e] * sol_noise[e], "sol_dA_sem")
        ctx.observe("cross_section", mu, sd, d["sol_dA"].values, "sol_point")

    @staticmethod
    def _absorption(ctx, k, mean_f, n_files, delays):
        """Cascade absorption (file, delay) of the neutral dots of experiment ``k`` after a pump of <N> ``mean_f``."""
        from ...physics import auger, transitions

        cas, g_e, g_h, Ms = ctx.cascade, ctx.g_e, ctx.g_h, ctx.n_max_solution
        f_sol = np.tile(np.eye(ctx.S)[0], (n_files, 1))
        # the dots in solution trap holes as in the film (the simulator's batch B does: without this
        # the late-delay solution bleach pulled the cross-section 8 % and tau_x 2x low)
        eta_sol = ctx.eta[k] if ctx.eta is not None else None
        table, rates = cas.table[: Ms + 1], cas.rates[k][:, :Ms]
        if eta_sol is not None and ctx.options["hole_trapping_form"] == "counting":
            fx, rx, tx = auger.hole_trap_chains(
                f_sol, eta_sol, rates, auger.trapped_hole_rate_table(Ms, g_e, cas.k_xx[k], cas.k_x[k]),
                table, transitions.trapped_hole_transition_table(Ms, g_e, g_h))
            return auger.cascade_absorption(mean_f, fx, delays, rx, tx, max(g_e, g_h + 1))
        tab = transitions.effective_table(table, cas.emission[: Ms + 1], eta_sol)
        return auger.cascade_absorption(mean_f, f_sol, delays, rates, tab, cas.J_sat, coefficients=cas.coeff[k])
