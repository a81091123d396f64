"""Structure of the Bayesian model: specs as data, the reduced observations, the wiring of the physics.

No sampling here: the model is compiled once per session and checked at points (logp, gradient
against finite differences, deterministic quantities at the simulation truth).
"""

import math
import pathlib
import tomllib

import numpy as np
import pytest

from bayesgain import physics as ph
from bayesgain.model import quantities
from bayesgain.model.spec import SpecError, available_models, load_spec, spec_from_dict

ROOT = pathlib.Path(__file__).resolve().parents[1]
TRUTH_A = tomllib.loads((ROOT / "data" / "synthetic-batch-a" / "truth.toml").read_text())


# ----------------------------------------------------------------------------- specs
def test_every_shipped_spec_loads_and_round_trips():
    names = available_models()
    assert {"joint", "joint-no-disorder", "joint-effective-temperature", "joint-free-auger", "sec-only",
            "cross-section-only"} <= set(names)
    for n in names:
        s = load_spec(n)
        again = spec_from_dict(tomllib.loads(s.to_toml()))
        assert again.priors == s.priors and again.options == s.options and again.components == s.components


@pytest.mark.parametrize("data, match", [
    ({"components": {"gian": True}}, "unknown component 'gian'.*did you mean 'gain'"),
    ({"options": {"disorder": "lorentzian"}}, "not one of"),
    ({"options": {"dissorder": "none"}}, "unknown option.*did you mean 'disorder'"),
    ({"priors": {"V_1S": {"dist": "Normal", "mu": 0, "sigma": 1}}}, "unknown parameter 'V_1S'.*V_1S_V"),
    ({"priors": {"V_1S_V": {"dist": "Gaussian", "mu": 0, "sigma": 1}}}, "unknown distribution 'Gaussian'.*Normal"),
    ({"priors": {"V_1S_V": {"dist": "Normal", "mu": 0, "sd": 1}}}, "no argument.*sd.*valid"),
    ({"priors": {"V_1S_V": {"dist": "Normal", "mu": 0, "sigma": 1, "unit": "mV"}}}, "in 'V', not 'mV'"),
    ({"priors": {"T_eff_K": {"dist": "LogNormal", "mu": 6, "sigma": 1}}}, "not used by this model"),
    ({"pooling": {"gamma_scale": {"dist": "HalfNormal", "sigma": 1}}}, "cannot be pooled"),
    ({"components": {k: False for k in ("cross_section", "charging", "gain", "dynamics", "reflection")}},
     "every component is switched off"),
])
def test_invalid_specs_name_the_key_and_the_valid_choices(data, match):
    with pytest.raises(SpecError, match=match):
        spec_from_dict(data, source="my.toml")


def test_unknown_model_name_lists_the_shipped_models():
    with pytest.raises(SpecError, match="joint-no-disorder"):
        load_spec("joint-with-typo")


def test_variants_bring_in_their_parameters():
    assert "sigma_1S_V" in load_spec("joint").priors
    assert "sigma_1S_V" not in load_spec("joint-no-disorder").priors
    assert "T_eff_K" in load_spec("joint-effective-temperature").priors
    assert {"trion_rate_factor", "triexciton_rate_factor"} <= set(load_spec("joint-free-auger").priors)
    assert "student_nu" in load_spec("joint-student-t").priors
    assert "hole_trap_fraction" in load_spec("joint-hole-trapping").priors


