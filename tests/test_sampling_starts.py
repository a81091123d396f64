"""Chain starting points (bayesgain.model.sampling): climbed starts, and starts in a worse basin replaced.

A stand-in for nutpie's compiled model (the fields the start logic reads) over a known density, so
no compilation is needed; the real compiled model is exercised by the fits in test_distributed and
the CLI tests.
"""

import types

import numpy as np
import pytest
from scipy.special import logsumexp

from bayesgain.model import sampling

# two basins in each coordinate: a major mode at +3 and a minor one at -3 with weight 1e-12 (27.6 nats lower)
MAJOR, MINOR, WIDTH, LOG_W_MINOR = 3.0, -3.0, 0.3, np.log(1e-12)


def _logp_grad(x):
    a = -0.5 * ((x - MAJOR) / WIDTH) ** 2
    b = LOG_W_MINOR - 0.5 * ((x - MINOR) / WIDTH) ** 2
    lse = np.logaddexp(a, b)
    wa, wb = np.exp(a - lse), np.exp(b - lse)
    grad = -(wa * (x - MAJOR) + wb * (x - MINOR)) / WIDTH**2
    return np.sum(lse), grad


def _compiled(starts):
    """nutpie's compiled-model fields that the start logic reads: a C callback with nutpie's signature
    (dim, x*, grad*, logp*, user_data*) -> status, its user data and the initial-point function."""
    import numba

    sig = numba.types.int64(numba.types.uint64, numba.types.CPointer(numba.types.double),
                            numba.types.CPointer(numba.types.double), numba.types.CPointer(numba.types.double),
                            numba.types.voidptr)

    @numba.cfunc(sig)
    def logp_c(dim, x_, out_, logp_, user_data_):
        x = numba.carray(x_, (dim,))
        out = numba.carray(out_, (dim,))
        total = 0.0
        for i in range(dim):
            a = -0.5 * ((x[i] - MAJOR) / WIDTH) ** 2
            b = LOG_W_MINOR - 0.5 * ((x[i] - MINOR) / WIDTH) ** 2
            m = max(a, b)
            lse = m + np.log(np.exp(a - m) + np.exp(b - m))
            wa, wb = np.exp(a - lse), np.exp(b - lse)
            out[i] = -(wa * (x[i] - MAJOR) + wb * (x[i] - MINOR)) / WIDTH**2
            total += lse
        numba.carray(logp_, (1,))[0] = total
        return 0 if np.isfinite(total) else 4

    n = len(starts[0])
    return types.SimpleNamespace(compiled_logp_func=logp_c, n_dim=n, user_data=np.zeros(1),
                                 initial_point_func=lambda seed: np.array(starts[seed % 1000], dtype=float))


def test_the_c_callback_matches_the_reference_density():
    f = sampling.logp_and_gradient(_compiled([[0.0, 0.0, 0.0]]))
    x = np.array([2.1, -2.7, 0.3])
    lp, g = f(x)
    want_lp, want_g = _logp_grad(x)
    assert lp == pytest.approx(want_lp, rel=1e-12)
    np.testing.assert_allclose(g, want_g, rtol=1e-12)


def test_the_reference_density_has_the_stated_gap():
    lp_major = _logp_grad(np.array([MAJOR]))[0]
    lp_minor = _logp_grad(np.array([MINOR]))[0]
    assert lp_major - lp_minor == pytest.approx(-LOG_W_MINOR, rel=1e-6)
    assert lp_major == pytest.approx(logsumexp([0.0, LOG_W_MINOR - 0.5 * (6 / WIDTH) ** 2]))


