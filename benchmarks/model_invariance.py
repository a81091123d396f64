"""Is the built model the same model?  Free RVs, shapes, deterministics, observed names, log density and gradient.

For every shipped spec (``models/*.toml``) on the shipped SYNTHETIC batches A and B, one pooled build of A + B
with ``joint``, and a few option variants the shipped specs do not switch on (depth-averaged pump, delay GP,
emission-form hole trapping, SEM in the error, non-centred calibrations without single-exciton decay), this
builds the model (no sampling) and records the free RV names in order with their shapes, the deterministic and
observed names, and logp and dlogp at the initial point and at the initial point + 0.1 N(0, 1) (seeded) on the
unconstrained space.  Run once on the code before a change to record the reference, then after it to compare:

    PYTHONPATH=$PWD nice -n 10 python benchmarks/model_invariance.py --record /tmp/model-invariance-ref
    PYTHONPATH=$PWD nice -n 10 python benchmarks/model_invariance.py --compare /tmp/model-invariance-ref

The order of the free RVs matters beyond the density: nutpie's seeded draws depend on it.  Compiled on
PyTensor's Python VM (``physics.api.numpy_mode``; the C backend where an op has no Python implementation): the
comparison is of the same mode before and after.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
import zlib
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
BATCHES = {"A": ROOT / "data" / "synthetic-batch-a", "B": ROOT / "data" / "synthetic-batch-b"}

# options the shipped specs leave at their defaults, each switched on once on batch A (spec, option overrides)
VARIANTS = {
    "joint+beer-lambert": ("joint", {"pump_attenuation": "beer-lambert"}),
    "joint+delay-gp": ("joint", {"discrepancy": "delay-gp"}),
    "joint-hole-trapping+emission": ("joint-hole-trapping", {"hole_trapping_form": "emission"}),
    "joint+sem-noncentered-no-kx": ("joint", {"measurement_error": "sem+scatter", "fluence_calibration": "non-centered",
                                              "single_exciton_decay": False}),
}


def cases(only=None):
    """(case name, spec, experiments or None for a pooled build) of every build compared."""
    from bayesgain.model.spec import MODELS_DIR, load_spec, spec_from_dict

    out = []
    for path in sorted(MODELS_DIR.glob("*.toml")):
        for batch in BATCHES:
            out.append((f"{path.stem}@{batch}", lambda p=path: load_spec(p), [BATCHES[batch]]))
    out.append(("joint@A+B", lambda: load_spec("joint"), [BATCHES["A"], BATCHES["B"]]))
    for name, (base, opts) in VARIANTS.items():
        # through extends: the base's priors that the changed options no longer use are dropped, new ones added
        out.append((f"{name}@A", lambda n=name, b=base, o=opts: spec_from_dict(
            {"name": n, "extends": b, "options": o}, source=f"<{n}>", base_dir=MODELS_DIR), [BATCHES["A"]]))
    return [c for c in out if only is None or any(o in c[0] for o in only)]


def record_case(spec, folders, seed):
    """Everything compared of one build; raises what the build raises."""
    from bayesgain.model.core import GainModel
    from bayesgain.physics.api import numpy_mode

    gm = GainModel(spec, [str(f) for f in folders] if len(folders) > 1 else str(folders[0]))
    model = gm.build()
    ip = model.initial_point()
    rng = np.random.default_rng(seed)
    moved = {k: v + 0.1 * rng.standard_normal(np.shape(v)) for k, v in ip.items()}
    try:
        logp = model.compile_logp(mode=numpy_mode())
        dlogp = model.compile_dlogp(mode=numpy_mode())
        logp(ip)
    except NotImplementedError:  # a fused elementwise op of > 32 inputs (pooled builds) has no Python implementation
        logp = model.compile_logp(mode="FAST_RUN")
        dlogp = model.compile_dlogp(mode="FAST_RUN")
    return {
        "free_rvs": [rv.name for rv in model.free_RVs],
        "value_vars": list(ip),
        "shapes": [list(np.shape(v)) for v in ip.values()],
        "deterministics": [v.name for v in model.deterministics],
        "observed": [v.name for v in model.observed_RVs],
        "n_max": [gm.n_max, gm.n_max_film, gm.n_max_solution],
        "quadrature_nodes": int(gm.quadrature_nodes),
        "coords": {k: len(v) for k, v in model.coords.items()},
        "logp": [float(logp(ip)), float(logp(moved))],
        "dlogp": [np.asarray(dlogp(ip), float).tolist(), np.asarray(dlogp(moved), float).tolist()],
    }


def compare(ref, new):
    """(ok, one line of figures) for one case."""
    problems = [k for k in ("free_rvs", "value_vars", "shapes", "deterministics", "observed", "n_max",
                            "quadrature_nodes", "coords") if ref[k] != new[k]]
    rel_lp = max(abs(a - b) / max(abs(a), 1e-300) for a, b in zip(ref["logp"], new["logp"]))
    rel_g = 0.0
    for a, b in zip(ref["dlogp"], new["dlogp"]):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            problems.append("dlogp shape")
            continue
        rel_g = max(rel_g, float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-300)))
    ok = not problems and rel_lp < 1e-9 and rel_g < 1e-9
    line = (f"{len(new['free_rvs'])} free RVs, {len(new['deterministics'])} deterministics, "
            f"observed {','.join(new['observed'])}; logp {new['logp'][0]:.6f} / {new['logp'][1]:.6f}; "
            f"rel |Δlogp| {rel_lp:.1e}, max rel |Δgrad| {rel_g:.1e}")
    if problems:
        line += f"; DIFFERENT: {', '.join(problems)}"
    return ok, line


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--record", type=pathlib.Path, help="folder to write the reference JSON files to")
    group.add_argument("--compare", type=pathlib.Path, help="folder of a recorded reference")
    ap.add_argument("--only", nargs="*", help="case name substrings")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import pytensor

    pytensor.config.floatX = "float64"
    failed = new_cases = 0
    for name, make_spec, folders in cases(args.only):
        t0 = time.time()
        try:
            result = record_case(make_spec(), folders, seed=zlib.crc32(name.encode()))  # same point whatever --only
        except Exception as exc:  # a spec that does not build on this data: recorded as such, compared as such
            result = {"error": f"{type(exc).__name__}: {exc}"}
        dt = time.time() - t0
        if args.record:
            args.record.mkdir(parents=True, exist_ok=True)
            (args.record / f"{name}.json").write_text(json.dumps(result))
            print(f"{name:40s} recorded ({dt:.0f} s): "
                  + (result["error"][:100] if "error" in result else f"logp {result['logp']}"), flush=True)
            continue
        ref_path = args.compare / f"{name}.json"
        if not ref_path.exists():  # a spec added since the reference: nothing to compare, said so
            print(f"{name:40s} new (no reference): " + (result["error"][:100] if "error" in result else
                  f"{len(result['free_rvs'])} free RVs, logp {result['logp'][0]:.6f} / {result['logp'][1]:.6f}"),
                  flush=True)
            new_cases += 1
            continue
        ref = json.loads(ref_path.read_text())
        if "error" in ref or "error" in result:
            ok = ref.get("error") == result.get("error")
            line = f"both refuse: {ref['error'][:80]}" if ok else f"DIFFERENT: ref {ref.get('error')} new {result.get('error')}"
        else:
            ok, line = compare(ref, result)
        failed += not ok
        print(f"{name:40s} {'same' if ok else 'FAIL'} ({dt:.0f} s): {line}", flush=True)
    if args.compare:
        print(f"{'all cases the same' if not failed else f'{failed} case(s) differ'}"
              + (f"; {new_cases} new case(s) without a reference" if new_cases else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
