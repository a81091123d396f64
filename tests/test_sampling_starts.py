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


def test_starts_are_climbed_and_a_start_in_the_minor_basin_is_replaced():
    starts = [[2.0, 2.5], [-2.4, 2.6], [3.5, 2.2], [2.8, -3.3]]  # chains 1 and 3 begin in a minor basin
    compiled = _compiled(starts)
    got, report = sampling.optimised_starts(compiled, chains=4, seed=0)
    assert report["replaced_chains"] == [1, 3]
    for x in got:
        np.testing.assert_allclose(x, [MAJOR, MAJOR], atol=1e-4)
    assert all(a >= b for a, b in zip(report["logp_climbed"], report["logp_start"]))
    # the climbed logp of a replaced chain lay ~27.6 nats (one coordinate in the minor mode) below the best
    gap = report["logp_climbed"][report["best_chain"]] - report["logp_climbed"][1]
    assert gap == pytest.approx(-LOG_W_MINOR, abs=0.01)
    text = sampling.report_text(report)
    assert "chains [1, 3]" in text and "27.6" in text


def test_starts_in_one_basin_keep_their_own_points():
    compiled = _compiled([[2.0, 2.5], [3.9, 2.4]])
    got, report = sampling.optimised_starts(compiled, chains=2, seed=0, maxiter=1)
    assert report["replaced_chains"] == []
    assert not np.allclose(got[0], got[1])  # one iteration does not reach the mode: each keeps its own climb


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
