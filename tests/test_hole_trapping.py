"""Hole trapping by transition counting: a trapped 1S hole restores its absorption, removes its emission and
takes no part in band-edge Auger events.  Against plain loops and an ODE (tests/reference.py), gradients by
finite differences, and the simulator's own implementation (bayesgain.sim_physics)."""

import numpy as np
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

from bayesgain import sim_physics as sp
from bayesgain.physics import auger, transitions
from bayesgain.physics.api import numpy_mode  # the Python VM: compiled in a second, the same graph

from . import reference as ref


@pytest.mark.parametrize("g_e,g_h", [(2, 4), (8, 8), (2, 2)])
def test_trapped_table_matches_plain_loop(g_e, g_h):
    M = 3 * max(g_e, g_h)
    got = transitions.trapped_hole_transition_table(M, g_e, g_h).eval()
    want = [[ref.band_edge_trapped(N, n, g_e, g_h) for n in range(g_e + 1)] for N in range(M + 1)]
    np.testing.assert_array_equal(got, want)
    # no hole to trap without an exciton; saturated one exciton later than without trapping
    np.testing.assert_array_equal(got[0], transitions.transition_table(0, g_e, g_h).eval()[0])
    J = max(g_e, g_h + 1)
    assert np.all(got[J:] == got[J])


def test_trapped_hole_restores_absorption_not_only_emission():
    # one exciton in a neutral QD: A* = 3 x 1 - 1 x 1 = 2; with its hole trapped 4 x 1 - 0 = 4.  The old form
    # (emission removed, A + eta x emission) gives 3 for eta = 1: it misses the hole's restored absorption
    assert transitions.band_edge_absorption_trapped_hole(1, 0).eval() == 4
    assert transitions.band_edge_absorption(1, 0).eval() == 2


