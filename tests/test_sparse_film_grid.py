"""A film TA grid with holes (a lab measures the runs it chose): the model numbers only the files there are.

The model of batch A with three potential x fluence cells left out of the manifest must predict every point it
keeps exactly as the model of the whole grid does at the same parameter values: the same per-point log
likelihood, the same <N> per file.  A wrong file numbering (calibration, potential or fluence of another file)
changes both.
"""

import shutil
import tomllib

import numpy as np
import pytest

from bayesgain.io import load_experiment
from bayesgain.model.core import GainModel

from .conftest import BATCH_A

HOLES = ("ta_V-0.300_F02.csv", "ta_V-1.172_F01.csv", "ta_V-1.172_F09.csv")


def _without(folder, names):
    text = (folder / "experiment.toml").read_text()
    blocks = text.split("\n[[")
    keep = [b for b in blocks if not (b.startswith("film.ta]]") and any(n in b for n in names))]
    assert len(blocks) - len(keep) == len(names)
    (folder / "experiment.toml").write_text("\n[[".join(keep))


@pytest.fixture(scope="module")
def holes_tree(tmp_path_factory):
    folder = tmp_path_factory.mktemp("holes") / "batch-a"
    shutil.copytree(BATCH_A, folder)
    _without(folder, HOLES)
    return load_experiment(folder)


@pytest.fixture(scope="module")
def models(holes_tree, batch_a):
    full = GainModel("joint", batch_a, names=["batch-a"])
    sparse = GainModel("joint", holes_tree, names=["batch-a"])
    full.build()
    sparse.build()
    return full, sparse


def test_the_loaded_grid_marks_the_holes(models):
    _, sparse = models
    m = tomllib.loads((BATCH_A / "experiment.toml").read_text())
    assert sparse.layout.n_files == len(m["film"]["ta"]) - len(HOLES)
    listed = set(sparse.data["ta_file_source"].values)
    assert not any(h in f for h in HOLES for f in listed)


def _point_keys(gm):
    d = gm.data
    return list(zip(gm.layout.ta_potential_index, d["ta_point_fluence"].values, d["ta_point_delay"].values,
                    d["ta_point_component"].values))


def test_kept_points_have_the_full_grids_likelihood(models):
    full, sparse = models
    rng = np.random.default_rng(3)
    f_of = {(int(p), int(f)): k for k, (p, f) in enumerate(zip(full.layout.file_potential, full.layout.file_fluence))}
    kept = np.array([f_of[(int(p), int(f))] for p, f in zip(sparse.layout.file_potential, sparse.layout.file_fluence)])
    ip_f = full.model.initial_point()
    per_file = [k for k, v in ip_f.items() if k.startswith("fluence_") and k.endswith("_film")]
    assert per_file, list(ip_f)
    for k in per_file:
        ip_f[k] = rng.normal(0.0, 0.3, ip_f[k].shape)
    ip_s = sparse.model.initial_point()
    for k in ip_s:
        ip_s[k] = ip_f[k][kept] if k in per_file else ip_f[k]
    mode = "FAST_COMPILE"

    def per_point(gm, ip):
        m = gm.model
        names = [n for n in ("gain", "dynamics") if n in m.named_vars]
        terms = m.logp(vars=[m[n] for n in names], sum=False)
        outs = m.replace_rvs_by_values([m["ta_mean_excitons"]]) + list(terms)
        vals = m.compile_fn(outs, inputs=m.value_vars, on_unused_input="ignore", mode=mode)(ip)
        return vals[0], np.concatenate([np.ravel(v) for v in vals[1:]])

    mean_f, lp_f = per_point(full, ip_f)
    mean_s, lp_s = per_point(sparse, ip_s)
    np.testing.assert_allclose(mean_s, mean_f[kept], rtol=1e-12)
    # the points in the order the observed variables hold them (gain, then dynamics)
    def ordered(gm):
        keys = _point_keys(gm)
        return [keys[i] for c in ("gain", "dynamics") for i in np.nonzero(gm.data["ta_point_component"].values == c)[0]]

    where = {k: i for i, k in enumerate(ordered(full))}
    ks = ordered(sparse)
    assert len(ks) < len(where)
    np.testing.assert_allclose(lp_s, lp_f[[where[k] for k in ks]], rtol=1e-10, atol=1e-10)


def test_classic_analysis_uses_the_runs_there_are(holes_tree, tmp_path):
    import warnings

    from bayesgain import classic
    from bayesgain.classic import figures as cf

    from bayesgain.classic.dataset import parse_row_name

    rows = [dict(r, base=parse_row_name(r["name"])[1], at=parse_row_name(r["name"])[3])
            for r in classic.classic_analysis(holes_tree)]
    measured = holes_tree["film/ta"]["measured"]
    n_files = int(measured.sum())
    def cell(V, F):  # as the row names write them (4 significant digits)
        return float(f"{V:.3f}"), float(f"{F:.3g}")

    holes = [cell(V, F) for V in measured["potential"].values for F in measured["fluence"].values
             if not bool(measured.sel(potential=V, fluence=F))]
    assert len(holes) == len(HOLES)
    per_cell = [r for r in rows if r["base"] in ("subgap_residual_OD", "gain_lifetime_ps")]
    assert len(per_cell) == 2 * n_files
    assert not any(cell(r["at"]["potential"], r["at"]["fluence"]) in holes for r in per_cell)
    # a potential with a hole still has its saturation threshold, fitted over the fluences it has
    thr = {r["at"]["potential"]: r for r in rows if r["base"] == "threshold_excitons"}
    assert len(thr) == measured.sizes["potential"] and all(np.isfinite(r["value"]) for r in thr.values())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = cf.write_classic_figures(holes_tree, tmp_path)
    assert [p.name for p in paths] == list(cf.FIGURE_NAMES)
    assert not [w for w in caught if "skipped" in str(w.message)]
