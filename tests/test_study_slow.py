"""``bayesgain study`` for real: two simulated films fitted with nutpie (few draws) on a local Dask cluster.

Separate from tests/test_study.py, whose module fixture replaces the worker's fit with a stub.
"""

import csv
import pathlib
import tomllib

import pytest

from bayesgain import cli


@pytest.mark.slow
def test_real_two_film_study(tmp_path, capsys):
    """A real study: two films fitted with nutpie (few draws) on a local cluster of two workers."""
    from bayesgain.simulate import simulate_experiment

    def _run(capsys, *argv):
        status = cli.main(["study", *map(str, argv)])
        cap = capsys.readouterr()
        return status, cap.out, cap.err

    films = [simulate_experiment(tmp_path / f"sim-{s}", preset="batch-a", seed=s) for s in (1, 2)]
    out = tmp_path / "study"
    status, text, err = _run(capsys, *films, "--out", out, "--workers", "2", "--draws", "200", "--tune", "300",
                             "--chains", "2")
    assert status == 0, err
    with open(out / "study.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ["sim-1", "sim-2"]
    for r, folder in zip(rows, films):
        truth = tomllib.loads((folder / "truth.toml").read_text())
        # few draws: loose, but each film's numbers must sit near its own truth
        assert float(r["cross_section_cm2_median"]) == pytest.approx(truth["cross_section_400nm_cm2"], rel=0.3)
        assert float(r["V_1S_V_median"]) == pytest.approx(truth["V_1S_V"], abs=0.1)
        assert float(r["tau_xx_ps_median"]) == pytest.approx(truth["tau_xx_ps"], rel=0.3)
        assert float(r["V_1S_V_hdi_low"]) <= float(r["V_1S_V_median"]) <= float(r["V_1S_V_hdi_high"])
        assert pathlib.Path(r["path"]).is_file()
    status, text, _ = _run(capsys, *films, "--out", out, "--workers", "2", "--draws", "200", "--tune", "300",
                           "--chains", "2")
    assert status == 0 and text.count("already fitted") == 2