def test_trapped_rates_match_plain_loop():
    k_xx, k_x = 1 / 310.0, 1 / 20000.0
    got = auger.trapped_hole_rate_table(12, 2, k_xx, k_x).eval()
    want = [[ref.rate_trapped(N, n, k_xx, k_x) for N in range(1, 13)] for n in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert got[0, 0] == pytest.approx(k_x)  # a trapped single exciton cannot Auger-decay
    assert got[0, 1] == pytest.approx(k_xx / 4 + 2 * k_x)  # trapped biexciton: 2 of the 8 pathways


@pytest.mark.parametrize("eta", [0.0, 0.3, 1.0])
def test_trapped_cascade_matches_ode(eta):
    delays = np.array([0.0, 2.0, 30.0, 300.0, 3000.0])
    f = np.array([0.3, 0.5, 0.2])
    k_xx, k_x, M = 1 / 310.0, 1 / 20000.0, 30
    fx, rates, table = auger.hole_trap_chains(f, eta, auger.rate_table(M, 2, k_xx, k_x),
                                              auger.trapped_hole_rate_table(M, 2, k_xx, k_x),
                                              transitions.transition_table(M, 2, 4),
                                              transitions.trapped_hole_transition_table(M, 2, 4))
    for mean in (0.7, 3.0):
        got = auger.cascade_absorption(mean, fx, delays, rates, table, n_saturated=5).eval(mode=numpy_mode())
        want = ref.cascade_ode(mean, f, delays, k_xx, k_x, hole_trap=eta, n_max=40)
        np.testing.assert_allclose(got, want, atol=1e-8)


def test_grad_trapped_cascade():
    delays = np.array([0.0, 3.0, 50.0, 400.0])
    M = 30

    def model(tau_xx_ns, eta, mean, logits):
        k_xx = 1e-3 / tau_xx_ns
        fx, rates, table = auger.hole_trap_chains(pt.special.softmax(logits, axis=-1), eta,
                                                  auger.rate_table(M, 2, k_xx, 5e-5),
                                                  auger.trapped_hole_rate_table(M, 2, k_xx, 5e-5),
                                                  transitions.transition_table(M, 2, 4),
                                                  transitions.trapped_hole_transition_table(M, 2, 4))
        return auger.cascade_absorption(mean, fx, delays, rates, table, n_saturated=5)

    verify_grad(model, [np.array(0.31), np.array(0.35), np.array([0.8, 4.0]), np.array([0.1, 0.0, -0.3])],
                rng=np.random.default_rng(7), abs_tol=1e-6, rel_tol=1e-5, eps=1e-7, mode=numpy_mode())


@pytest.mark.parametrize("eta", [0.0, 0.4])
def test_simulator_trapping_agrees_with_physics(eta):
    delays = np.array([0.0, 5.0, 100.0, 2000.0])
    f = np.array([[0.2, 0.6, 0.2], [1.0, 0.0, 0.0]])
    means = np.array([1.2, 4.0])
    k_xx, k_x, M = 1 / 310.0, 1 / 20000.0, 40
    got = sp.ensemble_observables(means, f, delays, k_xx, k_x, hole_trap_fraction=eta)["A"]
    fx, rates, table = auger.hole_trap_chains(f, eta, auger.rate_table(M, 2, k_xx, k_x),
                                              auger.trapped_hole_rate_table(M, 2, k_xx, k_x),
                                              transitions.transition_table(M, 2, 4),
                                              transitions.trapped_hole_transition_table(M, 2, 4))
    want = auger.cascade_absorption(means, fx, delays, rates, table, n_saturated=5).eval()
    np.testing.assert_allclose(got, want, atol=1e-8)


def test_quantities_cascade_and_threshold_follow_the_counting_form():
    from scipy import optimize

    from bayesgain.model import quantities as q

    delays = np.array([0.0, 5.0, 100.0])
    f = np.array([0.2, 0.5, 0.3])
    fn = q._cascade_draw_fn(2, 4, 30, hole_trapping="counting")
    got = fn(1 / 310.0, 1 / 2e4, 1.0, 1.0, 0.3, 0.0, np.array([1.0, 3.0]), np.array([f, f]), delays)
    for row, mean in zip(got, (1.0, 3.0)):
        np.testing.assert_allclose(row, ref.cascade_ode(mean, f, delays, 1 / 310.0, 1 / 2e4, hole_trap=0.3), atol=1e-8)

    def plain(m, eta=0.3):
        return sum(ref.poisson(N, m) * ((1 - eta) * ref.band_edge(N, 0) + eta * ref.band_edge_trapped(N, 0))
                   for N in range(60))

    want = optimize.brentq(plain, 0.1, 5.0, xtol=1e-12)
    got_thr = q._solve_on_table(np.array([1.0, 0.0, 0.0]), 2, 4, np.array(0.3), hole_trapping="counting")
    assert got_thr == pytest.approx(want, abs=2e-3)
    # the older form gives a different threshold (emission lost only): 1.79 against 1.66 here
    assert q._solve_on_table(np.array([1.0, 0.0, 0.0]), 2, 4, np.array(0.3), hole_trapping="emission") > want + 0.1


def _model_cascade(batch_a, form):
    """The film TA cascade absorption A_eff inside ``GainModel.build`` at one parameter point (hole-trap fraction
    0.3, no shift loss), read back from the model's mean, with that point's <N>, fractions and rates."""
    import tomllib

    import pytensor

    from bayesgain.model.core import GainModel
    from bayesgain.model.spec import load_spec, spec_from_dict
    from bayesgain.physics.api import numpy_mode

    d = tomllib.loads(load_spec("joint-hole-trapping").to_toml())
    d["components"].update(cross_section=False, reflection=False)
    d["options"]["hole_trapping_form"] = form
    drop = ("solution_gamma_scale", "solution_noise_rel", "reflection_scale", "subgap_noise_rel")
    d["priors"] = {k: v for k, v in d["priors"].items() if k not in drop}
    gm = GainModel(spec_from_dict(d), batch_a)
    model = gm.build()
    point = model.initial_point()
    free = model.free_RVs
    values = []
    for rv in free:
        tr = model.rvs_to_transforms.get(rv)
        x = point[model.rvs_to_values[rv].name]
        values.append(np.asarray(tr.backward(x, *rv.owner.inputs).eval(mode=numpy_mode()) if tr is not None else x,
                                 dtype=rv.dtype))
        if rv.name in ("hole_trap_fraction", "window_shift_loss"):
            values[-1] = np.full_like(values[-1], 0.3 if rv.name == "hole_trap_fraction" else 0.0)
    outs = [gm.film_mean_physics] + [model[n] for n in ("ta_mean_excitons", "ta_charge_fractions", "gamma_OD",
                                                         "window_occupancy_bleach_OD", "tau_xx_ps", "tau_x_ps")]
    mu, N, f, gamma, beta, tau_xx, tau_x = pytensor.function(free, outs, mode=numpy_mode(),
                                                             on_unused_input="ignore")(*values)
    data = gm.data
    pot = gm.ta_potential_index
    # the simulator once per film file and delay (conditions x delays), gathered per observation
    files, f_of = np.unique(gm.file_index, return_inverse=True)
    delays, t_of = np.unique(data["ta_point_delay"].values, return_inverse=True)
    pot_of_file = pot[np.unique(f_of, return_index=True)[1]]
    obs = sp.ensemble_observables(N[files], f[pot_of_file], delays, 1 / tau_xx[0], 1 / tau_x[0], hole_trap_fraction=0.3)
    occ = obs["occupancy"][f_of, t_of]
    occ_pre = f[pot] @ np.array([0.0, 0.5, 1.0])
    A_pre = f[pot] @ np.array([8.0, 4.0, 0.0])
    a_pre = data["ta_potential_A_pre_OD"].values[pot]
    A_eff = (mu - a_pre + beta[0] * (occ - occ_pre)) / gamma[0] + A_pre
    return A_eff, obs["A"][f_of, t_of]


def test_model_cascade_is_the_simulators_trapped_hole_counting(batch_a):
    # the model's film TA graph against the simulator's independent implementation (matrix exponential of the
    # trapped and untrapped chains) at the same point: the counting form agrees, the older form is far off
    model_A, sim_A = _model_cascade(batch_a, "counting")
    np.testing.assert_allclose(model_A, sim_A, atol=1e-6)
    old_A, _ = _model_cascade(batch_a, "emission")
    assert np.max(np.abs(old_A - sim_A)) > 0.3


def test_model_solution_cascade_traps_holes_as_the_simulator(batch_a):
    # the solution bleach of the model (cross-section component) against the simulator's independent chains at
    # the same point: dots in solution trap holes as in the film (before, the model's solution ignored it)
    import tomllib

    import pytensor

    from bayesgain.model.core import GainModel
    from bayesgain.model.spec import load_spec, spec_from_dict
    from bayesgain.physics.api import numpy_mode

    d = tomllib.loads(load_spec("joint-hole-trapping").to_toml())
    d["components"].update(reflection=False)
    d["priors"] = {k: v for k, v in d["priors"].items() if k not in ("reflection_scale", "subgap_noise_rel")}
    gm = GainModel(spec_from_dict(d), batch_a)
    model = gm.build()
    point = model.initial_point()
    fixed = {"hole_trap_fraction": 0.3, "solution_gamma_scale": 1.0, "fluence_log_cal_solution": 0.0}
    free, values = model.free_RVs, []
    for rv in free:
        tr = model.rvs_to_transforms.get(rv)
        x = point[model.rvs_to_values[rv].name]
        values.append(np.asarray(tr.backward(x, *rv.owner.inputs).eval(mode=numpy_mode()) if tr is not None else x,
                                 dtype=rv.dtype))
        if rv.name in fixed:
            values[-1] = np.full_like(values[-1], fixed[rv.name])
    mu = model["cross_section"].owner.inputs[2]  # Normal(mu, sigma): the predicted solution Delta A
    outs = [mu, model["cross_section_cm2"], model["tau_xx_ps"], model["tau_x_ps"]]
    mu, sigma, tau_xx, tau_x = pytensor.function(free, outs, mode=numpy_mode(), on_unused_input="ignore")(*values)
    data = gm.data
    fl, t = data["sol_point_fluence"].values, data["sol_point_delay"].values
    J = np.zeros(data.sizes["sol_fluence"])
    J[fl] = data["sol_fluence_eff_photons_cm2"].values  # per point, one value per fluence (as the model reads it)
    N = sigma[0] * J[fl]
    A0 = float(data["experiment_solution_A0_1S_OD"].values[0])
    model_A = mu / (A0 / 8.0) + 8.0
    obs = sp.ensemble_observables(N, np.tile([1.0, 0.0, 0.0], (N.size, 1)), t, 1 / tau_xx[0], 1 / tau_x[0],
                                  hole_trap_fraction=0.3)
    rows = np.arange(N.size)
    np.testing.assert_allclose(model_A, obs["A"][rows, rows], atol=1e-6)
    without = sp.ensemble_observables(N, np.tile([1.0, 0.0, 0.0], (N.size, 1)), t, 1 / tau_xx[0], 1 / tau_x[0])
    assert np.max(np.abs(without["A"][rows, rows] - obs["A"][rows, rows])) > 0.1  # the check can fail
