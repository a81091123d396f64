"""Joint model on data/synthetic-batch-a: compile time, sampling time, min bulk ESS and ESS per second
with nutpie and with the PyMC sampler, and the time of the threshold curve (4000 draws x 101 levels).

Issue targets (4 chains x 1000 draws after 1000 tune on the 2-core machine): whole nutpie fit under
120 s including compilation; nutpie ESS/s at least 10x PyMC's; threshold curve under 2 s.  Prints a
table, asserts nothing.

    .venv/bin/python benchmarks/bench_model.py                        # full settings
    .venv/bin/python benchmarks/bench_model.py --draws 50 --tune 50 --chains 2 --skip-pymc   # smoke
    .venv/bin/python benchmarks/bench_model.py --skip-pymc --cold-cache       # a first fit on a fresh machine
    .venv/bin/python benchmarks/bench_model.py --skip-pymc --backend jax      # nothing to cache: always cold

nutpie: compile = GainModel.build() + nutpie.compile_pymc_model (``--backend``: numba or jax), timed on its
own; sampling = nutpie.sample on that compiled model with GainModel.fit's settings (low-rank mass matrix,
target_accept 0.9).  PyMC: GainModel.fit(sampler="pymc", cores=2), by default from the climbed starts
nutpie gets (``--pymc-starts``); its sampling time is PyMC's own figure and the rest of the call
(compilation, log-likelihood) is reported as overhead.  The threshold curve is timed on the nutpie
posterior resampled (with replacement) to 4000 draws when the fit has fewer.  Measured figures:
benchmarks/results/joint-speed-and-jax-backend_2026-11-27.md.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _print_rows(rows):
    print(f"\n{'sampler':8s} {'figure':48s} {'value':>12s}")
    for sampler, name, value, unit in rows:
        print(f"{sampler:8s} {name:48s} {float(value):12.3f} {unit}", flush=True)


def _climbed_starts(gm, backend, chains, seed):
    """The starts nutpie's chains get (L-BFGS climbs from jittered points, hyperparameters kept jittered), as
    PyMC initvals: one dict of value-variable name -> unconstrained value per chain."""
    from bayesgain.model import sampling

    compiled = sampling.compile_nutpie(gm.model, backend, jitter_rvs=gm.jitter_rvs())  # kept: no new compile
    starts, _ = sampling.climbed_starts(gm.model, compiled, chains, seed)
    names, slices = sampling.flat_layout(compiled)
    shapes = {k: np.shape(v) for k, v in gm.model.initial_point().items()}
    return [{n: x[sl].reshape(shapes[n]) for n, sl in zip(names, slices)} for x in starts]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-pymc", action="store_true")
    ap.add_argument("--pymc-draws", type=int, default=None,
                    help="draws per chain for the PyMC-sampler run (default --draws): its trees are deep with a "
                         "diagonal mass matrix, so a full-size run can take an hour here; ESS/s is a rate")
    ap.add_argument("--pymc-tune", type=int, default=None, help="tuning steps of the PyMC run (default --tune)")
    ap.add_argument("--pymc-chains", type=int, default=None, help="chains of the PyMC run (default --chains)")
    ap.add_argument("--backend", default="numba", choices=["numba", "jax"],
                    help="nutpie's PyTensor backend (jax: optional dependency, compiles in seconds)")
    ap.add_argument("--pymc-starts", default="optimum", choices=["optimum", "jitter"],
                    help="PyMC run's chain starts: optimum (default: the climbed starts nutpie gets, so the samplers "
                         "are compared, not the initialisations) or jitter (PyMC's own)")
    ap.add_argument("--spec", default="joint")
    ap.add_argument("--experiment", default=str(ROOT / "data" / "synthetic-batch-a"))
    ap.add_argument("--threshold-draws", type=int, default=4000)
    ap.add_argument("--report", default=None, metavar="DIR",
                    help="also write the nutpie fit's posterior.nc, classic.csv, report and figures to DIR (timed)")
    ap.add_argument("--cold-cache", action="store_true",
                    help="compile into a new, empty PyTensor compile directory (a first fit on a fresh machine); "
                         "must be the process's first use of PyTensor")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*BLAS.*")
    cache = "this process's compile cache"
    if args.cold_cache:
        if "pytensor" in sys.modules:
            raise SystemExit("--cold-cache: PyTensor was imported before the compile directory could be set")
        import atexit
        import shutil
        import tempfile

        tmp = tempfile.mkdtemp(prefix="bayesgain-cold-")
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        flags = os.environ.get("PYTENSOR_FLAGS", "")
        os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, f"base_compiledir={tmp}") if f)
        cache = f"cold: empty compile directory {tmp}"

    import xarray as xr

    from bayesgain.model import compiled_cache, sampling
    from bayesgain.model.core import GainModel
    from bayesgain.model.quantities import threshold_curve

    rows = []  # (sampler, figure, value, unit)
    fit_kw = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": args.seed,
              "backend": args.backend}
    print(f"joint model ({args.spec}) on {args.experiment}: {args.chains} chains x {args.draws} draws after "
          f"{args.tune} tune", flush=True)

    # ---------------------------------------------------------------- nutpie
    t = time.perf_counter()
    gm = GainModel(args.spec, args.experiment)
    t_reduce = time.perf_counter() - t
    t = time.perf_counter()
    gm.build()
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    sampling.compile_nutpie(gm.model, args.backend, jitter_rvs=gm.jitter_rvs())  # kept for the fit below
    t_compile = time.perf_counter() - t
    t = time.perf_counter()
    before = compiled_cache.STATS["compiled"]
    idata = gm.fit(**fit_kw, progress=False)
    t_fit = time.perf_counter() - t
    assert args.backend != "numba" or compiled_cache.STATS["compiled"] == before  # jax models are not kept
    t_sample = float(idata["posterior"].attrs.get("sampling_time", t_fit))
    ess = float(gm.convergence["min_ess_bulk"])
    total = t_reduce + t_build + t_compile + t_fit  # the whole fit: data in, converged posterior out
    rows += [("nutpie", "data reduction", t_reduce, "s"), ("nutpie", "build (pm.Model)", t_build, "s"),
             ("nutpie", f"compile ({args.backend})", t_compile, "s"),
             ("nutpie", "starts + sampling + log-likelihood", t_fit, "s"),
             ("nutpie", "sampling (incl. any chain run again)", t_sample, "s"),
             ("nutpie", "whole fit (reduce + build + compile + fit)", total, "s"),
             ("nutpie", "min bulk ESS", ess, ""), ("nutpie", "ESS / s (sampling)", ess / t_sample, "1/s"),
             ("nutpie", "ESS / s (incl. compile)", ess / total, "1/s"),
             ("nutpie", "max R-hat", gm.convergence["max_r_hat"], ""),
             ("nutpie", "divergences", gm.convergence["divergences"], "")]
    print(f"nutpie: {gm.convergence.text()}", flush=True)
    if args.report:
        from bayesgain.report import write_fit_outputs

        t = time.perf_counter()
        out = pathlib.Path(args.report)
        write_fit_outputs(gm, out, classic_folder=args.experiment)
        rows.append(("nutpie", "report (save, classic, figures)", time.perf_counter() - t, "s"))
        print(f"report written to {out}", flush=True)

    # ---------------------------------------------------------------- threshold curve, 4000 draws
    post = gm.idata["posterior"].to_dataset()
    n = post.sizes["chain"] * post.sizes["draw"]
    flat = post.stack(sample=("chain", "draw")).drop_vars(["sample", "chain", "draw"], errors="ignore")
    take = np.random.default_rng(0).choice(n, args.threshold_draws, replace=n < args.threshold_draws)
    big = flat.isel(sample=take).rename(sample="draw").expand_dims(chain=[0]).transpose("chain", "draw", ...)
    big = big.assign_coords(draw=np.arange(args.threshold_draws))
    gm_big = GainModel(gm.spec, _reduced=gm.data)
    gm_big.idata = xr.DataTree.from_dict({"posterior": big})
    t = time.perf_counter()
    curve = threshold_curve(gm_big)
    t_curve = time.perf_counter() - t
    rows.append(("numpy", f"threshold_curve {curve.sizes.get('sample', '?')} draws x {curve.sizes.get('n_e', '?')} "
                 "levels", t_curve, "s"))

    # the nutpie figures now, so a PyMC run that is stopped (it can take an hour here) does not lose them
    _print_rows(rows)

    # ---------------------------------------------------------------- PyMC
    if not args.skip_pymc:
        gp = GainModel(args.spec, _reduced=gm.data)
        t = time.perf_counter()
        gp.build()
        t_build_p = time.perf_counter() - t
        t = time.perf_counter()
        pymc_kw = {**{k: v for k, v in fit_kw.items() if k != "backend"}, "draws": args.pymc_draws or args.draws,
                   "tune": args.pymc_tune or args.tune, "chains": args.pymc_chains or args.chains}
        if args.pymc_starts == "optimum":
            pymc_kw["initvals"] = _climbed_starts(gm, args.backend, pymc_kw["chains"], args.seed)
        print(f"pymc: {pymc_kw['chains']} chains x {pymc_kw['draws']} draws after {pymc_kw['tune']} tune, "
              f"starts: {args.pymc_starts}", flush=True)
        gp.fit(**pymc_kw, sampler="pymc", cores=2, progress=False)
        t_fit_p = time.perf_counter() - t
        t_sample_p = float(gp.idata["posterior"].attrs.get("sampling_time", t_fit_p))
        ess_p = float(gp.convergence["min_ess_bulk"])
        rows += [("pymc", "build (pm.Model)", t_build_p, "s"), ("pymc", "fit() total", t_fit_p, "s"),
                 ("pymc", "sampling", t_sample_p, "s"),
                 ("pymc", "compile + log-lik + overhead", t_fit_p - t_sample_p, "s"),
                 ("pymc", "min bulk ESS", ess_p, ""), ("pymc", "ESS / s (sampling)", ess_p / t_sample_p, "1/s"),
                 ("pymc", "max R-hat", gp.convergence["max_r_hat"], ""),
                 ("pymc", "divergences", gp.convergence["divergences"], "")]
        # cost per iteration (tuning included) and per gradient evaluation: comparable even when a run did
        # not converge, where an ESS (and so ESS/s) is not an estimate of anything
        for name, g, t_s in (("nutpie", gm, t_sample), ("pymc", gp, t_sample_p)):
            ss = g.idata["sample_stats"]
            n_iter = ss.sizes["chain"] * (ss.sizes["draw"] + (args.tune if name == "nutpie" else pymc_kw["tune"]))
            steps = float(ss["n_steps"].mean()) if "n_steps" in ss else float("nan")
            rows += [(name, "mean gradient steps per draw", steps, ""),
                     (name, "wall seconds per iteration (all chains, 2 cores)", t_s / n_iter, "s")]
        if gm.convergence.ok and gp.convergence.ok:
            rows.append(("ratio", "nutpie / pymc ESS per s (sampling)", (ess / t_sample) / (ess_p / t_sample_p), "x"))
        else:
            print("ratio of ESS/s not printed: "
                  + " and ".join(n for n, g in (("nutpie", gm), ("pymc", gp)) if not g.convergence.ok)
                  + " did not converge, so its ESS is not an estimate", flush=True)
        print(f"pymc: {gp.convergence.text()}", flush=True)

    if not args.skip_pymc:
        _print_rows(rows)
    full = (args.draws, args.tune, args.chains) == (1000, 1000, 4)
    verdict = ("met" if total < 120 and gm.convergence.ok else "NOT met") if full else "not judged (not full settings)"
    print(f"\ntarget: whole fit < 120 s with compilation ({args.backend}, {cache}): "
          f"{total:.0f} s, {verdict}")
    print("targets: nutpie/pymc ESS/s >= 10; threshold curve < 2 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
