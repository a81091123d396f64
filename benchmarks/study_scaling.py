"""Wall time of a study of 8 simulated films: a Dask LocalCluster of 2 workers against one fit after another.

The films are SYNTHETIC (``simulate_experiment``, preset batch-a, seeds 1..8: same design, other noise and
calibration draws).  "one after another" runs ``distributed.run_job`` for each film in this process (the model
compiled once and reused, as a worker does); "study" runs :func:`bayesgain.study.run_study` on a LocalCluster
of ``--workers`` single-threaded worker processes (each compiles once).  Prints both wall times, the speed-up
and how many fits converged; asserts nothing.  About an hour on a 2-core machine with the defaults.

    .venv/bin/python benchmarks/study_scaling.py                      # 8 films, 2 workers, 4 x 1000 draws
    .venv/bin/python benchmarks/study_scaling.py --films 4 --draws 300 --tune 300
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--films", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--model", default="joint")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--first", choices=["sequential", "study"], default="sequential",
                   help="which runs first (the second may find warmer caches)")
    args = p.parse_args(argv)

    from bayesgain import study
    from bayesgain.model.distributed import run_job
    from bayesgain.model.spec import load_spec
    from bayesgain.simulate import simulate_experiment

    spec = load_spec(args.model)
    fit_kw = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": 0}
    with tempfile.TemporaryDirectory(prefix="study-scaling-") as tmp:
        tmp = pathlib.Path(tmp)
        folders = [simulate_experiment(tmp / "films" / f"sim-{s}", preset="batch-a", seed=s)
                   for s in range(1, args.films + 1)]
        print(f"{args.films} SYNTHETIC films (batch-a, seeds 1..{args.films}); model '{spec.name}', "
              f"{args.chains} chains x {args.draws} draws after {args.tune} tuning steps")

        def sequential():
            out = tmp / "sequential"
            ok = 0
            t0 = time.perf_counter()
            for f in study.plan_films(folders, out):
                r = run_job({"name": f.name, "spec": spec.to_toml(), "experiments": [str(f.folder)],
                             "names": [f.name], "fit": dict(fit_kw), "output": str(f.fit_path)})
                if r.get("error"):
                    print(f"  {f.name}: FAILED\n{r['error']}")
                ok += bool(r.get("ok"))
                print(f"  {f.name}: {r['seconds']:.0f} s, {'converged' if r.get('ok') else 'NOT converged'}",
                      flush=True)
            return time.perf_counter() - t0, ok

        def distributed():
            out = tmp / "study"
            t0 = time.perf_counter()
            client = study.connect(None, args.workers)
            try:
                result = study.run_study(study.plan_films(folders, out), out, spec, fit_kw, client=client,
                                         say=lambda s: print(f"  {s}", flush=True))
            finally:
                study.close(client)
            return time.perf_counter() - t0, sum(r["converged"] for r in result["rows"])

        runs = {"sequential": sequential, "study": distributed}
        order = [args.first] + [k for k in runs if k != args.first]
        times = {}
        for name in order:
            print(f"{name}:", flush=True)
            times[name] = runs[name]()
        (t_seq, ok_seq), (t_par, ok_par) = times["sequential"], times["study"]
        print()
        print(f"one after another : {t_seq:8.0f} s  ({ok_seq}/{args.films} converged)")
        print(f"study, {args.workers} workers : {t_par:8.0f} s  ({ok_par}/{args.films} converged; cluster start, "
              "table and figure included)")
        print(f"speed-up          : {t_seq / t_par:8.2f} x")


if __name__ == "__main__":
    main()
