"""Measured gain thresholds (bayesgain.model.measured_thresholds) on fake posteriors with known crossings.

The references are written straight from the definitions: a Poisson average of a per-QD absorption ladder
(tests/reference.py) and its zero by scipy's brentq, not the module's grid search.
"""

import numpy as np
import pytest
from scipy import optimize

from bayesgain.model import measured_thresholds as mt

from . import reference as ref

FLUENCE_N = np.geomspace(0.3, 7.0, 9)  # batch A's nine film fluences, <N> at the front


def _tc_ladder(f, extra=0.0, N_max=80):
    """Per-QD absorption b_N = sum_n f_n A*(N, n) (eq. S6), minus ``extra`` x min(N, 4) in charged QDs."""
    return np.array([sum(f[n] * (ref.band_edge(N, n) - extra * min(N, 4) * (n >= 1)) for n in range(3))
                     for N in range(N_max + 1)])


def _curve(mean, ladder):
    return np.array([sum(ref.poisson(N, m) * b for N, b in enumerate(ladder)) for m in np.atleast_1d(mean)])


def _root(ladder):
    return optimize.brentq(lambda m: _curve(m, ladder)[0], 1e-9, 20.0, xtol=1e-12)


def _fake_posterior(ladder, scale_od=1e-3, noise_rel=0.01, draws=400, cal_sd=0.03, seed=1, pots=1, file_sd=0.01):
    """Per-draw <N> (true <N> x a per-draw calibration spread), observations and sd of one or more potentials."""
    rng = np.random.default_rng(seed)
    true_N = np.tile(FLUENCE_N, pots)
    y = scale_od * _curve(true_N, ladder) / 8.0 + rng.normal(0.0, noise_rel * scale_od, true_N.size)
    N = true_N[None, :] * np.exp(rng.normal(0.0, cal_sd, (draws, 1)) + rng.normal(0.0, file_sd, (draws, true_N.size)))
    return N, y, np.full(true_N.size, noise_rel * scale_od), scale_od * ladder[0] / 8.0


@pytest.mark.parametrize("n_e", [0.0, 0.5, 0.94, 1.5, 1.9])
def test_ladder_holds_transition_counting_exactly(n_e):
    # noise-free transition-counting curves at any doping are inside the family: crossing to 1e-3
    f = np.array([1 - n_e, n_e, 0.0]) if n_e <= 1 else np.array([0.0, 2 - n_e, n_e - 1])
    ladder = _tc_ladder(f)
    A = _curve(FLUENCE_N, ladder)
    d = mt.fit_ladder(FLUENCE_N, A, np.ones_like(A), ladder[0], 4)
    got = mt.crossings(ladder[0], d, FLUENCE_N.max())
    assert abs(got - _root(ladder)) < 1e-3


def test_recovers_known_crossing_within_interval():
    f = np.array([0.06, 0.94, 0.0])
    ladder = _tc_ladder(f, extra=2.0)  # a ladder transition counting does not have
    truth = _root(ladder)
    N, y, sd, a_pre = _fake_posterior(ladder)
    meas = mt.measured_thresholds_from_draws(N, y, sd, [a_pre], np.zeros(N.shape[1], int), 4, seed=3)
    assert np.isfinite(meas).all()
    row = mt.compare(meas, np.full_like(meas, truth))[0]
    assert row["measured_hdi_low"] <= truth <= row["measured_hdi_high"]
    assert abs(row["measured_median"] - truth) < 0.05
    assert not row["excludes_zero"]  # measured against the true threshold: no deviation


def test_bootstrap_widens_the_interval():
    ladder = _tc_ladder(np.array([1.0, 0.0, 0.0]))
    # every draw the same <N>: without the replicate noise the curve fit's own uncertainty would be lost
    N, y, sd, a_pre = _fake_posterior(ladder, cal_sd=0.0, file_sd=0.0)
    pof = np.zeros(N.shape[1], int)
    fixed = mt.measured_thresholds_from_draws(N, y, sd, [a_pre], pof, 4, bootstrap=False)
    boot = mt.measured_thresholds_from_draws(N, y, sd, [a_pre], pof, 4, seed=2)
    assert np.std(fixed) < 1e-9 < 0.005 < np.std(boot)


