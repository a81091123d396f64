"""One fit of one mismatch scenario (SYNTHETIC), printed in detail: convergence, chains' mean log density, the
least converged variables, each target's 94 % HDI against the truth, and the residual-structure check.

    .venv/bin/python benchmarks/mismatch_one_fit.py band-2s-tail --seed 1
    .venv/bin/python benchmarks/mismatch_one_fit.py band-2s-tail --seed 1 --option discrepancy=delay-gp \\
        --option measurement_error=sem+scatter

No chain is run again (``rerun_stuck=False``): the benchmark shows the geometry as it is.  The fit is saved to
``--save`` when given.  Many seeds and the coverage table: ``benchmarks/mismatch_coverage.py``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
import tomllib
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mismatch_coverage import TARGETS, parse_value, simulate, spec_text  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--spec", default="joint")
    ap.add_argument("--option", action="append", default=[], help="spec option override key=value (repeatable)")
    ap.add_argument("--data-root", default="/tmp/bayesgain-mismatch")
    ap.add_argument("--save", default=None, help="write the fit (posterior.nc) here")
    ap.add_argument("--target-accept", type=float, default=None, help="NUTS target acceptance (default: the fit's)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import arviz as az

    from bayesgain.model.checks import film_residual_check
    from bayesgain.model.core import GainModel
    from bayesgain.model.spec import spec_from_dict

    options = {k: parse_value(v) for k, v in (kv.split("=", 1) for kv in args.option)}
    folder = simulate(args.scenario, args.seed, args.data_root)
    truth = tomllib.loads((folder / "truth.toml").read_text())
    t0 = time.time()
    m = GainModel(spec_from_dict(tomllib.loads(spec_text(args.spec, options))), str(folder))
    kw = {} if args.target_accept is None else {"target_accept": args.target_accept}
    m.fit(draws=1000, tune=1000, chains=4, seed=args.seed, progress=False, rerun_stuck=False, **kw)
    print(f"{args.scenario} seed {args.seed} {options or 'defaults'}: {time.time() - t0:.0f} s; {m.convergence.text()}")
    for note in m.component_notes:
        print(f"note: {note}")
    ss = m.idata["sample_stats"]
    lp = ss["lp" if "lp" in ss else "logp"].mean("draw").values
    print("chains' mean log density:", np.round(lp, 1))
    post = m.idata["posterior"]
    names = [v for v in post.data_vars if post[v].ndim <= 3 and not v.startswith("discrepancy_z")]
    s = az.summary(m.idata, var_names=names, round_to="none").sort_values("r_hat", ascending=False)
    print(s.head(6)[["mean", "sd", "ess_bulk", "r_hat"]].to_string())
    for name, key in {**TARGETS, "fluence_log_sd": "fluence_log_sd"}.items():
        x = post[name].values.reshape(-1)
        lo, hi = np.asarray(az.hdi(x, prob=0.94))
        t = truth.get(key)
        verdict = "" if t is None else ("covered" if lo <= t <= hi else "MISSED")
        print(f"  {name:20s} truth {t!s:10} median {np.median(x):.5g}  94 % HDI [{lo:.5g}, {hi:.5g}] {verdict}")
    for name in ("discrepancy_amplitude_rel", "ta_noise_rel"):
        if name in post:
            x = post[name].values.reshape(-1)
            print(f"  {name:20s} median {np.median(x):.4g}")
    where_divergent(post, ss)
    chk = film_residual_check(m)
    print(f"residual check: p = {chk['p_value']:.3f}, lag-1 autocorrelation {chk['T_observed']:.3f} "
          f"(white noise {chk['T_replicated']:.3f}), flagged = {chk['flagged']}")
    if args.save:
        m.save(args.save, overwrite=True)
    return 0


def where_divergent(post, ss, top=6):
    """The scalar parameters whose divergent draws sit furthest from the rest, in posterior sd: where the
    geometry bends."""
    div = ss["diverging"].values.astype(bool)
    if not div.any():
        return
    scores = []
    for name, da in post.data_vars.items():
        x = np.asarray(da.values)
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        for j in range(flat.shape[-1]):
            v = flat[..., j]
            sd = v[~div].std()
            if np.isfinite(sd) and sd > 0:
                scores.append((abs(v[div].mean() - v[~div].mean()) / sd, f"{name}[{j}]" if flat.shape[-1] > 1 else name,
                               v[div].mean(), v[~div].mean()))
    scores.sort(reverse=True)
    print(f"{int(div.sum())} divergent draws (chains {sorted(set(np.nonzero(div)[0].tolist()))}); furthest from the rest:")
    for z, name, a, b in scores[:top]:
        print(f"  {name:36s} {z:5.1f} sd: divergent mean {a:.4g}, others {b:.4g}")


if __name__ == "__main__":
    raise SystemExit(main())
