"""The report of a fit of several experiments: a Fig. 5 panel per experiment, each drawn from its own posterior.

No sampling: a charging-only model of batch A loaded twice, with a made-up posterior whose two experiments differ in
their level disorder (so their threshold curves differ); the reference curves come from model.quantities.
"""

import types

import numpy as np
import pytest
import xarray as xr

FIG5B = "fig5b_threshold_vs_doping.png"
CHARGING_ONLY = {"name": "charging-only", "description": "SEC charging only",
                 "components": {"cross_section": False, "charging": True, "photoluminescence": False, "gain": False,
                                "dynamics": False, "reflection": False, "hole_trapping": False},
                 "options": {"disorder": "gaussian"}}
SIGMA_1S_V = {"film-a": 0.02, "film b": 0.09}  # narrow and broad level disorder: different <N_gain>(<n_e>)


@pytest.fixture(scope="module")
def pooled(batch_a):
    from bayesgain.model.core import GainModel
    from bayesgain.model.spec import spec_from_dict

    gm = GainModel(spec_from_dict(CHARGING_ONLY), [batch_a, batch_a], names=list(SIGMA_1S_V))
    rng = np.random.default_rng(0)
    shape = (2, 50, 2)  # chain, draw, experiment

    def draws(centre):
        return (("chain", "draw", "experiment"), np.asarray(centre) * (1 + 0.01 * rng.standard_normal(shape)))

    post = xr.Dataset({"V_1S_V": draws(-1.25), "V_C_V": draws(0.1), "sigma_1S_V": draws(list(SIGMA_1S_V.values()))},
                      coords={"chain": [0, 1], "draw": np.arange(50), "experiment": gm.names})
    gm.idata = xr.DataTree.from_dict({"posterior": post})
    gm.convergence = None
    return gm


def test_figure_files_per_experiment_only_for_a_fit_of_several():
    from bayesgain.report.figures import figure_files

    one, two = types.SimpleNamespace(names=["batch-a"]), types.SimpleNamespace(names=["film-a", "film b"])
    assert figure_files(one, FIG5B) == [(FIG5B, 0)]  # today's name: README and scripts keep working
    assert figure_files(two, FIG5B) == [("fig5b_threshold_vs_doping-film-a.png", 0),
                                        ("fig5b_threshold_vs_doping-film_b.png", 1)]
    assert figure_files(two, "ppc.png") == [("ppc.png", None)]  # already shows every experiment
    clash = types.SimpleNamespace(names=["a b", "a_b"])
    assert [f for f, _ in figure_files(clash, "rank.png")] == ["rank-0-a_b.png", "rank-1-a_b.png"]


def test_pooled_fit_gets_one_fig5b_per_experiment_drawn_from_its_own_posterior(pooled, tmp_path, monkeypatch):
    from bayesgain.model.quantities import threshold_curve
    from bayesgain.report import outputs, write_report
    from bayesgain.report.figures import fig5

    drawn = {}
    save = fig5._save

    def record(fig, model, path, title, experiment=None, notes=()):
        medians = [ln for ln in fig.axes[0].lines if ln.get_label() == "posterior median"]
        out = save(fig, model, path, title, experiment, notes)
        drawn[path.name] = (np.asarray(medians[0].get_ydata()), fig.get_suptitle())
        return out

    monkeypatch.setattr(fig5, "_save", record)
    monkeypatch.setattr(outputs, "_FIGURE_FUNCS", {"fig5a_charging.png": fig5.fig_charging,
                                                   FIG5B: fig5.fig_threshold})  # the two without sampling
    result = write_report(pooled, tmp_path, figures=True)

    files = {"film-a": "fig5b_threshold_vs_doping-film-a.png", "film b": "fig5b_threshold_vs_doping-film_b.png"}
    assert not (tmp_path / FIG5B).exists()
    report = (tmp_path / "report.md").read_text()
    for e, (name, file) in enumerate(files.items()):
        assert result["figures"][file] == "ok" and (tmp_path / file).stat().st_size > 0
        assert f"- [{file}]({file}): " in report and f"; experiment {name}" in report and f"![{file}]({file})" in report
        want = np.nanmedian(threshold_curve(pooled, experiment=e).values, axis=0)
        got, title = drawn[file]
        assert np.allclose(got, want, rtol=1e-6, equal_nan=True), name
        assert title.endswith(f"experiment {name}")
    a, b = (drawn[f][0] for f in files.values())
    assert np.nanmax(np.abs(a - b)) > 0.05  # the two experiments' curves differ: neither is experiment 0 twice
    assert {f"fig5a_charging-{s}.png" for s in ("film-a", "film_b")} <= set(result["figures"])


def test_fig5b_overlays_left_out_silently_when_not_applicable_and_named_when_they_fail(pooled, tmp_path, monkeypatch):
    from bayesgain.report.cache import _Cache
    from bayesgain.report.figures import fig5

    seen = {}
    save = fig5._save

    def record(fig, model, path, title, experiment=None, notes=()):
        seen[path.name] = list(notes)
        return save(fig, model, path, title, experiment, notes)

    monkeypatch.setattr(fig5, "_save", record)
    fig5.fig_threshold(pooled, _Cache(pooled), tmp_path / "quiet.png", experiment=0)
    assert seen["quiet.png"] == []  # charging-only: no TA overlays to draw (Skip), nothing claimed as failed

    def broken(ax, cache, experiment):
        raise RuntimeError("a bug in the overlay")

    monkeypatch.setattr(fig5, "_plot_measured", broken)
    fig5.fig_threshold(pooled, _Cache(pooled), tmp_path / "loud.png", experiment=0)
    assert seen["loud.png"] == ["overlay 'measured thresholds' FAILED (RuntimeError: a bug in the overlay)"]
    assert (tmp_path / "loud.png").stat().st_size > 0  # the figure stands without the overlay