def test_no_crossing_in_measured_range_gives_nan_with_reason():
    ladder = _tc_ladder(np.array([1.0, 0.0, 0.0]))  # neutral: threshold 1.54
    N, y, sd, a_pre = _fake_posterior(ladder)
    keep = FLUENCE_N < 1.0  # only the three weakest fluences: A* stays positive, nothing to extrapolate from
    meas = mt.measured_thresholds_from_draws(N[:, keep], y[keep], sd[keep], [a_pre], np.zeros(keep.sum(), int), 4)
    assert np.isnan(meas).mean() > 0.9
    screened, reasons = mt.screen(meas, np.array([keep.sum()]), N[:, keep].max(axis=1, keepdims=True))
    assert np.isnan(screened).all()
    assert "does not reach 0 within the measured <N> range" in reasons[0] and "not extrapolated" in reasons[0]
    row = mt.compare(screened, np.full_like(screened, 1.54))[0]
    assert np.isnan(row["measured_median"]) and not row["excludes_zero"]


def test_single_file_potential_is_refused_with_reason():
    meas = np.full((50, 1), np.nan)
    _, reasons = mt.screen(meas, np.array([1]), np.ones((50, 1)))
    assert "a curve needs two or more" in reasons[0]


def test_difference_flags_a_deviation_and_not_a_match():
    # two potentials: one charged (the paper's 0.80 against 1.06 at <n_e> = 0.94), one neutral (matched)
    f_charged, f_neutral = np.array([0.06, 0.94, 0.0]), np.array([1.0, 0.0, 0.0])
    deviating, neutral = _tc_ladder(f_charged, extra=2.0), _tc_ladder(f_neutral)
    N1, y1, sd1, a1 = _fake_posterior(deviating, seed=5)
    N2, y2, sd2, a2 = _fake_posterior(neutral, seed=6)
    N = np.concatenate([N1, N2], axis=1)
    pof = np.repeat([0, 1], FLUENCE_N.size)
    meas = mt.measured_thresholds_from_draws(N, np.concatenate([y1, y2]), np.concatenate([sd1, sd2]), [a1, a2], pof,
                                             4, seed=7)
    # transition counting's prediction (no extra emission), with a small posterior spread
    rng = np.random.default_rng(8)
    pred = np.array([_root(_tc_ladder(f_charged)), _root(neutral)])[None, :] * np.exp(rng.normal(0, 0.01, (400, 1)))
    rows = mt.compare(meas, pred)
    assert rows[0]["excludes_zero"] and rows[0]["difference_hdi_high"] < 0
    assert not rows[1]["excludes_zero"]
    assert abs(rows[0]["difference_median"] - (_root(deviating) - _root(_tc_ladder(f_charged)))) < 0.05


def test_already_transparent_potential_has_zero_threshold():
    d = np.array([[1.0, 0.5, 0.2, 0.1]])
    assert mt.crossings(np.array([-1e-4]), d, np.array([5.0]))[0] == 0.0


def test_bad_noise_is_refused():
    with pytest.raises(ValueError, match="noise_sd"):
        mt.measured_thresholds_from_draws(np.ones((2, 3)), np.ones(3), np.zeros(3), [1.0], np.zeros(3, int), 4)


# the window terms at transition counting's own scale (gamma = A_0 / g_e g_h, no occupancy bleach, no shift
# loss) and a 1 % scatter: then the model's film TA is transition counting through its cascade
WINDOW_AT_TRANSITION_COUNTING = {"gamma_scale": 1.0, "window_bleach_per_electron_rel": 1.0, "window_shift_loss": 0.0,
                                 "ta_noise_rel": 0.01}


