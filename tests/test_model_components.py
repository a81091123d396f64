"""The model as registered components: the registry, the charging laws, and builds with a component switched off."""

import dataclasses

import pytest


def test_registry_holds_every_component_in_build_order():
    from bayesgain.model import components

    names = [c.name for c in components.registered()]
    assert names == ["cross_section", "charging", "photoluminescence", "charged_emission", "film_ta", "reflection"]
    assert components.get("film_ta").switches == ("gain", "dynamics")
    with pytest.raises(KeyError, match="registered: cross_section"):
        components.get("no-such-component")


def test_each_component_declares_its_switches_and_priors_in_its_own_file():
    """The spec's [components] and default priors are collected from the components: none is restated in spec.py."""
    from bayesgain.model import components, spec

    declared = set()
    for c in components.registered():
        assert set(c.switch_docs) == set(c.switches), c.name
        for s in c.switches:
            assert spec.COMPONENTS[s] == c.switch_docs[s] and spec.DEFAULT_COMPONENTS[s] == c.default_on
        for name, p in c.priors.items():
            assert spec.DEFAULT_PRIORS[name] is p
            declared.add(name)
    assert "charged_exciton_emission" in declared and "ta_noise_rel" in declared
    spec_text = (spec.__file__ and open(spec.__file__).read())
    assert not [n for n in declared if f'"{n}"' in spec_text]


def test_a_component_cannot_be_registered_twice():
    from bayesgain.model.components import Component, register

    class Again(Component):
        name = "charging"

    with pytest.raises(ValueError, match="registered twice"):
        register(Again)


def test_every_spec_switch_with_a_likelihood_belongs_to_one_component():
    from bayesgain.model import components
    from bayesgain.model.spec import COMPONENTS

    owners = {}
    for c in components.registered():
        for s in c.switches:
            owners.setdefault(s, []).append(c.name)
    # hole_trapping modifies the cascade of cross_section and film_ta; it has no likelihood of its own
    assert {s: len(v) for s, v in owners.items()} == {s: 1 for s in COMPONENTS if s != "hole_trapping"}


def test_charging_laws_are_the_disorder_option_values():
    from bayesgain.model.components.charging_laws import LAWS
    from bayesgain.model.spec import DEFAULT_OPTIONS

    assert set(LAWS) == set(DEFAULT_OPTIONS["disorder"][1])
    assert [n for n, law in LAWS.items() if law.uses_quadrature] == ["gaussian", "uniform"]


@pytest.fixture(scope="module")
def joint_reduced(batch_a):
    from bayesgain.model.core import GainModel

    return GainModel("joint", batch_a, names=["batch-a"])


@pytest.mark.parametrize("off, gone_observed, gone_vars", [
    ({"reflection": False}, ["reflection"], ["reflection_scale", "subgap_noise_rel"]),
    ({"cross_section": False}, ["cross_section"], ["fluence_log_cal_solution", "solution_gamma_scale"]),
    ({"gain": False}, ["gain"], []),
])
def test_a_spec_with_a_component_switched_off_builds_without_it(joint_reduced, off, gone_observed, gone_vars):
    from bayesgain.model.core import GainModel
    from bayesgain.model.resolve import spec_with_components

    full = joint_reduced.build()
    spec = spec_with_components(joint_reduced.spec, {**joint_reduced.spec.components, **off})
    gm = GainModel(spec, _reduced=joint_reduced.data)
    model = gm.build()
    observed = [v.name for v in model.observed_RVs]
    for name in gone_observed:
        assert name in full.named_vars and name not in observed
    for name in gone_vars:
        assert name in full.named_vars and name not in model.named_vars
    assert gm.observed_names == observed
    assert set(observed) == {v.name for v in full.observed_RVs} - set(gone_observed)


def test_missing_data_of_a_component_is_one_clear_error(joint_reduced):
    from bayesgain.model.core import GainModel

    data = joint_reduced.data.drop_vars("subgap_dA")
    with pytest.raises(ValueError, match=r"reflection component needs the reduced data \['subgap_dA'\]"):
        GainModel(dataclasses.replace(joint_reduced.spec), _reduced=data).build()


