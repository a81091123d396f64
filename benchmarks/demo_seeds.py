"""`bayesgain demo`'s fit for several seeds: does the first thing a new user runs converge whatever the seed?

The fit of `bayesgain.demo.run` (joint model, `data/synthetic-batch-a` (SYNTHETIC), 4 chains x 1000 draws after
1000, nutpie/numba), once per seed in one process (the compile is reused after the first seed: the posterior
does not depend on it), with no chain re-run unless ``--rerun`` (the demo's own default re-runs a stuck chain;
this shows whether it ever has to).  One line per seed: convergence, chains' mean log density, seconds.

    .venv/bin/python benchmarks/demo_seeds.py --seeds 1-5
    .venv/bin/python benchmarks/demo_seeds.py --seeds 1-5 --experiment data/synthetic-batch-b   # the other batch
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mismatch_coverage import seeds_of  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="1-5")
    ap.add_argument("--rerun", action="store_true", help="let a stuck chain be run again (the demo's default)")
    ap.add_argument("--target-accept", type=float, default=None, help="NUTS target acceptance (default: the fit's)")
    ap.add_argument("--experiment", default=None, help="experiment folder (default: the demo's, batch A)")
    ap.add_argument("--spec", default="joint", help="model spec name or file (default: joint, the demo's)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    from bayesgain.demo import DEMO_FOLDER
    from bayesgain.io import load_experiment
    from bayesgain.model.core import GainModel

    folder = args.experiment or DEMO_FOLDER
    tree = load_experiment(folder)
    ok = 0
    seeds = seeds_of(args.seeds)
    for seed in seeds:
        t0 = time.time()
        m = GainModel(args.spec, tree, names=[pathlib.Path(folder).name])
        kw = {} if args.target_accept is None else {"target_accept": args.target_accept}
        m.fit(draws=1000, tune=1000, chains=4, seed=seed, progress=False, rerun_stuck=args.rerun, **kw)
        ss = m.idata["sample_stats"]
        div = int(ss["diverging"].sum())
        lp = ss["lp" if "lp" in ss else "logp"].mean("draw").values
        ok += bool(m.convergence.ok)
        print(f"seed {seed}: {time.time() - t0:.0f} s; {m.convergence.text()}; {div} divergences; chains' mean log density "
              f"{np.round(lp, 1).tolist()}", flush=True)
    print(f"\nconverged: {ok}/{len(seeds)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
