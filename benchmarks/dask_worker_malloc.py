"""A warm joint fit in a Dask worker with and without the nanny's MALLOC_TRIM_THRESHOLD_ (and in this process).

Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in every worker it spawns (``distributed.nanny.pre-spawn-environ``).
``bayesgain.model.distributed.local_cluster`` leaves it unset; this script measures why.  Each arm is a fresh local
cluster of one worker running the same job twice (the first compiles, the second reuses the compiled model: the
"warm" figure); the in-process arm runs ``run_job`` twice here.  SYNTHETIC data (a scenario folder or a shipped batch).
Prints seconds per job; asserts nothing.  ~10 minutes on 2 cores.

    .venv/bin/python benchmarks/dask_worker_malloc.py --experiment data/synthetic-batch-a
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
import warnings

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default=str(ROOT / "data" / "synthetic-batch-a"))
    ap.add_argument("--arms", nargs="+", default=["in-process", "nanny-default", "unset"])
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    from dask.distributed import Client, LocalCluster

    from bayesgain.model.distributed import MALLOC_TRIM_VARIABLE, fit_many, local_cluster, run_job

    jobs = [{"name": f"fit{i}", "spec": "joint", "experiments": args.experiment,
             "fit": {"seed": 1, "rerun_stuck": False}} for i in range(2)]
    for arm in args.arms:
        t = time.time()
        if arm == "in-process":
            res = [run_job(j) for j in jobs]
        else:
            if arm == "nanny-default":
                cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0")
            else:
                cluster = local_cluster(1)
            with cluster, Client(cluster) as client:
                env = list(client.run(lambda: os.environ.get(MALLOC_TRIM_VARIABLE)).values())[0]
                res = fit_many(jobs, client=client)
            arm = f"{arm} ({MALLOC_TRIM_VARIABLE}={env})"
        secs = ", ".join(f"{r['name']} {r['seconds']:.1f} s ({'ok' if r.get('ok') else 'not converged'})" for r in res)
        print(f"{arm}: {secs}; {time.time() - t:.0f} s in all", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
