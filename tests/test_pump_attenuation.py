"""Pump attenuation through the film: the depth quadrature of a Beer-Lambert pump, the model option
``pump_attenuation = "beer-lambert"`` and where the film's pump absorbance comes from (no sampling here;
one slow fit of the ``pump-attenuation`` scenario at the end)."""

import dataclasses
import math
import pathlib
import re
import shutil
import tomllib

import numpy as np
import pytest
from scipy.integrate import quad

from bayesgain.physics import api, optics

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "fixtures" / "tiny_experiment"
LN10 = math.log(10.0)


def _saturation(N):
    return -np.expm1(-N)  # 1 - e^-N: the fraction of excited QDs, nonlinear in <N>


def _biexcitons(N):
    return N**2 * np.exp(-N)  # 2 x P(2; N): non-monotone, curvature of both signs


# ----------------------------------------------------------------------------- the depth quadrature
@pytest.mark.parametrize("F", [_saturation, _biexcitons])
@pytest.mark.parametrize("A", [0.0, 0.04, 0.1, 0.3])
@pytest.mark.parametrize("N_front", [0.1, 1.0, 3.0, 10.0])
def test_depth_average_matches_direct_integration(F, A, N_front):
    """sum_k w_k F(<N>_front r_k) = int_0^1 F(<N>_front 10^(-A z)) dz (adaptive quadrature of the equation)."""
    r, w = api.pump_depth_profile(A)
    assert r.shape == (4,) and w.shape == (4,)  # 4 nodes below 0.3 OD
    ref = quad(lambda z: F(N_front * 10.0 ** (-A * z)), 0.0, 1.0, epsabs=1e-15, epsrel=1e-13)[0]
    # F is of order 1 here: a few 1e-7 of its scale (the steepest case, N^2 e^-N near <N> = 10, is 2e-7 off)
    assert w @ F(N_front * r) == pytest.approx(ref, rel=1e-7, abs=4e-7)


def test_two_nodes_are_not_enough_at_the_largest_absorbance():
    """The check above can fail: 2 nodes at 0.3 OD miss the integral by more than its tolerance."""
    r, w = api.pump_depth_profile(0.3, n_nodes=2)
    ref = quad(lambda z: _saturation(3.0 * 10.0 ** (-0.3 * z)), 0.0, 1.0, epsrel=1e-13)[0]
    assert abs(w @ _saturation(3.0 * r) - ref) > 1e-6 * ref


@pytest.mark.parametrize("A", [1.0, 4.5])
def test_thick_films_get_more_nodes_and_keep_the_accuracy(A):
    r, w = api.pump_depth_profile(A)
    assert r.shape[-1] == optics.pump_depth_node_count(A) > 4
    for N_front in (0.5, 5.0):
        ref = quad(lambda z: _saturation(N_front * 10.0 ** (-A * z)), 0.0, 1.0, epsabs=1e-15, epsrel=1e-13)[0]
        assert w @ _saturation(N_front * r) == pytest.approx(ref, rel=1e-6)


def test_profile_shape_weights_and_limits():
    r, w = api.pump_depth_profile([[0.0, 0.1], [0.2, 0.3]])
    assert r.shape == (2, 2, 4) and w.shape == (4,)
    assert np.sum(w) == pytest.approx(1.0, rel=1e-14)
    np.testing.assert_array_equal(r[0, 0], 1.0)  # no absorbance: uniform excitation
    # the depth average of the excitation itself: (1 - 10^-A) / (A ln 10)
    for A, rr in ((0.1, r[0, 1]), (0.3, r[1, 1])):
        assert w @ rr == pytest.approx(-math.expm1(-A * LN10) / (A * LN10), rel=1e-10)  # 3e-11 at 0.3 OD
        assert np.all(np.diff(rr) < 0) and rr[-1] > 10.0 ** (-A)  # falls front to back, nodes inside (0, 1)
    # the NumPy face is the PyTensor graph
    g_r, g_w = optics.pump_depth_profile(np.array([0.0, 0.1]), 4)
    np.testing.assert_allclose(g_r.eval(), r[0], rtol=1e-15)
    np.testing.assert_allclose(g_w.eval(), w, rtol=1e-15)


