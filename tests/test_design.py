"""Experimental design (bayesgain.design): the pre-posterior estimators against Gaussian cases with exact
answers, the greedy batch, the outputs' columns and order, and the refusals.  No sampling."""

import csv
import math
import types

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayesgain import cli
from bayesgain import design as dz

Z94 = stats.norm.ppf(0.97)  # 94 % HDI of a Gaussian: +-1.8808 sd


def conjugate_case(S=4000, K=64, noise=1.0, seed=1):
    """theta ~ N(0, 1) draws; outcome y_k = theta_k + noise eps; log p(y_k | theta_j) for all pairs."""
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal(S)
    kk = rng.choice(S, K, replace=False)
    y = theta[kk] + noise * rng.standard_normal(K)
    L = -0.5 * (y[:, None] - theta[None, :]) ** 2 / noise**2
    return theta, L, kk


def exact_width(prior_var, noise):
    """94 % HDI width of the conjugate-normal posterior after one observation (independent of y)."""
    return 2 * Z94 * math.sqrt(1.0 / (1.0 / prior_var + 1.0 / noise**2))


def test_weighted_hdi_width_gaussian_and_weights():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(20000)
    assert dz.weighted_hdi_width(x) == pytest.approx(2 * Z94, rel=0.02)
    # weights that turn N(0, 1) into N(0, 0.5^2): w = N(x; 0, 0.5) / N(x; 0, 1)
    w = stats.norm.pdf(x, 0, 0.5) / stats.norm.pdf(x)
    assert dz.weighted_hdi_width(x, w) == pytest.approx(2 * Z94 * 0.5, rel=0.03)
    # a skewed sample: HDI shorter than the central interval
    e = rng.exponential(size=20000)
    assert dz.weighted_hdi_width(e) == pytest.approx(-math.log(0.06), rel=0.03)
    # non-finite (no threshold) values are left out
    assert dz.weighted_hdi_width(np.append(x, [np.inf] * 10)) == pytest.approx(dz.weighted_hdi_width(x), rel=1e-3)


def test_random_weights_do_not_bias_the_width():
    """Weights unrelated to the target leave the expected width unchanged (no spurious loss of information)."""
    rng = np.random.default_rng(3)
    ratios = [dz.weighted_hdi_width(x, np.exp(0.2 * rng.standard_normal(600))) / dz.weighted_hdi_width(x)
              for x in rng.standard_normal((200, 600))]
    assert abs(np.mean(ratios) - 1.0) < 0.002


@pytest.mark.parametrize("noise", [0.5, 1.0, 2.0])
def test_reweighting_matches_conjugate_normal(noise):
    theta, L, _ = conjugate_case(noise=noise)
    widths, ess = dz.reweighted_widths(theta, L)
    assert ess.min() > 100
    assert widths.mean() == pytest.approx(exact_width(1.0, noise), rel=0.04)


def test_linear_gaussian_matches_conjugate_normal():
    rng = np.random.default_rng(2)
    theta = rng.standard_normal(4000)
    for noise in (0.3, 1.0):
        pred = np.stack([theta, 0.5 * theta], axis=1)  # two read-outs: information 1/noise^2 (1 + 0.25)
        w = dz.linear_gaussian_width(theta, pred, np.full(2, noise**2))
        assert w == pytest.approx(exact_width(1.0, noise / math.sqrt(1.25)), rel=0.03)


def test_expected_width_falls_back_when_ess_collapses():
    """A very precise run leaves few effective draws: the linear-Gaussian update takes over and is exact here."""
    theta, L, kk = conjugate_case(S=2000, noise=0.002)
    w, share = dz.expected_width(theta, [L], [theta[:, None]], np.array([0.002**2]), min_ess=30)
    assert share == 1.0
    assert w == pytest.approx(exact_width(1.0, 0.002), rel=0.03)
    w2, share2 = dz.expected_width(theta, [conjugate_case(S=2000, noise=1.0)[1]], [theta[:, None]], np.ones(1))
    assert share2 == 0.0 and w2 == pytest.approx(exact_width(1.0, 1.0), rel=0.05)


def test_joint_outcomes_add_information():
    """Two runs simulated from the same draws: their log-likelihoods add, like one run of half the variance."""
    rng = np.random.default_rng(5)
    S, K, s = 4000, 64, 1.0
    theta = rng.standard_normal(S)
    kk = rng.choice(S, K, replace=False)
    Ls = [-0.5 * (theta[kk][:, None] + s * rng.standard_normal((K, 1)) - theta[None, :]) ** 2 / s**2
          for _ in range(2)]
    w, _ = dz.expected_width(theta, Ls, [theta[:, None]] * 2, np.ones(1))
    assert w == pytest.approx(exact_width(1.0, s / math.sqrt(2)), rel=0.05)


