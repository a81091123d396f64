"""Many independent fits through Dask: SBC replicates, one fit per film of a large study.

``fit_many(jobs)`` sends every job to a ``dask.distributed`` cluster -- a ``LocalCluster`` of
single-threaded worker processes by default, or the scheduler at ``scheduler`` (``"tcp://host:8786"``)
so the same command scales past one machine -- and returns one small result per job, in job order.
No process pool of our own: Dask places, retries and reports the work.

A job is a plain, picklable dict (see :func:`run_job` for the keys)::

    {"name": "film-3", "spec": "joint", "experiments": "data/film-3",
     "fit": {"draws": 1000, "tune": 1000, "chains": 4, "seed": 3}, "output": "fits/film-3.nc"}

or, to condition a model on simulated observations (simulation-based calibration)::

    {"spec": spec.to_toml(), "reduced": model.data, "observed": {"charging": y_sim}, "fit": {...},
     "return_draws": ["V_1S_V", ...], "thin_to": 99}

Compile once per worker.  With nutpie most of a small fit is the numba compilation of the model.  Every
fit goes through :mod:`.compiled_cache`, which keeps the compiled model per structure in the worker
process with the data lifted out of the graph: jobs that differ only in their numbers (SBC replicates,
seeds of a benchmark, films of one design) compile once per worker and swap their data in.
``{"reuse_compiled": False}`` compiles every job afresh (same posterior: the data are lifted either way).

PyTensor compile directories: the default (``compiledir="shared"``) lets all workers share the
parent's ``base_compiledir``; PyTensor serialises writers with a lock in that directory, and the C
modules one worker compiles are reused by the others.  ``compiledir="per-worker"`` gives each worker
process its own ``<base>/dask-worker-<pid>`` (no lock contention, each compiles everything once).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys
import time
import traceback

import numpy as np

__all__ = ["fit_many", "run_job", "local_cluster", "with_observations", "OBSERVED_ARRAYS"]

# observed component -> (data variable, selector of its points within that variable or None for all)
OBSERVED_ARRAYS = {
    "charging": ("sec_n_e", None),
    "photoluminescence": ("sec_pl", None),
    "gain": ("ta_A", "gain"),
    "dynamics": ("ta_A", "dynamics"),
    "cross_section": ("sol_dA", None),
    "reflection": ("subgap_dA", None),
}

MALLOC_TRIM_VARIABLE = "MALLOC_TRIM_THRESHOLD_"

_DASK_MISSING = ("fit_many runs its fits through Dask, which is not installed: pip install bayesgain[dask] "
                 "(or pip install dask distributed)")


# ---------------------------------------------------------------------------------------- helpers
def _load_spec(spec):
    from .spec import ModelSpec, load_spec, spec_from_dict

    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, dict):
        return spec_from_dict(spec)
    if isinstance(spec, str) and ("\n" in spec or "[components]" in spec):
        import tomllib

        return spec_from_dict(tomllib.loads(spec), source="<job spec TOML>", text=spec)
    return load_spec(spec)


def _observed_index(data, label):
    var, sel = OBSERVED_ARRAYS[label]
    if sel is None:
        return var, None
    return var, np.nonzero(np.asarray(data["ta_point_component"].values) == sel)[0]


def with_observations(data, observed):
    """A copy of a reduced dataset with the observed arrays of the named components replaced.

    ``observed`` maps a component ("charging", "gain", ...) to an array of the length of that
    component's observations (for "gain"/"dynamics": the ``ta_A`` points of that component, in order).
    """
    out = data.copy()
    for label, values in observed.items():
        if label not in OBSERVED_ARRAYS:
            raise ValueError(f"unknown observed component {label!r}; valid: {', '.join(OBSERVED_ARRAYS)}")
        var, idx = _observed_index(out, label)
        if var not in out:
            raise ValueError(f"the reduced data hold no {var!r} (component {label!r} was not reduced)")
        values = np.asarray(values, dtype=float)
        arr = np.array(out[var].values, dtype=float, copy=True)
        target = arr if idx is None else arr[idx]
        if values.shape != target.shape:
            raise ValueError(f"observed {label!r}: expected shape {target.shape}, got {values.shape}")
        if idx is None:
            arr = values.copy()
        else:
            arr[idx] = values
        out[var] = (out[var].dims, arr)
    return out


def _set_worker_compiledir(mode):
    """Run on each worker before its first job: threads to 1 and (optionally) its own compile directory
    ``<the worker's base_compiledir>/dask-worker-<pid>``."""
    import sys

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if mode != "per-worker":
        return None
    path = pathlib.Path(_base_compiledir()) / f"dask-worker-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    if "pytensor" in sys.modules:
        import pytensor

        if str(pytensor.config.base_compiledir) != str(path):
            return f"pytensor already imported in worker {os.getpid()}; compiledir unchanged"
    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",") if f and not f.startswith("base_compiledir=")]
    os.environ["PYTENSOR_FLAGS"] = ",".join(flags + [f"base_compiledir={path}"])
    return str(path)