@pytest.fixture(scope="module")
def model_at_one_point(batch_a):
    """Gain + dynamics model of batch A whose 'posterior' is one point repeated (the prior's centre, window terms
    at transition counting's scale), with the film TA replaced by that point's own noise-free physics: the
    measured threshold must then agree with transition counting's prediction of the read-out."""
    import tomllib

    import xarray as xr

    from bayesgain.model.checks import _physics_mean_and_sd
    from bayesgain.model.core import GainModel
    from bayesgain.model.spec import load_spec, spec_from_dict

    d = tomllib.loads(load_spec("joint").to_toml())
    d["components"].update(cross_section=False)
    d["priors"] = {k: v for k, v in d["priors"].items() if k not in ("solution_gamma_scale", "solution_noise_rel")}
    gm = GainModel(spec_from_dict(d), batch_a)
    gm.build()
    # the prior's centre (PyMC's initial point, constrained), with every deterministic computed from it
    import pytensor

    from bayesgain.physics.api import numpy_mode

    model = gm.model
    point = model.initial_point()
    free = model.free_RVs
    values = []
    for rv in free:
        v = model.rvs_to_values[rv]
        tr = model.rvs_to_transforms.get(rv)
        x = point[v.name]
        values.append(np.asarray(tr.backward(x, *rv.owner.inputs).eval(mode=numpy_mode()) if tr is not None else x,
                                 dtype=rv.dtype))
        if rv.name in WINDOW_AT_TRANSITION_COUNTING:
            values[-1] = np.full_like(values[-1], WINDOW_AT_TRANSITION_COUNTING[rv.name])
    dets = pytensor.function(free, model.deterministics, mode=numpy_mode(), on_unused_input="ignore")(*values)
    draws = 300
    post = xr.Dataset({rv.name: (("chain", "draw") + tuple(model.named_vars_to_dims.get(rv.name, ())),
                                 np.broadcast_to(np.asarray(val), (1, draws) + np.shape(val)))
                       for rv, val in zip(free + model.deterministics, values + list(dets))},
                      coords={k: v for k, v in gm.coords.items()})
    gm.idata = xr.DataTree.from_dict({"posterior": post})
    mu, sd = _physics_mean_and_sd(gm, 1)
    # the observations carry the reflection error the model subtracts; the estimator adds the draw's back
    refl = post["reflection_scale"].values[0, 0][gm.ta_potential_index] if "reflection_scale" in post else 1.0
    gm.data["ta_A"].values[:] = mu[0] - (refl - 1.0) * gm.data["ta_reflection_sensitivity"].values
    return gm


def test_model_measurement_agrees_with_its_own_prediction(model_at_one_point):
    rows, ds = mt.threshold_comparison(model_at_one_point, max_samples=300)
    reported = [r for r in rows if np.isfinite(r["measured_median"])]
    assert len(reported) >= 4, rows
    for r in reported:
        assert not r["excludes_zero"], r
        assert abs(r["difference_median"]) < 0.02, r
    assert set(mt.COLUMNS) <= set(rows[0])
    assert "5" in ds.attrs["read_out"]


def test_model_measurement_flags_a_stronger_gain(model_at_one_point):
    gm = model_at_one_point
    original = gm.data["ta_A"].values.copy()
    try:
        # 30 % more bleach and gain than the model says at every potential: the measured crossing moves down
        pot = gm.ta_potential_index
        a_pre = gm.data["ta_potential_A_pre_OD"].values[pot]
        gm.data["ta_A"].values[:] = a_pre + 1.3 * (original - a_pre)
        rows, _ = mt.threshold_comparison(gm, max_samples=300)
    finally:
        gm.data["ta_A"].values[:] = original
    charged = [r for r in rows if np.isfinite(r["measured_median"]) and 0.3 < r["n_e"] < 1.7]
    assert charged and all(r["excludes_zero"] and r["difference_median"] < 0 for r in charged), rows


