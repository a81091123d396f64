"""Gradients of every physical parameter against finite differences (pytensor.gradient.verify_grad).

Each check runs on PyTensor's Python VM with the fast_run rewrites (numpy_mode: compiled in a second); the
same checks on numba compilation (the sampler's backend: minutes of compilation cold) are marked slow.
"""

import numpy as np
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

from bayesgain.physics import auger, charging, ensemble, optics, transitions
from bayesgain.physics.api import numpy_mode

RNG = np.random.default_rng(7)


@pytest.fixture(params=["python-vm", pytest.param("numba", marks=pytest.mark.slow)])
def opts(request):
    """verify_grad settings; the mode is the backend the graphs are compiled for."""
    mode = numpy_mode() if request.param == "python-vm" else "NUMBA"
    return dict(rng=RNG, abs_tol=1e-6, rel_tol=1e-5, eps=1e-7, mode=mode)


def test_grad_plain_fractions(opts):
    V = np.linspace(-1.5, -0.9, 5)
    verify_grad(lambda V1, Vc, T: charging.charge_fractions(V, V1, Vc, T), [np.array(-1.2), np.array(0.005),
                np.array(293.0)], **opts)


def test_grad_disordered_fractions(opts):
    V = np.linspace(-1.5, -0.9, 5)
    verify_grad(lambda V1, Vc, s: charging.charge_fractions_disordered(V, V1, Vc, s, 293.0, 2, 32),
                [np.array(-1.2), np.array(0.005), np.array(0.11)], **opts)


def test_grad_uniform_doping_fractions(opts):
    # between the integers (the kinks): slope 1 or -1 in <n_e>
    verify_grad(lambda m: charging.charge_fractions_uniform(m, 2), [np.array([0.3, 0.85, 1.45, 1.9])], **opts)


def test_grad_uniform_doping_law(opts):
    # the model's uniform law: <n_e> of the disordered ensemble, split between floor and ceil (points off integers)
    V = np.array([-1.3, -1.22, -1.15, -1.05])

    def law(V1, Vc, s):
        return charging.charge_fractions_uniform(
            charging.mean_electrons(charging.charge_fractions_disordered(V, V1, Vc, s, 293.0, 2, 32)), 2)

    verify_grad(law, [np.array(-1.2), np.array(0.005), np.array(0.11)], **opts)


def test_grad_ensemble_absorption(opts):
    table = transitions.transition_table(30, 2, 4)
    verify_grad(lambda m, f: ensemble.ensemble_absorption(m, f, table),
                [np.array([0.3, 1.5, 6.0]), np.array([[0.2, 0.3, 0.5]] * 3)], **opts)


def test_grad_threshold_is_implicit_gradient(opts):
    table = transitions.transition_table(40, 2, 4)

    def thr(logits):
        return ensemble.solve_threshold(pt.special.softmax(logits, axis=-1), table, upper=12.0)

    verify_grad(thr, [np.array([[0.5, 0.1, -0.4], [0.0, 0.2, 0.3]])], **opts)


def test_grad_cascade_parameters(opts):
    delays = np.array([0.0, 3.0, 50.0, 400.0, 2500.0])

    def model(tau_xx_ns, k_x_per_10us, mean, logits):  # scaled so finite differences are well conditioned
        rates = auger.rate_table(30, 2, 1e-3 / tau_xx_ns, k_x_per_10us * 1e-5)
        table = transitions.transition_table(30, 2, 4)
        f = pt.special.softmax(logits, axis=-1)
        return auger.cascade_absorption(mean, f, delays, rates, table, n_saturated=4)

    verify_grad(model, [np.array(0.31), np.array(5.0), np.array([0.8, 4.0]), np.array([0.1, 0.0, -0.3])],
                **opts)


def test_grad_optics(opts):
    verify_grad(optics.reflection_correct, [np.array([0.01, -0.02]), np.array([0.003, -0.001]), np.array([0.3, 0.4]),
                                            np.array([0.1, 0.05])], **opts)
    verify_grad(optics.depth_averaged_fluence, [np.array([1e-3, 2.0]), np.array([0.2, 0.7])], **opts)
    verify_grad(lambda s: optics.bleach_saturation(s * 1e-14, np.array([1e13, 1e14])), [np.array(3.6)], **opts)


@pytest.mark.parametrize("fn", [charging.effective_temperature_K])
def test_grad_effective_temperature(fn, opts):
    verify_grad(lambda s: fn(s, 293.0), [np.array(0.11)], **opts)