def _base_compiledir():
    for f in os.environ.get("PYTENSOR_FLAGS", "").split(","):
        if f.startswith("base_compiledir="):
            return f.split("=", 1)[1]
    return str(pathlib.Path.home() / ".pytensor")


# ---------------------------------------------------------------------------------------- worker
def run_job(job):
    """Build, fit and (optionally) save one model; returns a small dict.  Runs in a Dask worker.

    Job keys: ``spec`` (model name, TOML path, TOML text, dict or ModelSpec; default "joint");
    ``experiments`` (folder path or list) or ``reduced`` (an ``xarray.Dataset`` like ``GainModel.data``);
    ``observed`` (component -> array replacing those observations); ``fit`` (kwargs of ``GainModel.fit``);
    ``output`` (path: ``model.save(path, overwrite=True)``); ``reuse_compiled`` (default True: with nutpie,
    a structure compiled earlier in this worker is reused); ``return_draws`` (parameter names whose posterior draws come
    back, flattened over chain x draw) with ``thin_to`` (that many evenly spaced draws); ``name``.

    The result: name, ok (converged), convergence (dict), summary ({row: {mean, sd, hdi94_lb, hdi94_ub,
    r_hat, ess_bulk}}), draws, output, seconds, compiled (True when this job compiled the model), worker
    (pid), error (traceback text when the job failed; the other keys are then absent or None).
    """
    t0 = time.time()
    out = {"name": job.get("name"), "worker": os.getpid(), "error": None}
    if os.environ.get(MALLOC_TRIM_VARIABLE):
        # a worker started by Dask's own nanny (`dask worker`, a cluster manager): say why its fits are slow
        out["warning"] = (f"{MALLOC_TRIM_VARIABLE}={os.environ[MALLOC_TRIM_VARIABLE]} in this worker (Dask's nanny default): "
                          "fits run ~2x slower; start the workers with that variable unset "
                          "(DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON__MALLOC_TRIM_THRESHOLD_=None)")
    try:
        from . import compiled_cache
        from .core import GainModel

        spec = _load_spec(job.get("spec", "joint"))
        if job.get("reduced") is not None:
            data = job["reduced"]
            if job.get("observed"):
                data = with_observations(data, job["observed"])
            gm = GainModel(spec, _reduced=data)
        else:
            if job.get("experiments") is None:
                raise ValueError("a job needs 'experiments' (folder(s)) or 'reduced' (a reduced dataset)")
            gm = GainModel(spec, job["experiments"], names=job.get("names"))
            if job.get("observed"):
                gm = GainModel(spec, _reduced=with_observations(gm.data, job["observed"]))
        fit_kw = {"progress": False, **job.get("fit", {})}
        before = compiled_cache.STATS["compiled"]
        with contextlib.nullcontext() if job.get("reuse_compiled", True) else compiled_cache.no_reuse():
            gm.fit(**fit_kw)
        compiled = compiled_cache.STATS["compiled"] > before
        conv = {k: (v.item() if hasattr(v, "item") else v) for k, v in dict(gm.convergence).items()}
        out.update(ok=bool(gm.convergence.ok), convergence=conv, convergence_text=gm.convergence.text(),
                   compiled=compiled)
        s = gm.summary()
        cols = [c for c in ("mean", "sd", "hdi94_lb", "hdi94_ub", "r_hat", "ess_bulk") if c in s.columns]
        out["summary"] = {str(i): {c: float(s.loc[i, c]) for c in cols} for i in s.index}
        if job.get("return_draws"):
            post = gm.idata["posterior"]
            n = post.sizes["chain"] * post.sizes["draw"]
            keep = np.arange(n)
            if job.get("thin_to") and job["thin_to"] < n:
                keep = np.round(np.linspace(0, n - 1, int(job["thin_to"]))).astype(int)
            draws = {}
            for name in job["return_draws"]:
                if name in post:
                    v = np.asarray(post[name].values)
                    draws[name] = v.reshape((n,) + v.shape[2:])[keep]
            out["draws"] = draws
        if job.get("output"):
            path = pathlib.Path(job["output"])
            path.parent.mkdir(parents=True, exist_ok=True)
            gm.save(path, overwrite=True)
            out["output"] = str(path)
    except Exception:  # noqa: BLE001 -- one failed job must not take the others down; it reports itself
        out["error"] = traceback.format_exc()
        out["ok"] = False
    out["seconds"] = time.time() - t0
    return out