def test_prediction_at_time_zero_is_transition_counting(model_at_one_point):
    # with A_pre on transition counting's own scale, the read-out prediction at t = 0 is the eq. S17 threshold
    from bayesgain.model.quantities import thresholds_at_potentials

    gm = model_at_one_point
    d = gm.data
    post = gm.idata["posterior"]
    f = post["ta_charge_fractions"].values[0, 0]
    scale = float(d["experiment_film_A0_1S_OD"].values[0]) / 8.0
    original = d["ta_potential_A_pre_OD"].values.copy()
    take = np.arange(3)
    try:
        d["ta_potential_A_pre_OD"].values[:] = scale * (f @ np.array([8.0, 4.0, 0.0]))
        got = mt.predicted_readout_thresholds(gm, 0, take, 0.0, np.full(3, 4.0), n_grid=801)
    finally:
        d["ta_potential_A_pre_OD"].values[:] = original
    want = thresholds_at_potentials(gm)["threshold_mean_excitons"].values[take]
    assert np.allclose(got, want, atol=2e-3), (got[0], want[0])


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["charged-extra-emission", "matched"])
def test_scenario_fit_shows_a_departure_only_where_there_is_one(tmp_path, scenario):
    """Joint fit of a SYNTHETIC scenario (two short chains, ~10 min each on two busy cores).

    Measured with this design (seed 3, 300 + 300 draws): charged-extra-emission -0.26 [-0.31, -0.24] excitons/QD at
    <n_e> = 0.91 (true 0.84 against transition counting's 1.07 at 5 ps), every potential flagged (the fit's <N>
    calibration bends too, so even the neutral film reads 0.16 low); matched: every difference within +-0.02,
    none flagged, every true window threshold inside the measured HDI."""
    import tomllib

    from bayesgain.model.core import GainModel
    from bayesgain.scenarios import simulate_scenario

    folder = simulate_scenario(scenario, tmp_path / scenario, seed=3)
    gm = GainModel("joint", folder)
    gm.fit(draws=300, tune=300, chains=2, seed=0, progress=False)
    rows, _ = mt.threshold_comparison(gm)
    truth = tomllib.loads((folder / "truth.toml").read_text())["film_threshold_window_mean_excitons"]
    if scenario == "matched":
        assert not any(r["excludes_zero"] for r in rows), rows
        inside = [r["measured_hdi_low"] <= truth[f"{r['potential_V']:+.3f}V"] <= r["measured_hdi_high"] for r in rows]
        assert sum(inside) >= len(rows) - 1, rows
    else:
        i = int(np.argmin([abs(r["n_e"] - 0.94) for r in rows]))
        assert rows[i]["excludes_zero"] and rows[i]["difference_hdi_high"] < -0.1, rows[i]


def test_report_writes_the_exact_columns_and_names_the_flagged_potentials(model_at_one_point):
    import io

    import pandas as pd

    from bayesgain import report

    gm = model_at_one_point
    gm.convergence = None  # never sampled: the report marks it not converged
    cache = report._Cache(gm)
    rows, ds = cache.measured_thresholds()
    text = report._measured_csv_text(gm, rows, ds)
    table = pd.read_csv(io.StringIO(text), comment="#")
    assert list(table.columns) == mt.COLUMNS and len(table) == len(rows)
    assert "SYNTHETIC" in text and "measured delay nearest 5 ps" in text
    section = "\n".join(report._section_measured(gm, cache))
    assert "includes 0 at every potential" in section and "predicted t = 0" in section
    flagged = dict(rows[0], excludes_zero=True, difference_median=-0.3)
    cache._c[("measured_thresholds", 0)] = (True, ([flagged] + rows[1:], ds))
    assert f"excludes 0 at {rows[0]['potential_V']:+.3f} V" in "\n".join(report._section_measured(gm, cache))


def test_a_departure_is_flagged_on_the_simultaneous_interval_not_on_one_94_percent_interval():
    # six potentials, 4000 draws of the difference: potential 0 sits 2.2 sd above 0 (its 94 % HDI excludes 0, the
    # simultaneous 99 % one does not), potential 1 sits 5 sd below (flagged either way), the others at 0
    rng = np.random.default_rng(0)
    shift = np.array([2.2, -5.0, 0.0, 0.0, 0.0, 0.0]) * 0.01
    pred = np.full((4000, 6), 1.0)
    meas = pred + shift + 0.01 * rng.standard_normal((4000, 6))
    rows = mt.compare(meas, pred)
    assert rows[0]["difference_hdi_low"] > 0 and not rows[0]["excludes_zero"]
    assert rows[0]["difference_sim_low"] < 0 < rows[0]["difference_sim_high"]
    assert rows[1]["excludes_zero"] and rows[1]["difference_sim_high"] < 0
    assert not any(r["excludes_zero"] for r in rows[2:])
