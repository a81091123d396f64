"""Compile once per model structure: compile time of the joint model for several seeds of one SYNTHETIC design
in one process (the later ones reuse the compile when the structure matches), and the lifted log density
against a plain compile at one point.  Prints figures, asserts nothing.

    .venv/bin/python benchmarks/compile_reuse.py --scenario matched --seeds 3 4 5
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

from mismatch_coverage import simulate  # noqa: E402


def _timed(fn, reps=500):
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="matched")
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    ap.add_argument("--data-root", default="/tmp/bayesgain-mismatch")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import nutpie

    from bayesgain.model import compiled_cache, sampling
    from bayesgain.model.core import GainModel

    for seed in args.seeds:
        m = GainModel("joint", str(simulate(args.scenario, seed, args.data_root)))
        model = m.build()
        before = compiled_cache.STATS["reused"]
        t = time.perf_counter()
        c = sampling.compile_nutpie(model, jitter_rvs=m.jitter_rvs())
        took = time.perf_counter() - t
        print(f"seed {seed}: n_max {m.n_max}, compile {took:.1f} s, "
              f"{'reused' if compiled_cache.STATS['reused'] > before else 'compiled'}", flush=True)
    # the last seed, lifted (as fitted) against nutpie's plain compile of the same model
    f = sampling.logp_and_gradient(c)
    names, slices = sampling.flat_layout(c)
    x = sampling.initial_point(c, 1)
    t = time.perf_counter()
    plain = nutpie.compile_pymc_model(model, jitter_rvs=m.jitter_rvs())
    print(f"plain compile (data as constants): {time.perf_counter() - t:.1f} s")
    f0 = sampling.logp_and_gradient(plain)
    n0, s0 = sampling.flat_layout(plain)
    pos = dict(zip(names, slices))
    x0 = np.concatenate([x[pos[n]] for n in n0])
    (lp, g), (lp0, g0) = f(x), f0(x0)
    g = np.concatenate([g[pos[n]] for n in n0])
    print(f"log density lifted {lp:.9f}, plain {lp0:.9f}, difference {lp - lp0:.2e}; "
          f"largest gradient difference {np.abs(g - g0).max():.2e} (scale {np.abs(g0).max():.2e})")
    print(f"gradient evaluation: lifted {1e3 * _timed(lambda: f(x)):.3f} ms, plain {1e3 * _timed(lambda: f0(x0)):.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
