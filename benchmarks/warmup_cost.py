"""Where a fit's gradients go: nutpie's warm-up against its draws, plain or in whitened coordinates.

Runs the fit's sampler settings (4 x 1000 after 1000, low-rank mass matrix, target_accept 0.95, the climbed starts
of ``sampling.climbed_starts``) on one experiment with the warm-up saved, and prints per seed the log density +
gradient evaluations of the warm-up and of the draws (nutpie's ``n_steps``), the mean per 100 warm-up draws, the
sampling wall time and the convergence (max R-hat, min bulk ESS, divergences).  No chain is re-run.  Asserts
nothing.  Variants:

- ``plain``: what a fit does today;
- ``whitened``: nutpie samples z, x = mu + L z (``model/whitening.py``), from the same starts;
- ``whitened-jitter``: as ``whitened``, each chain's start moved by U(-r, r) in every whitened coordinate
  (``--radius``, default 1): starts about a posterior sd from the climbed points (an experiment, not an option of
  the fit).

    .venv/bin/python benchmarks/warmup_cost.py --variant plain --seeds 1 2
    .venv/bin/python benchmarks/warmup_cost.py --variant whitened-jitter --seeds 1 2 3 4 5

Measured: benchmarks/results/first-contact_2026-12-02.md.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(gm, compiled, seed, variant, radius, chains=4, draws=1000, tune=1000):
    import arviz as az
    import nutpie

    from bayesgain.model import sampling

    points, report = sampling.climbed_starts(gm.model, compiled, chains, seed, at_optimum=True)
    seeds = sampling.chain_init_seeds(compiled, chains, seed, point=points[report["best_chain"]])
    sampled = compiled
    if variant != "plain":  # what sample_nutpie(whiten=True, start_radius=r) does
        sampled, points = sampling._whitened(compiled, points, report, seed,
                                             radius if variant == "whitened-jitter" else 0.0)
    t0 = time.time()
    tree = nutpie.sample(sampling.with_starts(sampled, points, seeds), draws=draws, tune=tune, chains=chains,
                         cores=2, seed=seed, target_accept=0.95, adaptation="low_rank", progress_bar=False,
                         save_warmup=True)
    wall = time.time() - t0
    warm = tree["warmup_sample_stats"]["n_steps"].values
    kept = tree["sample_stats"]["n_steps"].values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = az.summary(tree, kind="diagnostics")
    per_100 = [float(warm[:, a:a + 100].mean()) for a in range(0, warm.shape[1], 100)]
    return dict(seed=seed, warmup=int(warm.sum()), draws=int(kept.sum()), wall=wall, per_100=per_100,
                rhat=float(summary["r_hat"].max()), ess=float(summary["ess_bulk"].min()),
                divergences=int(tree["sample_stats"]["diverging"].values.sum()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default=str(ROOT / "data" / "synthetic-batch-a"))
    ap.add_argument("--spec", default="joint")
    ap.add_argument("--variant", choices=["plain", "whitened", "whitened-jitter"], default="plain")
    ap.add_argument("--radius", type=float, default=1.0, help="whitened-jitter: U(-r, r) per whitened coordinate")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")

    from bayesgain.model import sampling
    from bayesgain.model.core import GainModel

    gm = GainModel(args.spec, args.experiment)
    gm.build()
    compiled = sampling.compile_nutpie(gm.model, jitter_rvs=gm.jitter_rvs())
    print(f"{args.spec} on {args.experiment}, variant {args.variant}"
          + (f" (radius {args.radius})" if args.variant == "whitened-jitter" else ""))
    print(f"{'seed':>4s} {'warm-up evals':>13s} {'draw evals':>10s} {'wall s':>7s} {'max R-hat':>9s} "
          f"{'min ESS':>8s} {'div':>4s}  warm-up evals per draw, per 100 draws")
    for seed in args.seeds:
        r = run(gm, compiled, seed, args.variant, args.radius, draws=args.draws, tune=args.tune)
        print(f"{r['seed']:4d} {r['warmup']:13d} {r['draws']:10d} {r['wall']:7.1f} {r['rhat']:9.4f} {r['ess']:8.0f} "
              f"{r['divergences']:4d}  " + " ".join(f"{x:.0f}" for x in r["per_100"]), flush=True)


if __name__ == "__main__":
    main()
