"""The rank bookkeeping of benchmarks/sbc.py (the fits themselves run in the benchmark, not here)."""

import importlib.util
import pathlib

import numpy as np
import pytest
import xarray as xr

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sbc():
    spec = importlib.util.spec_from_file_location("sbc_script", ROOT / "benchmarks" / "sbc.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _result(draws):
    return {"error": None, "ok": True, "draws": draws, "seconds": 1.0,
            "convergence": {"max_r_hat": 1.0, "min_ess_bulk": 500.0, "divergences": 0}}


def test_rank_is_the_number_of_draws_below_the_truth(sbc):
    prior = {"a": xr.DataArray(np.array([[0.5, 2.0]])), "v": xr.DataArray(np.array([[[0.0, 10.0], [1.0, 1.0]]]))}
    draws = {"a": np.arange(5.0), "v": np.stack([np.arange(5.0), np.arange(5.0)], axis=1)}
    rows = sbc._rank_rows(0, _result(draws), prior, ["a", "v"])
    assert [(r["parameter"], r["rank"]) for r in rows] == [("a", 1), ("v[0]", 0), ("v[1]", 5)]
    rows = sbc._rank_rows(1, _result(draws), prior, ["a"])
    assert rows[0]["rank"] == 2  # draws 0 and 1 lie below 2.0 (a tie does not count)
    assert sbc._rank_rows(2, {"error": "boom"}, prior, ["a"]) == []


def test_uniform_ranks_pass_and_piled_up_ranks_fail(sbc, rng):
    L = 99
    uniform = sbc.rank_statistics(rng.integers(0, L + 1, 2000), L)
    assert uniform["p"] > 0.001 and uniform["ecdf_max_dev"] < uniform["ecdf_bound95"]
    # an overconfident posterior puts the truth in the tails: ranks pile up at 0 and L
    piled = sbc.rank_statistics(np.r_[np.zeros(300, int), np.full(300, L), rng.integers(0, L + 1, 400)], L)
    assert piled["p"] < 1e-6


def test_thin_layout_keeps_every_file_and_sweep_order(sbc):
    # 3 sweeps x 6 potentials of SEC; 2 potentials x 2 fluences = 4 files x 5 delays of film TA
    sweep = np.repeat(np.arange(3), 6)
    pot = np.tile(np.linspace(-1.5, -1.0, 6), 3)
    f_pot = np.repeat([-1.3, -1.1], 10)
    f_flu = np.tile(np.repeat([0, 1], 5), 2)
    delay = np.tile(np.arange(5.0), 4)
    d = xr.Dataset({"sec_n_e": ("sec_point", pot * 0 + 1.0), "sec_point_sweep": ("sec_point", sweep),
                    "sec_point_potential": ("sec_point", pot), "sweep_label": ("sweep", ["a", "b", "c"]),
                    "ta_A": ("ta_point", delay), "ta_point_potential": ("ta_point", f_pot),
                    "ta_point_fluence": ("ta_point", f_flu), "ta_point_delay": ("ta_point", delay)})
    t = sbc.thin_layout(d, sweeps=2, sec_every=2, ta_every=2)
    assert list(t["sweep_label"].values) == ["a", "b"]
    assert list(t["sec_point_sweep"].values) == [0, 0, 0, 1, 1, 1]
    assert np.allclose(t["sec_point_potential"].values[:3], pot[[0, 2, 4]])
    # every file keeps delays 0, 2, 4
    assert t.sizes["ta_point"] == 12
    for p in (-1.3, -1.1):
        for f in (0, 1):
            sel = (t["ta_point_potential"].values == p) & (t["ta_point_fluence"].values == f)
            assert list(t["ta_point_delay"].values[sel]) == [0.0, 2.0, 4.0]
    assert d.sizes["ta_point"] == 20 and d.sizes["sweep"] == 3  # the input is not modified


def test_statistics_name_the_prior_draws_that_mixed_badly(sbc, capsys, rng):
    import pandas as pd

    rows = []
    for i in range(30):
        bad = i < 6
        for name, truth in (("noise", 0.01 if bad else 0.05), ("sigma", 0.1)):
            rows.append({"replicate": i, "parameter": name, "base": name, "truth": truth,
                         "rank": int(rng.integers(0, 100)), "converged": not bad, "max_r_hat": 1.5 if bad else 1.0,
                         "min_ess_bulk": 20.0 if bad else 300.0, "divergences": 0, "seconds": 10.0})
    sbc.print_statistics(pd.DataFrame(rows), 99)
    out = capsys.readouterr().out
    assert "6 replicates with R-hat > 1.1" in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("noise") and "/" in ln)
    assert [float(x) for x in line.split()[1::2]] == [0.01, 0.05]
    assert "converged replicates only" in out  # 24 of 30 converged: the subset is worth a line
