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
