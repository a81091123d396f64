"""Sampling in whitened coordinates (bayesgain.model.whitening): the factor, the wrapping callbacks, the posterior.

Each test fails if the curvature factor is not the Gaussian's covariance factor, if the wrapped callbacks do not
compute the model's log density at x = mu + L z with the gradient L^T grad (or the model's expansion of that x), if a
data swap does not reach the wrapped model, or if the whitened sampler does not sample the model's posterior.
"""

import numpy as np
import pymc as pm
import pytest

nutpie = pytest.importorskip("nutpie")

from bayesgain.model import nutpie_numba, sampling, whitening  # noqa: E402


def test_factor_of_a_gaussian_is_its_covariance_factor():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    cov = 0.5 * a @ a.T + np.diag([1e-4, 1e-2, 1.0, 3.0, 10.0])  # scales over two decades, correlated; all
    assert np.linalg.eigvalsh(cov).max() < 1 / whitening.MIN_CURVATURE  # curvatures above the floor
    prec = np.linalg.inv(cov)
    m = rng.normal(size=5)

    def f(x):
        d = x - m
        return -0.5 * d @ prec @ d, -prec @ d

    mu, L = whitening.laplace_factor(f, m + 0.1)
    np.testing.assert_array_equal(mu, m + 0.1)
    np.testing.assert_allclose(L @ L.T, cov, rtol=1e-5, atol=1e-8 * np.abs(cov).max())
    assert np.allclose(L, np.tril(L))


def test_saddle_and_flat_directions_get_finite_scales():
    def f(x):  # curvature -4 along x0 (a saddle), none along x1
        return 2.0 * x[0] ** 2, np.array([4.0 * x[0], 0.0])

    _, L = whitening.laplace_factor(f, np.array([0.3, 0.0]))
    np.testing.assert_allclose(np.diag(L @ L.T), [1 / 4.0, 1 / whitening.MIN_CURVATURE], rtol=1e-6)
    assert whitening.laplace_factor(lambda x: (np.nan, np.full(2, np.nan)), np.zeros(2)) is None


def _model():
    rng = np.random.default_rng(3)
    with pm.Model() as m:
        mu = pm.Normal("mu", 0.0, 1.0, shape=3)
        s = pm.HalfNormal("s", 1.0)
        pm.Deterministic("total", mu.sum() * s)
        y = pm.Data("y", rng.normal(size=4))
        pm.Normal("obs", mu[[0, 1, 2, 2]], s, observed=y)
    return m


@pytest.fixture(scope="module")
def compiled():
    return nutpie_numba.compile_pymc_model_cached(_model())


def _expand(compiled, x):
    import ctypes

    out = np.zeros(compiled.n_expanded)
    x = np.ascontiguousarray(x, dtype=float)
    rc = compiled.compiled_expand_func.ctypes(compiled.n_dim, compiled.n_expanded,
                                              x.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                                              out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                                              compiled.user_data.ctypes.data)
    assert rc == 0
    return out


def test_wrapped_callbacks_compute_the_model_at_mu_plus_L_z(compiled):
    rng = np.random.default_rng(4)
    n = compiled.n_dim
    mu = rng.normal(size=n)
    L = np.tril(rng.normal(size=(n, n))) + 3 * np.eye(n)
    white = whitening.whitened(compiled, mu, L)
    f_x, f_z = sampling.logp_and_gradient(compiled), sampling.logp_and_gradient(white)
    for _ in range(3):
        z = rng.normal(size=n)
        lp_x, g_x = f_x(mu + L @ z)
        lp_z, g_z = f_z(z)
        assert lp_z == pytest.approx(lp_x, rel=1e-13)
        np.testing.assert_allclose(g_z, L.T @ g_x, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(_expand(white, z), _expand(compiled, mu + L @ z), rtol=1e-13)
    z = np.full(n, 0.3)
    swapped = white.with_data(y=np.zeros(4))  # the data swap reaches the wrapped model
    assert f_z(z)[0] != pytest.approx(sampling.logp_and_gradient(swapped)(z)[0], rel=1e-6)
    assert sampling.logp_and_gradient(swapped)(z)[0] == pytest.approx(
        sampling.logp_and_gradient(compiled.with_data(y=np.zeros(4)))(mu + L @ z)[0], rel=1e-13)


def test_identity_whitening_gives_the_model_bits(compiled):
    n = compiled.n_dim
    x = np.linspace(-0.4, 0.7, n)
    white = whitening.whitened(compiled, np.zeros(n), np.eye(n))
    lp, g = sampling.logp_and_gradient(white)(x)
    lp_ref, g_ref = sampling.logp_and_gradient(compiled)(x)
    assert lp == lp_ref and np.array_equal(g, g_ref)


def test_whitened_sampling_keeps_the_posterior_and_shortens_the_warm_up():
    """A Gaussian with scales 1e-3 .. 1e2 and correlation 0.9: its exact posterior is known; whitened, the warm-up
    needs a fraction of the plain sampler's gradients."""
    sd = np.array([1e-3, 1.0, 1e2])
    corr = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]])
    cov = corr * np.outer(sd, sd)
    centre = np.array([1.0, -2.0, 50.0])
    with pm.Model() as m:
        pm.MvNormal("x", mu=centre, cov=cov)
    white, report = sampling.sample_nutpie(m, draws=1000, tune=300, chains=2, seed=5, cores=1, progress=False,
                                           whiten=True)
    assert report["whitened"]
    x = white.posterior["x"].values.reshape(-1, 3)
    assert np.all(np.abs(x.mean(0) - centre) < 0.2 * sd), x.mean(0)  # ~4 Monte Carlo errors
    np.testing.assert_allclose(x.std(0), sd, rtol=0.15)
    assert np.corrcoef(x[:, 0], x[:, 1])[0, 1] == pytest.approx(0.9, abs=0.05)

    compiled = sampling.compile_nutpie(m)
    start = centre + 0.5 * sd
    plain = sampling.with_starts(compiled, [start, start])
    factor = whitening.laplace_factor(sampling.logp_and_gradient(compiled), start)
    white = sampling.with_starts(whitening.whitened(compiled, *factor), whitening.to_whitened([start, start], *factor))
    steps = []
    for model in (plain, white):
        trace = nutpie.sample(model, draws=10, tune=300, chains=2, cores=1, seed=5, progress_bar=False,
                              adaptation="low_rank", save_warmup=True)
        steps.append(int(trace["warmup_sample_stats"]["n_steps"].sum()))
    print("warm-up gradients, plain / whitened:", steps)
    assert steps[1] < 0.5 * steps[0], f"warm-up gradients, plain / whitened: {steps}"


