"""First contact: the user's own commands, timed from an empty compile cache (cold) and again (warm).

Each run is a fresh process with ``PYTENSOR_FLAGS=base_compiledir=<DIR>`` (numba's and PyTensor's caches
live there): "cold" starts from an empty DIR, "warm" is the next process with the same DIR.  Printed: wall
seconds of ``bayesgain fit FOLDER --out OUT`` (4 x 1000 after 1000, the defaults), the "fitted in" figure it
prints and whether a warm run's posterior draws equal the cold run's (same seed); with ``--suite`` also the
default test suite (``pytest -m "not slow"``) from an empty cache.  Prints a Markdown table; asserts nothing.  Run on an idle machine: the figures are wall times.

    .venv/bin/python benchmarks/first_contact.py                   # cold and warm fit
    .venv/bin/python benchmarks/first_contact.py --suite           # and the test suite, cold
    .venv/bin/python benchmarks/first_contact.py --checkout /tmp/old   # another checkout (before/after)
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(cmd, cwd, compiledir, log):
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={compiledir}", "PYTHONPATH": str(cwd)}
    t = time.perf_counter()
    with open(log, "w") as fh:
        rc = subprocess.run(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    return rc, time.perf_counter() - t, pathlib.Path(log).read_text()


def _same_draws(a, b):
    """``"identical"`` or the largest relative difference between the posterior draws of two fits."""
    import numpy as np
    import xarray as xr

    pa, pb = (xr.open_datatree(p)["posterior"].ds for p in (a, b))
    worst = 0.0
    for name in pa.data_vars:
        x, y = np.asarray(pa[name].values, float), np.asarray(pb[name].values, float)
        if x.shape != y.shape:
            return "different shapes"
        worst = max(worst, float(np.max(np.abs(x - y) / np.maximum(np.abs(x), 1e-300), initial=0.0)))
    return "identical" if worst == 0.0 else f"max relative difference {worst:.1e}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkout", default=str(ROOT), help="the source tree to time (default: this one)")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--experiment", default="data/synthetic-batch-a", help="relative to --checkout")
    ap.add_argument("--warm-runs", type=int, default=1)
    ap.add_argument("--suite", action="store_true", help="also time pytest -m 'not slow' from an empty cache")
    ap.add_argument("--suite-workers", default="auto", help="pytest-xdist's -n for the suite (README's command: auto; "
                                                            "0 runs it in one process)")
    ap.add_argument("--label", default="")
    args = ap.parse_args(argv)
    src = pathlib.Path(args.checkout).resolve()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bayesgain-first-contact-"))
    rows = []
    try:
        cache = work / "compiledir"
        fit = [args.python, "-m", "bayesgain.cli", "fit", args.experiment]
        for i, kind in enumerate(["cold"] + ["warm"] * args.warm_runs):
            out = work / f"fit{i}"
            rc, wall, text = _run(fit + ["--out", str(out)], src, cache, work / f"fit{i}.log")
            fitted = re.search(r"fitted in ([0-9.]+) s", text)
            conv = next((ln for ln in text.splitlines() if ln.startswith(("converged", "NOT CONVERGED"))), "")
            same = "" if i == 0 else "; draws vs cold: " + _same_draws(work / "fit0" / "posterior.nc", out / "posterior.nc")
            rows.append((f"bayesgain fit, {kind} cache", wall, fitted.group(1) if fitted else "-", rc, conv[:60] + same))
            print(rows[-1], flush=True)
        if args.suite:
            suite_cache = work / "suite-compiledir"
            rc, wall, text = _run([args.python, "-m", "pytest", "-q", "-m", "not slow", "-n", args.suite_workers,
                                   "-p", "no:cacheprovider"], src, suite_cache, work / "suite.log")
            tail = text.strip().splitlines()[-1] if text.strip() else ""
            rows.append((f"pytest -m 'not slow' -n {args.suite_workers}, cold cache", wall, "-", rc, tail[:60]))
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.label or src}\n")
    print("| command | wall s | fitted in (s) | exit | last line |\n|---|---|---|---|---|")
    for name, wall, fitted, rc, note in rows:
        print(f"| {name} | {wall:.0f} | {fitted} | {rc} | {note} |")


if __name__ == "__main__":
    main()
