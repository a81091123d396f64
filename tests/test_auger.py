"""Auger rates (eq. S20-S22) and the closed-form cascade (eq. S19) against the ODE solved numerically."""

import numpy as np
import pytest

from bayesgain import physics as ph

from . import reference as ref

K_XX = 1 / 310.0  # per ps, the paper's film biexciton lifetime


def test_rates_match_plain_loop():
    for N in range(8):
        for n in range(3):
            assert ph.auger_rate(N, n, K_XX, 1e-4) == pytest.approx(ref.rate(N, n, K_XX, 1e-4), rel=1e-14)


def test_triexciton_to_biexciton_ratio_is_4_5():
    assert ph.auger_rate(3, 0, K_XX) / ph.auger_rate(2, 0, K_XX) == pytest.approx(4.5)
    assert ph.auger_rate(2, 0, K_XX) == pytest.approx(K_XX)  # k(2,0) is the biexciton rate
    assert ph.auger_rate(1, 0, K_XX) == 0.0  # the paper's single exciton does not decay
    assert ph.auger_rate(1, 1, K_XX) == pytest.approx(K_XX / 4)  # negative trion: 2 x 1 x 1 pathways


@pytest.mark.parametrize("mean", [0.3, 1.9, 5.0, 10.0])
@pytest.mark.parametrize("k_x", [0.0, 1 / 20000.0])
def test_cascade_matches_the_ode_solution(mean, k_x):
    delays = np.concatenate([[0.0, 0.5, 2.0], np.linspace(5, 3000, 25)])
    f = np.array([0.3, 0.45, 0.25])
    got = ph.cascade_absorption(mean, f, delays, K_XX, k_x)
    expected = ref.cascade_ode(mean, f, delays, K_XX, k_x)
    np.testing.assert_allclose(got, expected, atol=1e-8, rtol=0)


@pytest.mark.parametrize("mean, k_x", [(0.3, 1 / 20000.0), pytest.param(10.0, 0.0, marks=pytest.mark.slow)])
def test_reference_cascade_expm_equals_the_ode_integration(mean, k_x):
    """The reference's matrix exponential (used above) against solve_ivp (Radau, tight tolerances) on eq. S19."""
    delays = np.concatenate([[0.0, 0.5, 2.0], np.linspace(5, 3000, 25)])
    f = np.array([0.3, 0.45, 0.25])
    np.testing.assert_allclose(ref.cascade_ode(mean, f, delays, K_XX, k_x),
                               ref.cascade_ode(mean, f, delays, K_XX, k_x, solver="radau"), atol=1e-11, rtol=0)


def test_cascade_at_zero_delay_is_ensemble_absorption(rng):
    means = rng.uniform(0, 8, 6)
    f = rng.dirichlet(np.ones(3), 6)
    np.testing.assert_allclose(ph.cascade_absorption(means, f, [0.0], K_XX)[:, 0], ph.ensemble_absorption(means, f),
                               atol=1e-11)


def test_state_populations_match_solve_ivp():
    from scipy import integrate

    n_max = 30
    k = np.array([ref.rate(N, 1, K_XX, 1e-4) for N in range(1, n_max + 1)])
    f0 = np.array([ref.poisson(N, 8.0) for N in range(n_max + 1)])
    t = np.linspace(0, 3000, 31)
    got = ph.state_populations(f0, k, t)
    kk = np.concatenate([[0.0], k])
    rhs = lambda _, y: -kk * y + np.concatenate([kk[1:] * y[1:], [0.0]])  # noqa: E731
    sol = integrate.solve_ivp(rhs, (0, 3000), f0, t_eval=t, method="Radau", rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got, sol.y, atol=1e-9)
    np.testing.assert_allclose(got.sum(0), f0.sum(), atol=1e-12)  # conservation


def test_absorption_recovers_monotonically():
    A = ph.cascade_absorption(6.0, [0.2, 0.3, 0.5], np.linspace(0, 5000, 400), K_XX, 1e-4)
    assert np.all(np.diff(A) >= -1e-12)


def test_gain_lifetime_is_the_zero_crossing():
    f = np.array([1.0, 0.0, 0.0])
    means = np.array([0.5, 1.9, 3.0, 6.0])
    tau = ph.gain_lifetime(means, f, K_XX)
    assert tau[0] == 0.0  # below threshold: no gain at zero delay
    assert np.all(np.diff(tau[1:]) > 0)
    for m, t in zip(means[1:], tau[1:]):
        A = ref.cascade_ode(m, f, np.array([0.0, t * (1 - 1e-6), t * (1 + 1e-6)]), K_XX)
        assert A[1] < 0 < A[2] or abs(A[1]) < 1e-9
    assert 50 < tau[-1] < 700  # the paper: up to ~0.5 ns undoped


def test_gain_lifetime_longer_when_doped():
    neutral = ph.gain_lifetime(3.0, [1.0, 0, 0], K_XX)
    doped = ph.gain_lifetime(3.0, [0.05, 0.25, 0.7], K_XX)
    assert doped > neutral
    assert np.isinf(ph.gain_lifetime(1.0, [0.0, 0.0, 1.0], K_XX))  # never recovers when fully doped


