"""Gain and dynamics from film TA (the early and the later delays of the same window-averaged A*).

A*(V, F, t) = A_pre,obs(V) + gamma [A_eff (1 - kappa x^4) - A_pre] - beta [occ - occ_pre] - (s_V - 1) S:
preprocessing formed A* = A_0 + Delta A_SEC(V) + Delta A_TA, so the model predicts Delta A_TA (excited minus
pre-pump state of the same charge distribution) and adds back the measured A_pre,obs = A_0 + Delta A_SEC in
the window (SEC-interpolated; its errors are not the charge fractions' to explain).  A_eff(<N>, f(V), t) is
the cascade absorption of transition counting (eq. S6, S17-S22; hole trapping: a fraction eta of the QDs
counted with one hole off the band edge, in chains of their own; option hole_trapping_form = "emission"
keeps the older eta x emission), x = (A_pre - A_eff) / (2 g_e g_h) the bleached fraction (the excited line
shifts by ~x^2 through biexciton binding and its window average drops by kappa x^4; without this term the
synthetic batch A, simulated with a 20 meV shift, gave tau_xx = 328 +- 2 ps against 310 true, and 308 +- 2
ps when simulated without the shift), occ the 1S(e) occupancy <min(N + n, g_e)>/g_e (higher transitions in
the window bleach with it), A_pre and occ_pre their N = 0 values, <N> = sigma r J c_(V,F) with r the
film/solution cross-section ratio, s_V the Delta R scale of the potential (reflection component) and S the
sensitivity of the corrected Delta A to it.  Sampled as gamma_scale + beta_rel (window bleach per electron)
and, with hole trapping, as the emission scale gamma (1 - eta): the combinations the data pin (see
:func:`gamma_scale`).  Option pump_attenuation = "beer-lambert": <N> is each file's front value and the
prediction is averaged over depth, where the pump falls as 10^(-A_pump z) (Gauss-Legendre nodes,
physics.optics.pump_depth_profile).  Options discrepancy = "window-tail" (or "-basis") / "delay-gp" add a tail bleach or a
smooth misfit per file (:mod:`..discrepancy`).
"""

from __future__ import annotations

import math

import types

import numpy as np

from ..priors import prior_table
from .base import Component, prior_variable, register


def gamma_scale(ctx):
    """gamma / (A0_1S / g_e g_h), with its prior from the spec.

    With hole trapping the film TA pins the stimulated-emission scale gamma (1 - eta) tightly and gamma
    itself weakly; sampled as (gamma, eta) the two lie on a thin curved ridge (r = 0.95; R-hat 1.06, bulk
    ESS 49 on batch B).  So the sampled variable is the emission scale: gamma_scale's prior is placed on
    ``gamma_emission_scale`` = gamma (1 - eta) / c, c = exp(E[log(1 - eta)]) under eta's prior, and gamma =
    c x gamma_emission_scale / (1 - eta) keeps the stated median (its prior is a little wider than stated,
    by eta's spread).
    """
    import pymc as pm

    eta, priors = ctx.eta, ctx.spec.priors
    if eta is None:
        return ctx.prior("gamma_scale")
    draws = pm.draw(prior_variable(None, priors["hole_trap_fraction"]), 20000, random_seed=0)
    c = float(np.exp(np.mean(np.log1p(-np.clip(draws, 0.0, 1.0 - 1e-12)))))
    emission = prior_variable("gamma_emission_scale", priors["gamma_scale"], dims="experiment")
    return pm.Deterministic("gamma_scale", c * emission / (1.0 - eta), dims="experiment")


def occupancy_bleach(ctx, gamma_scale):
    """beta / A0_1S, with the spec's prior, sampled centred on -gamma_scale.

    The film TA pins u = gamma_scale + beta_rel, the window bleach per 1S(e) electron relative to A0_1S /
    g_e, far better than either (r(gamma, beta) = -0.98 to -0.999 on batches A and B).  For a Normal or
    Student-t prior of beta the sampled variable is u ~ prior of beta shifted by gamma_scale, the same joint
    prior (unit Jacobian); other priors sample beta itself.
    """
    import pymc as pm

    p = dict(ctx.spec.priors["window_occupancy_bleach_rel"])
    if p["dist"] not in ("Normal", "StudentT"):
        return ctx.prior("window_occupancy_bleach_rel")
    u = prior_variable("window_bleach_per_electron_rel", {**p, "mu": p["mu"] + gamma_scale}, dims="experiment")
    return pm.Deterministic("window_occupancy_bleach_rel", u - gamma_scale, dims="experiment")