# ----------------------------------------------------------------------------- quadrature used by the models
@pytest.mark.parametrize("sigma", [0.05, 0.11, 0.25])
def test_model_quadrature_matches_the_fine_rule(sigma):
    """Nodes sized by disorder_nodes for 1.5 sigma on +-6 sigma keep the fractions within the model's tolerance."""
    from bayesgain.model.core import GainModel
    from bayesgain.physics.charging import MODEL_QUADRATURE_HALF_WIDTH
    from bayesgain.physics import charging

    nodes = charging.disorder_nodes(1.5 * sigma, 293.0, tol=GainModel.QUADRATURE_TOL, minimum=24,
                                    half_width=MODEL_QUADRATURE_HALF_WIDTH)
    V = np.linspace(-1.25 - 5 * sigma, -1.25 + 5 * sigma, 45)
    fine = charging.charge_fractions_disordered(V, -1.25, 0.005, sigma, 293.0, 2, n_nodes=1024).eval()
    model = charging.charge_fractions_disordered(V, -1.25, 0.005, sigma, 293.0, 2, n_nodes=nodes,
                                                 half_width=MODEL_QUADRATURE_HALF_WIDTH).eval()
    assert np.max(np.abs(fine - model)) < GainModel.QUADRATURE_TOL
    fewer = charging.charge_fractions_disordered(V, -1.25, 0.005, sigma, 293.0, 2, n_nodes=nodes // 3,
                                                 half_width=MODEL_QUADRATURE_HALF_WIDTH).eval()
    assert np.max(np.abs(fine - fewer)) > GainModel.QUADRATURE_TOL  # the check can fail


def test_model_sizes_the_quadrature_from_the_data(joint_model):
    assert 24 <= joint_model.quadrature_nodes <= 80


# ----------------------------------------------------------------------------- reduced data
@pytest.fixture(scope="session")
def joint_model(batch_a):
    from bayesgain.model.core import GainModel

    m = GainModel("joint", batch_a, names=["batch-a"])
    m.build()
    return m


def test_api_fractions_take_the_models_quadrature_rule():
    """physics.api.charge_fractions with the models' half-width (what the post-sampling quadrature check
    evaluates) equals the model's graph, and differs from the default +-9 sigma rule at the same nodes."""
    from bayesgain.physics.charging import MODEL_QUADRATURE_HALF_WIDTH
    from bayesgain.physics import api, charging

    V = np.linspace(-1.8, -0.7, 23)
    for g_e, Vc in ((2, 0.005), (4, 0.012)):
        graph = charging.charge_fractions_disordered(V, -1.25, Vc, 0.11, 293.0, g_e, n_nodes=12,
                                                     half_width=MODEL_QUADRATURE_HALF_WIDTH).eval()
        got = api.charge_fractions(V, -1.25, Vc, 0.11, 293.0, g_e, n_nodes=12, half_width=MODEL_QUADRATURE_HALF_WIDTH)
        np.testing.assert_allclose(got, graph, atol=1e-13)
        assert np.max(np.abs(api.charge_fractions(V, -1.25, Vc, 0.11, 293.0, g_e, n_nodes=12) - graph)) > 1e-6


def test_quadrature_check_flags_a_posterior_beyond_the_sized_nodes(joint_model):
    """After sampling, the disorder quadrature is checked at the largest posterior sigma_1S: fine at the sized
    nodes for the fitted sigma (~0.11 V), flagged when the posterior wanders to a sigma the nodes cannot resolve."""
    import xarray as xr

    from bayesgain.model.core import GainModel

    def with_posterior(sigma):
        m = GainModel(joint_model.spec, _reduced=joint_model.data)
        post = xr.Dataset({name: (("chain", "draw", "experiment"), np.full((1, 3, 1), value))
                           for name, value in (("sigma_1S_V", sigma), ("V_1S_V", -1.25), ("V_C_V", 0.005))})
        post["sigma_1S_V"][0, 1, 0] = sigma * 1.02  # the largest draw is the one checked
        m.idata = xr.DataTree.from_dict({"posterior": post})
        return m

    ok = with_posterior(0.11).quadrature_check()
    assert ok["ok"] and ok["max_error"] < 1e-5, ok
    assert ok["sigma_1S_max_" + joint_model.names[0]] == pytest.approx(0.11 * 1.02)
    bad = with_posterior(0.11)
    bad.quadrature_nodes = 8
    rep = bad.quadrature_check()
    assert not rep["ok"] and rep["max_error"] > 1e-4, rep


