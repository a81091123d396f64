"""Transition counting (eq. S3-S6), Poisson ensemble (eq. S5, S17) and thresholds, against plain loops and the paper."""

import numpy as np
import pytest
from scipy import optimize

from bayesgain import physics as ph
from bayesgain.physics.poisson import required_n_max, truncated_tail

from . import reference as ref


@pytest.mark.parametrize("g_e,g_h", [(2, 4), (8, 8), (2, 2)])
def test_band_edge_matches_plain_loop(g_e, g_h):
    N = np.arange(0, 3 * max(g_e, g_h))
    for n in range(g_e + 1):
        expected = [ref.band_edge(int(x), n, g_e, g_h) for x in N]
        np.testing.assert_array_equal(ph.band_edge_absorption(N, n, g_e, g_h), expected)


def test_band_edge_neutral_ground_state_is_ge_gh():
    assert ph.band_edge_absorption(0, 0) == 8  # eq. S1: A_0 = gamma g_e g_h
    assert ph.band_edge_absorption(0, 2) == 0  # a full 1S(e) level is transparent
    assert ph.band_edge_absorption(0, 0, 8, 8) == 64


@pytest.mark.parametrize("g_e,g_h", [(2, 4), (8, 8), (2, 2)])
def test_ensemble_matches_plain_loop(g_e, g_h, rng):
    means = np.array([0.0, 0.3, 1.54, 4.0, 9.0])
    f = rng.dirichlet(np.ones(g_e + 1), size=means.size)
    got = ph.ensemble_absorption(means, f, g_e, g_h)
    expected = [ref.ensemble(m, fr, g_e, g_h) for m, fr in zip(means, f)]
    np.testing.assert_allclose(got, expected, atol=1e-11)


def test_neutral_threshold_is_paper_1_54():
    thr = ph.gain_threshold([1.0, 0.0, 0.0])
    assert thr == pytest.approx(1.54, abs=0.005)  # SI section 1.1
    # the root, checked with an independent solver on the plain-loop ensemble
    root = optimize.brentq(lambda m: ref.ensemble(m, [1, 0, 0]), 0.1, 5, xtol=1e-14)
    assert thr == pytest.approx(root, abs=1e-10)


def test_unsaturated_threshold_is_four_thirds():
    # eq. S3 in the ensemble: sum_N P(N) [(2-N)(4-N) - N^2] = 8 - 6<N>, zero at 4/3
    def unsat(mean):
        return sum(ref.poisson(N, mean) * ((2 - N) * (4 - N) - N**2) for N in range(80))

    assert optimize.brentq(unsat, 0.1, 5) == pytest.approx(4 / 3, abs=1e-10)
    assert ph.gain_threshold([1.0, 0, 0]) > 4 / 3 + 0.2  # saturation raises it (1.54)


def test_threshold_zero_when_every_qd_holds_ge_electrons():
    assert ph.gain_threshold([0.0, 0.0, 1.0]) == 0.0
    assert ph.gain_threshold([0.0] * 8 + [1.0], g_e=8, g_h=8) == 0.0


def test_threshold_decreases_with_doping(rng):
    f = np.array([[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0.5, 0.5], [0.02, 0.03, 0.95]], float)
    thr = ph.gain_threshold(f)
    assert np.all(np.diff(thr) < 0)
    for t, fr in zip(thr, f):
        assert ref.ensemble(t, fr) == pytest.approx(0.0, abs=1e-10)
    # single-charged QDs: A*(N,1) = max(4-N,0) max(1-N,0) - min(N,4) min(N+1,2)
    one = optimize.brentq(lambda m: ref.ensemble(m, [0, 1, 0]), 1e-6, 5)
    assert thr[2] == pytest.approx(one, abs=1e-10)


def test_threshold_other_degeneracies():
    for g_e, g_h in [(8, 8), (2, 2)]:
        f = np.zeros(g_e + 1)
        f[0] = 1
        root = optimize.brentq(lambda m: ref.ensemble(m, f, g_e, g_h), 0.01, 20)
        assert ph.gain_threshold(f, g_e, g_h) == pytest.approx(root, abs=1e-9)


def test_level_beyond_reach_is_inf():
    assert np.isinf(ph.gain_threshold([1.0, 0, 0], level=-8.5))  # A_ens >= -g_e g_h = -8


def test_single_wavelength_threshold_consistent_with_gain_coefficient():
    f = np.array([0.05, 0.25, 0.70])
    A0, d, gmin = 0.12, 116.0, 50.0
    n = ph.single_wavelength_threshold(f, A0, d, gmin)
    absorbance = A0 / 8 * ph.ensemble_absorption(n, f)
    assert ph.gain_coefficient_per_cm(absorbance, d) == pytest.approx(gmin, rel=1e-8)
    # a weak wing of the line cannot reach 50 cm^-1 at all
    assert np.isinf(ph.single_wavelength_threshold(f, 1e-5, d, gmin))