def test_gradient_of_the_reference_density_matches_finite_differences():
    x = np.array([2.1, -2.7, 0.3])
    h = 1e-6
    fd = [(_logp_grad(x + h * e)[0] - _logp_grad(x - h * e)[0]) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(_logp_grad(x)[1], fd, rtol=1e-5)


def test_a_start_draining_into_the_minor_basin_is_replaced_by_the_best_start():
    starts = [[2.0, 2.5], [-2.4, 2.6], [3.5, 2.2], [2.8, -3.3]]  # chains 1 and 3 begin in a minor basin
    compiled = _compiled(starts)
    got, report = sampling.optimised_starts(compiled, chains=4, seed=0, at_optimum=False)
    assert report["replaced_chains"] == [1, 3]
    best = report["best_chain"]
    assert best in (0, 2)
    for c, x in enumerate(got):
        # chains keep their own (unclimbed) start; replaced ones take the best climb's start
        np.testing.assert_array_equal(x, starts[best] if c in (1, 3) else starts[c])
    assert all(a >= b for a, b in zip(report["logp_climbed"], report["logp_start"]))
    # the climbs end at the optima: the replaced chains' ~27.6 nats (one coordinate in the minor mode) below
    gap = report["logp_climbed"][best] - report["logp_climbed"][1]
    assert gap == pytest.approx(-LOG_W_MINOR, abs=0.01)
    text = sampling.report_text(report)
    assert "chains [1, 3]" in text and "27.6" in text


def test_climbs_on_threads_give_the_sequential_climbs_in_chain_order(monkeypatch):
    """The climbs of a numba model run on the cores at once; each chain still gets its own climb, bit for bit."""
    import os
    import threading

    starts = [np.array(x) for x in ([2.0, 2.5], [-2.4, 2.6], [3.5, 2.2], [2.8, -3.3], [-1.0, 0.5])]
    f = sampling.logp_and_gradient(_compiled(starts))
    threads, both_running = set(), threading.Barrier(2, timeout=30)

    def recorded(x):  # each thread's first call waits for the other's: fails unless two climb at once
        name = threading.current_thread().name
        if name not in threads:
            threads.add(name)
            both_running.wait()
        return f(x)

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    sequential = sampling._climbs(f, starts, 2000, threads=False)
    threaded = sampling._climbs(recorded, starts, 2000, threads=True)
    assert len(threads) == 2 and all(t.startswith("bayesgain-climb") for t in threads)
    for (xs, lps, lp0s), (xt, lpt, lp0t) in zip(sequential, threaded):
        np.testing.assert_array_equal(xt, xs)
        assert (lpt, lp0t) == (lps, lp0s)
    # the chains' own basins: chain 1 ends in the minor basin of its first coordinate, chain 0 does not
    assert threaded[1][0][0] == pytest.approx(MINOR, abs=1e-3)
    assert threaded[0][0][0] == pytest.approx(MAJOR, abs=1e-3)


def test_starts_in_one_basin_keep_their_own_points():
    starts = [[2.0, 2.5], [3.9, 2.4]]
    got, report = sampling.optimised_starts(_compiled(starts), chains=2, seed=0, at_optimum=False)
    assert report["replaced_chains"] == []
    np.testing.assert_array_equal(got[0], starts[0])
    np.testing.assert_array_equal(got[1], starts[1])


def test_by_default_chains_start_where_their_climb_ends():
    starts = [[2.0, 2.5], [-2.4, 2.6], [3.5, 2.2]]
    got, report = sampling.optimised_starts(_compiled(starts), chains=3, seed=0)
    assert report["replaced_chains"] == [1]
    for x in got:  # chain 1 takes the best climb's end, the others their own: all at the major mode
        np.testing.assert_allclose(x, [MAJOR, MAJOR], atol=1e-4)
    assert "where the climb ended" in sampling.report_text(report)


def test_an_unknown_start_rule_is_refused():
    with pytest.raises(ValueError, match="optimum, checked, jitter"):
        sampling.sample_nutpie(None, object(), starts="map")


def test_a_small_gap_threshold_is_respected():
    compiled = _compiled([[2.0, 2.5], [-2.4, 2.6]])
    _, report = sampling.optimised_starts(compiled, chains=2, seed=0, max_gap_nats=30.0)
    assert report["replaced_chains"] == []  # 27.6 nats < 30: both basins kept


def test_with_starts_hands_out_the_points_in_turn():
    compiled = types.SimpleNamespace(initial_point_func=None)
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Fake:
        initial_point_func: object

    fake = sampling.with_starts(Fake(initial_point_func=None), [np.zeros(2), np.ones(2)])
    assert compiled.initial_point_func is None
    first, second, third = (fake.initial_point_func(s) for s in (7, 7, 7))
    np.testing.assert_array_equal(first, np.zeros(2))
    np.testing.assert_array_equal(second, np.ones(2))
    np.testing.assert_array_equal(third, np.zeros(2))


def _layout(m):
    names = [m.rvs_to_values[v].name for v in m.free_RVs]
    slices, start = [], 0
    for v in m.free_RVs:
        n = int(np.prod(m.initial_point()[m.rvs_to_values[v].name].shape) or 1)
        slices.append(slice(start, start + n))
        start += n
    return types.SimpleNamespace(shape_info=(names, slices, None), n_dim=start), slices


def test_hyperparameters_are_the_parents_of_other_free_variables_or_of_their_scales():
    import pymc as pm

    with pm.Model() as m:
        sd = pm.HalfNormal("sd", 0.1)
        mu = pm.Normal("mu", 0.0, 1.0)
        pm.Normal("c", mu, sd, shape=3)
        pm.Normal("z", 0.0, 1.0, shape=2)
        shift = pm.LogNormal("shift", 0.0, 1.0)
        pm.Normal("u", 1.0 + shift, 2.0)  # a reparametrisation's shift: no funnel
        nu = pm.Gamma("nu", 2.0, 0.1)
        pm.StudentT("t", nu=nu, mu=0.0, sigma=1.0)  # an upstream shape parameter counts, as anything not a location
    compiled, slices = _layout(m)  # sd_log__, mu, c, z, shift_log__, u, nu_log__, t
    assert sampling.hyperparameter_slices(m, compiled, scale_only=True) == [slices[0], slices[6]]
    # the default (validated by the mismatch scenarios) counts a location's parents too
    assert sampling.hyperparameter_slices(m, compiled) == [slices[0], slices[1], slices[4], slices[6]]


def test_distribution_parameter_names_line_up_with_the_inputs():
    import pymc as pm

    for rv, names in [(pm.Normal.dist(0.0, 1.0), ("loc", "scale")), (pm.LogNormal.dist(0.0, 1.0), ("mean", "sigma")),
                      (pm.StudentT.dist(nu=3.0, mu=0.0, sigma=1.0), ("df", "loc", "scale"))]:
        got = sampling._parameter_names(rv.owner.op)
        assert got == names and len(got) == len(rv.owner.inputs[2:])


def test_hyperparameters_keep_their_jittered_start_at_the_optimum():
    starts = [[2.0, 2.5], [2.6, 3.3]]
    got, _ = sampling.optimised_starts(_compiled(starts), chains=2, seed=0, keep_jittered=[slice(1, 2)])
    for c in range(2):
        assert got[c][0] == pytest.approx(MAJOR, abs=1e-4)  # climbed
        assert got[c][1] == starts[c][1]  # kept


def _tree(lp_by_chain, x_by_chain):
    import xarray as xr

    lp = np.asarray(lp_by_chain, float)
    x = np.asarray(x_by_chain, float)
    c, d = lp.shape
    coords = {"chain": np.arange(c), "draw": np.arange(d)}
    return xr.DataTree.from_dict({
        "posterior": xr.Dataset({"x": (("chain", "draw"), x)}, coords=coords, attrs={"who": "nutpie"}),
        "sample_stats": xr.Dataset({"logp": (("chain", "draw"), lp),
                                    "diverging": (("chain", "draw"), np.zeros((c, d), bool))}, coords=coords)})


def test_stuck_chain_gaps_finds_a_chain_far_below_the_best(rng):
    from bayesgain.model.sampling import stuck_chain_gaps

    lp = rng.normal(0.0, 2.0, (4, 200))
    lp[2] -= 114.0
    stuck, gaps, best = stuck_chain_gaps(_tree(lp, lp), min_gap_nats=20.0)
    assert stuck == [2] and gaps[2] == pytest.approx(114.0, abs=1.0) and best != 2
    lp[2] += 110.0  # 4 nats: within the spread of a mixing chain
    assert stuck_chain_gaps(_tree(lp, lp), min_gap_nats=20.0)[0] == []


def test_replace_chain_swaps_one_chain_in_every_group_and_keeps_the_rest():
    from bayesgain.model.sampling import _replace_chain

    old = _tree(np.zeros((3, 5)), np.arange(15.0).reshape(3, 5))
    new = _tree(np.full((1, 5), 7.0), np.full((1, 5), -1.0))
    out = _replace_chain(old, 1, new)
    np.testing.assert_array_equal(out["posterior"]["x"].values[[0, 2]], old["posterior"]["x"].values[[0, 2]])
    np.testing.assert_array_equal(out["posterior"]["x"].values[1], -1.0)
    np.testing.assert_array_equal(out["sample_stats"]["logp"].values[1], 7.0)
    assert list(out["posterior"]["chain"].values) == [0, 1, 2] and out["posterior"].attrs["who"] == "nutpie"
    np.testing.assert_array_equal(old["posterior"]["x"].values[1], np.arange(5.0, 10.0))  # input untouched


def test_a_stuck_chain_is_run_again_and_replaced(monkeypatch):
    """sample_nutpie on a tiny model, with chain 1 declared stuck: it is sampled anew and said so."""
    import pymc as pm

    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0, shape=2)
    kw = dict(draws=30, tune=30, chains=2, seed=3, cores=1, progress=False)
    plain, _ = sampling.sample_nutpie(model, rerun_stuck=False, **kw)
    calls = []

    def declared_stuck(idata, min_gap_nats=5.0):
        calls.append(min_gap_nats)
        return [1], np.array([0.0, 50.0]), 0

    monkeypatch.setattr(sampling, "stuck_chain_gaps", declared_stuck)
    idata, report = sampling.sample_nutpie(model, **kw)
    assert calls == [sampling.RERUN_GAP_NATS]
    assert report["rerun_chains"] == [(1, 50.0, 0)]
    assert "chain 1 held a mode 50 nats below chain 0" in idata.attrs["chain_starts"]
    x_new, x_old = idata["posterior"]["x"].values, plain["posterior"]["x"].values
    assert x_new.shape == x_old.shape == (2, 30, 2)
    np.testing.assert_array_equal(x_new[0], x_old[0])  # the good chain is kept as it was
    assert not np.array_equal(x_new[1], x_old[1])  # the stuck one was sampled again
    assert idata["sample_stats"]["logp"].shape == (2, 30)