def test_reduced_sec_matches_preprocessing(batch_a, joint_model):
    from bayesgain import preprocess

    d = joint_model.data
    sec = preprocess.sec_electrons(batch_a)["n_e"]
    i = 17
    c, direction = sec["cycle"].values, sec["direction"].values
    sweep = int(d["sec_point_sweep"].values[i])
    want = sec.sel(cycle=c[sweep // len(direction)], direction=direction[sweep % len(direction)],
                   potential=d["sec_point_potential"].values[i])
    assert float(d["sec_n_e"].values[i]) == pytest.approx(float(want), abs=1e-12)


def test_reflection_sensitivity_is_the_derivative_of_eq_s33(batch_a, joint_model):
    """d(Delta A)/ds of SI eq. S33 with s x Delta R, by finite differences on the raw spectra."""
    from bayesgain import preprocess
    from bayesgain.model.data import _open_circuit_dR

    d = joint_model.data
    ta = batch_a["film/ta"]["dA"]
    dR = _open_circuit_dR(batch_a, ta)
    lam = ta["wavelength"].values
    FA, FR = preprocess._film_fractions(batch_a, lam)
    lo, hi = d.attrs["batch-a:band_edge_window_nm"]
    sel = (lam >= lo) & (lam <= hi)
    i = int(np.nonzero(d["ta_point_component"].values == "gain")[0][40])
    V = d["ta_point_potential"].values[i]
    F = int(d["ta_point_fluence"].values[i])
    t = d["ta_point_delay"].values[i]
    raw = ta.sel(potential=V, delay=t).isel(fluence=F).values[sel]
    r = dR.sel(delay=t).isel(fluence=F).values[sel]
    h = 1e-4
    up = ph.reflection_correct(raw, (1 + h) * r, FA.values[sel], FR.values[sel])
    dn = ph.reflection_correct(raw, (1 - h) * r, FA.values[sel], FR.values[sel])
    assert float(d["ta_reflection_sensitivity"].values[i]) == pytest.approx(np.mean((up - dn) / (2 * h)), rel=1e-5)


def test_gain_and_dynamics_delays_follow_the_spec(joint_model):
    d = joint_model.data
    comp = d["ta_point_component"].values
    lo, hi = joint_model.spec.options["gain_delays_ps"]
    assert np.all((d["ta_point_delay"].values[comp == "gain"] >= lo) & (d["ta_point_delay"].values[comp == "gain"] <= hi))
    assert np.all(d["ta_point_delay"].values[comp == "dynamics"] > hi)
    n_files = d.sizes["ta_potential"] * d.sizes["ta_fluence"]
    assert (comp == "dynamics").sum() == n_files * joint_model.spec.options["n_dynamics_delays"]


# ----------------------------------------------------------------------------- wiring at a point
def _point_at_truth(m):
    ip = m.model.initial_point()
    fixed = {"V_half_filling_V": TRUTH_A["V_1S_V"] - TRUTH_A["V_C_V"] / 2, "V_C_V_log__": math.log(TRUTH_A["V_C_V"]),
             "sigma_1S_V_log__": math.log(TRUTH_A["sigma_1S_V"])}
    for k, v in fixed.items():
        ip[k] = np.full_like(ip[k], v)
    return ip


def test_charge_fractions_at_the_truth_reproduce_the_simulated_doping(joint_model):
    m = joint_model
    ip = _point_at_truth(m)
    out = m.model.replace_rvs_by_values([m.model["ta_charge_fractions"]])[0]
    f = m.model.compile_fn(out, inputs=m.model.value_vars, on_unused_input="ignore", mode="FAST_COMPILE")(ip)
    ne = f @ np.arange(3.0)
    truth = TRUTH_A["film_ta_mean_electrons"]
    for V, n in zip(m.data["ta_potential_V"].values, ne):
        assert n == pytest.approx(truth[f"{V:.3f}V"], abs=2e-6)


def _logp_gradient_against_finite_differences(gm, mode, n_coordinates=None):
    """Central differences of the model's log density at the truth against its compiled gradient: every raveled
    coordinate (or ``n_coordinates`` random ones) and three random directions."""
    from pymc.blocking import DictToArrayBijection

    m = gm.model
    ip = _point_at_truth(gm)
    logp = m.compile_logp(mode=mode)
    dlogp = m.compile_dlogp(mode=mode)
    assert np.isfinite(logp(ip))
    grad = dlogp(ip)
    x0 = DictToArrayBijection.map({v.name: ip[v.name] for v in m.value_vars})
    f = lambda x: logp(DictToArrayBijection.rmap(x0._replace(data=x)))  # noqa: E731
    rng = np.random.default_rng(3)
    n = x0.data.size
    coords = range(n) if n_coordinates is None else rng.choice(n, n_coordinates, replace=False)
    names = [name for name, _, size, _ in x0.point_map_info for _ in range(size)]
    for j in coords:
        h = 1e-6 * max(1.0, abs(x0.data[j]))
        e = np.zeros_like(x0.data)
        e[j] = h
        fd = (f(x0.data + e) - f(x0.data - e)) / (2 * h)
        assert grad[j] == pytest.approx(fd, rel=1e-4, abs=1e-3), names[j]
    for _ in range(3):
        u = rng.standard_normal(n)
        u /= np.linalg.norm(u)
        h = 1e-6
        fd = (f(x0.data + h * u) - f(x0.data - h * u)) / (2 * h)
        assert grad @ u == pytest.approx(fd, rel=1e-4, abs=1e-3)


def test_logp_is_finite_and_its_gradient_matches_finite_differences(joint_model):
    """The joint model's gradient graph, compiled for PyTensor's Python VM (numpy_mode: the same fast_run
    rewrites, compiled in seconds instead of numba's ~2 minutes cold), matches central differences of its log
    density in every coordinate and in three random directions."""
    from bayesgain.physics.api import numpy_mode

    _logp_gradient_against_finite_differences(joint_model, numpy_mode())


@pytest.mark.slow
def test_numba_compiled_logp_gradient_matches_finite_differences(joint_model):
    """The same check on PyTensor's default (numba) compilation, what PyMC's sampler runs: 6 coordinates
    (~2 minutes of numba compilation cold)."""
    _logp_gradient_against_finite_differences(joint_model, None, n_coordinates=6)


def test_starting_points_are_jittered_only_where_the_prior_scale_allows(joint_model):
    names = {rv.name for rv in joint_model.jitter_rvs()}
    free = {rv.name for rv in joint_model.model.free_RVs}
    # 10 mV sweep offsets, per-file log calibrations (scale fluence_log_sd) and the 0.2 V level prior start at
    # their centres; log-scale positives with wide priors are jittered
    assert {"sweep_offset_V", "fluence_log_cal_film", "fluence_log_cal_solution", "V_half_filling_V",
            "film_cross_section_ratio"}.isdisjoint(names)
    # the calibrations' spread is sampled as its excess above the floor (a hyperparameter: jittered)
    assert {"tau_xx_ps", "cross_section_cm2", "sigma_1S_V", "fluence_log_sd_excess"} <= names <= free


def test_centred_and_non_centred_fluence_calibrations_are_one_model(batch_a):
    """Same density up to the Jacobian of log c = sd z, and the same <N> per file, at matched points."""
    import dataclasses

    from bayesgain.model.core import GainModel

    spec = load_spec("joint")
    models = {}
    for form in ("centered", "non-centered"):
        s = dataclasses.replace(spec, options={**spec.options, "fluence_calibration": form})
        gm = GainModel(s, batch_a, names=["batch-a"])
        gm.build()
        models[form] = gm
    c, nc = models["centered"].model, models["non-centered"].model
    assert "fluence_z_film" in nc.named_vars and "fluence_z_film" not in c.named_vars
    ip_c = _point_at_truth(models["centered"])
    rng = np.random.default_rng(5)
    sd = 0.07
    floor = models["centered"].spec.options["fluence_log_sd_floor"]
    ip_c["fluence_log_sd_excess_log__"] = np.full_like(ip_c["fluence_log_sd_excess_log__"], math.log(sd - floor))
    ip_c["fluence_log_cal_film"] = rng.normal(0, sd, ip_c["fluence_log_cal_film"].shape)
    ip_c["fluence_log_cal_solution"] = rng.normal(0, sd, ip_c["fluence_log_cal_solution"].shape)
    ip_nc = {k: v for k, v in ip_c.items() if "log_cal" not in k}
    ip_nc["fluence_z_film"] = ip_c["fluence_log_cal_film"] / sd
    ip_nc["fluence_z_solution"] = ip_c["fluence_log_cal_solution"] / sd
    mode = "FAST_COMPILE"  # a one-off evaluation: the Python linker compiles in seconds
    lp_c = c.compile_logp(mode=mode)(ip_c)
    lp_nc = nc.compile_logp(mode=mode)(ip_nc)
    n_cal = ip_c["fluence_log_cal_film"].size + ip_c["fluence_log_cal_solution"].size
    assert lp_c == pytest.approx(lp_nc - n_cal * math.log(sd), abs=1e-6)
    mean_c = c.compile_fn(c.replace_rvs_by_values([c["ta_mean_excitons"]])[0], inputs=c.value_vars,
                          on_unused_input="ignore", mode=mode)(ip_c)
    mean_nc = nc.compile_fn(nc.replace_rvs_by_values([nc["ta_mean_excitons"]])[0], inputs=nc.value_vars,
                            on_unused_input="ignore", mode=mode)(ip_nc)
    np.testing.assert_allclose(mean_c, mean_nc, rtol=1e-12)


def test_film_ta_of_an_unexcited_film_sits_at_the_measured_A_pre(joint_model):
    """The model predicts Delta A_TA and adds the measured A_pre back: with <N> -> 0 every gain point's mean is
    the window-averaged A_0 + Delta A_SEC of its potential, whatever gamma, beta and the charge fractions."""
    m = joint_model.model
    d = joint_model.data
    ip = _point_at_truth(joint_model)
    ip["fluence_log_cal_film"] = np.full_like(ip["fluence_log_cal_film"], -60.0)  # <N> ~ 1e-26 per QD
    ip["gamma_scale_log__"] = np.full_like(ip["gamma_scale_log__"], math.log(1.37))
    ip["window_bleach_per_electron_rel"] = np.full_like(ip["window_bleach_per_electron_rel"], 1.67)
    ip["reflection_scale_log__"] = np.zeros_like(ip["reflection_scale_log__"])  # s_V = 1: no Delta R term
    noise = np.exp(ip["ta_noise_rel_log__"])
    logp = m.compile_logp(vars=[m["gain"]], sum=True, mode="FAST_COMPILE")(ip)
    idx = np.nonzero(d["ta_point_component"].values == "gain")[0]
    y = d["ta_A"].values[idx]
    mu = d["ta_potential_A_pre_OD"].values[joint_model.ta_potential_index[idx]]
    sd = d["experiment_film_A0_1S_OD"].values[d["ta_point_experiment"].values[idx]] * noise[0]
    expected = np.sum(-0.5 * ((y - mu) / sd) ** 2 - np.log(sd) - 0.5 * math.log(2 * math.pi))
    assert logp == pytest.approx(expected, rel=1e-10)
    # A_pre itself: A_0 + Delta A_SEC in the window, below A_0 where the film is charged
    a_pre = d["ta_potential_A_pre_OD"].values
    A0 = float(d["experiment_film_A0_1S_OD"].values[0])
    assert np.all(a_pre <= A0 * 1.01) and a_pre.min() < 0.2 * A0


def test_logp_prefers_the_true_level_potential(joint_model):
    m = joint_model.model
    ip = _point_at_truth(joint_model)
    logp = m.compile_logp(vars=[m["charging"]], sum=True, mode="FAST_COMPILE")  # a few calls: Python VM
    shifted = dict(ip)
    shifted["V_half_filling_V"] = ip["V_half_filling_V"] + 0.03
    assert logp(ip) > logp(shifted) + 10


# ----------------------------------------------------------------------------- posterior quantities
def test_tabulated_threshold_solver_matches_the_physics_root(rng):
    f = rng.dirichlet(np.ones(3), size=200)
    want = ph.gain_threshold(f)
    got = quantities._solve_on_table(f, 2, 4)
    finite = np.isfinite(want)
    assert np.array_equal(finite, np.isfinite(got))
    assert np.max(np.abs(got[finite] - want[finite])) < 1e-4


@pytest.mark.parametrize("form", ["emission", "counting"])
def test_hole_trapping_raises_the_threshold_as_the_simulator_says(form):
    from bayesgain import simulate

    p = simulate.preset_parameters("batch-b", hole_trap_form=form)
    f = np.array([[1.0, 0.0, 0.0], [0.2, 0.5, 0.3]])
    got = quantities._solve_on_table(f, 2, 4, eta=p["hole_trap_fraction"], hole_trapping=form)
    want = np.array([simulate._threshold_eta(p, fi) for fi in f]).ravel()
    assert np.allclose(got, want, atol=2e-4)
    assert np.all(got > ph.gain_threshold(f))


def test_hdi_table_agrees_with_arviz(rng):
    import arviz as az
    import xarray as xr

    x = rng.gamma(2.0, 1.0, size=(4000, 3))
    da = xr.DataArray(x, dims=("sample", "k"))
    t = quantities.hdi_table(da)
    for k in range(3):
        lo, hi = np.asarray(az.hdi(x[:, k], prob=0.94))
        assert t["hdi_low"].values[k] == pytest.approx(lo, rel=1e-6)
        assert t["hdi_high"].values[k] == pytest.approx(hi, rel=1e-6)
        assert t["median"].values[k] == pytest.approx(np.median(x[:, k]))


class _FakeFit:
    """Just enough of a fitted GainModel for the posterior quantities: posterior draws, data, spec."""

    def __init__(self, draws, disorder="gaussian"):
        import xarray as xr

        from bayesgain.model.spec import spec_from_dict

        self.spec = spec_from_dict({"options": {"disorder": disorder}})
        n = len(next(iter(draws.values())))
        post = xr.Dataset({k: (("chain", "draw", "experiment"), np.asarray(v, float).reshape(1, n, 1))
                           for k, v in draws.items()})
        self.idata = {"posterior": post}
        self.data = xr.Dataset({"experiment_g_e": ("experiment", [2]), "experiment_g_h": ("experiment", [4]),
                                "experiment_temperature_K": ("experiment", [293.0])})


def test_threshold_curve_matches_direct_bisection(rng):
    n = 40
    V_C = rng.uniform(0.001, 0.03, n)
    sigma = rng.uniform(0.05, 0.2, n)
    fit = _FakeFit({"V_C_V": V_C, "sigma_1S_V": sigma, "V_1S_V": np.full(n, -1.25)})
    levels = np.array([0.0, 0.1, 0.5, 1.0, 1.5, 1.9, 1.99, 2.0])
    got = quantities.threshold_curve(fit, n_e=levels).values
    inner = (levels > 0) & (levels < 2)
    want, _ = ph.threshold_versus_doping(levels[inner][None, :], -1.25, V_C[:, None], sigma[:, None], 293.0)
    assert np.max(np.abs(got[:, inner] - want)) < 1e-4
    assert np.allclose(got[:, 0], ph.gain_threshold([1.0, 0.0, 0.0])) and np.all(got[:, -1] == 0.0)


def test_threshold_curve_without_disorder_matches_direct_bisection(rng):
    n = 10
    V_C = rng.uniform(0.001, 0.03, n)
    fit = _FakeFit({"V_C_V": V_C, "V_1S_V": np.full(n, -1.25)}, disorder="none")
    levels = np.array([0.3, 1.0, 1.7])
    got = quantities.threshold_curve(fit, n_e=levels).values
    want, _ = ph.threshold_versus_doping(levels[None, :], -1.25, V_C[:, None], 0.0, 293.0)
    assert np.max(np.abs(got - want)) < 1e-4


def test_a_chain_trapped_in_a_minor_mode_is_named(rng):
    import xarray as xr

    from bayesgain.model.convergence import stuck_chains

    lp = 20960.0 + 9.0 * rng.standard_normal((4, 500))
    post = xr.Dataset({"x": (("chain", "draw"), rng.standard_normal((4, 500)))})

    def tree(lp):
        return xr.DataTree.from_dict({"posterior": post, "sample_stats": xr.Dataset({"logp": (("chain", "draw"), lp)})})

    assert stuck_chains(tree(lp)) == ""
    lp[1] -= 31.0  # what the joint model showed: one chain 31 nats below the others
    text = stuck_chains(tree(lp))
    assert "chain 1 (31 nats below)" in text and "chain 0" not in text.split("best")[0]


def test_a_fit_that_did_not_converge_names_its_worst_parameters(rng):
    """The report of a fit that fails names the element with the largest R-hat and the one with the smallest ESS;
    a converged fit's sentence stays as it was."""
    import xarray as xr

    from bayesgain.model.convergence import convergence_report

    good = rng.standard_normal((4, 500, 3))
    drift = good.copy()
    drift[:, :, 2] += np.arange(4)[:, None]  # element 2: every chain elsewhere (R-hat >> 1.01)
    sticky = np.zeros((4, 500))  # AR(1) with rho 0.995: stationary, every chain alike, tiny bulk ESS
    for t in range(1, 500):
        sticky[:, t] = 0.995 * sticky[:, t - 1] + 0.1 * rng.standard_normal(4)

    def tree(a, s):
        post = xr.Dataset({"a": (("chain", "draw", "k"), a), "s": (("chain", "draw"), s)})
        stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((4, 500), bool)),
                            "logp": (("chain", "draw"), rng.standard_normal((4, 500)))})
        return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})

    white = rng.standard_normal((4, 500))
    bad = convergence_report(tree(drift, white), ["a", "s"], min_ess=400)
    assert not bad.ok and bad["worst_r_hat"] == "a[2]"
    assert "largest R-hat: a[2], smallest bulk ESS: " in bad.text()
    slow = convergence_report(tree(good, sticky), ["a", "s"], min_ess=400)
    assert not slow.ok and slow["worst_ess_bulk"] == "s" and "smallest bulk ESS: s" in slow.text()
    ok = convergence_report(tree(good, rng.standard_normal((4, 500))), ["a", "s"], min_ess=400)
    assert ok.ok and "largest R-hat" not in ok.text()