def test_log_marginal_over_grid_laplace_and_trapezoid():
    z = np.linspace(-4, 4, 17)
    prior = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    for centre, width in ((0.3, 0.01), (1.1, 0.2), (0.0, 5.0)):  # far narrower than the grid, near, wider
        g = -0.5 * (z - centre) ** 2 / width**2 + prior
        # exact: integral of N-kernel x standard normal = sqrt(2 pi) w N(centre; 0, sqrt(1 + w^2))
        exact = math.log(math.sqrt(2 * math.pi) * width * stats.norm.pdf(centre, 0, math.sqrt(1 + width**2)))
        assert float(dz.log_marginal_over_grid(g, z)) == pytest.approx(exact, abs=1e-6)


def test_greedy_batch_accounts_for_overlap():
    """Runs 0 and 1 measure the same thing (the second adds nothing after the first); run 2 is weaker alone
    but independent: the batch of two is (0, 2), not the two best single runs (0, 1)."""
    group = {0: "a", 1: "a", 2: "b", 3: "b"}
    info = {0: 5.0, 1: 4.9, 2: 2.0, 3: 0.5}

    def width(chosen):
        best = {}
        for c in chosen:
            best[group[c]] = max(best.get(group[c], 0.0), info[c])
        return 1.0 / math.sqrt(1.0 + sum(best.values()))

    chosen, widths = dz.greedy_batch(width, 4, 2)
    assert chosen == [0, 2]
    assert widths == pytest.approx([width([0]), width([0, 2])])
    assert dz.greedy_batch(width, 4, 10)[0] == [0, 2, 1, 3]  # all four, never one twice


def test_greedy_batch_on_reweighted_gaussian_runs():
    """t = theta_1 + theta_2: after the best run (theta_1, noise 0.5) measuring theta_2 (noise 0.6) beats
    repeating theta_1 -- the estimator, not a hand-written width, makes the choice."""
    rng = np.random.default_rng(7)
    S, K = 4000, 96
    th = rng.standard_normal((S, 2))
    t = th.sum(axis=1)
    kk = rng.choice(S, K, replace=False)

    def loglik(col, s):
        y = th[kk, col] + s * rng.standard_normal(K)
        return -0.5 * (y[:, None] - th[None, :, col]) ** 2 / s**2

    runs = [(loglik(0, 0.5), th[:, [0]], 0.25), (loglik(0, 0.5), th[:, [0]], 0.25), (loglik(1, 0.6), th[:, [1]], 0.36)]

    def width(chosen):
        # re-weighting alone (no ESS guard): the fallback plays no part in this choice
        return dz.expected_width(t, [runs[c][0] for c in chosen], [runs[c][1] for c in chosen], np.ones(1),
                                 min_ess=0.0)[0]

    chosen, widths = dz.greedy_batch(width, 3, 2)
    assert chosen[0] in (0, 1) and chosen[1] == 2
    # exact: Var(t) after theta_1 (0.5) and theta_2 (0.6) measured once each
    exact = 2 * Z94 * math.sqrt(1 / (1 + 1 / 0.25) + 1 / (1 + 1 / 0.36))
    assert widths[1] == pytest.approx(exact, rel=0.06)


# ----------------------------------------------------------------------------- targets, candidates, refusals
def test_parse_target():
    assert dz.parse_target("threshold-at-ne=1.0").n_e == (1.0,)
    assert dz.parse_target("tau_xx").kind == "tau_xx"
    curve = dz.parse_target("threshold-curve", g_e=2)
    assert len(curve.n_e) > 3 and min(curve.n_e) > 0 and max(curve.n_e) < 2
    for bad in ("tau_x", "threshold", "threshold-at-ne=abc", "threshold-at-ne=2.5", "threshold-at-ne=-1"):
        with pytest.raises(dz.DesignError) as err:
            dz.parse_target(bad, g_e=2)
        assert "--target" in str(err.value) and "\n" not in str(err.value)
    assert dz.parse_target("threshold-at-ne=2.5", g_e=None).n_e == (2.5,)  # spelling only


