"""nutpie's two PyTensor backends (bayesgain.model.sampling.compile_nutpie): numba and the optional jax.

The jax model is a Python-callback model (nutpie's PyFuncModel) with other fields than the numba one;
the start logic (log density, initial points, flat layout, fixed starts) must read both the same way.
A small model with a transform, a vector and a scalar keeps the compiles short.
"""

import sys

import numpy as np
import pytest

from bayesgain.model import sampling


def _model():
    import pymc as pm

    with pm.Model() as model:
        sd = pm.HalfNormal("sd", 1.0)
        mu = pm.Normal("mu", 0.0, 2.0, shape=3)
        pm.Normal("y", mu, sd, observed=np.array([[0.3, -1.2, 2.0], [0.5, -0.8, 1.7]]))
        pm.Deterministic("mu_sum", mu.sum())
    return model


@pytest.fixture(scope="module")
def both():
    pytest.importorskip("jax")
    model = _model()
    return model, sampling.compile_nutpie(model, "numba"), sampling.compile_nutpie(model, "jax")


def test_unknown_backend_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="numba, jax"):
        sampling.compile_nutpie(_model(), backend="c")


def test_jax_missing_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # import jax -> ImportError
    with pytest.raises(ImportError, match=r"bayesgain\[jax\]"):
        sampling.compile_nutpie(_model(), backend="jax")


def test_pymc_sampler_refuses_a_nutpie_backend():
    from bayesgain.model.core import GainModel

    from .conftest import BATCH_A

    gm = GainModel("sec-only", BATCH_A)
    with pytest.raises(ValueError, match="nutpie sampler only"):
        gm.fit(sampler="pymc", backend="jax", draws=5, tune=5, chains=1, progress=False)


def test_both_backends_give_the_same_log_density_gradient_and_layout(both):
    model, numba_model, jax_model = both
    f_n, f_j = sampling.logp_and_gradient(numba_model), sampling.logp_and_gradient(jax_model)
    names_n, slices_n = sampling.flat_layout(numba_model)
    names_j, slices_j = sampling.flat_layout(jax_model)
    assert names_n == ["sd_log__", "mu"] and slices_n == [slice(0, 1), slice(1, 4)]  # model.free_RVs order
    # jax compiles a frozen copy whose flat vector may be ordered otherwise: map the numba point onto it
    assert sorted(names_j) == sorted(names_n)
    where = dict(zip(names_n, slices_n))
    perm = np.concatenate([np.arange(where[n].start, where[n].stop) for n in names_j])
    assert sorted(perm) == list(range(4))
    fl = model.compile_logp(jacobian=True)
    for x in np.random.default_rng(0).normal(size=(4, 4)):
        lp_n, g_n = f_n(x)
        lp_j, g_j = f_j(x[perm])
        np.testing.assert_allclose(lp_n, fl({"sd_log__": x[0], "mu": x[1:]}), rtol=1e-12)  # PyMC's own value
        np.testing.assert_allclose(lp_j, lp_n, rtol=1e-12)
        np.testing.assert_allclose(g_j, g_n[perm], rtol=1e-10, atol=1e-12)
        # and the gradient is the derivative of that log density (central differences)
        h = 1e-6
        fd = [(f_j(x[perm] + h * e)[0] - f_j(x[perm] - h * e)[0]) / (2 * h) for e in np.eye(4)]
        np.testing.assert_allclose(g_j, fd, rtol=1e-6, atol=1e-6)
    # the jittered starts: a function of the seed (the frozen copy draws the jitter in its own order, so the
    # two backends' points differ)
    a, b = sampling.initial_point(jax_model, 5), sampling.initial_point(jax_model, 6)
    np.testing.assert_array_equal(a, sampling.initial_point(jax_model, 5))
    assert a.shape == (4,) and np.all(np.isfinite(a)) and not np.array_equal(a, b)


def test_fixed_starts_reach_the_jax_sampler(both):
    model, _, jax_model = both
    pinned = sampling.with_starts(jax_model, [np.array([0.1, 1.0, 2.0, 3.0]), np.array([0.2, -1.0, -2.0, -3.0])])
    assert jax_model._make_initial_points is not pinned._make_initial_points  # the input is not changed
    np.testing.assert_array_equal(sampling.initial_point(pinned, 0), [0.1, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(sampling.initial_point(pinned, 0), [0.2, -1.0, -2.0, -3.0])


def test_sample_nutpie_with_jax_matches_the_analytic_posterior_mean(both):
    model, _, jax_model = both
    idata, report = sampling.sample_nutpie(model, jax_model, draws=400, tune=300, chains=2, seed=2, cores=1,
                                           progress=False)
    post = idata["posterior"]
    assert report["best_chain"] in (0, 1) and "chain_starts" in idata.attrs
    # mu_j's posterior mean is close to the data mean (prior sd 2 >> sd / sqrt(2)); mu_sum is recorded
    np.testing.assert_allclose(post["mu"].mean(("chain", "draw")), [0.4, -1.0, 1.85], atol=0.25)
    np.testing.assert_allclose(post["mu_sum"].values, post["mu"].values.sum(-1), rtol=1e-12)
    # same seed, same draws
    again, _ = sampling.sample_nutpie(model, jax_model, draws=400, tune=300, chains=2, seed=2, cores=1,
                                      progress=False)
    np.testing.assert_array_equal(again["posterior"]["mu"].values, post["mu"].values)
