"""Charging statistics (eq. S9-S16 with the sign convention of docs/paper-conventions.md)."""

import numpy as np
import pytest

from bayesgain import physics as ph
from bayesgain.physics.constants import BOLTZMANN_EV_PER_K

from . import reference as ref


def test_fractions_match_plain_loop(rng):
    V = rng.uniform(-1.6, -0.3, 20)
    for V_C, T in [(0.0, 293.0), (0.005, 293.0), (0.08, 841.0)]:
        got = ph.charge_fractions(V, -1.2, V_C, temperature_K=T)
        expected = [ref.fractions(v, -1.2, V_C, T) for v in V]
        np.testing.assert_allclose(got, expected, atol=1e-14)
        np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-14)


def test_sign_convention_fills_at_negative_potential():
    f = ph.charge_fractions([-0.3, -2.5], V_1S=-1.2)
    assert ph.mean_electrons(f)[0] < 1e-10  # open circuit: neutral
    assert ph.mean_electrons(f)[1] == pytest.approx(2.0, abs=1e-10)  # very negative: full


def test_partition_function_equals_twice_fermi_dirac_at_zero_charging_energy(rng):
    V = rng.uniform(-1.5, -0.9, 30)
    T = 293.0
    beta = 1 / (BOLTZMANN_EV_PER_K * T)
    fd = 1.0 / (np.exp(beta * (V - (-1.2))) + 1.0)  # electron occupancy of a level at V_1S
    np.testing.assert_allclose(ph.mean_electrons(ph.charge_fractions(V, -1.2, 0.0, temperature_K=T)), 2 * fd,
                               atol=1e-13)


def test_charging_energy_delays_second_electron():
    V = np.linspace(-1.6, -0.8, 200)
    f0 = ph.charge_fractions(V, -1.2, 0.0)
    f1 = ph.charge_fractions(V, -1.2, 0.1)
    assert np.all(f1[:, 2] <= f0[:, 2] + 1e-15)
    # half-filling of the second electron moves by about V_C (more negative)
    half = lambda f: V[np.argmin(np.abs(f[:, 2] - 0.5))]  # noqa: E731
    assert half(f1) < half(f0) - 0.03


def test_generalised_degeneracy_uses_binomial_weights():
    f = ph.charge_fractions(-1.0, -1.0, 0.0, g_e=8)  # at V = V_1S every state has weight binom(8, n)
    from math import comb

    np.testing.assert_allclose(f, [comb(8, n) / 256 for n in range(9)], atol=1e-14)


@pytest.mark.parametrize("sigma,nodes,atol", [(0.03, None, 1e-12), (0.11, None, 1e-12), (0.3, None, 5e-5),
                                              (0.3, "sized", 1e-8)])
def test_disorder_quadrature_matches_adaptive_integral(sigma, nodes, atol):
    from bayesgain.physics.charging import DEFAULT_QUADRATURE_NODES, disorder_nodes

    n = disorder_nodes(sigma) if nodes == "sized" else DEFAULT_QUADRATURE_NODES
    V = np.array([-1.5, -1.3, -1.2, -1.05, -0.9])
    got = ph.charge_fractions(V, -1.2, 0.005, sigma, n_nodes=n)
    expected = np.array([ref.fractions_disordered(v, -1.2, 0.005, sigma) for v in V])
    np.testing.assert_allclose(got, expected, atol=atol)


