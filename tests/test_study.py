"""``bayesgain study``: many films through Dask, resumable, one table.

No sampling: the worker's fit (``GainModel.fit``, what ``distributed.run_job`` calls) is
replaced by one that fills the posterior with the model's prior draws (PyTensor's Python VM, about a second
per film), and the Dask client is an in-process cluster (threads), so the stub reaches the workers.  What is
checked is the study: which fits run, which are skipped or refitted, what the table says and the refusals.
"""

import csv
import pathlib
import shutil

import numpy as np
import pytest
import xarray as xr

from bayesgain import cli, study
from bayesgain.model.core import GainModel

ROOT = pathlib.Path(__file__).resolve().parents[1]
BATCH_A = ROOT / "data" / "synthetic-batch-a"
TINY = ROOT / "tests" / "fixtures" / "tiny_experiment"
FIT = ["--draws", "20", "--tune", "0", "--chains", "2", "--seed", "1"]


def _prior_posterior(gm, fit_kw):
    """Stand-in for a fit: (chains x draws) prior draws of every variable as the posterior, no divergences."""
    import pymc as pm

    from bayesgain.physics.api import numpy_mode

    chains, draws = int(fit_kw.get("chains", 2)), int(fit_kw.get("draws", 20))
    model = gm.build()
    names = [v.name for v in model.free_RVs + model.deterministics]
    with model:
        prior = pm.sample_prior_predictive(draws=chains * draws, random_seed=int(fit_kw.get("seed", 0)),
                                           var_names=names, compile_kwargs={"mode": numpy_mode()})["prior"]
    post = {}
    for name in names:
        da = prior[name]
        v = np.asarray(da.values).reshape((chains, draws) + da.shape[2:])
        post[name] = (("chain", "draw") + tuple(da.dims[2:]), v)
    coords = {k: v for k, v in prior.to_dataset().coords.items() if k not in ("chain", "draw")}
    idata = xr.DataTree.from_dict({
        "posterior": xr.Dataset(post, coords={**coords, "chain": np.arange(chains), "draw": np.arange(draws)}),
        "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, draws), bool))}),
    })
    gm.idata = idata
    gm._finish(idata, sampling_s=0.0)
    return idata


class Fits:
    """The stubbed worker fit; counts calls per film and can be told to fail one."""

    def __init__(self):
        self.calls = []
        self.fail = set()

    def __call__(self, gm, fit_kw):
        self.calls.append(", ".join(gm.names))
        if ", ".join(gm.names) in self.fail:
            raise RuntimeError("sampler exploded (test)")
        return _prior_posterior(gm, fit_kw)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Two films (copies of the shipped batch, one manifest edited so they differ), the stub, an in-process
    Dask client handed to the command instead of a new local cluster."""
    from dask.distributed import Client, LocalCluster

    base = tmp_path_factory.mktemp("films")
    for name in ("film-a", "film-b"):
        shutil.copytree(BATCH_A, base / name)
    manifest = base / "film-b" / "experiment.toml"
    manifest.write_text(manifest.read_text() + "\n# second film of the study\n")
    fits = Fits()
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
    client = Client(cluster)
    mp = pytest.MonkeyPatch()
    mp.setattr(GainModel, "fit", lambda self, **fit_kw: fits(self, fit_kw))
    mp.setattr("pymc.compute_log_likelihood", lambda *a, **k: None)  # the stub's prior draws need no log-likelihood
    real_connect = study.connect
    mp.setattr(study, "connect", lambda scheduler=None, n_workers=None: real_connect(scheduler, n_workers)
               if scheduler else client)
    mp.setattr(study, "close", lambda c: None)
    yield {"films": [str(base / "film-a"), str(base / "film-b")], "fits": fits, "base": base}
    mp.undo()
    client.close()
    cluster.close()


def _run(capsys, *argv):
    status = cli.main(["study", *map(str, argv)])
    cap = capsys.readouterr()
    return status, cap.out, cap.err


def _rows(out):
    with open(pathlib.Path(out) / "study.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def first(env, tmp_path_factory):
    """The first study run (2 films + pooled) into a fresh folder; its output captured."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("studies") / "s1"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status = cli.main(["study", *env["films"], "--out", str(out), "--pooled", *FIT])
    return status, out, buf.getvalue(), list(env["fits"].calls)


