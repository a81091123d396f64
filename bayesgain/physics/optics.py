"""Optics: reflection correction, pump fluence in a cuvette and through a film, bleach saturation, units, gain coefficient.

Conventions: absorbances and differential signals are decadic (OD), Delta A = -log10(I_on / I_off)
(SI eq. S29; the Methods' ln is a typo).  Fluences are photons/cm^2 unless the name says otherwise.
"""

import numpy as np
import pytensor.tensor as pt

from .constants import LN10, PLANCK_J_S, SPEED_OF_LIGHT_M_S

__all__ = [
    "reflection_correct",
    "reflection_scale_sensitivity",
    "depth_averaged_fluence",
    "pump_depth_profile",
    "pump_depth_node_count",
    "bleach_saturation",
    "absorbance_from_absorptance",
    "photon_energy_J",
    "fluence_to_energy_density_nJ_cm2",
    "energy_density_nJ_cm2_to_fluence",
    "gain_coefficient_per_cm",
    "window_absorption_change",
    "window_tail_bleach",
]


def reflection_correct(dA_star, dR, F_A, F_R):
    """True Delta A from the transient 'extinction' Delta A* and reflection Delta R (SI eq. S33).

    Delta A = -log10( [10^-dR F_R + 10^-dA* (1 - F_A - F_R)] / (1 - F_A) ), with F_A and F_R the
    steady-state absorbed and reflected fractions (integrating sphere).  F_R = 0 and dR = 0 give
    Delta A = Delta A*.
    """
    dA_star, dR, F_A, F_R = map(pt.as_tensor_variable, (dA_star, dR, F_A, F_R))
    return -pt.log10(_mixed_transmission(dA_star, dR, F_A, F_R) / (1.0 - F_A))


def _mixed_transmission(dA_star, dR, F_A, F_R):
    """The bracket of eq. S33: 10^-dR F_R + 10^-dA* (1 - F_A - F_R); plain arithmetic (NumPy, xarray or PyTensor)."""
    return 10.0 ** (-dR) * F_R + 10.0 ** (-dA_star) * (1.0 - F_A - F_R)


def reflection_scale_sensitivity(dA_star, dR, F_A, F_R):
    """d Delta A / d s of eq. S33 with Delta R scaled by s, at s = 1: dR F_R 10^-dR / [10^-dR F_R + 10^-dA* (1 - F_A - F_R)].

    The change of the corrected Delta A per unit change of a Delta R scale (OD); plain arithmetic, so NumPy,
    xarray (dims kept) or PyTensor inputs all work."""
    return dR * F_R * 10.0 ** (-dR) / _mixed_transmission(dA_star, dR, F_A, F_R)


def depth_averaged_fluence(fluence_photons_cm2, pump_absorbance_OD):
    """Pump fluence averaged over the optical path of a cuvette: J (1 - e^{-aL}) / (aL), aL = A ln 10.

    (SI, after eq. S34.)  The ratio tends to 1 - aL/2 for small aL; that series is used below 1e-6
    so an absorbance of exactly 0 is allowed.
    """
    J = pt.as_tensor_variable(fluence_photons_cm2)
    aL = pt.as_tensor_variable(pump_absorbance_OD) * LN10
    small = pt.lt(aL, 1e-6)
    safe = pt.switch(small, 1.0, aL)
    ratio = pt.switch(small, 1.0 - 0.5 * aL, -pt.expm1(-safe) / safe)
    return J * ratio


# Gauss-Legendre nodes of the pump's depth profile, by the largest pump absorbance they serve: the n-node rule's
# error is (n!)^4 / ((2n + 1) ((2n)!)^3) x the 2n-th z-derivative of F(<N> 10^(-A z)), which carries (A ln 10)^(2n)
# (4 nodes: 5.6e-10 x 0.69^8 = 3e-11 per unit derivative of F in ln <N> at A = 0.3)
PUMP_DEPTH_NODES = ((0.3, 4), (1.5, 8), (5.0, 16))


def pump_depth_node_count(pump_absorbance_OD):
    """Gauss-Legendre nodes for a film of pump absorbance (OD) up to ``pump_absorbance_OD`` (static; NumPy).

    4 nodes below 0.3 OD: the 4-node rule integrates polynomials of degree 7 in depth exactly, and the
    relative excitation 10^(-A z) = e^(-a z), a = A ln 10 < 0.69, puts a factor a^8 < 0.06 on the first
    neglected term; depth averages of Poisson-type observables (1 - e^-N, N^2 e^-N, <N>_front up to 50) are then
    within 2e-7 of their scale (checked against adaptive quadrature in tests/test_pump_attenuation.py)."""
    top = float(np.max(np.asarray(pump_absorbance_OD, float), initial=0.0))
    for limit, n in PUMP_DEPTH_NODES:
        if top <= limit:
            return n
    raise ValueError(f"pump_absorbance_OD must be <= {PUMP_DEPTH_NODES[-1][0]:g} OD for the depth quadrature; "
                     f"got {top!r}")