def test_bad_absorbances_are_refused():
    with pytest.raises(ValueError, match="pump_absorbance_OD must be >= 0"):
        api.pump_depth_profile(-0.1)
    with pytest.raises(ValueError, match="pump_absorbance_OD must be <= 5 OD"):
        optics.pump_depth_node_count(7.0)


@pytest.mark.parametrize("A", [0.02, 0.15, 0.3])
def test_depth_average_gradient_in_the_pump_absorbance(A):
    """d/dA of sum_k w_k F(N r_k(A)) (PyTensor gradient) against the derivative written from the equation,
    int_0^1 F'(N 10^(-A z)) N 10^(-A z) (-z ln 10) dz, and against central differences of the integral."""
    import pytensor
    import pytensor.tensor as pt

    N = 2.5
    a = pt.dscalar("A")
    r, w = optics.pump_depth_profile(a, 4)
    avg = pt.sum(w * (1.0 - pt.exp(-N * r)))
    grad = float(pytensor.function([a], pt.grad(avg, a))(A))
    exact = quad(lambda z: math.exp(-N * 10 ** (-A * z)) * N * 10 ** (-A * z) * (-z * LN10), 0.0, 1.0,
                 epsrel=1e-13)[0]
    assert grad == pytest.approx(exact, rel=1e-7)
    h = 1e-5
    integral = lambda x: quad(lambda z: _saturation(N * 10 ** (-x * z)), 0.0, 1.0, epsrel=1e-14)[0]  # noqa: E731
    assert grad == pytest.approx((integral(A + h) - integral(A - h)) / (2 * h), rel=1e-6)


# ----------------------------------------------------------------------------- the film's pump absorbance
def test_pump_absorbance_is_read_off_the_absorptance_spectrum(batch_a):
    """Without film.pump_absorbance: -log10(1 - F_A) of the absorptance file at the pump wavelength."""
    from bayesgain.model.data import film_pump_absorbance

    lam, FA = np.loadtxt(ROOT / "data" / "synthetic-batch-a" / "film" / "absorptance.csv", delimiter=",",
                         skiprows=1, unpack=True)
    want = -math.log10(1.0 - np.interp(batch_a.attrs["pump_wavelength_nm"], lam, FA))
    assert film_pump_absorbance(batch_a) == pytest.approx(want, rel=1e-10)
    assert 0.02 < want < 0.1


def _tiny_copy(tmp_path, film_line=None):
    folder = tmp_path / "tiny"
    shutil.copytree(TINY, folder)
    if film_line is not None:
        m = folder / "experiment.toml"
        m.write_text(m.read_text().replace("[film]\n", f"[film]\n{film_line}\n", 1))
    return folder


def test_manifest_pump_absorbance_is_used_before_the_spectrum(tmp_path):
    from bayesgain.io import load_experiment
    from bayesgain.model.data import film_pump_absorbance

    tree = load_experiment(_tiny_copy(tmp_path, "pump_absorbance = 0.07"))
    assert tree["film"].attrs["pump_absorbance"] == 0.07
    assert film_pump_absorbance(tree) == 0.07


@pytest.mark.parametrize("line, pattern", [
    ("pump_absorbance = 7.0", r"experiment\.toml \[film\.pump_absorbance\].*7.*expected 0 <= value <= 5 OD"),
    ("pump_absorbance = -0.1", r"experiment\.toml \[film\.pump_absorbance\].*expected 0 <= value <= 5 OD"),
    ('pump_absorbance = "high"', r"experiment\.toml \[film\.pump_absorbance\]"),
    ("pump_absorbence = 0.05", r"unknown key 'pump_absorbence'.*did you mean 'pump_absorbance'"),
])
def test_bad_manifest_pump_absorbance_is_one_clear_line(tmp_path, line, pattern):
    from bayesgain.io import ExperimentError, load_experiment

    folder = _tiny_copy(tmp_path, line)
    with pytest.raises(ExperimentError) as info:
        load_experiment(folder)
    hits = [p for p in info.value.problems if re.search(pattern, p)]
    assert hits, info.value.problems
    assert "\n" not in hits[0]