def test_first_run_fits_every_film_and_the_pooled_model(first):
    status, out, text, calls = first
    assert status == 0, text
    assert sorted(calls) == ["film-a", "film-a, film-b", "film-b"]
    progress = [line for line in text.splitlines() if line.startswith("[")]
    assert len(progress) == 3 and {p.split("]")[0] for p in progress} == {"[1/3", "[2/3", "[3/3"}
    assert any("film film-a:" in p for p in progress) and any("pooled fit:" in p for p in progress)
    for name in ("film-a", "film-b"):
        assert (out / "films" / name / "posterior.nc").is_file()
    assert (out / "pooled" / "posterior.nc").is_file()
    for name in ("study.csv", "study.md", "study.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*.tmp")) and not (out / ".bayesgain.lock").exists()


def test_table_columns_and_values_match_the_saved_draws(first):
    _, out, _, _ = first
    with open(out / "study.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == study.COLUMNS
        rows = list(reader)
    assert [(r["name"], r["fit"]) for r in rows] == [("film-a", "film"), ("film-b", "film"),
                                                    ("film-a", "pooled"), ("film-b", "pooled")]
    for col in ("cross_section_cm2", "V_1S_V", "sigma_1S_V", "tau_xx_ps", "threshold_ne1_excitons"):
        for k in ("median", "hdi_low", "hdi_high"):
            assert f"{col}_{k}" in rows[0]
    for r in rows:
        with xr.open_datatree(r["path"], engine="h5netcdf") as tree:
            post = tree["posterior"]
            exp = 0 if r["fit"] == "film" else ["film-a", "film-b"].index(r["name"])
            for col in ("cross_section_cm2", "V_1S_V", "sigma_1S_V", "tau_xx_ps"):
                da = post[col]
                if "experiment" in da.dims:
                    da = da.isel(experiment=exp)
                draws = np.sort(np.asarray(da.values, float).ravel())
                med, lo, hi = (float(r[f"{col}_{k}"]) for k in ("median", "hdi_low", "hdi_high"))
                assert med == pytest.approx(np.median(draws), rel=1e-5)
                # a 94 % HDI: holds ceil(94 %) of the draws, and no shorter interval of draws holds as many
                inside = np.sum((draws >= lo - 1e-5 * abs(lo)) & (draws <= hi + 1e-5 * abs(hi)))
                k = int(np.floor(0.94 * draws.size))
                assert inside >= k and lo <= med <= hi
                assert hi - lo <= np.min(draws[k:] - draws[:-k]) + 1e-5 * (abs(lo) + abs(hi))
            converged = bool(int(tree.attrs["converged"]))
        assert r["converged"] == str(converged)
        assert r["converged"] == "False"  # 40 prior draws: ESS far below 400
        thr = float(r["threshold_ne1_excitons_median"])
        assert np.isnan(thr) or 0 < thr < 6  # <N_gain> at <n_e> = 1: positive, below g_e + g_h = 2 + 4 states
    md = (out / "study.md").read_text()
    assert "SYNTHETIC" in md and "not final" in md and "film-b" in md


def test_rerun_skips_finished_fits(env, first, capsys):
    _, out, _, _ = first
    before = len(env["fits"].calls)
    status, text, err = _run(capsys, *env["films"], "--out", out, "--pooled", *FIT)
    assert status == 0, err
    assert len(env["fits"].calls) == before
    assert text.count("already fitted") == 3 and "fitting" not in text.split("wrote")[0].replace("already", "")


def test_corrupt_fit_is_refitted_and_said_so(env, first, capsys, tmp_path):
    _, out0, _, _ = first
    out = tmp_path / "s"
    shutil.copytree(out0, out)
    path = out / "films" / "film-b" / "posterior.nc"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    left = out / "films" / "film-b" / ".posterior.nc.k3j9x2ab.tmp"  # what a killed save leaves
    left.write_bytes(data[:100])
    before = len(env["fits"].calls)
    status, text, err = _run(capsys, *env["films"], "--out", out, *FIT)
    assert status == 0, err
    assert env["fits"].calls[before:] == ["film-b"]
    assert "film film-b: the saved fit" in text and "corrupt or incomplete" in text and "fitting it again" in text
    assert "film film-a: already fitted" in text
    assert not left.exists() and "removed" in text and "interrupted run" in text
    assert study.saved_fit_problem(path, "joint", ["film-b"]) is None
    assert [r["fit"] for r in _rows(out)] == ["film", "film"]  # no --pooled this time


def test_saved_fit_of_another_model_or_film_is_not_reused(first):
    _, out, _, _ = first
    path = out / "films" / "film-a" / "posterior.nc"
    assert study.saved_fit_problem(path, "joint", ["film-a"]) is None
    assert "not 'sec-only'" in study.saved_fit_problem(path, "sec-only", ["film-a"])
    assert "not 'film-b'" in study.saved_fit_problem(path, "joint", ["film-b"])
    assert study.saved_fit_problem(out / "films" / "nope" / "posterior.nc", "joint", ["x"]) == "missing"


def test_a_failed_fit_is_reported_and_the_others_kept(env, capsys, tmp_path):
    env["fits"].fail = {"film-b"}
    try:
        status, text, err = _run(capsys, *env["films"], "--out", tmp_path / "s", *FIT)
    finally:
        env["fits"].fail = set()
    assert status == 1
    assert "film film-b: FAILED (RuntimeError: sampler exploded (test))" in text
    assert "FAILED: film-b" in err and "rerun" in err
    rows = {r["name"]: r for r in _rows(tmp_path / "s")}
    assert rows["film-b"]["error"] == "RuntimeError: sampler exploded (test)" and rows["film-b"]["path"] == ""
    assert rows["film-a"]["error"] == "" and pathlib.Path(rows["film-a"]["path"]).is_file()
    before = len(env["fits"].calls)
    status, text, _ = _run(capsys, *env["films"], "--out", tmp_path / "s", *FIT)  # resume: only the failed one
    assert status == 0 and env["fits"].calls[before:] == ["film-b"]


def test_same_film_names_in_different_folders_get_unique_names(tmp_path):
    films = study.plan_films([tmp_path / "a" / "run", tmp_path / "b" / "run", tmp_path / "c" / "run"], tmp_path / "o")
    assert [f.name for f in films] == ["run", "run-2", "run-3"]
    assert films[1].fit_path == tmp_path / "o" / "films" / "run-2" / "posterior.nc"


# ----------------------------------------------------------------------------- refusals (one line, nothing made)
def _refused(capsys, out, *argv):
    status, text, err = _run(capsys, *argv, "--out", out, *FIT)
    assert status == 1, (text, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not pathlib.Path(out).exists()
    return err


def test_refuses_the_same_folder_twice(env, capsys, tmp_path):
    a = env["films"][0]
    err = _refused(capsys, tmp_path / "o", a, a)
    assert "is the same folder as" in err
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    assert "same experiment.toml" in _refused(capsys, tmp_path / "o", a, copy)


def test_refuses_a_folder_that_is_not_an_experiment(env, capsys, tmp_path):
    empty = tmp_path / "notes"
    empty.mkdir()
    (empty / "readme.txt").write_text("not an experiment")
    err = _refused(capsys, tmp_path / "o", env["films"][0], empty)
    assert "experiment.toml" in err and "notes" in err
    assert "does not exist" in _refused(capsys, tmp_path / "o", tmp_path / "missing")


def test_refuses_a_film_the_model_cannot_fit(env, capsys, tmp_path):
    err = _refused(capsys, tmp_path / "o", env["films"][0], TINY)
    assert "tiny_experiment" in err and "cross_section_delays_ps" in err


def test_refuses_an_unreachable_scheduler_quickly(env, capsys, tmp_path):
    import time

    t0 = time.time()
    err = _refused(capsys, tmp_path / "o", env["films"][0], "--scheduler", "tcp://127.0.0.1:9")
    assert "--scheduler tcp://127.0.0.1:9" in err and "no Dask scheduler answered" in err
    assert time.time() - t0 < 60
    assert "expected an address" in _refused(capsys, tmp_path / "o", env["films"][0], "--scheduler", "host 8786")
    assert "give one of the two" in _refused(capsys, tmp_path / "o", env["films"][0], "--scheduler",
                                             "tcp://127.0.0.1:9", "--workers", "2")


def test_refuses_a_non_empty_folder_that_is_no_study(env, capsys, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("user data")
    status, _, err = _run(capsys, env["films"][0], "--out", out, *FIT)
    assert status == 1 and "holds no study" in err and "--force" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]

