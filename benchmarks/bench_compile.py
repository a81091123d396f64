"""Cold and warm compile time of a model's log density + gradient for nutpie, with graph sizes.

Each measurement runs in a fresh Python process: "cold" with an empty PyTensor compile directory,
"warm" a second process on the directory the cold one filled (what a user's second run pays).
Prints one row per spec; asserts nothing.

    .venv/bin/python benchmarks/bench_compile.py                          # joint on data/synthetic-batch-a
    .venv/bin/python benchmarks/bench_compile.py --spec joint --spec sec-only --no-warm
    .venv/bin/python benchmarks/bench_compile.py --backend jax           # needs the [jax] extra

The compile time includes the first evaluation of the log density + gradient (jax compiles there).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]

# --numba-inline: numba inlines PyTensor's inner functions into their callers (IR level) at every call site it
# can (not one made with *args, which numba refuses); measured slower to compile and to run, kept to re-measure
INLINE = r"""
import inspect
import pytensor.link.numba.dispatch.basic as _nb
_njit = _nb.numba_njit
def _plain(fn):
    try:
        ps = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in ps)
def _site(expr, caller_info, callee_info):
    return getattr(expr, "vararg", None) is None and not getattr(expr, "varkwarg", None)
def _inlining(*args, final_function=False, **kw):
    if final_function:
        return _njit(*args, final_function=final_function, **kw)
    def deco(fn, rest=()):
        return _njit(fn, *rest, final_function=False, **(dict(kw, inline=_site) if _plain(fn) else kw))
    if args and callable(args[0]):
        return deco(args[0], args[1:])
    return lambda fn: deco(fn, args)
_nb.numba_njit = _inlining
"""

CHILD = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
if sys.argv[4] == "inline":
    exec(sys.argv[5])
t0 = time.perf_counter()
from bayesgain.model.core import GainModel
gm = GainModel(sys.argv[1], sys.argv[2])
gm.build()
t_build = time.perf_counter() - t0
from bayesgain.model import sampling
from pytensor.graph.traversal import applys_between
t = time.perf_counter()
compiled = sampling.compile_nutpie(gm.model, backend=sys.argv[3])
sampling.logp_and_gradient(compiled)(sampling.initial_point(compiled, 0))
t_compile = time.perf_counter() - t
# size of the log density + gradient graph before PyTensor's rewrites (nothing more is compiled)
import pytensor
logp = gm.model.logp()
grads = pytensor.grad(logp, gm.model.value_vars)
nodes = len(list(applys_between(gm.model.value_vars, [logp, *grads])))
import bayesgain
print(json.dumps({"package": bayesgain.__file__, "build_s": t_build, "compile_s": t_compile, "graph_nodes": nodes}))
"""


def _run(spec, experiment, compiledir, backend="numba", inline=False):
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={compiledir}", "OMP_NUM_THREADS": "1"}
    if inline:  # the patch lives in this process, so the callbacks must compile here, not in a child
        env["BAYESGAIN_CALLBACKS_IN_PROCESS"] = "1"
    argv = [sys.executable, "-c", CHILD, spec, experiment, backend, "inline" if inline else "-", INLINE]
    out = subprocess.run(argv, env=env, capture_output=True,
                         text=True,
                         cwd=compiledir)  # not the repository: "-c" puts the working directory first on sys.path
    if out.returncode != 0:
        raise RuntimeError(f"compile of {spec} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", action="append", help="model spec name or file (repeatable; default joint)")
    ap.add_argument("--experiment", default=str(ROOT / "data" / "synthetic-batch-a"))
    ap.add_argument("--no-warm", action="store_true", help="skip the second (warm-cache) process")
    ap.add_argument("--backend", default="numba", choices=["numba", "jax"], help="nutpie's PyTensor backend")
    ap.add_argument("--numba-inline", action="store_true",
                    help="numba inlines PyTensor's inner functions into their callers (an experiment)")
    args = ap.parse_args(argv)
    specs = args.spec or ["joint"]
    print(f"backend: {args.backend}")
    print(f"{'spec':28s} {'build s':>8s} {'cold s':>8s} {'warm s':>8s} {'nodes':>6s}", flush=True)
    for spec in specs:
        with tempfile.TemporaryDirectory(prefix="bayesgain-compile-") as tmp:
            cold = _run(spec, args.experiment, tmp, args.backend, args.numba_inline)
            warm = None if args.no_warm else _run(spec, args.experiment, tmp, args.backend, args.numba_inline)
        w = f"{warm['compile_s']:8.1f}" if warm else f"{'-':>8s}"
        print(f"# {cold['package']}")
        print(f"{spec:28s} {cold['build_s']:8.1f} {cold['compile_s']:8.1f} {w} {cold['graph_nodes']:6d}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
