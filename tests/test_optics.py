"""Optics: eq. S33 reflection correction, depth-averaged fluence, eq. S34, unit conversions, gain coefficient."""

import math

import numpy as np
import pytest

from bayesgain import physics as ph


def test_reflection_correction_reduces_without_reflection(rng):
    dA = rng.normal(0, 0.05, 50)
    F_A = rng.uniform(0.05, 0.6, 50)
    np.testing.assert_allclose(ph.reflection_correct(dA, 0.0, F_A, 0.0), dA, atol=1e-15)


def test_reflection_correction_matches_intensity_bookkeeping():
    # build pump-on/off intensities explicitly and compare with eq. S33
    I0, F_A, F_R = 1.0, 0.3, 0.1
    I_R, I_t = F_R * I0, (1 - F_A - F_R) * I0
    I_R_on, I_t_on = I_R * 0.9, I_t * 1.05
    dA_star = -math.log10(I_t_on / I_t)
    dR = -math.log10(I_R_on / I_R)
    true = -math.log10((I_R_on + I_t_on) / (I_R + I_t))
    assert ph.reflection_correct(dA_star, dR, F_A, F_R) == pytest.approx(true, rel=1e-12)


def test_reflection_correction_removes_a_pure_reflection_artefact():
    # no absorption change: transmitted and reflected light change oppositely, total I_R + I_t fixed
    F_A, F_R = 0.2, 0.15
    I_t, I_R = 1 - F_A - F_R, F_R
    delta = 0.01
    dA_star = -math.log10((I_t + delta) / I_t)  # a sub-gap "bleach"
    dR = -math.log10((I_R - delta) / I_R)
    assert dA_star < 0
    assert ph.reflection_correct(dA_star, dR, F_A, F_R) == pytest.approx(0.0, abs=1e-15)


def test_depth_averaged_fluence():
    J = 1e15
    for A in [1e-9, 0.1, 0.5, 2.0]:
        aL = A * math.log(10)
        assert ph.depth_averaged_fluence(J, A) == pytest.approx(J * -math.expm1(-aL) / aL, rel=1e-12)
    assert ph.depth_averaged_fluence(J, 0.0) == J


def test_bleach_saturation_and_cross_section():
    sigma = 3.6e-14
    J = np.array([1e12, 1e13, 1e14])
    np.testing.assert_allclose(ph.bleach_saturation(sigma, J), 1 - np.exp(-sigma * J), rtol=1e-12)


def test_fluence_energy_round_trip_at_400_nm():
    # one 400 nm photon carries 4.966e-19 J: 1e13 photons/cm^2 -> 4.966 uJ/cm^2
    E = ph.fluence_to_energy_density_nJ_cm2(1e13, 400.0)
    assert E == pytest.approx(4966.0, rel=1e-3)
    assert ph.energy_density_nJ_cm2_to_fluence(E, 400.0) == pytest.approx(1e13, rel=1e-12)


def test_gain_coefficient_paper_scale():
    # g = -A ln10 / d: A = -0.004 OD over 116 nm is ~794 cm^-1 (the paper's maximum, ~800 cm^-1)
    assert ph.gain_coefficient_per_cm(-0.004, 116.0) == pytest.approx(0.004 * math.log(10) / 116e-7)
    assert 780 < ph.gain_coefficient_per_cm(-0.004, 116.0) < 810


def test_reflection_scale_sensitivity_is_the_derivative_of_eq_s33():
    from bayesgain.physics.optics import reflection_scale_sensitivity

    rng = np.random.default_rng(3)
    dA, dR = rng.normal(0, 0.05, 40), rng.normal(0, 0.01, 40)
    F_A, F_R = rng.uniform(0.05, 0.6, 40), rng.uniform(0.02, 0.2, 40)

    def corrected(s):  # eq. S33 written out with Delta R scaled by s
        return -np.log10((10.0 ** (-s * dR) * F_R + 10.0 ** (-dA) * (1 - F_A - F_R)) / (1 - F_A))

    h = 1e-5
    fd = (corrected(1 + h) - corrected(1 - h)) / (2 * h)
    np.testing.assert_allclose(reflection_scale_sensitivity(dA, dR, F_A, F_R), fd, rtol=1e-7, atol=1e-10)  # central-difference rounding
    assert np.all(reflection_scale_sensitivity(dA, 0.0 * dR, F_A, F_R) == 0.0)