def window_tail(ctx):
    """The window tail's terms as ``k -> [(amplitude / A0_1S, decay time ps), ...]`` for experiment k, or None:
    one term with a free time ("window-tail"), or amplitudes on the fixed times window_tail_times_ps
    ("window-tail-basis")."""
    opt = ctx.options["discrepancy"]
    if opt == "window-tail":
        amp, time = ctx.prior("window_tail_amplitude_rel"), ctx.prior("window_tail_time_ps")
        return lambda k: [(amp[k], time[k])]
    if opt == "window-tail-basis":
        amps = ctx.prior("window_tail_basis_amplitudes_rel", dims=("experiment", "window_tail_time"))
        times = [float(t) for t in ctx.options["window_tail_times_ps"]]
        return lambda k: [(amps[k, i], t) for i, t in enumerate(times)]
    return None


def delay_discrepancy(ctx, file_index, file_experiment):
    """Smooth misfit f_file(log t) of every film TA point (see :mod:`..discrepancy`), in OD."""
    import pymc as pm
    import pytensor.tensor as pt

    from ..discrepancy import expquad_sqrt_spectral_density, hsgp_basis

    x = np.log(ctx.data["ta_point_delay"].values)
    phi, sqrt_lam = hsgp_basis(x, ctx.options["discrepancy_basis"])
    amp = ctx.prior("discrepancy_amplitude_rel")
    ell = ctx.prior("discrepancy_lengthscale")
    z = pm.Normal("discrepancy_z", 0.0, 1.0, dims=("ta_file", "discrepancy_basis"))
    fe = file_experiment
    A0 = ctx.A0
    scale = (A0[fe] * amp[fe])[:, None] * expquad_sqrt_spectral_density(sqrt_lam[None, :], ell[fe][:, None], xp=pt)
    return pt.sum(phi * (scale * z)[file_index], axis=1)


