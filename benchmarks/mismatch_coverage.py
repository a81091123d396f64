"""Convergence and interval coverage of the joint model on SYNTHETIC experiments it was not tuned on.

For every scenario of :mod:`bayesgain.scenarios` (simulator knobs for what real films do and the model
does not share) and every seed: simulate an experiment (SYNTHETIC, truth stored beside it), fit it with
the default settings of the spec (plus ``--option key=value`` overrides) and no chain re-run, and record

* convergence: max R-hat, min bulk ESS, divergences, chains ending > 20 nats below the best;
* for the cross-section, V_1S, V_C, sigma_1S and tau_XX: whether the 94 % HDI holds the truth.

The fits run through Dask (``bayesgain.model.distributed.fit_many``; a local cluster of ``--workers``
single-threaded processes, or ``--scheduler tcp://host:8786``).  One CSV row per fit goes to ``--csv``
(appended as fits finish, so a long run can be resumed: finished (scenario, seed, label) rows are
skipped), and the coverage table per scenario is printed as Markdown.

    .venv/bin/python benchmarks/mismatch_coverage.py --scenarios matched band-2s-tail --seeds 1-20 \\
        --label gp --option discrepancy=delay-gp --csv benchmarks/results/mismatch_fits.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import pathlib
import sys
import time
import tomllib

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# model parameter -> truth.toml key
TARGETS = {"cross_section_cm2": "cross_section_400nm_cm2", "V_1S_V": "V_1S_V", "V_C_V": "V_C_V",
           "sigma_1S_V": "sigma_1S_V", "tau_xx_ps": "tau_xx_ps"}
FIELDS = (["scenario", "seed", "label", "ok", "max_r_hat", "min_ess_bulk", "divergences", "stuck_chains", "seconds"]
          + [f"{p}_{k}" for p in TARGETS for k in ("truth", "median", "low", "high", "covered")] + ["note"])


def simulate(scenario, seed, root):
    """The experiment folder of (scenario, seed), simulated once (SYNTHETIC, truth.toml beside it)."""
    out = pathlib.Path(root) / f"{scenario}-seed{seed}"
    if (out / "truth.toml").exists():
        return out
    from bayesgain.scenarios import simulate_scenario

    simulate_scenario(scenario, out, seed=seed)
    return out


def spec_text(base, options):
    """The complete spec of ``base`` with ``options`` changed (through ``extends``: an option that changes the
    model's parameters, such as discrepancy, takes its own priors and drops the base's unused ones)."""
    from bayesgain.model.spec import load_spec, spec_from_dict

    spec = load_spec(base)
    return spec_from_dict({"extends": base, "name": spec.name, "description": spec.description,
                           "options": dict(options)}).to_toml()


def parse_value(v):
    try:
        return tomllib.loads(f"x = {v}")["x"]
    except tomllib.TOMLDecodeError:
        return v


def row_of(scenario, seed, label, result, truth):
    row = {"scenario": scenario, "seed": seed, "label": label, "seconds": round(result.get("seconds", 0.0), 1)}
    if result.get("error"):
        row.update(ok=False, note=result["error"].strip().splitlines()[-1][:200])
        return row
    conv = result["convergence"]
    row.update(ok=result["ok"], max_r_hat=conv.get("max_r_hat"), min_ess_bulk=conv.get("min_ess_bulk"),
               divergences=conv.get("divergences"), stuck_chains=conv.get("stuck_chains", ""),
               note=conv.get("note", "") or ("" if result["ok"] else f"largest R-hat {conv.get('worst_r_hat', '?')}, "
                                                f"smallest bulk ESS {conv.get('worst_ess_bulk', '?')}"))
    summ = result["summary"]
    for p, key in TARGETS.items():
        rows = [v for k, v in summ.items() if k == p or k.startswith(p + "[")]
        if not rows or key not in truth:
            continue
        s = rows[0]
        t = float(truth[key])
        lo, hi = s["hdi94_lb"], s["hdi94_ub"]
        row.update({f"{p}_truth": t, f"{p}_median": s["mean"], f"{p}_low": lo, f"{p}_high": hi,
                    f"{p}_covered": int(lo <= t <= hi)})
    return row


def converged(row):
    """Whether a CSV row (strings) or a fresh row (bools) is a converged fit."""
    return str(row.get("ok")) in ("True", "1")


def coverage_table(rows):
    """Markdown: per scenario and label, fits, converged share, and the HDI coverage of each target."""
    groups = {}
    for r in rows:
        groups.setdefault((r["scenario"], r["label"]), []).append(r)
    head = "| scenario | label | fits | converged | " + " | ".join(TARGETS) + " | median s |"
    lines = [head, "|" + "---|" * (5 + len(TARGETS))]
    for (sc, lab), rs in sorted(groups.items()):
        ok = sum(converged(r) for r in rs)
        cov = []
        for p in TARGETS:
            v = [int(r[f"{p}_covered"]) for r in rs if str(r.get(f"{p}_covered", "")) not in ("", "None")]
            cov.append(f"{sum(v)}/{len(v)}" if v else "-")
        secs = np.median([float(r["seconds"]) for r in rs])
        lines.append(f"| {sc} | {lab} | {len(rs)} | {ok}/{len(rs)} | " + " | ".join(cov) + f" | {secs:.0f} |")
    return "\n".join(lines)


def calibration_table(rows, min_fits=5):
    """Markdown: per scenario and label with >= ``min_fits`` fits, the standardised error of every target,
    z = (posterior mean - truth) / (94 % HDI width / 3.76), as mean and sd over the fits.

    Coverage alone cannot tell honest from conservative intervals: with calibrated ones z has mean ~0 and sd
    ~1; sd well below 1 means intervals wider than the estimates scatter (conservative), above 1 too narrow,
    and a mean away from 0 a bias in units of the stated uncertainty."""
    groups = {}
    for r in rows:
        if converged(r):
            groups.setdefault((r["scenario"], r["label"]), []).append(r)
    head = "| scenario | label | fits | " + " | ".join(f"{p} z mean / sd" for p in TARGETS) + " |"
    lines = [head, "|" + "---|" * (3 + len(TARGETS))]
    for (sc, lab), rs in sorted(groups.items()):
        if len(rs) < min_fits:
            continue
        cells = []
        for p in TARGETS:
            z = []
            for r in rs:
                try:
                    m, t, lo, hi = (float(r[f"{p}_{k}"]) for k in ("median", "truth", "low", "high"))
                except (KeyError, TypeError, ValueError):
                    continue
                if hi > lo:
                    z.append((m - t) / ((hi - lo) / 3.76))
            cells.append(f"{np.mean(z):+.2f} / {np.std(z, ddof=1):.2f}" if len(z) >= min_fits else "-")
        lines.append(f"| {sc} | {lab} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seeds_of(text):
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", nargs="+", default=["matched"])
    ap.add_argument("--seeds", default="1-5", help="e.g. 1-20 or 1,3,5")
    ap.add_argument("--spec", default="joint")
    ap.add_argument("--option", action="append", default=[], help="spec option override key=value (repeatable)")
    ap.add_argument("--label", default="default", help="name of this configuration in the CSV")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--target-accept", type=float, default=None, help="NUTS target acceptance (default: the fit's)")
    ap.add_argument("--whiten-radius", type=float, default=None,
                    help="fit with whiten=True and the starts moved by U(-r, r) in whitened units (0: not moved; "
                         "default: the fit's own settings)")
    ap.add_argument("--no-whiten", action="store_true", help="fit in the model's own coordinates (whiten=False)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--scheduler", default=None)
    ap.add_argument("--data-root", default="/tmp/bayesgain-mismatch", help="where simulated folders are kept")
    ap.add_argument("--csv", default=str(ROOT / "benchmarks" / "results" / "mismatch_fits.csv"))
    ap.add_argument("--table-only", action="store_true", help="print the table of the CSV and stop")
    args = ap.parse_args(argv)

    csv_path = pathlib.Path(args.csv)
    done = []
    if csv_path.exists():
        with csv_path.open() as fh:
            done = list(csv.DictReader(fh))
    if args.table_only:
        print(coverage_table(done) + "\n\n" + calibration_table(done))
        return 0
    seen = {(r["scenario"], int(r["seed"]), r["label"]) for r in done}
    options = dict(kv.split("=", 1) for kv in args.option)
    options = {k: parse_value(v) for k, v in options.items()}
    spec = spec_text(args.spec, options)
    jobs, meta = [], []
    for sc in args.scenarios:
        for seed in seeds_of(args.seeds):
            if (sc, seed, args.label) in seen:
                continue
            folder = simulate(sc, seed, args.data_root)
            truth = tomllib.loads((folder / "truth.toml").read_text())
            jobs.append({"name": f"{sc}/{seed}", "spec": spec, "experiments": str(folder),
                         "fit": {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": seed,
                                 "rerun_stuck": False,
                                 **({} if args.target_accept is None else {"target_accept": args.target_accept}),
                                 **({} if args.whiten_radius is None else
                                    {"whiten": True, "start_radius": args.whiten_radius}),
                                 **({"whiten": False} if args.no_whiten else {})}})
            meta.append((sc, seed, truth))
    print(f"{len(jobs)} fits ({len(done)} already in {csv_path})", flush=True)
    new_file = not csv_path.exists()
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    fh = csv_path.open("a", newline="")
    writer = csv.DictWriter(fh, fieldnames=FIELDS, extrasaction="ignore")
    if new_file:
        writer.writeheader()
    rows = list(done)

    def on_result(i, result):
        sc, seed, truth = meta[i]
        row = row_of(sc, seed, args.label, result, truth)
        writer.writerow(row)
        fh.flush()
        rows.append(row)
        print(f"  {sc} seed {seed}: ok={row['ok']} r_hat={row.get('max_r_hat')} ess={row.get('min_ess_bulk')} "
              f"div={row.get('divergences')} {row['seconds']} s", flush=True)

    t0 = time.time()
    if jobs:
        from bayesgain.model.distributed import fit_many

        fit_many(jobs, scheduler=args.scheduler, n_workers=args.workers, on_result=on_result)
    fh.close()
    print(f"\n{len(jobs)} fits in {time.time() - t0:.0f} s\n")
    print(coverage_table(rows) + "\n\n" + calibration_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
