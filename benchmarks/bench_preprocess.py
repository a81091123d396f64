"""Timing of loading + preprocessing + classic analysis (prints figures; no timed assertions).

    .venv/bin/python benchmarks/bench_preprocess.py [--skip-large] [--wavelengths 300] [--log-delays 130]

1. data/synthetic-batch-a as shipped (109 wavelengths x 71 delays, 6 potentials x 9 fluences = 54 film TA
   matrices): load, reflection correction (SI eq. S33) + A* (excited_state_absorption), classic_analysis.
2. The same on a larger simulated experiment (default 300 wavelengths x 151 delays) written to a tempdir
   by bayesgain.simulate.simulate_experiment (preset batch-a, seed 0).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time
import warnings

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", message=".*BLAS.*")


def _timed(label, fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    dt = time.perf_counter() - t0
    print(f"  {label:<52s} {dt:8.2f} s", flush=True)
    return out, dt


def bench(folder, title):
    from bayesgain import classic, preprocess
    from bayesgain.io import load_experiment

    print(f"{title}: {folder}")
    tree, _ = _timed("load_experiment", load_experiment, folder)
    dA = tree["film/ta"]["dA"]
    n_mat = dA.sizes["potential"] * dA.sizes["fluence"]
    print(f"  film TA: {n_mat} matrices of {dA.sizes['wavelength']} wavelengths x {dA.sizes['delay']} delays")
    corrected, t1 = _timed("reflection_correct_film (eq. S33)", preprocess.reflection_correct_film, tree)
    _, t2 = _timed("excited_state_absorption (A*, g)", preprocess.excited_state_absorption, tree, corrected)
    print(f"  {'preprocessing total (correction + A*)':<52s} {t1 + t2:8.2f} s")
    _, t3 = _timed("single_wavelength_thresholds (g >= 50/cm)", classic.single_wavelength_thresholds, tree,
                   corrected, g_min_per_cm=50.0)
    rows, t4 = _timed("classic_analysis (all rows)", classic.classic_analysis, tree)
    print(f"  classic_analysis rows: {len(rows)}")
    return dict(preprocess_s=t1 + t2, classic_s=t4)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-large", action="store_true", help="only the shipped batch A")
    ap.add_argument("--wavelengths", type=int, default=300)
    ap.add_argument("--log-delays", type=int, default=130, help="log-spaced delays (21 linear ones come on top)")
    args = ap.parse_args(argv)
    bench(ROOT / "data" / "synthetic-batch-a", "shipped batch A")
    if args.skip_large:
        return
    from bayesgain.simulate import simulate_experiment

    with tempfile.TemporaryDirectory(prefix="bayesgain-bench-") as tmp:
        out = pathlib.Path(tmp) / "large"
        _timed(f"simulate_experiment ({args.wavelengths} wl, {args.log_delays} log delays)", simulate_experiment,
               out, preset="batch-a", seed=0, n_wavelengths=args.wavelengths, n_log_delays=args.log_delays)
        bench(out, "larger simulated experiment")


if __name__ == "__main__":
    main()