def test_threshold_fluence_target_is_the_threshold_over_the_film_cross_section(monkeypatch):
    """threshold-fluence-at-ne=x: per draw <N_gain>(x) / film cross-section (photons/cm^2), the same draws taken."""
    from bayesgain.model import quantities

    t = dz.parse_target("threshold-fluence-at-ne=1.0")
    assert (t.kind, t.n_e, t.unit) == ("threshold-fluence", (1.0,), "photons/cm^2")
    with pytest.raises(dz.DesignError):
        dz.parse_target("threshold-fluence-at-ne=2.0", g_e=2)
    rng = np.random.default_rng(5)
    thr = 1.0 + 0.01 * rng.standard_normal((2, 50))
    sigma = 3.5e-14 * np.exp(0.05 * rng.standard_normal((2, 50, 1)))
    post = xr.Dataset({"V_C_V": (("chain", "draw", "experiment"), np.full((2, 50, 1), 0.005)),
                       "film_cross_section_cm2": (("chain", "draw", "experiment"), sigma)})
    fit = types.SimpleNamespace(idata={"posterior": post}, spec=types.SimpleNamespace(name="joint"))
    # the threshold's own computation is tested elsewhere: here only what the target does with it
    monkeypatch.setattr(quantities, "threshold_curve",
                        lambda model, n_e, experiment=0: types.SimpleNamespace(values=thr.reshape(-1, 1)))
    take = np.array([3, 0, 77, 41])
    got = dz.target_draws(fit, t, take)
    np.testing.assert_allclose(got[:, 0], thr.ravel()[take] / sigma.ravel()[take], rtol=1e-12)
    assert 2.0e13 < got.min() and got.max() < 4.0e13  # ~1 exciton / 3.5e-14 cm^2
    fit.idata["posterior"] = post.drop_vars("film_cross_section_cm2")
    with pytest.raises(dz.DesignError, match="film cross-section"):
        dz.target_draws(fit, t, take)


@pytest.fixture(scope="module")
def fake_model():
    """Only what candidate_grid reads: the fit's reduced data (SEC sweeps -1.6..-0.3 V, film TA runs)."""
    d = xr.Dataset({
        "ta_potential_V": ("ta_potential", [-1.5, -1.3, -0.3]),
        "ta_potential_experiment": ("ta_potential", [0, 0, 0]),
        "ta_fluence_nominal_photons_cm2": ("ta_fluence", [1e13, 5e13, 1.8e14]),
        "ta_fluence_experiment": ("ta_fluence", [0, 0, 0]),
        "sec_point_potential": ("sec_point", np.linspace(-1.6, -0.3, 27)),
        "sec_point_experiment": ("sec_point", np.zeros(27, int)),
    })
    return types.SimpleNamespace(data=d)


def test_candidate_grid_defaults_and_refusals(fake_model):
    c = dz.candidate_grid(fake_model)
    assert c.potentials_V.min() >= -1.6 - 1e-9 and c.potentials_V.max() <= -0.3 + 1e-9
    assert np.allclose(np.diff(c.potentials_V), 0.025)
    assert np.allclose(c.fluences_photons_cm2, [1e13, 5e13, 1.8e14])
    c = dz.candidate_grid(fake_model, "-1.4:-1.2:0.1", "2e13,4e13")
    assert np.allclose(c.potentials_V, [-1.4, -1.3, -1.2]) and c.pairs.shape == (6, 2)
    for pots, fls, word in (("-1.8:-1.2:0.1", None, "outside the SEC sweeps"), ("0.1", None, "outside the SEC"),
                            ("-1.2:-1.4:0.1", None, "START:STOP:STEP"), (None, "-1e13", "positive"),
                            (None, "1e15", "3x the highest"), (None, "x", "comma list")):
        with pytest.raises(dz.DesignError) as err:
            dz.candidate_grid(fake_model, pots, fls)
        assert word in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(dz.DesignError, match="no film TA"):
        dz.candidate_grid(types.SimpleNamespace(data=xr.Dataset()))


@pytest.fixture(scope="module")
def fake_result():
    rng = np.random.default_rng(0)
    c = dz.Candidates(np.array([-1.4, -1.3, -1.2]), np.array([1e13, 5e13]))
    expected = 0.9 + 0.1 * rng.random((3, 2))
    return dz.DesignResult(dz.parse_target("threshold-at-ne=1.0"), c, 1.0, expected, np.array([1.6, 1.0, 0.4]),
                           [(1, 1), (0, 0)], [0.9, 0.85], np.zeros((3, 2)), 30.0, 600, 32,
                           np.array([[-1.3, 1e13]]), ["a note"], 1.0, 400.0)