def test_moved_starts_need_whitening_and_keep_the_posterior():
    with pm.Model() as m:
        pm.Normal("x", mu=np.array([3.0, -1.0]), sigma=np.array([0.01, 5.0]), shape=2)
    with pytest.raises(ValueError, match="whiten=True"):
        sampling.sample_nutpie(m, draws=10, tune=10, chains=1, cores=1, progress=False, whiten=False, start_radius=1.0)
    tree, report = sampling.sample_nutpie(m, draws=1000, tune=300, chains=2, seed=3, cores=1, progress=False,
                                          whiten=True)
    assert report["start_radius"] == 1.0 and "U(-1, 1)" in sampling.report_text(report)
    x = tree.posterior["x"].values.reshape(-1, 2)
    assert np.all(np.abs(x.mean(0) - [3.0, -1.0]) < 0.2 * np.array([0.01, 5.0])), x.mean(0)
    np.testing.assert_allclose(x.std(0), [0.01, 5.0], rtol=0.15)


def test_whitening_settings_default_where_they_can_and_refuse_where_they_cannot():
    assert sampling._whitening_settings("optimum", False, None) == (False, 0.0)
    assert sampling._whitening_settings("optimum", True, None) == (True, sampling.START_RADIUS)
    assert sampling._whitening_settings("checked", True, 0.0) == (True, 0.0)
    assert sampling._whitening_settings("jitter", False, None) == (False, 0.0)
    for starts, whiten, radius in [("jitter", True, None), ("optimum", False, 0.5), ("optimum", True, -1.0),
                                   ("optimum", True, float("nan"))]:
        with pytest.raises(ValueError):
            sampling._whitening_settings(starts, whiten, radius)


def test_python_callback_models_are_whitened_too():
    """nutpie's jax models call Python: the wrapper computes the log density at mu + L z with gradient L^T grad."""
    pytest.importorskip("jax")
    with pm.Model() as m:
        pm.Normal("x", mu=np.array([1.0, -2.0, 0.5]), sigma=np.array([0.1, 2.0, 1.0]), shape=3)
    compiled = sampling.compile_nutpie(m, backend="jax")
    f = sampling.logp_and_gradient(compiled)
    mu, L = np.array([0.9, -1.0, 0.0]), np.array([[0.1, 0.0, 0.0], [0.5, 2.0, 0.0], [0.0, 0.3, 1.0]])
    z = np.array([0.3, -0.7, 1.1])
    lp, g = sampling.logp_and_gradient(whitening.whitened(compiled, mu, L))(z)
    lp_ref, g_ref = f(mu + L @ z)
    assert lp == pytest.approx(lp_ref, rel=1e-12)
    np.testing.assert_allclose(g, L.T @ g_ref, rtol=1e-12)
    tree, report = sampling.sample_nutpie(m, compiled, draws=500, tune=300, chains=2, seed=3, cores=1, progress=False,
                                          whiten=True)
    assert report["whitened"]
    x = tree.posterior["x"].values.reshape(-1, 3)
    assert np.all(np.abs(x.mean(0) - [1.0, -2.0, 0.5]) < 0.25 * np.array([0.1, 2.0, 1.0])), x.mean(0)
    np.testing.assert_allclose(x.std(0), [0.1, 2.0, 1.0], rtol=0.15)
