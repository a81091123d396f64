"""Many fits through Dask (bayesgain.model.distributed): a local cluster, job order, compile reuse, saving."""

import sys

import numpy as np
import pytest

from .conftest import BATCH_A

# charging only, with a fixed quadrature so that rescaled observations keep the same compiled structure
CHARGING = {"components": {"cross_section": False, "gain": False, "dynamics": False, "reflection": False},
            "options": {"quadrature_nodes": 40}}


def test_fit_many_without_dask_names_the_extra(monkeypatch):
    from bayesgain.model import distributed

    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ImportError, match=r"pip install bayesgain\[dask\]"):
        distributed.fit_many([{"spec": "sec-only", "experiments": str(BATCH_A)}])


def test_with_observations_replaces_only_the_named_points():
    from bayesgain.model.core import GainModel
    from bayesgain.model.distributed import with_observations
    from bayesgain.model.spec import spec_from_dict

    gm = GainModel(spec_from_dict(CHARGING), BATCH_A)
    y = np.linspace(0, 1, gm.data.sizes["sec_point"])
    new = with_observations(gm.data, {"charging": y})
    np.testing.assert_array_equal(new["sec_n_e"].values, y)
    assert not np.array_equal(gm.data["sec_n_e"].values, y)  # the input is not modified
    with pytest.raises(ValueError, match="expected shape"):
        with_observations(gm.data, {"charging": y[:-1]})
    with pytest.raises(ValueError, match="unknown observed component"):
        with_observations(gm.data, {"charge": y})


def test_swapped_observations_give_the_fresh_models_logp():
    """The compile-once path conditions on the job's data: same log density as a model built on it."""
    import pytensor

    from bayesgain.model.core import GainModel
    from bayesgain.model.distributed import with_observations
    from bayesgain.model.spec import spec_from_dict

    spec = spec_from_dict(CHARGING)
    template = GainModel(spec, BATCH_A)
    model = template.build()
    shared = pytensor.shared(np.asarray(model.rvs_to_values[model["charging"]].data), name="charging__observed")
    model.rvs_to_values[model["charging"]] = shared
    y = 0.8 * template.data["sec_n_e"].values + 0.01
    shared.set_value(y)
    fresh = GainModel(spec, _reduced=with_observations(template.data, {"charging": y})).build()
    point = fresh.initial_point()
    point["V_half_filling_V"] = np.array([-1.1])  # V_1S is sampled through the half-filling potential
    from bayesgain.physics.api import numpy_mode

    # the Python VM: the same graphs in seconds (numba: ~10 s cold for the two); the slow fit_many test runs numba
    swapped, direct = model.compile_logp(mode=numpy_mode())(point), fresh.compile_logp(mode=numpy_mode())(point)
    assert np.isfinite(direct)
    assert swapped == pytest.approx(direct, rel=1e-10, abs=1e-8)


@pytest.mark.slow  # ~100-200 s on the shared 2-core machine: one nutpie compile (~30-50 s) + 2 fits + save/load
def test_fit_many_two_charging_fits_on_a_local_cluster(tmp_path):
    pytest.importorskip("dask.distributed")
    from bayesgain.model.core import GainModel
    from bayesgain.model.distributed import fit_many
    from bayesgain.model.spec import spec_from_dict

    reduced = GainModel(spec_from_dict(CHARGING), BATCH_A).data
    fit = {"draws": 150, "tune": 150, "chains": 2, "seed": 1}
    jobs = [
        {"name": "as-measured", "spec": CHARGING, "experiments": str(BATCH_A), "fit": fit,
         "output": str(tmp_path / "a.nc"), "return_draws": ["sec_bleach_scale", "V_1S_V"], "thin_to": 50},
        # same structure, observations scaled by 0.8: compiled once, and the scale must follow the data
        {"name": "scaled", "spec": CHARGING, "reduced": reduced,
         "observed": {"charging": 0.8 * reduced["sec_n_e"].values}, "fit": fit, "return_draws": ["sec_bleach_scale"]},
    ]
    # one worker: the second job must reuse the first job's compiled model
    res = fit_many(jobs, n_workers=1)
    assert [r["name"] for r in res] == ["as-measured", "scaled"]
    assert all(r["error"] is None for r in res), [r["error"] for r in res]
    assert res[0]["compiled"] is True and res[1]["compiled"] is False
    assert res[0]["worker"] == res[1]["worker"]
    assert res[0]["draws"]["V_1S_V"].shape == (50, 1)
    assert res[1]["draws"]["sec_bleach_scale"].shape == (300, 1)
    # truth of batch A: V_1S = -1.25 V (loose: 150 draws)
    v1 = res[0]["summary"]["V_1S_V[synthetic-batch-a]"]["mean"]
    assert v1 == pytest.approx(-1.25, abs=0.05)
    s_a = res[0]["summary"]["sec_bleach_scale[synthetic-batch-a]"]["mean"]
    s_b = res[1]["summary"]["sec_bleach_scale[synthetic-batch-a]"]["mean"]
    assert s_b / s_a == pytest.approx(0.8, rel=0.05)
    assert {"max_r_hat", "min_ess_bulk", "divergences"} <= set(res[0]["convergence"])
    # the saved fit reopens with its posterior and log-likelihood
    loaded = GainModel.load(res[0]["output"])
    assert loaded.idata["posterior"].sizes["draw"] == 150
    assert "charging" in loaded.idata["log_likelihood"]


def test_fit_many_reports_a_failed_job_without_stopping_the_others():
    pytest.importorskip("dask.distributed")
    from bayesgain.model.distributed import fit_many

    seen = []
    res = fit_many([{"name": "bad", "spec": CHARGING, "experiments": "/nonexistent/folder", "fit": {}}], n_workers=1,
                   on_result=lambda i, r: seen.append((i, r["name"])))
    assert seen == [(0, "bad")]
    assert res[0]["ok"] is False and res[0]["error"] and "nonexistent" in res[0]["error"]


def test_local_workers_keep_glibc_malloc_defaults(monkeypatch):
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers, which doubled a joint fit's time there (205 s
    against 91 s, benchmarks/results/dask-worker-malloc_2026-12-01.md); our local cluster leaves it unset, and a
    worker that has it says so in every result."""
    pytest.importorskip("dask.distributed")
    import os

    from dask.distributed import Client

    from bayesgain.model.distributed import MALLOC_TRIM_VARIABLE, local_cluster, run_job

    job = {"name": "bad", "spec": CHARGING, "experiments": "/nonexistent/folder", "fit": {}}
    monkeypatch.delenv(MALLOC_TRIM_VARIABLE, raising=False)
    assert "warning" not in run_job(job)
    monkeypatch.setenv(MALLOC_TRIM_VARIABLE, "65536")  # as a nanny started earlier in this process leaves it
    assert MALLOC_TRIM_VARIABLE in run_job(job)["warning"]
    with local_cluster(1) as cluster, Client(cluster) as client:
        seen = client.run(lambda: os.environ.get(MALLOC_TRIM_VARIABLE))
    assert os.environ[MALLOC_TRIM_VARIABLE] == "65536"  # this process's environment is given back
    assert list(seen.values()) == [None]
