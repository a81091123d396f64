"""Bad arguments raise a ValueError that names the argument and says why."""

import numpy as np
import pytest

from bayesgain import physics as ph


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: ph.auger_rate(2, 0, -1.0), "k_xx must be >= 0"),
        (lambda: ph.cascade_absorption(1.0, [1, 0, 0], [0, 1], k_xx=1e-3, k_x=-1e-5), "k_x must be >= 0"),
        (lambda: ph.cascade_absorption(-0.5, [1, 0, 0], [0, 1], 1e-3), "mean_excitons must be >= 0"),
        (lambda: ph.cascade_absorption(1.0, [1, 0, 0], [-1.0, 1], 1e-3), "delays_ps must be >= 0"),
        (lambda: ph.ensemble_absorption(1.0, [0.5, 0.2, 0.2]), "charge_fractions must sum to 1"),
        (lambda: ph.ensemble_absorption(1.0, [0.5, 0.5]), "last axis of length g_e \\+ 1 = 3"),
        (lambda: ph.ensemble_absorption(9.0, [1, 0, 0], n_max=12), "n_max=12 is too small"),
        (lambda: ph.gain_threshold([1.2, -0.2, 0.0]), "charge_fractions must lie in \\[0, 1\\]"),
        (lambda: ph.depth_averaged_fluence(-1e13, 0.3), "fluence_photons_cm2 must be >= 0"),
        (lambda: ph.bleach_saturation(3.6e-14, [1e13, np.nan]), "fluence_photons_cm2 must be finite"),
        (lambda: ph.charge_fractions(-1.0, -1.2, sigma_1S=-0.1), "sigma_1S must be >= 0"),
        (lambda: ph.charge_fractions(-1.0, -1.2, temperature_K=0), "temperature_K must be > 0"),
        (lambda: ph.band_edge_absorption(1, 3), "n_echem must be <= g_e = 2"),
        (lambda: ph.band_edge_absorption(1, 0, g_e=2.5), "g_e must be a positive integer"),
        (lambda: ph.reflection_correct(0.01, 0.0, 1.2, 0.0), "F_A must lie in \\[0, 1\\)"),
        (lambda: ph.gain_coefficient_per_cm(-0.01, 0.0), "thickness_nm must be > 0"),
        (lambda: ph.state_populations([1, 0, 0, 0], [0.0, 1e-3, 1e-3], [0.0]), "distinct"),
    ],
)
def test_bad_argument_raises_named_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_inputs_are_not_modified():
    f = np.array([[0.2, 0.3, 0.5]])
    mean = np.array([1.0])
    f_copy, mean_copy = f.copy(), mean.copy()
    ph.cascade_absorption(mean, f, [0.0, 10.0], 1e-3)
    np.testing.assert_array_equal(f, f_copy)
    np.testing.assert_array_equal(mean, mean_copy)