def test_missing_pump_absorbance_is_refused_saying_what_is_missing(tmp_path):
    """The tiny fixture's absorptance starts at 480 nm, the pump is at 400 nm, and no film.pump_absorbance."""
    from bayesgain.io import load_experiment
    from bayesgain.model.data import film_pump_absorbance

    tree = load_experiment(_tiny_copy(tmp_path))
    with pytest.raises(ValueError) as info:
        film_pump_absorbance(tree, "tiny")
    text = str(info.value)
    assert "\n" not in text
    for part in ("tiny:", "beer-lambert", "400", "film.pump_absorbance", "covers 480"):
        assert part in text, text


def test_simulated_scenario_gives_the_model_the_true_pump_absorbance(tmp_path):
    """The pump-attenuation scenario writes no pump_absorbance key; its absorptance file holds the true value."""
    from bayesgain.io import load_experiment
    from bayesgain.model.data import film_pump_absorbance
    from bayesgain.scenarios import simulate_scenario

    folder = simulate_scenario("pump-attenuation", tmp_path / "pa", seed=2)
    truth = tomllib.loads((folder / "truth.toml").read_text())
    assert film_pump_absorbance(load_experiment(folder)) == pytest.approx(truth["film_pump_absorbance_OD"], rel=1e-6)


# ----------------------------------------------------------------------------- the model option
def _film_spec(attenuation):
    from bayesgain.model.spec import load_spec, spec_from_dict

    d = tomllib.loads(load_spec("joint").to_toml())
    d["components"].update(cross_section=False, reflection=False)
    d["options"]["pump_attenuation"] = attenuation
    d["priors"] = {k: v for k, v in d["priors"].items() if k not in ("solution_gamma_scale", "solution_noise_rel",
                                                                     "reflection_scale", "subgap_noise_rel")}
    return spec_from_dict(d)


@pytest.fixture(scope="module")
def film_models(batch_a):
    """Gain + dynamics models of batch A (window tail on, as joint): uniform <N> and Beer-Lambert through the film."""
    from bayesgain.model.core import GainModel

    out = {}
    for att in ("none", "beer-lambert"):
        gm = GainModel(_film_spec(att), batch_a, names=["batch-a"])
        gm.build()
        out[att] = gm
    return out


def _point(gm):
    ip = gm.model.initial_point()
    rng = np.random.default_rng(11)
    ip["fluence_log_cal_film"] = rng.normal(0.0, 0.05, ip["fluence_log_cal_film"].shape)
    return ip


def _physics_mean(gm, ip):
    m = gm.model
    out = m.replace_rvs_by_values([gm.film_mean_physics])[0]
    return m.compile_fn(out, inputs=m.value_vars, on_unused_input="ignore", mode="FAST_COMPILE")(ip)


def test_option_is_off_in_joint_and_documented():
    from bayesgain.model.spec import DEFAULT_OPTIONS, load_spec

    assert load_spec("joint").options["pump_attenuation"] == "none"
    assert DEFAULT_OPTIONS["pump_attenuation"] == ("none", ("none", "beer-lambert"))
    assert "pump_attenuation" in (ROOT / "models" / "joint.toml").read_text()


