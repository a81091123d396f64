"""The Bayesian commands on tiny fits: ``bayesgain fit | report | compare``.

Each fit runs once per session (charging-only specs, 2 chains x 30 draws with the PyMC sampler, the model
compiled for PyTensor's Python VM -- numpy_mode, seconds -- instead of numba, ~25 s per model cold: the
same draws; what is checked here is the command, not the backend).  With so few draws the bulk ESS is far
below 400, so every fit here is NOT CONVERGED -- which is what ``--strict`` and the report must say.
"""

import csv
import hashlib
import pathlib
import shutil

import numpy as np
import pytest

from bayesgain import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
BATCH_A = ROOT / "data" / "synthetic-batch-a"
TINY = ["--draws", "30", "--tune", "30", "--chains", "2", "--seed", "3", "--sampler", "pymc", "--quiet"]
SPEC = """name = "{name}"
description = "SEC charging only ({disorder})"
[components]
cross_section = false
charging = true
photoluminescence = false
gain = false
dynamics = false
reflection = false
hole_trapping = false
[options]
disorder = "{disorder}"
"""


def _spec(folder, name, disorder):
    path = folder / f"{name}.toml"
    path.write_text(SPEC.format(name=name, disorder=disorder))
    return path


@pytest.fixture(scope="session")
def specs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("specs")
    return {"gaussian": _spec(folder, "charging-gaussian", "gaussian"), "none": _spec(folder, "charging-none", "none")}


@pytest.fixture(scope="session")
def fit_a(tmp_path_factory, specs):
    """--strict fit with the classic table and every figure: (exit status, folder, stdout)."""
    out = tmp_path_factory.mktemp("fits") / "a"
    capture = _Capture()
    with capture:
        status = cli.main(["fit", str(BATCH_A), "--model", str(specs["gaussian"]), "--out", str(out), "--strict",
                           "--max-treedepth", "3", *TINY])
    return status, out, capture.out


@pytest.fixture(scope="session")
def fit_b(tmp_path_factory, specs):
    """Fit without disorder, no figures, no classic analysis, not strict."""
    out = tmp_path_factory.mktemp("fits") / "b"
    capture = _Capture()
    with capture:
        status = cli.main(["fit", str(BATCH_A), "--model", str(specs["none"]), "--out", str(out), "--no-figures",
                           "--no-classic", *TINY])
    return status, out, capture.out


class _Capture:
    """Capture stdout of an in-process command inside a session fixture (capsys is function-scoped); PyTensor
    compiles for its Python VM meanwhile."""

    def __enter__(self):
        import contextlib
        import io

        import pytensor

        from bayesgain.physics.api import numpy_mode

        self._buf = io.StringIO()
        self._cms = [contextlib.redirect_stdout(self._buf), pytensor.config.change_flags(mode=numpy_mode())]
        for cm in self._cms:
            cm.__enter__()
        return self

    def __exit__(self, *exc):
        for cm in reversed(self._cms):
            cm.__exit__(*exc)
        self.out = self._buf.getvalue()
        return False


