"""The command line on small inputs: check, simulate (byte-identical with a seed), refusal to overwrite."""

import hashlib
import pathlib
import shutil

import pytest

from bayesgain import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_check_accepts_shipped_batch(capsys):
    assert cli.main(["check", str(ROOT / "data" / "synthetic-batch-b")]) == 0
    assert "ok" in capsys.readouterr().out.lower()


def test_check_rejects_a_broken_folder(tmp_path, capsys):
    folder = tmp_path / "exp"
    shutil.copytree(ROOT / "tests" / "fixtures" / "tiny_experiment", folder)
    text = (folder / "experiment.toml").read_text().replace("film_thickness_nm", "film_thicknes_nm")
    (folder / "experiment.toml").write_text(text)
    assert cli.main(["check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "film_thicknes_nm" in out and "experiment.toml" in out


def test_simulate_is_checked_and_reproducible(tmp_path, capsys):
    a, b = tmp_path / "1" / "exp", tmp_path / "2" / "exp"  # same name: the manifest records it
    assert cli.main(["simulate", "--out", str(a), "--seed", "5", "--preset", "batch-b"]) == 0
    assert cli.main(["simulate", "--out", str(b), "--seed", "5", "--preset", "batch-b"]) == 0
    assert _digest(a) == _digest(b)
    assert "SYNTHETIC" in capsys.readouterr().out
    assert cli.main(["check", str(a)]) == 0


def test_simulate_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "x"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    assert cli.main(["simulate", "--out", str(out), "--preset", "batch-b"]) == 1
    assert (out / "mine.txt").read_text() == "user data"
    assert "--force" in capsys.readouterr().err


def test_help_mentions_units(capsys):
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--help"])
    assert "seed" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_runs_end_to_end_with_few_draws(tmp_path, capsys):
    """The README's main job (the joint model) with few draws; CI also runs the demo itself as a separate step."""
    out = tmp_path / "demo"
    status = cli.main(["demo", "--out", str(out), "--draws", "40", "--tune", "40", "--chains", "2", "--quiet",
                       "--no-figures"])
    text = capsys.readouterr().out
    assert status == 0  # without --strict a short run never fails the command
    assert "SYNTHETIC" in text and "Gain threshold" in text
    rows = [r for r in (out / "thresholds.csv").read_text().splitlines() if not r.startswith("#")]
    assert rows[0] == "n_e,median,hdi_low,hdi_high"
    values = [list(map(float, r.split(","))) for r in rows[1:]]
    assert len(values) == 101 and all(lo <= med <= hi for _, med, lo, hi in values)
    assert (out / "report.md").exists() and (out / "summary.csv").exists() and (out / "posterior.nc").exists()


def test_classic_writes_csv_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "classic"
    assert cli.main(["classic", str(ROOT / "data" / "synthetic-batch-a"), "--out", str(out)]) == 0
    text = (out / "classic.csv").read_text().splitlines()
    assert text[0] == "name,value,uncertainty,unit,method,note"
    names = {line.split(",")[0] for line in text[1:]}
    assert "cross_section_cm2" in names
    for figure in ["gain_maps", "threshold_fits", "charging_fit", "kinetics_fits", "cross_section_fit"]:
        assert (out / f"{figure}.png").stat().st_size > 20_000
    assert "SYNTHETIC" in capsys.readouterr().out
    before = (out / "classic.csv").read_bytes()
    assert cli.main(["classic", str(ROOT / "data" / "synthetic-batch-a"), "--out", str(out)]) == 1
    assert (out / "classic.csv").read_bytes() == before
    assert "--force" in capsys.readouterr().err


def test_classic_rejects_invalid_folder(tmp_path, capsys):
    assert cli.main(["classic", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert "missing" in capsys.readouterr().err


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    import os

    from bayesgain._atomic import write_text_atomic

    umask = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "x.csv", "a,b\n")
    finally:
        os.umask(umask)
    assert (tmp_path / "x.csv").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]  # no temporary file left


def test_fit_whiten_reaches_the_fit_and_the_defaults_stay_the_fits():
    from bayesgain.cli import _fit_options, build_parser

    p = build_parser()
    default = _fit_options(p.parse_args(["fit", "x", "--out", "y"]))
    assert "whiten" not in default and "target_accept" not in default  # GainModel.fit's own defaults
    assert _fit_options(p.parse_args(["fit", "x", "--out", "y", "--whiten"]))["whiten"] is True


def test_fit_target_accept_is_parsed_and_checked(capsys):
    from bayesgain.cli import build_parser

    p = build_parser()
    assert p.parse_args(["fit", "x", "--out", "y", "--target-accept", "0.98"]).target_accept == 0.98
    assert p.parse_args(["fit", "x", "--out", "y"]).target_accept is None  # the fit's own default
    for bad in ("1.0", "0", "high"):
        with pytest.raises(SystemExit):
            p.parse_args(["fit", "x", "--out", "y", "--target-accept", bad])
    assert "target-accept" in capsys.readouterr().err