# ---------------------------------------------------------------------------------------- client
def local_cluster(n_workers=None):
    """A ``LocalCluster`` of ``n_workers`` (default: the core count) single-threaded worker processes for fits."""
    import dask
    from dask.distributed import LocalCluster

    n = int(n_workers or os.cpu_count() or 1)
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in every worker; a fixed threshold also fixes glibc's mmap
    # threshold, and the compiled log density's temporaries are then mapped and unmapped on every gradient: the
    # same warm joint fit took 205 s in such a worker against 91 s without it
    # (also out of this process's environment while the workers start: glibc reads it once, at process start)
    saved = os.environ.pop(MALLOC_TRIM_VARIABLE, None)
    try:
        with dask.config.set({f"distributed.nanny.pre-spawn-environ.{MALLOC_TRIM_VARIABLE}": None}):
            return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0", env=env)
    finally:
        if saved is not None:
            os.environ[MALLOC_TRIM_VARIABLE] = saved


def fit_many(jobs, scheduler=None, n_workers=None, compiledir="shared", progress=False, client=None,
             on_result=None):
    """Run independent fits through Dask; returns one result dict per job (see :func:`run_job`), in job order.

    ``scheduler``: None for a local cluster of ``n_workers`` single-threaded processes (default: the
    number of cores), else the address of a running Dask scheduler.  ``client``: an existing
    ``dask.distributed.Client`` to use instead (not closed here).  ``compiledir``: "shared" (default)
    or "per-worker" (each worker process its own PyTensor ``base_compiledir``).  ``progress``: print
    one line per finished job.  ``on_result(i, result)``: called as each job finishes (in completion
    order), e.g. to save partial results of a long study.  A failed job comes back with ``error`` set;
    it does not stop the others.
    """
    try:
        from dask.distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover -- exercised only without the extra
        raise ImportError(_DASK_MISSING) from exc
    if compiledir not in ("shared", "per-worker"):
        raise ValueError(f"compiledir must be 'shared' or 'per-worker', got {compiledir!r}")
    jobs = list(jobs)
    if not jobs:
        return []
    own_client = client is None
    cluster = None
    if client is None:
        if scheduler is None:
            cluster = local_cluster(n_workers)
            client = Client(cluster)
        else:
            client = Client(scheduler)
    try:
        client.run(_set_worker_compiledir, compiledir)
        # pure=False: identical jobs (same seed) are still run; key order keeps results in job order
        futures = client.map(run_job, jobs, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results = [None] * len(jobs)
        warned = False
        for fut in as_completed(futures):
            i = index[fut.key]
            results[i] = fut.result()
            if results[i].get("warning") and not warned:
                print(f"fit_many: {results[i]['warning']}", file=sys.stderr, flush=True)
                warned = True
            if progress:
                r = results[i]
                state = "FAILED" if r.get("error") else ("ok" if r.get("ok") else "not converged")
                print(f"  job {i} ({r.get('name')}): {state}, {r['seconds']:.1f} s, worker {r['worker']}", flush=True)
            if on_result is not None:
                on_result(i, results[i])
        return results
    finally:
        if own_client:
            client.close()
            if cluster is not None:
                cluster.close()