def _digest(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def _thresholds(path):
    lines = pathlib.Path(path).read_text().splitlines()
    comments = [line for line in lines if line.startswith("#")]
    rows = list(csv.reader([line for line in lines if not line.startswith("#")]))
    return comments, rows[0], [list(map(float, r)) for r in rows[1:]]


# ----------------------------------------------------------------------------- fit
def test_strict_fit_that_did_not_converge_exits_3_and_says_so(fit_a):
    status, out, text = fit_a
    assert status == 3
    assert "NOT CONVERGED" in text
    report = (out / "report.md").read_text()
    assert report.lstrip().startswith("> **NOT CONVERGED**")
    assert "NOT FINAL" in report and "SYNTHETIC" in report
    comments, header, rows = _thresholds(out / "thresholds.csv")
    assert header == ["n_e", "median", "hdi_low", "hdi_high"]
    assert any("NOT CONVERGED" in c for c in comments) and any("SYNTHETIC" in c for c in comments)


def test_fit_writes_every_file_with_consistent_contents(fit_a):
    _, out, _ = fit_a
    for name in ("posterior.nc", "summary.csv", "thresholds.csv", "report.md", "classic.csv"):
        assert (out / name).stat().st_size > 0, name
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"
    _, _, rows = _thresholds(out / "thresholds.csv")
    assert len(rows) == 101 and rows[0][0] == 0.0 and rows[-1][0] == 2.0
    assert all(lo <= med <= hi for _, med, lo, hi in rows)
    # the threshold falls with doping, from the neutral value (transition counting, 1.542) to 0
    meds = [r[1] for r in rows]
    assert abs(meds[0] - 1.542) < 0.01 and meds[-1] < 0.01
    assert all(b <= a + 1e-9 for a, b in zip(meds, meds[1:]))
    summary = (out / "summary.csv").read_text().splitlines()
    assert "unit" in summary[0].split(",")
    assert {"hdi94_lb", "hdi94_ub"} <= set(summary[0].split(","))  # HDI, as every table says, not ArviZ's ETI default
    assert any(line.startswith("V_1S_V") and ",V," in line for line in summary[1:])
    report = (out / "report.md").read_text()
    assert "charging-gaussian" in report and "## Convergence" in report
    assert "Bayesian versus classic" in report and "`V_1S_V`" in report


def test_max_treedepth_reaches_the_sampler(fit_a):
    _, out, _ = fit_a
    import xarray as xr

    depth = xr.open_datatree(out / "posterior.nc")["sample_stats"]["tree_depth"].values
    assert depth.max() <= 3 and depth.max() >= 1


def test_report_says_where_the_chains_started(fit_a):
    _, out, _ = fit_a
    report = (out / "report.md").read_text()
    # the tiny CLI fits use the PyMC sampler; nutpie's rule is worded by sampling.report_text (test_sampling_starts)
    assert "Chain starts: PyMC's own (jitter+adapt_diag" in report


def test_fit_figures_are_print_resolution_pngs(fit_a):
    _, out, _ = fit_a
    from PIL import Image

    report = (out / "report.md").read_text()
    made = ["fig5a_charging.png", "fig5b_threshold_vs_doping.png", "trace.png", "rank.png", "ppc.png",
            "prior_posterior.png"]
    for name in made:
        path = out / name
        assert path.stat().st_size > 20_000, name
        with Image.open(path) as im:
            dpi = im.info.get("dpi", (0, 0))[0]
        assert dpi >= 199, (name, dpi)
        assert f"[{name}]({name})" in report
    # panels this model cannot make are listed as skipped, with the reason, not silently dropped
    assert "fig5c_gain_lifetime.png" in report and "skipped" in report
    assert "FAILED" not in report


def test_fit_refuses_a_non_empty_folder_without_force(tmp_path, capsys, specs):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("user data")
    status = cli.main(["fit", str(BATCH_A), "--model", str(specs["gaussian"]), "--out", str(out), *TINY])
    assert status == 1
    assert "--force" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "user data"


def test_fit_rejects_an_invalid_folder_naming_file_and_field(tmp_path, capsys, specs):
    folder = tmp_path / "exp"
    shutil.copytree(ROOT / "tests" / "fixtures" / "tiny_experiment", folder)
    manifest = folder / "experiment.toml"
    manifest.write_text(manifest.read_text().replace("film_thickness_nm", "film_thicknes_nm"))
    before = _digest(manifest)
    out = tmp_path / "out"
    assert cli.main(["fit", str(folder), "--model", str(specs["gaussian"]), "--out", str(out), *TINY]) == 1
    err = capsys.readouterr().err
    assert "experiment.toml" in err and "film_thicknes_nm" in err
    assert _digest(manifest) == before  # the input is never touched
    assert not out.exists() or not any(out.iterdir())
    assert cli.main(["fit", str(tmp_path / "missing"), "--model", "sec-only", "--out", str(out), *TINY]) == 1
    assert "missing" in capsys.readouterr().err


def test_fit_rejects_an_unknown_model_listing_the_valid_names(tmp_path, capsys):
    status = cli.main(["fit", str(BATCH_A), "--model", "jointt", "--out", str(tmp_path / "o"), *TINY])
    assert status == 1
    err = capsys.readouterr().err
    assert "jointt" in err and "sec-only" in err and "joint-no-disorder" in err
    assert not (tmp_path / "o").exists()


def test_fit_without_strict_exits_0_and_skips_figures(fit_b):
    status, out, text = fit_b
    assert status == 0  # not converged either, but without --strict the command succeeds
    assert "NOT CONVERGED" in text
    assert not list(out.glob("*.png")) and not (out / "classic.csv").exists()
    assert "not made (--no-figures)" in (out / "report.md").read_text()


# ----------------------------------------------------------------------------- report
def test_report_regenerates_files_from_a_saved_fit(fit_a, tmp_path, capsys):
    _, src, _ = fit_a
    folder = tmp_path / "copy"
    shutil.copytree(src, folder)
    posterior = _digest(folder / "posterior.nc")
    old_thresholds = (folder / "thresholds.csv").read_text()
    for name in ("report.md", "thresholds.csv", "summary.csv", "fig5b_threshold_vs_doping.png", "ppc.png"):
        (folder / name).unlink()
    assert cli.main(["report", str(folder), "--strict"]) == 3  # the saved fit did not converge
    capsys.readouterr()
    for name in ("report.md", "thresholds.csv", "summary.csv", "fig5b_threshold_vs_doping.png", "ppc.png"):
        assert (folder / name).stat().st_size > 0, name
    assert _digest(folder / "posterior.nc") == posterior  # no resampling, the fit is not rewritten
    assert (folder / "thresholds.csv").read_text() == old_thresholds  # same draws, same thresholds
    report = (folder / "report.md").read_text()
    assert "NOT CONVERGED" in report and "Bayesian versus classic" in report  # classic.csv is picked up
    assert cli.main(["report", str(folder), "--no-figures", "--quiet"]) == 0


def test_report_of_a_folder_without_fit_fails_cleanly(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 1
    assert "posterior.nc" in capsys.readouterr().err


# ----------------------------------------------------------------------------- compare
def test_compare_prints_table_and_verdict(fit_a, fit_b, tmp_path, capsys):
    a, b = fit_a[1], fit_b[1]
    before = {p.name for p in a.iterdir()}
    assert cli.main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "charging-gaussian" in out and "charging-none" in out
    assert "elpd" in out
    assert any(w in out for w in ("decisively", "favoured", "No decisive preference"))
    assert "did NOT converge" in out
    assert {p.name for p in a.iterdir()} == before  # writes nothing without --out
    target = tmp_path / "cmp.csv"
    assert cli.main(["compare", str(a), str(b), "--components", "charging", "--out", str(target)]) == 0
    assert target.read_text().splitlines()[0].split(",")[0] == ""  # index column, then ArviZ's columns
    assert "elpd" in target.read_text().splitlines()[0]
    assert cli.main(["compare", str(a), str(b), "--out", str(target)]) == 1  # no overwrite without --force
    assert cli.main(["compare", str(a), str(b), "--components", "gain"]) == 1  # not in these fits
    assert "gain" in capsys.readouterr().err


def test_compare_needs_two_saved_fits(fit_a, tmp_path, capsys):
    assert cli.main(["compare", str(fit_a[1])]) == 1
    assert cli.main(["compare", str(fit_a[1]), str(tmp_path)]) == 1
    assert "posterior.nc" in capsys.readouterr().err


# ----------------------------------------------------------------------------- nutpie backends
def test_fit_with_the_jax_backend_writes_a_posterior(tmp_path, capsys, specs):
    pytest.importorskip("jax")
    out = tmp_path / "jax"
    args = ["fit", str(BATCH_A), "--model", str(specs["none"]), "--out", str(out), "--no-figures", "--no-classic",
            "--draws", "30", "--tune", "30", "--chains", "2", "--seed", "3", "--backend", "jax", "--max-treedepth", "4"]
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "nutpie (jax)" in text and "compiling first: seconds" in text
    from bayesgain.model.core import GainModel

    fit = GainModel.load(out / "posterior.nc")
    post = fit.idata["posterior"]
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 30 and "V_1S_V" in post
    assert "sampling_time" in post.attrs


def test_a_backend_with_the_pymc_sampler_is_refused(tmp_path, capsys, specs):
    assert cli.main(["fit", str(BATCH_A), "--model", str(specs["none"]), "--out", str(tmp_path / "o"), "--backend",
                     "jax", *TINY]) == 1
    assert "--backend jax applies to --sampler nutpie only" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- help
@pytest.mark.parametrize("command, words", [
    ("fit", ["--draws", "per chain", "--tune", "--chains", "--seed", "--max-treedepth", "--force", "--strict",
             "--quiet", "--no-figures", "--sampler", "--model", "excitons/QD", "electrons/QD", "sec-only",
             "--backend", "bayesgain[jax]"]),
    ("demo", ["--draws", "--backend", "numba", "jax"]),
    ("report", ["DIR", "--no-figures", "--strict", "without resampling"]),
    ("compare", ["--components", "--out", "elpd", "nats", "charging"]),
])
def test_help_explains_every_option(command, words, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for w in words:
        assert w in text, w


def test_pymc_sampler_starts_from_given_initvals(specs):
    """GainModel.fit(initvals=) (bench_model's fair comparison): PyMC's chains start at the given points."""
    from bayesgain.model.core import GainModel
    from bayesgain.model.spec import load_spec

    gm = GainModel(load_spec(str(specs["none"])), BATCH_A)
    gm.build()
    start = {k: np.asarray(v) for k, v in gm.model.initial_point().items()}
    starts = [{**start, "V_half_filling_V": start["V_half_filling_V"] + d} for d in (-0.01, 0.01)]
    import pytensor

    from bayesgain.physics.api import numpy_mode

    with pytensor.config.change_flags(mode=numpy_mode()):  # seconds to compile; numba: ~25 s cold
        idata = gm.fit(sampler="pymc", draws=5, tune=5, chains=2, seed=3, cores=1, progress=False, initvals=starts)
    assert idata.attrs["chain_starts"].startswith("given per chain")
    assert idata["posterior"].sizes["chain"] == 2