def pump_depth_profile(pump_absorbance_OD, n_nodes=4):
    """Depth quadrature of a Beer-Lambert pump through a film: relative excitations r_k and weights w_k.

    The pump (and so <N>) falls as 10^(-A z) with depth z in [0, 1] (front to back) for a film of
    absorbance A at the pump wavelength; a depth-averaged observable is
    int_0^1 F(<N>_front 10^(-A z)) dz = sum_k w_k F(<N>_front r_k), r_k = 10^(-A z_k) at the Gauss-Legendre
    nodes z_k mapped onto [0, 1] (weights sum to 1).  ``pump_absorbance_OD`` may be an array: r gets a last
    axis of ``n_nodes``; w is (n_nodes,).  A = 0 gives r = 1.  Returns (r, w) as PyTensor tensors.
    """
    x, w = np.polynomial.legendre.leggauss(int(n_nodes))
    z = 0.5 * (x + 1.0)
    A = pt.as_tensor_variable(pump_absorbance_OD)
    return 10.0 ** (-A[..., None] * z), pt.as_tensor_variable(0.5 * w)


def bleach_saturation(cross_section_cm2, fluence_photons_cm2):
    """Fraction of QDs still excited long after the multiexcitons decayed: 1 - e^{-sigma J} (eq. S34)."""
    return -pt.expm1(-pt.as_tensor_variable(cross_section_cm2) * pt.as_tensor_variable(fluence_photons_cm2))


def absorbance_from_absorptance(absorptance):
    """A_0 = -log10(1 - F_A) (SI eq. S27/S28): the film's absorbance (OD) from its absorbed fraction F_A.

    NumPy (arrays or xarray objects keep their type and coordinates): spectra are data, not sampled."""
    return -np.log10(1.0 - absorptance)


def photon_energy_J(wavelength_nm):
    """h c / lambda in joules."""
    return PLANCK_J_S * SPEED_OF_LIGHT_M_S / (pt.as_tensor_variable(wavelength_nm) * 1e-9)


def fluence_to_energy_density_nJ_cm2(fluence_photons_cm2, wavelength_nm):
    """Pulse energy density (nJ/cm^2) of a photon fluence at the pump wavelength."""
    return pt.as_tensor_variable(fluence_photons_cm2) * photon_energy_J(wavelength_nm) * 1e9


def energy_density_nJ_cm2_to_fluence(energy_density_nJ_cm2, wavelength_nm):
    """Photon fluence (photons/cm^2) of a pulse energy density in nJ/cm^2 (uJ/cm^2: multiply by 1000)."""
    return pt.as_tensor_variable(energy_density_nJ_cm2) * 1e-9 / photon_energy_J(wavelength_nm)


def gain_coefficient_per_cm(absorbance_OD, thickness_nm):
    """Material gain g = -A ln(10) / d in cm^-1 (positive where the film amplifies)."""
    return -pt.as_tensor_variable(absorbance_OD) * LN10 / (pt.as_tensor_variable(thickness_nm) * 1e-7)


def window_absorption_change(A_eff, occ, A_pre, occ_pre, gamma_OD, shift_loss, beta_OD, g_e, g_h):
    """Pump-induced change of the window-averaged film absorbance (OD) from transition counting's read-outs.

    ``A_eff``/``A_pre``: the ensemble band-edge absorption after/before the pump in transition counting's units
    (the neutral band edge is g_e g_h); ``occ``/``occ_pre``: the 1S(e) occupancy of the same populations.  The
    window sees gamma A_eff, less the part of the excited band edge shifted out of it (biexciton binding, ~x^2
    in energy, ~x^4 in the window average: gamma A_eff kappa x^4, x the bleached fraction), and the bleach
    (beta > 0) or induced absorption (< 0) of other transitions per unit 1S(e) occupancy::

        dA = gamma [A_eff (1 - kappa x^4) - A_pre] - beta (occ - occ_pre),  x = (A_pre - A_eff) / (2 g_e g_h)

    Plain arithmetic: NumPy arrays or PyTensor tensors alike (the model and the read-out prediction share it).
    """
    x = (A_pre - A_eff) / (2.0 * g_e * g_h)
    return gamma_OD * (A_eff * (1.0 - shift_loss * x**4) - A_pre) - beta_OD * (occ - occ_pre)


def window_tail_bleach(mean_excitons, delay_ps, t_ref_ps, amplitude_OD, time_ps, exp=None):
    """A bleach (> 0 amplitude) of the photo-excited QDs in the window that decays on its own clock (2S and
    higher bands, hot carriers): amplitude (1 - e^-<N>) e^-(t - t_ref)/tau, subtracted from Delta A; the
    amplitude is the size at ``t_ref`` (the earliest delay fitted).  ``exp``: the exponential of the array
    library (``pt.exp`` for tensors; NumPy's by default)."""
    import numpy as np

    exp = np.exp if exp is None else exp
    return amplitude_OD * (1.0 - exp(-mean_excitons)) * exp(-(delay_ps - t_ref_ps) / time_ps)