def test_uniform_law_keeps_the_sec_curve_and_splits_the_charge_between_floor_and_ceil(joint_reduced):
    """joint-uniform at joint's initial point: the same SEC likelihood (same <n_e>(V)), and film TA fractions that
    are the floor/ceil split of joint's <n_e> at every film TA potential."""
    import numpy as np

    from bayesgain.model.core import GainModel
    from bayesgain.model.resolve import spec_with_components
    from bayesgain.model.spec import load_spec
    from bayesgain.physics.api import numpy_mode

    from . import reference as ref

    spec = spec_with_components(load_spec("joint-uniform"), joint_reduced.spec.components)
    uni = GainModel(spec, _reduced=joint_reduced.data).build()
    joint = joint_reduced.build()
    assert [v.name for v in uni.free_RVs] == [v.name for v in joint.free_RVs]
    point = joint.initial_point()
    logp = {m: m.compile_logp(vars=[m["charging"]], mode=numpy_mode())(point) for m in (uni, joint)}
    assert logp[uni] == pytest.approx(logp[joint], rel=1e-12)
    f = {m: m.compile_fn(m.replace_rvs_by_values([m["ta_charge_fractions"]])[0], inputs=m.value_vars,
                         on_unused_input="ignore", mode=numpy_mode())(point) for m in (uni, joint)}
    n_e = f[joint] @ np.arange(3.0)
    assert np.ptp(n_e) > 0.5  # the potentials span doping levels
    np.testing.assert_allclose(f[uni], [ref.fractions_uniform(x) for x in n_e], atol=1e-12)
    assert not np.allclose(f[uni], f[joint], atol=1e-2)  # the law changes the film TA fractions


def test_uniform_law_fractions_at_doping_levels():
    """Posterior quantities read the uniform law's fractions at <n_e> targets: the floor/ceil split, every draw."""
    import types

    import numpy as np

    from bayesgain.model.quantities import _fractions_at_mean_electrons

    from . import reference as ref

    stub = types.SimpleNamespace(spec=types.SimpleNamespace(options={"disorder": "uniform"}))  # all this path reads
    targets = np.array([0.0, 0.4, 1.0, 1.7, 2.0])
    got = _fractions_at_mean_electrons(stub, targets, np.full(3, 0.005), np.full(3, 0.1), None, 2, 293.0)
    assert got.shape == (3, 5, 3)
    np.testing.assert_allclose(got, np.broadcast_to([ref.fractions_uniform(x) for x in targets], got.shape))


def test_every_law_gives_numpy_fractions_for_posterior_draws():
    """quantities and design ask the law for NumPy fractions: a new law is one class, not a branch in each."""
    import numpy as np

    from bayesgain import physics as ph
    from bayesgain.model.components.charging_laws import LAWS

    V = np.linspace(-1.6, -0.9, 15)[None, :]
    p = {"V_1S_V": np.array([[-1.25], [-1.2]]), "V_C_V": np.array([[0.005], [0.02]]),
         "sigma_1S_V": np.array([[0.11], [0.05]]), "T_eff_K": np.array([[900.0], [400.0]])}
    out = {name: law.numpy_fractions(V, p, 293.0, 2) for name, law in LAWS.items()}
    for name, f in out.items():
        assert f.shape == (2, 15, 3) and np.allclose(f.sum(-1), 1.0), name
    wide = ph.charge_fractions(V, p["V_1S_V"], p["V_C_V"], p["sigma_1S_V"], 293.0, 2, n_nodes=400)
    np.testing.assert_allclose(out["gaussian"], wide, atol=1e-6)
    np.testing.assert_allclose(out["effective-temperature"],
                               ph.charge_fractions(V, p["V_1S_V"], p["V_C_V"], 0.0, p["T_eff_K"], 2), atol=1e-12)
    ne = np.arange(3.0)
    np.testing.assert_allclose(out["uniform"] @ ne, out["gaussian"] @ ne, atol=1e-12)  # same <n_e>, no spread
    assert np.all(np.sum(out["uniform"] > 1e-12, axis=-1) <= 2)
