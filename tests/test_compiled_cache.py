"""The compiled log density kept per model structure (bayesgain.model.compiled_cache).

A tiny model (a line with Normal noise and an index array) stands in for the joint model: what is checked
is the lifting (same log density, data out of the graph), the structure key (same for other numbers, other
for other structure) and the reuse (no second compile, the new data really used).
"""

import numpy as np
import pymc as pm
import pytest

from bayesgain.model import compiled_cache, sampling


def _model(y, x, groups=(0, 1, 0, 1), scale=1.0):
    with pm.Model() as m:
        a = pm.Normal("a", 0.0, 10.0)
        b = pm.Normal("b", 0.0, 10.0, shape=2)
        s = pm.HalfNormal("s", scale)
        pm.Normal("y", a * np.asarray(x) + b[np.asarray(groups)], s, observed=np.asarray(y))
    return m


X = np.array([0.0, 1.0, 2.0, 3.0])
Y1 = np.array([0.1, 1.2, 1.9, 3.2])
Y2 = np.array([5.0, -1.0, 2.5, 0.3])


def test_lifting_keeps_the_log_density_and_moves_the_arrays_out():
    m = _model(Y1, X)
    lifted, key, values = compiled_cache.lift_data(m)
    assert {v.shape for v in values.values()} == {(4,)}  # x and y; the int index stays a constant
    assert any(np.array_equal(v, Y1) for v in values.values())
    point = {"a": 0.7, "b": np.array([0.2, -0.1]), "s_log__": np.log(0.4)}
    assert np.isclose(lifted.compile_logp()(point), m.compile_logp()(point), rtol=0, atol=1e-12)


def test_structure_key_ignores_the_numbers_but_not_the_structure():
    key = lambda m: compiled_cache.lift_data(m)[1]  # noqa: E731
    k1 = key(_model(Y1, X))
    assert key(_model(Y2, X + 1.0)) == k1  # other data, same structure
    assert key(_model(Y1, X, groups=(0, 0, 1, 1))) != k1  # an index array is structure
    assert key(_model(Y1, X, scale=2.0)) != k1  # a scalar (a prior scale) is structure
    assert key(_model(Y1[:3], X[:3], groups=(0, 1, 0))) != k1  # another shape


@pytest.fixture
def fresh_cache():
    compiled_cache.clear()
    yield
    compiled_cache.clear()


def _logp_at(compiled, point):
    names, slices = sampling.flat_layout(compiled)
    x = np.zeros(compiled.n_dim)
    for n, sl in zip(names, slices):
        x[sl] = np.ravel(point[n])
    return sampling.logp_and_gradient(compiled)(x)[0]


def test_a_model_of_the_same_structure_reuses_the_compile_with_its_own_data(fresh_cache):
    point = {"a": 0.7, "b": np.array([0.2, -0.1]), "s_log__": np.log(0.4)}
    before = dict(compiled_cache.STATS)
    c1 = sampling.compile_nutpie(_model(Y1, X))
    m2 = _model(Y2, X + 1.0)
    c2 = sampling.compile_nutpie(m2)
    assert compiled_cache.STATS["compiled"] - before["compiled"] == 1
    assert compiled_cache.STATS["reused"] - before["reused"] == 1
    assert np.isclose(_logp_at(c2, point), m2.compile_logp()(point), atol=1e-10)  # the new data, not the old
    assert np.isclose(_logp_at(c1, point), _model(Y1, X).compile_logp()(point), atol=1e-10)  # c1 untouched
    with compiled_cache.no_reuse():
        sampling.compile_nutpie(_model(Y2, X))
    assert compiled_cache.STATS["compiled"] - before["compiled"] == 2


def test_a_reused_compile_samples_the_new_data(fresh_cache):
    """Same seed, same posterior whether the compile was fresh or reused."""
    import nutpie

    draw = lambda c: nutpie.sample(c, draws=50, tune=50, chains=1, seed=3, progress_bar=False)  # noqa: E731
    sampling.compile_nutpie(_model(Y1, X))
    reused = draw(sampling.compile_nutpie(_model(Y2, X)))
    compiled_cache.clear()
    fresh = draw(sampling.compile_nutpie(_model(Y2, X)))
    np.testing.assert_array_equal(reused["posterior"]["a"].values, fresh["posterior"]["a"].values)