def test_window_absorption_change_from_its_equation_and_on_tensors():
    import pytensor.tensor as pt

    from bayesgain.physics.optics import window_absorption_change, window_tail_bleach

    g_e, g_h = 2, 4
    A_pre, occ_pre = 8.0, 0.0  # a neutral film: the full band edge, no 1S(e) electron
    # no window terms beyond the scale: gamma (A_eff - A_pre)
    assert np.isclose(window_absorption_change(4.0, 0.25, A_pre, occ_pre, 0.5, 0.0, 0.0, g_e, g_h), 0.5 * (4.0 - 8.0))
    # full inversion (A_eff = -8): x = 1, the shifted line loses kappa of it; the occupancy term adds -beta
    got = window_absorption_change(-8.0, 1.0, A_pre, occ_pre, 0.5, 0.2, 0.1, g_e, g_h)
    assert np.isclose(got, 0.5 * (-8.0 * (1 - 0.2) - 8.0) - 0.1 * 1.0)
    A = np.linspace(-8, 8, 7)
    t = pt.dvector("A")
    sym = window_absorption_change(t, 0.3, A_pre, occ_pre, 0.5, 0.2, 0.1, g_e, g_h).eval({t: A})
    assert np.allclose(sym, window_absorption_change(A, 0.3, A_pre, occ_pre, 0.5, 0.2, 0.1, g_e, g_h))
    # the tail: its amplitude at t_ref, e-fold per tau, zero without excitation
    assert np.isclose(window_tail_bleach(np.inf, 2.0, 2.0, 0.01, 30.0), 0.01)
    assert np.isclose(window_tail_bleach(np.inf, 32.0, 2.0, 0.01, 30.0), 0.01 / np.e)
    assert window_tail_bleach(0.0, 5.0, 2.0, 0.01, 30.0) == 0.0


def test_absorbance_from_absorptance_is_the_transmitted_fraction_in_od():
    # a film absorbing F_A of the light passes 1 - F_A: 90 % absorbed is 1 OD, 99 % is 2 OD
    FA = np.array([0.0, 0.5, 0.9, 0.99])
    np.testing.assert_allclose(ph.optics.absorbance_from_absorptance(FA), [0.0, np.log10(2.0), 1.0, 2.0], atol=1e-12)


def test_numpy_mode_evaluates_the_window_change_with_whole_array_operations(rng):
    # x**4 in the window change: PyTensor's nested squaring would make it a Composite, which the Python VM of
    # numpy_mode evaluates one element at a time (most of the report's posterior predictive time)
    import pytensor
    import pytensor.tensor as pt
    from pytensor.scalar.basic import Composite

    from bayesgain.physics.api import numpy_mode

    A_eff, occ = pt.dvector("A_eff"), pt.dvector("occ")
    out = ph.optics.window_absorption_change(A_eff, occ, 4.0, 0.1, 0.02, 0.3, 0.01, 2, 2)
    fn = pytensor.function([A_eff, occ], out, mode=numpy_mode())
    composites = [n for n in fn.maker.fgraph.apply_nodes if isinstance(getattr(n.op, "scalar_op", None), Composite)]
    assert composites == []
    a, o = rng.uniform(0.0, 4.0, 200), rng.uniform(0.0, 1.0, 200)
    x = (4.0 - a) / 8.0
    np.testing.assert_allclose(fn(a, o), 0.02 * (a * (1 - 0.3 * x**4) - 4.0) - 0.01 * (o - 0.1), rtol=1e-12)