@register
class FilmTA(Component):
    name = "film_ta"
    switches = ("gain", "dynamics")
    switch_docs = {"gain": "film A* at early delays (default 2-8 ps) for every potential x fluence -> gain threshold",
                   "dynamics": "film A*(t) at later delays for every potential x fluence -> Auger rates"}
    observed = ("gain", "dynamics")
    data = ("ta_A", "ta_point_experiment", "ta_point_delay", "ta_point_component", "ta_potential_V",
            "ta_potential_experiment", "ta_potential_A_pre_OD", "ta_fluence_nominal_photons_cm2")
    needs_cascade = True
    order = 40
    # the priors of the parameters this component owns (defaults of every spec; [priors] overrides them); a
    # prior without a condition is used whenever the component is on
    priors = {
        "gamma_scale": prior_table(
            "LogNormal", "1",
            "band-edge OD scale gamma / (A0_1S / g_e g_h) of the film",
            mu=0.0, sigma=0.3),
        # a Normal, not a HalfNormal: photo-induced absorption in the window can outweigh the 2S-tail bleach, and a
        # boundary at 0 made b, beta and gamma mix badly (bulk ESS 11 of 800 draws on batch A with HalfNormal)
        "window_occupancy_bleach_rel": prior_table(
            "Normal", "A0_1S",
            "bleach (> 0) or induced absorption (< 0) of other transitions in the window per unit 1S(e) "
            "occupancy",
            mu=0.0, sigma=0.5),
        "window_shift_loss": prior_table(
            "HalfNormal", "1",
            "loss kappa of the window-averaged excited band edge when it shifts (biexciton binding): gamma "
            "A_eff (1 - kappa x^4), x the bleached fraction",
            sigma=0.3),
        "ta_noise_rel": prior_table(
            "HalfNormal", "A0_1S",
            "extra scatter of window-averaged film A* beyond the SEM",
            sigma=0.05),
        "discrepancy_amplitude_rel": prior_table(
            "HalfNormal", "A0_1S",
            "typical size of the smooth film TA misfit per file (model discrepancy GP over log delay)",
            "discrepancy=delay-gp", sigma=0.02),
        "discrepancy_lengthscale": prior_table(
            "LogNormal", "ln(ps)",
            "length scale of the discrepancy GP in log delay (1 = a factor e in delay)",
            "discrepancy=delay-gp", mu=math.log(1.5), sigma=0.3),
        "window_tail_amplitude_rel": prior_table(
            "Normal", "A0_1S",
            "window bleach (> 0) or absorption (< 0) per photo-excited QD that decays on its own clock, at "
            "the earliest film TA delay fitted (discrepancy = window-tail)",
            "discrepancy=window-tail", mu=0.0, sigma=0.1),
        "window_tail_basis_amplitudes_rel": prior_table(
            "Normal", "A0_1S",
            "window bleach (> 0) or absorption (< 0) per photo-excited QD decaying with each of the fixed times "
            "window_tail_times_ps, at the earliest film TA delay fitted (discrepancy = window-tail-basis)",
            "discrepancy=window-tail-basis", mu=0.0, sigma=0.1),
        "window_tail_time_ps": prior_table(
            "LogNormal", "ps",
            "decay time of the window tail (discrepancy = window-tail)",
            "discrepancy=window-tail", mu=math.log(30.0), sigma=1.5),
    }

    def parameters(self, ctx):
        import pymc as pm

        scale = gamma_scale(ctx)
        A0 = ctx.A0
        ctx.film = types.SimpleNamespace(
            gamma=pm.Deterministic("gamma_OD", A0 / ctx.gg * scale, dims="experiment"),
            beta=pm.Deterministic("window_occupancy_bleach_OD", A0 * occupancy_bleach(ctx, scale), dims="experiment"),
            shift_loss=ctx.prior("window_shift_loss"), noise=ctx.prior("ta_noise_rel"),
            sigma=pm.Deterministic("film_cross_section_cm2", ctx.P["cross_section_cm2"] *
                                   ctx.P["film_cross_section_ratio"], dims="experiment"))

    def add(self, ctx):
        import pymc as pm
        import pytensor.tensor as pt

        d, opt, film, lay = ctx.data, ctx.options, ctx.film, ctx.layout
        f_pot = ctx.fractions(d["ta_potential_V"].values, d["ta_potential_experiment"].values)  # (ta_potential, S)
        pm.Deterministic("ta_charge_fractions", f_pot, dims=("ta_potential", "charge_state"))
        e = d["ta_point_experiment"].values
        fe = lay.file_experiment
        J_file = d["ta_fluence_nominal_photons_cm2"].values[lay.file_fluence]
        # <N> of every film TA file: film cross-section x nominal fluence x latent calibration
        log_cal_film = ctx.log_calibration("fluence_log_cal_film", "ta_file", ctx.cascade.fl_sd[fe])
        # with pump_attenuation = "beer-lambert" this is the front value: <N> falls through the film as
        # 10^(-OD_pump z) and every film TA prediction is the depth average over the nodes r_k (weights w_k)
        file_mean = pm.Deterministic("ta_mean_excitons", film.sigma[fe] * J_file * pt.exp(log_cal_film), dims="ta_file")
        depth = None
        if opt["pump_attenuation"] == "beer-lambert":
            from ...physics.optics import pump_depth_node_count, pump_depth_profile

            od = np.nan_to_num(d["experiment_film_pump_OD"].values, nan=0.0)  # NaN: an experiment without film TA
            depth = pump_depth_profile(od, pump_depth_node_count(od))  # r (experiment, K), w (K,)
            pm.Deterministic("ta_mean_excitons_depth_average",
                             file_mean * pt.sum(depth[0][fe] * depth[1], axis=-1), dims="ta_file")
        tail = window_tail(ctx)
        mu = pt.concatenate([self._experiment_mean(ctx, k, np.nonzero(e == k)[0], f_pot, file_mean, depth, tail)
                             for k in range(ctx.n_exp)])
        if ctx.components["reflection"]:
            mu = mu - (ctx.reflection_scale[lay.ta_potential_index] - 1.0) * d["ta_reflection_sensitivity"].values
        # the physics' prediction and the error, kept for the residual checks (bayesgain.model.checks)
        ctx.film_mean_physics = mu
        if opt["discrepancy"] == "delay-gp":
            mu = mu + delay_discrepancy(ctx, lay.file_index, fe)
        sd = ctx.error_sd(ctx.A0[e] * film.noise[e], "ta_A_sem")
        ctx.film_sd = sd
        comp_label = d["ta_point_component"].values
        for label in self.observed_names(ctx.spec):
            idx = np.nonzero(comp_label == label)[0]
            ctx.observe(label, mu[idx], sd[idx], d["ta_A"].values[idx], f"{label}_point")

    @staticmethod
    def _experiment_mean(ctx, k, sel, f_pot, file_mean, depth, tail):
        """Predicted A* of the film TA points ``sel`` of experiment ``k``: the cascade once per file on the
        experiment's delays (all its files share them), then gathered per point."""
        import pytensor.tensor as pt

        from ...physics import optics

        d, film, lay, A0 = ctx.data, ctx.film, ctx.layout, ctx.A0
        files, f_loc = np.unique(lay.file_index[sel], return_inverse=True)
        delays, t_loc = np.unique(d["ta_point_delay"].values[sel], return_inverse=True)
        pot_of_file = lay.ta_potential_index[sel][np.unique(f_loc, return_index=True)[1]]
        f_files = f_pot[pot_of_file]
        N_files = file_mean[files]
        if depth is not None:  # every file once per depth node (file-major), averaged back below
            K = int(depth[1].type.shape[0])
            N_files = (N_files[:, None] * depth[0][k][None, :]).reshape((-1,))
            f_files = pt.repeat(f_files, K, axis=0)
        A_eff, occ = FilmTA._cascade(ctx, k, N_files, f_files, delays)
        table, occupancy = ctx.cascade.table, ctx.cascade.occupancy
        # bleached fraction x of the band edge; the excited line shifts (biexciton binding) by ~x^2 and
        # its window average drops by ~shift^2: gamma A_eff (1 - kappa x^4)
        A_pre = pt.sum(f_files * table[0], axis=-1)[:, None]
        occ_pre = pt.sum(f_files * occupancy[0], axis=-1)[:, None]
        # the data are A_pre(measured) + Delta A_TA: the model predicts Delta A_TA, the excited minus
        # the pre-pump state of the same charge distribution (b cancels), and the measured A_pre of
        # the file's potential is added back.  Modelling A* whole attributed the SEC-interpolated
        # A_pre's errors (drift, hysteresis, 20 mV grid: up to 0.009 e-/QD on batch B) to the
        # charge fractions and pulled sigma_1S 1 % low.
        dA = optics.window_absorption_change(A_eff, occ, A_pre, occ_pre, film.gamma[k], film.shift_loss[k],
                                             film.beta[k], ctx.g_e, ctx.g_h)
        for amplitude, time in ([] if tail is None else tail(k)):
            # amplitude at the earliest delay fitted: a tail faster than the data's delays then has
            # no free amplitude (measured: divergences at tau < 1 ps with the t = 0 amplitude)
            dA = dA - optics.window_tail_bleach(N_files[:, None], delays[None, :], float(delays.min()),
                                                A0[k] * amplitude, time, pt.exp)
        if depth is not None:
            dA = pt.sum(dA.reshape((files.size, K, delays.size)) * depth[1][None, :, None], axis=1)
        a_pre = d["ta_potential_A_pre_OD"].values[pot_of_file][:, None]
        return (a_pre + dA)[f_loc, t_loc]

    @staticmethod
    def _cascade(ctx, k, N_files, f_files, delays):
        """Absorption and 1S(e) occupancy (file, delay): two read-outs of the same populations, one cascade."""
        import pytensor.tensor as pt

        from ...physics import auger, transitions

        cas, Mf, g_e, g_h, eta = ctx.cascade, ctx.n_max_film, ctx.g_e, ctx.g_h, ctx.eta
        emitting = eta is not None and ctx.options["hole_trapping_form"] == "emission"
        tab = transitions.effective_table(cas.table[: Mf + 1], cas.emission[: Mf + 1], eta[k] if emitting else None,
                                          cas.charged[: Mf + 1],
                                          None if ctx.charged_emission is None else ctx.charged_emission[k])
        tabs = pt.stack([tab, cas.occupancy[: Mf + 1]])
        if eta is not None and ctx.options["hole_trapping_form"] == "counting":
            # trapped-hole QDs as their own chains (transition counting with the hole off the band edge)
            fx, rx, tx = auger.hole_trap_chains(
                f_files, eta[k], cas.rates[k][:, :Mf], auger.trapped_hole_rate_table(Mf, g_e, cas.k_xx[k], cas.k_x[k]),
                tabs, pt.stack([transitions.trapped_hole_transition_table(Mf, g_e, g_h), cas.occupancy[: Mf + 1]]))
            both = auger.cascade_absorption(N_files, fx, delays, rx, tx, max(g_e, g_h + 1))
        else:
            both = auger.cascade_absorption(N_files, f_files, delays, cas.rates[k][:, :Mf], tabs, cas.J_sat,
                                            coefficients=cas.coeff[k])
        return both[:, 0], both[:, 1]
