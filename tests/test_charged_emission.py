"""Charge-dependent stimulated emission (component ``charged_emission``): A*(N, n) - c min(N, g_h) [n >= 1].

Checked against tests/reference.py (the table, the cascade by matrix exponential, the threshold by a root of
the Poisson sum), and in the model: c = 0 is transition counting at the same point, and c moves only the
charged potentials' film TA.
"""

import numpy as np
import pytest
from scipy import optimize

from bayesgain.model.spec import SpecError, spec_from_dict
from bayesgain.physics import transitions

from . import reference as ref


def test_table_is_the_charged_qds_band_edge_excitons():
    got = transitions.charged_exciton_table(12, 2, 4)
    want = np.array([[min(N, 4) * (n >= 1) for n in range(3)] for N in range(13)], float)
    np.testing.assert_array_equal(got, want)
    assert np.all(got[4:] == got[4])  # constant from N = g_h on: the cascade's saturated lumping stays exact


def test_effective_table_is_counting_plus_trapping_emission_minus_charged_emission():
    import pytensor.tensor as pt

    M, eta, c = 9, 0.3, 0.7
    want = np.array([[ref.band_edge(N, n) + eta * min(N, 4) * min(N + n, 2) - c * min(N, 4) * (n >= 1)
                      for n in range(3)] for N in range(M + 1)])
    tabs = (transitions.emission_table(M), transitions.charged_exciton_table(M))
    np.testing.assert_allclose(transitions.effective_table(transitions.transition_table(M).eval(), tabs[0], eta,
                                                           tabs[1], c), want, atol=1e-12)
    sym = transitions.effective_table(transitions.transition_table(M), tabs[0], pt.dscalar("eta"), tabs[1],
                                      pt.dscalar("c"))
    np.testing.assert_allclose(sym.eval({"eta": eta, "c": c}), want, atol=1e-12)
    # an absent term is absent, not zero-weighted: the counting table comes back unchanged
    counting = transitions.transition_table(M).eval()
    assert transitions.effective_table(counting, tabs[0], None, tabs[1], None) is counting


def test_cascade_and_threshold_carry_c_as_the_reference():
    from bayesgain.model import quantities as q

    delays = np.array([0.0, 5.0, 100.0, 1000.0])
    f = np.array([0.2, 0.5, 0.3])
    fn = q._cascade_draw_fn(2, 4, 30)
    got = fn(1 / 310.0, 1 / 2e4, 1.0, 1.0, 0.0, 0.7, np.array([1.0, 3.0]), np.array([f, f]), delays)
    for row, mean in zip(got, (1.0, 3.0)):
        want = ref.cascade_ode(mean, f, delays, 1 / 310.0, 1 / 2e4, charged_emission=0.7)
        np.testing.assert_allclose(row, want, atol=1e-8)
        assert not np.allclose(row, ref.cascade_ode(mean, f, delays, 1 / 310.0, 1 / 2e4), atol=1e-3)

    one = np.array([0.0, 1.0, 0.0])  # every QD singly charged

    def A(m, c):
        return sum(ref.poisson(N, m) * (ref.band_edge(N, 1) - c * min(N, 4)) for N in range(60))

    for c in (-0.5, 0.0, 1.0, 2.0):
        want = optimize.brentq(lambda m: A(m, c), 1e-6, 8.0, xtol=1e-12)
        got_thr = q._solve_on_table(one, 2, 4, charged_emission=np.array(c))
        assert got_thr == pytest.approx(want, abs=2e-3), c
    # neutral QDs are untouched by c
    assert q._solve_on_table(np.array([1.0, 0.0, 0.0]), 2, 4, charged_emission=np.array(2.0)) == pytest.approx(
        q._solve_on_table(np.array([1.0, 0.0, 0.0]), 2, 4), abs=1e-9)


def test_spec_switch_and_refusals():
    spec = spec_from_dict({"components": {"charged_emission": True}})
    assert spec.priors["charged_exciton_emission"]["dist"] == "Normal"
    assert "charged_exciton_emission" not in spec_from_dict({}).priors  # off by default: transition counting
    with pytest.raises(SpecError, match="hole_trapping"):
        spec_from_dict({"components": {"charged_emission": True, "hole_trapping": True}})
    with pytest.raises(SpecError, match="needs gain or dynamics"):
        spec_from_dict({"components": {"charged_emission": True, "gain": False, "dynamics": False,
                                       "reflection": False}})


@pytest.fixture(scope="module")
def two_models(batch_a):
    from bayesgain.model.core import GainModel

    out = {}
    for on in (False, True):
        spec = spec_from_dict({"components": {"reflection": False, "charged_emission": on}})
        gm = GainModel(spec, batch_a)
        gm.build()
        out[on] = gm
    return out


def _physics_mean(gm, point):
    m = gm.model
    out = m.replace_rvs_by_values([gm.film_mean_physics])[0]
    return m.compile_fn(out, inputs=m.value_vars, on_unused_input="ignore", mode="FAST_COMPILE")(point)


def test_model_at_c_zero_is_counting_and_c_moves_only_charged_potentials(two_models):
    off, on = two_models[False], two_models[True]
    ip = on.model.initial_point()
    ip["charged_exciton_emission"] = np.zeros_like(ip["charged_exciton_emission"])
    base = {k: v for k, v in ip.items() if k in off.model.initial_point()}
    np.testing.assert_allclose(_physics_mean(on, ip), _physics_mean(off, base), rtol=1e-12)
    ip["charged_exciton_emission"] = np.full_like(ip["charged_exciton_emission"], 1.5)
    moved = np.abs(_physics_mean(on, ip) - _physics_mean(off, base))
    pot = on.ta_potential_index
    f = on.model.compile_fn(on.model.replace_rvs_by_values([on.model["ta_charge_fractions"]])[0],
                            inputs=on.model.value_vars, on_unused_input="ignore", mode="FAST_COMPILE")(ip)
    charged = 1.0 - f[:, 0]
    per_pot = np.array([np.max(moved[pot == k]) for k in range(f.shape[0])])
    least, most = np.argmin(charged), np.argmax(charged)
    assert charged[least] < 1e-2 < 0.5 < charged[most]
    # the change follows the charged share: charged QDs emit more, the window bleaches further
    assert per_pot[least] < 0.05 * per_pot[most] and per_pot[most] > 1e-4
