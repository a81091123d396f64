"""Parameter recovery and model comparison on SYNTHETIC data (slow: full sampling runs).

Recovery: the joint model on data/synthetic-batch-a and the hole-trapping variant on
data/synthetic-batch-b -- every true physical parameter of truth.toml inside its 94 % HDI, R-hat <=
1.01, bulk ESS >= 400, no divergence.  Comparison: on SEC data simulated with level disorder the
disorder model wins decisively; on data simulated without disorder no decisive preference is claimed.
Run with ``python -m pytest -m slow tests/test_recovery.py``.
"""

import pathlib
import tomllib

import arviz as az
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# parameter in the posterior -> key in truth.toml
TRUE_KEYS = {
    "cross_section_cm2": "cross_section_400nm_cm2",
    "film_cross_section_ratio": "film_cross_section_ratio",
    "V_1S_V": "V_1S_V",
    "V_C_V": "V_C_V",
    "sigma_1S_V": "sigma_1S_V",
    "tau_xx_ps": "tau_xx_ps",
    "tau_x_ps": "tau_x_ps",
    "hole_trap_fraction": "hole_trap_fraction",
    "fluence_log_sd": "fluence_log_sd",
}


def _fit(spec, folder, seed=1):
    from bayesgain.model.core import GainModel

    m = GainModel(spec, folder)
    m.fit(draws=1000, tune=1000, chains=4, seed=seed, progress=False)
    return m


def _check_recovery(m, truth):
    post = m.idata["posterior"]
    outside = []
    for name, key in TRUE_KEYS.items():
        if name not in post or key not in truth:
            continue
        x = post[name].isel(experiment=0).values.reshape(-1)
        lo, hi = np.asarray(az.hdi(x, prob=0.94))
        if not lo <= truth[key] <= hi:
            outside.append(f"{name}: truth {truth[key]:.5g} outside [{lo:.5g}, {hi:.5g}]")
    assert not outside, outside
    conv = m.convergence
    assert conv["max_r_hat"] <= 1.01 and conv["min_ess_bulk"] >= 400 and conv["divergences"] == 0, conv.text()
    assert conv.ok, conv.text()  # also: no chain trapped in a minor mode, Poisson truncation long enough


def _with_options(name, **options):
    from bayesgain.model.spec import load_spec, spec_from_dict

    d = tomllib.loads(load_spec(name).to_toml())
    d["options"].update(options)
    return spec_from_dict(d)


# batch B: trapped holes by transition counting (the simulator's own code, sim_physics), fitted as shipped
@pytest.mark.parametrize("folder, spec, options", [("synthetic-batch-a", "joint", {}),
                                                   ("synthetic-batch-b", "joint-hole-trapping", {})])
def test_joint_model_recovers_the_simulation_truth(folder, spec, options):
    path = ROOT / "data" / folder
    truth = tomllib.loads((path / "truth.toml").read_text())
    m = _fit(_with_options(spec, **options), path)
    _check_recovery(m, truth)
    # the thresholds at the measured potentials, a derived quantity, too
    from bayesgain.model import quantities as q

    at = q.hdi_table(q.thresholds_at_potentials(m)["threshold_mean_excitons"])
    for V, lo, hi in zip(at["potential"].values, at["hdi_low"].values, at["hdi_high"].values):
        t = truth["film_threshold_t0_mean_excitons"][f"{V:.3f}V"]
        assert lo - 1e-3 <= t <= hi + 1e-3, (V, t, lo, hi)


def _sec_spec(disorder):
    from bayesgain.model.spec import spec_from_dict

    comps = {k: False for k in ("cross_section", "gain", "dynamics", "reflection")}
    return spec_from_dict({"name": f"sec-{disorder}", "components": comps, "options": {"disorder": disorder}})


@pytest.mark.parametrize("sigma_1S, decisive", [(0.11, True), (0.0, False)])
def test_comparison_prefers_disorder_only_when_it_is_there(tmp_path, sigma_1S, decisive):
    from bayesgain.model.comparison import DECISIVE_ELPD, DECISIVE_SE, compare
    from bayesgain.model.core import GainModel
    from bayesgain.simulate import simulate_experiment

    folder = simulate_experiment(tmp_path / "sim", preset="batch-a", seed=11, sigma_1S_V=sigma_1S)
    fits = {}
    for disorder in ("gaussian", "none"):
        m = GainModel(_sec_spec(disorder), folder)
        m.fit(draws=500, tune=500, chains=2, seed=3, progress=False)
        fits[disorder] = m
    table, verdict = compare(fits)
    diff = -float(table["elpd_diff"].iloc[1])
    dse = float(table["dse"].iloc[1])
    if decisive:
        assert table.index[0] == "gaussian" and diff > DECISIVE_ELPD and diff > DECISIVE_SE * dse, (table, verdict)
        assert "decisively" in verdict
    else:
        assert not (diff > DECISIVE_ELPD and diff > DECISIVE_SE * dse), (table, verdict)
        assert "No decisive preference" in verdict or "not decisively" in verdict