def test_fluence_calibration_spread_has_a_floor(batch_a):
    """fluence_log_sd = floor + excess (the spec's prior on the excess); floor 0 gives back the plain spread."""
    import dataclasses

    from bayesgain.model.core import GainModel

    spec = load_spec("joint")
    gm = GainModel(spec, batch_a, names=["batch-a"])
    model = gm.build()
    assert "fluence_log_sd_excess" in {rv.name for rv in model.free_RVs}
    assert "fluence_log_sd" in model.named_vars and "fluence_log_sd" not in {rv.name for rv in model.free_RVs}
    floor = spec.options["fluence_log_sd_floor"]
    f = model.compile_fn(model.replace_rvs_by_values([model["fluence_log_sd"]])[0], inputs=model.value_vars,
                         on_unused_input="ignore", mode="FAST_COMPILE")
    ip = model.initial_point()
    ip["fluence_log_sd_excess_log__"] = np.full_like(ip["fluence_log_sd_excess_log__"], math.log(0.03))
    np.testing.assert_allclose(f(ip), floor + 0.03, rtol=1e-12)
    plain = GainModel(dataclasses.replace(spec, options={**spec.options, "fluence_log_sd_floor": 0.0}), batch_a,
                      names=["batch-a"]).build()
    assert "fluence_log_sd" in {rv.name for rv in plain.free_RVs}