def test_beer_lambert_film_ta_is_the_depth_average_of_the_uniform_model(film_models):
    """Every film TA prediction with the option is sum_k w_k (prediction of the uniform model at <N>_front r_k):
    the uniform model evaluated with each file's log calibration shifted by ln r_k, then weighted by hand."""
    none, beer = film_models["none"], film_models["beer-lambert"]
    A = float(beer.data["experiment_film_pump_OD"].values[0])
    r, w = api.pump_depth_profile(A)
    ip = _point(beer)
    got = _physics_mean(beer, ip)
    slices = []
    for rk in r:
        shifted = dict(ip)
        shifted["fluence_log_cal_film"] = ip["fluence_log_cal_film"] + math.log(rk)
        slices.append(_physics_mean(none, shifted))
    np.testing.assert_allclose(got, np.tensordot(w, np.array(slices), axes=1), rtol=1e-11, atol=1e-15)
    # attenuation lowers the depth-averaged bleach at a fixed front <N>: A* is higher at every point
    uniform = _physics_mean(none, ip)
    assert np.all(got > uniform)
    # the stored depth average of <N>: front x sum_k w_k r_k = front x (1 - 10^-A) / (A ln 10)
    m = beer.model
    fn = m.compile_fn(m.replace_rvs_by_values([m["ta_mean_excitons"], m["ta_mean_excitons_depth_average"]]),
                      inputs=m.value_vars, on_unused_input="ignore", mode="FAST_COMPILE")
    front, avg = fn(ip)
    np.testing.assert_allclose(avg / front, -math.expm1(-A * LN10) / (A * LN10), rtol=1e-10)


def test_logp_differs_with_the_option_and_equals_uniform_at_zero_pump_absorbance(film_models):
    from bayesgain.model.core import GainModel

    none, beer = film_models["none"], film_models["beer-lambert"]
    ip = _point(beer)
    lp_none = none.model.compile_logp(mode="FAST_COMPILE")(ip)
    lp_beer = beer.model.compile_logp(mode="FAST_COMPILE")(ip)
    assert abs(lp_beer - lp_none) > 1.0
    zero = beer.data.copy()
    zero["experiment_film_pump_OD"] = ("experiment", np.zeros(zero.sizes["experiment"]))
    flat = GainModel(beer.spec, _reduced=zero)
    flat.build()
    assert flat.model.compile_logp(mode="FAST_COMPILE")(ip) == pytest.approx(lp_none, rel=1e-13, abs=1e-9)


def test_option_without_a_pump_absorbance_is_refused_in_one_line(batch_a):
    from bayesgain.model.core import GainModel

    tree = batch_a.copy()
    film = tree["film"].to_dataset()
    tree["film"].dataset = film.sel(wavelength_spectrum=slice(450.0, None))
    with pytest.raises(ValueError) as info:
        GainModel(_film_spec("beer-lambert"), tree, names=["cut"])
    text = str(info.value)
    assert "\n" not in text and text.startswith("cut: pump_attenuation") and "film.pump_absorbance" in text


# ----------------------------------------------------------------------------- recovery (slow: one fit)
@pytest.mark.slow
def test_pump_attenuation_scenario_is_recovered_with_the_option(tmp_path):
    """The pump-attenuation scenario fitted by joint with pump_attenuation = "beer-lambert": converged, and the
    94 % HDIs of the cross-section and tau_XX hold the truth."""
    import arviz as az

    from bayesgain.model.core import GainModel
    from bayesgain.model.spec import load_spec
    from bayesgain.scenarios import simulate_scenario

    folder = simulate_scenario("pump-attenuation", tmp_path / "pa", seed=1)
    truth = tomllib.loads((folder / "truth.toml").read_text())
    spec = load_spec("joint")
    spec = dataclasses.replace(spec, options={**spec.options, "pump_attenuation": "beer-lambert"})
    m = GainModel(spec, folder)
    m.fit(draws=1000, tune=1000, chains=4, seed=1, progress=False)
    assert m.convergence.ok, m.convergence.text()
    post = m.idata["posterior"]
    for name, key in (("cross_section_cm2", "cross_section_400nm_cm2"), ("tau_xx_ps", "tau_xx_ps")):
        x = post[name].isel(experiment=0).values.reshape(-1)
        lo, hi = np.asarray(az.hdi(x, prob=0.94))
        assert lo <= truth[key] <= hi, f"{name}: truth {truth[key]:.5g} outside [{lo:.5g}, {hi:.5g}]"