def test_fractions_of_many_draws_are_evaluated_in_blocks_with_the_same_values(rng, monkeypatch):
    """The NumPy face splits a large batch into blocks (its temporaries stay in cache); the values do not change."""
    from bayesgain.physics import api

    V = np.linspace(-1.5, -0.9, 31)[None, :]
    V1, Vc, s = rng.normal(-1.2, 0.02, (40, 1)), rng.uniform(0.0, 0.01, (40, 1)), rng.uniform(0.05, 0.15, (40, 1))
    whole = ph.charge_fractions(V, V1, Vc, s)
    calls, n = [], api.charging.DEFAULT_QUADRATURE_NODES
    fn = api._fractions_fn(2, n, float(api.charging.QUADRATURE_HALF_WIDTH))
    monkeypatch.setattr(api, "_BLOCK_VALUES", n * 97)  # blocks of 97 of the 1240 elements, the last one short
    monkeypatch.setattr(api, "_fractions_fn", lambda *a: lambda *x: calls.append(x[0].size) or fn(*x))
    blocks = ph.charge_fractions(V, V1, Vc, s)
    assert calls == [97] * 12 + [1240 - 97 * 12]
    np.testing.assert_array_equal(blocks, whole)
    expected = np.array([ref.fractions_disordered(V[0, j], V1[3, 0], Vc[3, 0], s[3, 0]) for j in (0, 15, 30)])
    np.testing.assert_allclose(blocks[3, [0, 15, 30]], expected, atol=1e-10)


def test_disorder_zero_width_is_plain():
    V = np.linspace(-1.5, -0.9, 7)
    plain = ph.charge_fractions(V, -1.2, 0.005)
    from bayesgain.physics import charging
    import pytensor

    tiny = pytensor.function([], charging.charge_fractions_disordered(V, -1.2, 0.005, 0.0))()
    np.testing.assert_allclose(tiny, plain, atol=1e-14)


def test_disorder_broadens_the_charging_curve():
    V = np.linspace(-1.6, -0.8, 401)
    narrow = ph.mean_electrons(ph.charge_fractions(V, -1.2, 0.005, 0.0))
    broad = ph.mean_electrons(ph.charge_fractions(V, -1.2, 0.005, 0.11))
    width = lambda ne: abs(V[np.argmin(np.abs(ne - 1.6))] - V[np.argmin(np.abs(ne - 0.4))])  # noqa: E731
    # logistic and normal widths add as variances: ratio sqrt(1 + 3 sigma^2 / (pi kT)^2) = 2.6 here
    kT = BOLTZMANN_EV_PER_K * 293.0
    expected = np.sqrt(1 + 3 * 0.11**2 / (np.pi * kT) ** 2)
    assert width(broad) / width(narrow) == pytest.approx(expected, rel=0.1)


def test_effective_temperature_of_paper_disorder_is_hundreds_of_kelvin():
    T_eff = ph.effective_temperature_K(0.110, 293.0)
    assert 650 < T_eff < 900  # paper's separate fit: 841 K
    assert ph.effective_temperature_K(0.0, 293.0) == pytest.approx(293.0)


@pytest.mark.parametrize("g_e", [2, 4])
def test_uniform_doping_fractions_match_floor_and_ceil(rng, g_e):
    m = np.concatenate([rng.uniform(0.0, g_e, 30), np.arange(g_e + 1.0), [-0.3, g_e + 0.7]])
    got = ph.charge_fractions_uniform(m, g_e)
    np.testing.assert_allclose(got, [ref.fractions_uniform(x, g_e) for x in m], atol=1e-15)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-15)
    inside = (m >= 0) & (m <= g_e)
    np.testing.assert_allclose(ph.mean_electrons(got)[inside], m[inside], atol=1e-14)  # the mean is kept
    assert np.count_nonzero(got[inside] > 0, axis=-1).max() <= 2  # only the two neighbouring integers


def test_uniform_doping_is_narrower_than_the_grand_canonical_spread():
    # same <n_e> = 1: uniform doping puts every QD at n = 1, the disordered Fermi-Dirac ensemble does not
    f = ph.charge_fractions(np.linspace(-1.4, -1.0, 41), -1.2, 0.005, 0.11, 293.0)
    n = ph.mean_electrons(f)
    u = ph.charge_fractions_uniform(n)
    var = lambda x: x @ np.arange(3.0) ** 2 - (x @ np.arange(3.0)) ** 2  # noqa: E731
    assert np.all(var(u) <= var(f) + 1e-12)
    assert var(u)[np.argmin(abs(n - 1.0))] < 0.05 * var(f)[np.argmin(abs(n - 1.0))]
