"""The film TA discrepancy GP and the residual-structure check (no sampling)."""

import numpy as np
import pytest

from bayesgain.model.checks import lag1_autocorrelation
from bayesgain.model.discrepancy import basis_functions_needed, expquad_sqrt_spectral_density, hsgp_basis


@pytest.mark.parametrize("ell", [0.9, 1.5, 2.5])
def test_hsgp_basis_reproduces_the_expquad_kernel(ell):
    # log delays 2 ps .. 3000 ps, the film TA range; the reference is the kernel written out
    x = np.log(np.geomspace(2.0, 3000.0, 40))
    half = 0.5 * (x.max() - x.min())
    m = basis_functions_needed(half, 0.8)
    phi, sqrt_lam = hsgp_basis(x, m)
    s = expquad_sqrt_spectral_density(sqrt_lam, ell)
    K_approx = (phi * s**2) @ phi.T
    K = np.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / ell**2)
    assert np.max(np.abs(K_approx - K)) < 0.05


def test_hsgp_basis_too_small_misses_short_lengthscales():
    # the check above can fail: two basis functions cannot hold a kernel of length 1 over 7 e-folds
    x = np.log(np.geomspace(2.0, 3000.0, 40))
    phi, sqrt_lam = hsgp_basis(x, 2)
    s = expquad_sqrt_spectral_density(sqrt_lam, 1.0)
    K = np.exp(-0.5 * (x[:, None] - x[None, :]) ** 2)
    assert np.max(np.abs((phi * s**2) @ phi.T - K)) > 0.2


def test_spectral_density_matches_pytensor_form():
    import pytensor.tensor as pt

    sqrt_lam = np.linspace(0.1, 3.0, 7)
    ell = pt.dscalar("ell")
    f = (expquad_sqrt_spectral_density(sqrt_lam, ell, xp=pt)).eval({ell: 1.7})
    # s(w) = sqrt(2 pi) ell exp(-ell^2 w^2 / 2), written out
    ref = np.sqrt(np.sqrt(2 * np.pi) * 1.7 * np.exp(-0.5 * 1.7**2 * sqrt_lam**2))
    np.testing.assert_allclose(f, ref, rtol=1e-12)


def test_lag1_autocorrelation_white_vs_smooth():
    rng = np.random.default_rng(3)
    groups = [np.arange(i * 20, (i + 1) * 20) for i in range(50)]
    white = rng.standard_normal(1000)
    t = np.tile(np.linspace(0, 1, 20), 50)
    smooth = white + 4 * np.sin(3 * t)
    assert abs(lag1_autocorrelation(white, groups)) < 0.1
    assert lag1_autocorrelation(smooth, groups) > 0.5
    # reference on one group, written out
    g = groups[0]
    r = smooth[g]
    assert np.isclose(lag1_autocorrelation(smooth, [g]), np.sum(r[1:] * r[:-1]) / np.sum(r * r))


@pytest.fixture(scope="module")
def film_model_at_one_point(batch_a):
    """Gain + dynamics model of batch A with a one-draw 'posterior' (a prior draw): the check's machinery
    without sampling."""
    import xarray as xr

    from bayesgain.model.checks import _physics_mean_and_sd
    from bayesgain.model.core import GainModel
    from bayesgain.model.spec import load_spec, spec_from_dict
    import tomllib

    d = tomllib.loads(load_spec("joint").to_toml())
    d["components"].update(cross_section=False, reflection=False)
    d["priors"] = {k: v for k, v in d["priors"].items() if k not in ("solution_gamma_scale", "solution_noise_rel",
                                                                     "reflection_scale", "subgap_noise_rel")}
    gm = GainModel(spec_from_dict(d), batch_a)
    gm.build()
    prior = gm.sample_prior_predictive(draws=1, seed=5, var_names=[rv.name for rv in gm.model.free_RVs])
    post = prior["prior"].to_dataset()
    gm.idata = xr.DataTree.from_dict({"posterior": post})
    mu, sd = _physics_mean_and_sd(gm, 1)
    return gm, mu[0], sd[0]


def test_residual_check_quiet_on_white_noise_and_flags_a_smooth_misfit(film_model_at_one_point):
    from bayesgain.model.checks import film_residual_check

    gm, mu, sd = film_model_at_one_point
    rng = np.random.default_rng(0)
    original = gm.data["ta_A"].values.copy()
    try:
        gm.data["ta_A"].values[:] = mu + sd * rng.standard_normal(mu.size)
        quiet = film_residual_check(gm, max_draws=1)
        # a 2S-like tail: a bleach decaying on its own 30 ps clock, 3 noise sd at the earliest delays
        t = gm.data["ta_point_delay"].values
        gm.data["ta_A"].values[:] = mu + sd * rng.standard_normal(mu.size) - 3 * sd * np.exp(-t / 30.0)
        loud = film_residual_check(gm, max_draws=1)
    finally:
        gm.data["ta_A"].values[:] = original
    assert abs(quiet["T_observed"]) < 0.15 and not quiet["flagged"]
    assert loud["T_observed"] > 0.3 and loud["flagged"]