def test_cascade_with_the_coefficients_of_a_longer_chain_is_exact(rng):
    """The model shares one Bateman coefficient tensor between the solution and film truncations."""
    import pytensor

    from bayesgain.physics import auger, transitions

    g_e, g_h, M_long, M = 2, 4, 14, 9
    k = auger.rate_table(M_long, g_e, 1.0 / 250.0, 1.0 / 8000.0).eval()  # (S, M_long)
    table = transitions.transition_table(M_long, g_e, g_h).eval()
    means = np.array([0.4, 2.5, 5.0])
    f = rng.dirichlet(np.ones(g_e + 1), size=3)
    delays = np.array([0.0, 3.0, 40.0, 900.0])
    J = max(g_e, g_h)
    own = auger.cascade_absorption(means, f, delays, k[:, :M], table[: M + 1], J)
    shared = auger.cascade_absorption(means, f, delays, k[:, :M], table[: M + 1], J,
                                      coefficients=auger.bateman_coefficients(k, n_rows=J))
    a, b = pytensor.function([], [own, shared], mode="FAST_COMPILE")()
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


def test_stacked_tables_and_per_point_delays_match_one_table_at_a_time(rng):
    """The model evaluates absorption and occupancy on one set of populations (a (K, M + 1, S) table), and
    shared delays go through a batched matrix product: both must equal the plain one-table broadcast form."""
    import pytensor

    from bayesgain.physics import auger, transitions

    g_e, g_h, M = 2, 4, 30  # Poisson tail beyond M below 1e-11 for <N> <= 6
    k = auger.rate_table(M, g_e, 1.0 / 250.0, 1.0 / 8000.0).eval()
    table = transitions.transition_table(M, g_e, g_h).eval()
    Nv, nv = np.arange(M + 1)[:, None], np.arange(g_e + 1)[None, :]
    occupancy = np.minimum(Nv + nv, g_e) / g_e
    means = rng.uniform(0.1, 6.0, size=(2, 3))  # batch of two axes
    f = rng.dirichlet(np.ones(g_e + 1), size=(2, 3))
    delays = np.array([0.0, 3.0, 40.0, 900.0, 5000.0])
    J = max(g_e, g_h)
    both = auger.cascade_absorption(means, f, delays, k, np.stack([table, occupancy]), J)  # (2, 3, K, T)
    per_point = auger.cascade_absorption(means, f, np.broadcast_to(delays, (2, 3, 5)), k, table, J)
    one = [auger.cascade_absorption(means, f, delays, k, tab, J) for tab in (table, occupancy)]
    got, pp, a, o = pytensor.function([], [both, per_point, *one], mode="FAST_COMPILE")()
    assert got.shape == (2, 3, 2, 5)
    np.testing.assert_allclose(got[..., 0, :], a, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[..., 1, :], o, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(pp, a, rtol=1e-12, atol=1e-14)
    # against the plain-loop cascade (ODE reference) for one point, so the shared form is not only self-consistent
    np.testing.assert_allclose(a[1, 2], ref.cascade_ode(means[1, 2], f[1, 2], delays, 1.0 / 250.0, 1.0 / 8000.0),
                               atol=1e-8)


@pytest.mark.parametrize("k_xx, k_x, M", [(1 / 310.0, 1 / 20000.0, 12), (1 / 310.0, 0.0, 12), (1 / 5.0, 1e-3, 60)])
def test_bateman_coefficients_match_plain_products(k_xx, k_x, M):
    """C[j, m, i] = prod_{l=j+1..m} k_l / prod_{l=j..m, l != i} (k_l - k_i), written as plain loops; the last
    case (fast Auger, 60 states: rates up to ~10^3 per ps) would overflow unscaled products' range checks."""
    from bayesgain.physics import auger

    k = auger.rate_table(M, 2, k_xx, k_x).eval()  # (S, M); k[0, 0] = 0 when k_x = 0
    got = auger.bateman_coefficients(k, n_rows=4).eval()
    for s in range(k.shape[0]):
        for j in range(4):
            for m in range(M):
                for i in range(M):
                    want = 0.0
                    if j <= i <= m:
                        num = np.prod([k[s, l] for l in range(j + 1, m + 1)])
                        den = np.prod([k[s, l] - k[s, i] for l in range(j, m + 1) if l != i])
                        want = num / den
                    assert got[s, j, m, i] == pytest.approx(want, rel=1e-9, abs=1e-300), (s, j, m, i)


def test_bateman_coefficients_of_a_single_state_with_zero_rate():
    """The rescaling by the largest rate must not divide by zero when every rate is zero (one state, k(1, 0) = 0)."""
    from bayesgain.physics import auger

    np.testing.assert_array_equal(auger.bateman_coefficients(np.array([[0.0], [0.5]])).eval(), np.ones((2, 1, 1, 1)))


@pytest.mark.parametrize("g_e", [2, 4])
def test_free_auger_rates_scale_only_trion_and_triexciton_auger_parts(g_e):
    from bayesgain.physics.auger import free_auger_rates

    n_max, k_x, tr, tri = 7, 1e-4, 1.7, 0.6
    rates = ph.auger.rate_table(n_max, g_e, K_XX, k_x).eval()
    got = free_auger_rates(rates, n_max, g_e, k_x, tr, tri)
    for n in range(g_e + 1):
        for N in range(1, n_max + 1):
            auger = ref.rate(N, n, K_XX)  # the Auger part of eq. S22 (k_x = 0)
            factor = tr if (N == 1 and n >= 1) else tri if (N == 3 and n == 0) else 1.0
            assert got[n, N - 1] == pytest.approx(auger * factor + N * k_x, rel=1e-13)
    # factors of 1 give the scaling law back
    np.testing.assert_allclose(free_auger_rates(rates, n_max, g_e, k_x, 1.0, 1.0), rates, rtol=1e-14)