def test_threshold_versus_doping_hits_targets():
    targets = np.array([0.1, 0.94, 1.5, 1.99])
    thr, f = ph.threshold_versus_doping(targets, V_1S=-1.2, V_C=0.005, sigma_1S=0.11)
    np.testing.assert_allclose(ph.mean_electrons(f), targets, atol=1e-9)
    assert np.all(np.diff(thr) < 0)
    assert thr[-1] < 0.2 and thr[0] > 1.3


def test_required_n_max_tail_below_1e_10():
    for mean in [0.0, 0.5, 2.0, 10.0, 30.0]:
        n = required_n_max(mean)
        assert truncated_tail(mean, n) < 1e-10
        if n > 4:
            assert truncated_tail(mean, n - 1) >= 1e-10  # the smallest such n


@pytest.mark.parametrize("g_e,g_h", [(2, 4), (8, 8), (2, 2)])
def test_emission_and_occupancy_tables_match_plain_loop(g_e, g_h):
    from bayesgain.physics.transitions import emission_table, occupancy_table

    n_max = 3 * max(g_e, g_h)
    emis, occ = emission_table(n_max, g_e, g_h), occupancy_table(n_max, g_e)
    assert emis.shape == occ.shape == (n_max + 1, g_e + 1)
    for N in range(n_max + 1):
        for n in range(g_e + 1):
            # eq. S6: emitting transitions = band-edge holes x band-edge electrons, each capped at its degeneracy
            holes, electrons = min(N, g_h), min(N + n, g_e)
            assert emis[N, n] == holes * electrons
            assert occ[N, n] == electrons / g_e
            # the counting is open absorption minus emission
            open_ = max(g_h - N, 0) * max(g_e - N - n, 0)
            assert ref.band_edge(N, n, g_e, g_h) == open_ - emis[N, n]


def test_lumped_poisson_weights_sum_to_one_and_keep_the_head():
    from scipy import stats

    from bayesgain.physics.poisson import poisson_weights

    mean = np.array([0.0, 0.7, 6.0, 22.0])
    n_max = 12
    got = poisson_weights(mean, n_max, lump_tail=True).eval()
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, atol=1e-14)
    for m, w in zip(mean, got):
        np.testing.assert_allclose(w[:-1], stats.poisson.pmf(np.arange(n_max), m), rtol=1e-12, atol=1e-290)  # <N> = 0 is floored at 1e-300
        assert w[-1] == pytest.approx(stats.poisson.sf(n_max - 1, m), rel=1e-10, abs=1e-15)  # P(N >= n_max), to rounding
    plain = poisson_weights(mean, n_max).eval()
    assert plain[-1].sum() < 0.1  # <N> = 22 loses most of its weight without the lump


def test_short_truncation_keeps_a_saturated_ensemble_saturated():
    """<N> far beyond the truncation: every QD is saturated, A_ens = -g_e g_h, as with a long truncation.

    Dropping the tail made such an <N> look like a smaller bleach (a spurious mode of the film fits)."""
    import pytensor.tensor as pt

    from bayesgain.physics import ensemble, transitions

    table_short = transitions.transition_table(10, 2, 4)
    table_long = transitions.transition_table(80, 2, 4)
    f = np.array([[1.0, 0.0, 0.0]])
    for mean in (6.0, 22.0, 40.0):
        short = ensemble.ensemble_absorption(pt.as_tensor(np.array([mean])), f, table_short).eval()
        long_ = ensemble.ensemble_absorption(pt.as_tensor(np.array([mean])), f, table_long).eval()
        np.testing.assert_allclose(short, long_, atol=1e-9)


def test_ensemble_slope_is_the_derivative_of_the_truncated_ensemble():
    import pytensor.tensor as pt

    from bayesgain.physics import ensemble, transitions

    table = transitions.transition_table(7, 2, 4)  # short: the lumped tail carries weight at <N> = 5
    f = np.array([[0.5, 0.3, 0.2]])
    x = pt.dvector("x")
    A = pytensor_function([x], ensemble.ensemble_absorption(x, f, table))
    slope = pytensor_function([x], ensemble.ensemble_slope(x, f, table))
    for m in (0.5, 2.0, 5.0):
        h = 1e-6
        fd = (A(np.array([m + h])) - A(np.array([m - h]))) / (2 * h)
        np.testing.assert_allclose(slope(np.array([m])), fd, rtol=1e-6, atol=1e-9)


def pytensor_function(inputs, output):
    import pytensor

    return pytensor.function(inputs, output)


def test_probability_at_least_is_the_poisson_tail_summed_by_hand():
    import math

    from bayesgain.physics import poisson

    for mean in (0.05, 1.0, 3.7):
        for k in (0, 1, 2, 3, 6):
            want = 1.0 - sum(mean**N * math.exp(-mean) / math.factorial(N) for N in range(k))
            assert poisson.probability_at_least(mean, k) == pytest.approx(want, rel=1e-10, abs=1e-15)