def test_each_chain_gets_its_own_start_whatever_order_the_threads_ask():
    """nutpie's threads ask for the starts in a racy order; chain c (known by its seed) still gets start c."""
    import dataclasses

    starts = [np.full(2, 10.0 * c) for c in range(3)]

    @dataclasses.dataclass(frozen=True)
    class Fake:
        initial_point_func: object

    fake = sampling.with_starts(Fake(initial_point_func=None), starts, chain_seeds=[11, 22, 33])
    for seed, c in ((33, 2), (11, 0), (22, 1), (33, 2)):
        np.testing.assert_array_equal(sampling.initial_point(fake, seed), starts[c])
    # a seed that is not a chain's (a retried start): the starts in turn
    np.testing.assert_array_equal(sampling.initial_point(fake, 99), starts[0])


def test_chain_seeds_are_read_off_and_pin_the_starts_in_a_real_racy_run():
    """With nutpie on 2 cores and random delays in the start requests, every chain still begins at its own start."""
    import dataclasses
    import random
    import time

    import pymc as pm

    with pm.Model() as model:  # four narrow modes 100 sd apart: a chain stays in the mode it starts in
        pm.NormalMixture("x", w=np.full(4, 0.25), mu=np.array([0.0, 100.0, 200.0, 300.0]), sigma=1.0)
    compiled = sampling.compile_nutpie(model)
    seeds = sampling.chain_init_seeds(compiled, 4, seed=5)
    assert seeds is not None and len(set(seeds)) == 4
    assert sampling.chain_init_seeds(compiled, 4, seed=5) == seeds  # a fixed function of (seed, chain)
    starts = [np.array([100.0 * c + 0.5]) for c in range(4)]  # off-centre: nutpie refuses a zero gradient
    pinned = sampling.with_starts(compiled, starts, seeds)
    inner = pinned.initial_point_func
    rng = random.Random(0)

    def slow(seed):  # make the threads' order vary from run to run
        time.sleep(rng.random() * 0.05)
        return inner(seed)

    racy = dataclasses.replace(pinned, initial_point_func=slow)
    import nutpie

    for _ in range(3):
        tr = nutpie.sample(racy, draws=5, tune=5, chains=4, cores=2, seed=5, progress_bar=False)
        np.testing.assert_allclose(tr["posterior"]["x"].values.T, [[0.0, 100.0, 200.0, 300.0]] * 5, atol=8.0)


