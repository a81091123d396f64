"""Model specifications that build on another one (``extends``): resolution, errors, self-contained output."""

import pathlib
import tomllib

import pytest

from bayesgain.model.spec import MODELS_DIR, SpecError, available_models, load_spec, spec_from_dict

FULL = pathlib.Path(__file__).resolve().parent / "fixtures" / "model-specs-full"


def _content(spec):
    return (spec.name, spec.description, spec.components, spec.options, spec.priors, spec.pooling)


@pytest.mark.parametrize("name", sorted(p.stem for p in FULL.glob("*.toml")))
def test_shipped_spec_equals_its_full_former_content(name):
    """Each shipped model resolves to what its file said when it restated every option and prior."""
    before = spec_from_dict(tomllib.loads((FULL / f"{name}.toml").read_text()), source=f"{name} (full)")
    assert _content(load_spec(name)) == _content(before)


def test_every_shipped_model_has_its_full_former_content_and_the_variants_extend_joint():
    assert set(available_models()) == {p.stem for p in FULL.glob("*.toml")}
    standalone = {"joint", "cross-section-only"}  # the base, and a model joint's sigma_1S_V prior would change
    for name in available_models():
        data = tomllib.loads((MODELS_DIR / f"{name}.toml").read_text())
        assert (data.get("extends") == "joint") == (name not in standalone), name


def test_stored_toml_is_complete_without_the_base(tmp_path):
    """to_toml() (stored in every fit) has no extends and reads back alone to the same spec."""
    spec = load_spec("joint-effective-temperature")
    text = spec.to_toml()
    assert "extends" not in tomllib.loads(text)
    again = spec_from_dict(tomllib.loads(text))
    assert _content(again)[2:] == _content(spec)[2:]
    assert "sigma_1S_V" not in spec.priors and "sigma_1S_V" not in spec.pooling  # joint's, dropped: unused
    assert spec.pooling["V_1S_V"] == load_spec("joint").pooling["V_1S_V"]


def _write(folder, name, text):
    (folder / name).write_text(text)
    return folder / name


def test_chain_of_files_relative_paths_and_overrides(tmp_path):
    _write(tmp_path, "mine.toml", 'name = "mine"\nextends = "joint"\n[options]\nauger = "free"\n'
                                  '[priors]\ntau_xx_ps = { dist = "LogNormal", mu = 6.0, sigma = 0.3 }\n')
    sub = tmp_path / "sub"
    sub.mkdir()
    path = _write(sub, "child.toml", 'name = "child"\nextends = "../mine.toml"\n[components]\nhole_trapping = true\n'
                                     '[priors]\ntau_xx_ps = { dist = "LogNormal", mu = 5.0, sigma = 0.2 }\n')
    spec = load_spec(path)
    joint = load_spec("joint")
    assert spec.name == "child" and spec.description == ""  # never inherited
    assert spec.options["auger"] == "free" and spec.components["hole_trapping"]
    assert spec.priors["tau_xx_ps"]["mu"] == 5.0 and spec.priors["tau_xx_ps"]["sigma"] == 0.2
    assert spec.priors["V_C_V"] == joint.priors["V_C_V"]  # from joint, two levels up
    assert {"trion_rate_factor", "hole_trap_fraction"} <= set(spec.priors)


def test_a_cycle_is_refused_naming_the_files(tmp_path):
    _write(tmp_path, "a.toml", 'name = "a"\nextends = "b.toml"\n')
    _write(tmp_path, "b.toml", 'name = "b"\nextends = "a.toml"\n')
    with pytest.raises(SpecError, match=r"extends cycle: .*a\.toml -> .*b\.toml -> .*a\.toml"):
        load_spec(tmp_path / "a.toml")
    _write(tmp_path, "self.toml", 'name = "self"\nextends = "self.toml"\n')
    with pytest.raises(SpecError, match="extends cycle"):
        load_spec(tmp_path / "self.toml")


@pytest.mark.parametrize("extends, match", [
    ('"jont"', "extends = 'jont': no shipped model of that name.*did you mean 'joint'"),
    ('"missing.toml"', "extends = 'missing.toml': no such file"),
    ("3", "extends must be a shipped model name"),
])
def test_an_unknown_base_is_one_clear_error(tmp_path, extends, match):
    path = _write(tmp_path, "x.toml", f'name = "x"\nextends = {extends}\n')
    with pytest.raises(SpecError, match=match):
        load_spec(path)


def test_errors_in_a_base_name_the_base_and_own_unused_priors_stay_errors(tmp_path):
    _write(tmp_path, "base.toml", 'name = "base"\nextends = "joint"\n[options]\ndisorder = "lorentzian"\n')
    path = _write(tmp_path, "child.toml", 'name = "child"\nextends = "base.toml"\n')
    with pytest.raises(SpecError, match=r"base\.toml: \[options\] disorder"):
        load_spec(path)
    own = _write(tmp_path, "own.toml", 'name = "own"\nextends = "joint"\n[options]\ndisorder = "none"\n'
                                       '[priors]\nsigma_1S_V = { dist = "HalfNormal", sigma = 0.1 }\n')
    with pytest.raises(SpecError, match="sigma_1S_V is not used by this model"):
        load_spec(own)


def test_inherited_pooling_that_no_longer_fits_says_it_was_inherited(tmp_path):
    path = _write(tmp_path, "p.toml", 'name = "p"\nextends = "joint"\n'
                                      '[priors]\nsigma_1S_V = { dist = "HalfNormal", sigma = 0.1 }\n')
    with pytest.raises(SpecError, match=r"\[pooling\] sigma_1S_V \(inherited through extends\)"):
        load_spec(path)


def test_a_retired_tau_x_prior_is_restated_on_the_rate():
    """A LogNormal lifetime tau_x (ps) is a LogNormal rate k_x (1/ns) with mu -> ln 1000 - mu: an older spec or a
    saved fit builds the same prior; a prior that cannot be restated is one clear error."""
    import math

    import numpy as np
    from scipy import stats

    old = spec_from_dict({"priors": {"tau_x_ps": {"dist": "LogNormal", "mu": 9.9, "sigma": 1.0, "unit": "ps"}}})
    p = old.priors["k_x_per_ns"]
    assert p["dist"] == "LogNormal" and p["sigma"] == 1.0 and p["unit"] == "1/ns"
    tau = np.array([5e3, 2e4, 8e4])  # ps; the rate's quantiles are the lifetime's, reversed
    q_tau = stats.lognorm.cdf(tau, s=1.0, scale=math.exp(9.9))
    q_k = stats.lognorm.sf(1e3 / tau, s=p["sigma"], scale=math.exp(p["mu"]))
    np.testing.assert_allclose(q_k, q_tau, rtol=1e-12)
    assert spec_from_dict({}).priors["k_x_per_ns"]["dist"] == "HalfNormal"  # the default includes k_x = 0
    with pytest.raises(SpecError, match="k_x_per_ns"):
        spec_from_dict({"priors": {"tau_x_ps": {"dist": "HalfNormal", "sigma": 1e4}}})