def test_outputs_columns_sorting_and_units(fake_result, tmp_path):
    paths = dz.write_design(fake_result, tmp_path, figure=True)
    assert {p.name for p in paths} == {"design.csv", "batch.csv", "design.md", "design.png"}
    with open(tmp_path / "design.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
        assert tuple(rows[0].keys()) == dz.CSV_COLUMNS
    red = [float(r["expected_reduction"]) for r in rows]
    assert red == sorted(red, reverse=True) and len(rows) == 6
    assert [int(r["rank"]) for r in rows] == list(range(1, 7))
    best = np.unravel_index(np.argmin(fake_result.expected_width), (3, 2))
    assert float(rows[0]["potential_V"]) == pytest.approx(fake_result.candidates.potentials_V[best[0]])
    assert float(rows[0]["expected_reduction"]) == pytest.approx(1 - fake_result.expected_width[best], rel=1e-5)
    md = (tmp_path / "design.md").read_text(encoding="utf-8")
    assert "µJ/cm²" in md and "photons/cm²" in md and "V vs" in md
    # 5e13 photons/cm^2 at 400 nm = 5e13 x h c / 400 nm = 24.8 uJ/cm^2, written from the constants, not the module
    uJ = 5e13 * 6.62607015e-34 * 2.99792458e8 / 400e-9 * 1e6
    assert f"{uJ:.3g}" in md
    with open(tmp_path / "batch.csv", newline="") as fh:
        b = list(csv.DictReader(fh))
    assert [float(r["potential_V"]) for r in b] == [-1.3, -1.4]


def _fit_with_draws(rng, V_C, tau):
    """Only what prior_limited_target reads: posterior draws (chain x draw) and the spec's priors."""
    post = xr.Dataset({"V_C_V": (("chain", "draw"), V_C.reshape(4, -1)),
                       "tau_xx_ps": (("chain", "draw"), tau.reshape(4, -1))})
    priors = {"V_C_V": {"dist": "LogNormal", "mu": -5.3, "sigma": 0.5},
              "tau_xx_ps": {"dist": "LogNormal", "mu": 5.7, "sigma": 0.7}}
    return types.SimpleNamespace(idata={"posterior": post}, spec=types.SimpleNamespace(priors=priors))


def test_a_target_that_follows_a_prior_dominated_parameter_is_named(fake_result, tmp_path):
    rng = np.random.default_rng(3)
    S = 4000
    take = np.arange(S)
    tau = np.exp(np.log(310.0) + 0.01 * rng.standard_normal(S))  # pinned by the data: 1 % of a 0.7 log-sd prior
    wide = np.exp(-5.3 + 0.5 * rng.standard_normal(S))  # V_C as wide as its prior
    target = dz.parse_target("threshold-at-ne=1.0")
    # the threshold at <n_e> = 1 falls as V_C rises (measured: correlation -1.00 on batch-A-like films)
    text = dz.prior_limited_target(_fit_with_draws(rng, wide, tau), target, 1.03 + 0.01 * np.log(1.0 / wide), take)
    assert "follows V_C_V" in text and "correlation -1.00" in text and "100 % of its prior" in text
    # the same dependence on a V_C the data pin (a tenth of the prior's width): nothing to say
    narrow = np.exp(np.log(0.005) + 0.05 * rng.standard_normal(S))
    assert dz.prior_limited_target(_fit_with_draws(rng, narrow, tau), target, 1.03 + 0.01 * np.log(1.0 / narrow), take) == ""
    # a target that follows tau_XX, which the data pin: nothing to say either
    assert dz.prior_limited_target(_fit_with_draws(rng, wide, tau), dz.parse_target("tau_xx"), tau, take) == ""
    # design.md gets its own section for the sentence
    import dataclasses

    dz.write_design(dataclasses.replace(fake_result, limited_by=text), tmp_path, figure=False)
    md = (tmp_path / "design.md").read_text(encoding="utf-8")
    assert "## What limits this target" in md and "follows V_C_V" in md


def test_cli_refuses_non_fit_folder_and_unknown_target(tmp_path, capsys):
    empty = tmp_path / "not-a-fit"
    empty.mkdir()
    assert cli.main(["design", str(empty), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert "no saved fit" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()
    assert cli.main(["design", str(empty), "--out", str(tmp_path / "o"), "--target", "gain"]) == 1
    err = capsys.readouterr().err.strip()
    assert "unknown target" in err and len(err.splitlines()) == 1
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "posterior.nc").write_text("not netcdf")
    assert cli.main(["design", str(bad), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert "corrupt or incomplete fit file" in err and len(err.splitlines()) == 1


def test_reweighted_widths_is_the_row_by_row_weighted_hdi():
    rng = np.random.default_rng(11)
    values = np.column_stack([rng.standard_normal(500), rng.exponential(size=500)])
    values[3, 1] = np.inf  # no threshold in one draw
    logw = 0.7 * rng.standard_normal((6, 500))
    widths, ess = dz.reweighted_widths(values, logw)
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    for k in range(6):
        ref = np.mean([dz.weighted_hdi_width(values[:, q], w[k]) for q in range(2)])
        assert widths[k] == pytest.approx(ref, rel=1e-9)
        assert ess[k] == pytest.approx(w[k].sum() ** 2 / (w[k] ** 2).sum())


@pytest.mark.parametrize("pump, tail", [("none", "window-tail"), ("beer-lambert", "window-tail"),
                                        ("none", "window-tail-basis")])
def test_candidate_prediction_is_the_models_own_for_an_existing_run(batch_a, pump, tail):
    """A candidate at an existing run's potential and fluence, with that run's calibration, predicts what the
    fitted model predicts for the run's film TA (window terms, window tail and depth-averaged pump included)."""
    import xarray as xr

    from bayesgain.model.core import GainModel
    from bayesgain.model.spec import spec_from_dict

    spec = spec_from_dict({"components": {"reflection": False},
                           "options": {"pump_attenuation": pump, "discrepancy": tail}})
    gm = GainModel(spec, batch_a)
    m = gm.build()
    names = ["V_1S_V", "V_C_V", "sigma_1S_V", "tau_xx_ps", "tau_x_ps", "gamma_OD", "window_occupancy_bleach_OD",
             "window_shift_loss", "film_cross_section_cm2", "fluence_log_sd", "ta_noise_rel",
             "fluence_log_cal_film"]
    names += (["window_tail_amplitude_rel", "window_tail_time_ps"] if tail == "window-tail"
              else ["window_tail_basis_amplitudes_rel"])
    point = m.initial_point()
    rng = np.random.default_rng(3)
    point = {k: v + 0.05 * rng.standard_normal(np.shape(v)) for k, v in point.items()}  # away from prior centres
    # values, not the random variables: compiling an RV draws it from its prior (a different point each run)
    outs = m.replace_rvs_by_values([m[n] for n in names] + [gm.film_mean_physics])
    vals = m.compile_fn(outs, inputs=m.value_vars, on_unused_input="ignore")(point)
    post = xr.Dataset({n: (("chain", "draw") + m.named_vars_to_dims.get(n, ()), np.asarray(v)[None, None])
                       for n, v in zip(names, vals[:-1])}, coords={k: list(v) for k, v in m.coords.items() if v is not None})
    gm.idata = xr.DataTree.from_dict({"posterior": post})
    mu = vals[-1]
    d = gm.data
    f = 7  # one film TA file
    pts = np.nonzero(gm.file_index == f)[0]
    order = np.argsort(d["ta_point_delay"].values[pts])
    pts = pts[order]
    pot = gm.ta_potential_index[pts[0]]
    V = float(d["ta_potential_V"].values[pot])
    J = float(d["ta_fluence_nominal_photons_cm2"].values[gm.layout.file_fluence[f]])
    delays = d["ta_point_delay"].values[pts]
    pred = dz._Predictor(gm, np.arange(1), dz.Candidates(np.array([V]), np.array([J])), delays)
    z = float(np.asarray(vals[names.index("fluence_log_cal_film")])[f] / np.asarray(vals[names.index("fluence_log_sd")])[0])
    got = pred.delta_A(0, np.array([z]))[0, 0, 0]
    want = mu[pts] - d["ta_potential_A_pre_OD"].values[pot]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9 * float(np.max(np.abs(want))))


def test_widths_of_thinned_draws_are_put_on_all_draws_scale():
    """The design's widths come out on the scale of all the fit's draws: the current width is all draws' 94 % HDI
    (what the fit's report shows), and every expected width keeps its ratio to it."""
    rng = np.random.default_rng(5)
    values = rng.standard_normal((8000, 1)) * 2.0
    thin = values[np.sort(rng.choice(8000, 600, replace=False))]
    current = dz.weighted_hdi_width(thin[:, 0])
    expected = np.array([[0.9, 0.8], [0.7, 1.0]]) * current
    now, after, batch = dz.on_all_draws(values, current, expected, [0.75 * current, 0.6 * current])
    assert now == pytest.approx(dz.weighted_hdi_width(values[:, 0]), rel=1e-12)
    assert now == pytest.approx(2 * 2 * 1.8808, rel=0.03)  # a normal's 94 % HDI: +-1.8808 sd
    assert np.allclose(after / now, [[0.9, 0.8], [0.7, 1.0]]) and np.allclose(np.array(batch) / now, [0.75, 0.6])