def test_unpinned_starts_are_said_in_the_report():
    report = {"logp_climbed": [0.0, -1.0], "best_chain": 0, "replaced_chains": [], "max_gap_nats": 20.0,
              "maxiter": 10, "starts_pinned": False}
    assert "same seed may give other draws" in sampling.report_text(report)
    assert "same seed" not in sampling.report_text({**report, "starts_pinned": True})


def test_same_seed_same_posterior_with_climbed_starts_on_two_cores():
    import pymc as pm

    with pm.Model() as model:
        sd = pm.HalfNormal("sd", 1.0)
        mu = pm.Normal("mu", 0.0, 2.0, shape=3)
        pm.Normal("y", mu, sd, observed=np.array([[0.3, -1.2, 2.0], [0.5, -0.8, 1.7]]))
    compiled = sampling.compile_nutpie(model)
    kw = dict(draws=50, tune=50, chains=4, seed=11, cores=2, progress=False)
    runs = [sampling.sample_nutpie(model, compiled, **kw) for _ in range(3)]
    for idata, report in runs:
        assert report["starts_pinned"]
        np.testing.assert_array_equal(idata["posterior"]["mu"].values, runs[0][0]["posterior"]["mu"].values)
    other, _ = sampling.sample_nutpie(model, compiled, **{**kw, "seed": 12})
    assert not np.array_equal(other["posterior"]["mu"].values, runs[0][0]["posterior"]["mu"].values)
