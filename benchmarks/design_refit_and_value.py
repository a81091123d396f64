"""Experimental design by simulation: does `bayesgain design` predict the refit, and does it save runs?

EXPENSIVE: every step is a full joint NUTS fit.  Measured on 2 cores (2026-12-01, 4 chains x 2000 after 1500,
which a 6-run start needs with discrepancy = "window-tail"): ``refit --seeds 0 1`` with two targets, 1645 s;
``value --seeds 0 1 --rounds 3``, 16 fits, 3007 s; ``value --seeds 1 2 3 --rounds 3 --draws 2000 --tune 2000``
(what every campaign fit needs to converge), 21 fits, 3289 s.  The defaults (3 seeds, 6 rounds) take hours.

Both studies draw their measurements from one SYNTHETIC "superset" experiment per seed
(``simulate_experiment`` with the batch-a preset on a dense grid of doping levels x fluences); a campaign
is a folder whose experiment.toml lists only the film TA runs measured so far (every other file of the
superset stays out of it), so runs added later are the same simulated measurements with the same truth.

* ``refit`` (accuracy of the estimator): from a coarse start (2 potentials x 3 fluences) fit, run the
  design, and for three candidates (the best, the median and the worst single run) add the run, refit and
  take the realised 94 % HDI width of the target; averaged over seeds, realised and expected widths
  should agree (a single refit is one outcome: the design predicts the average over outcomes).
* ``value``: from the same coarse start, add ``--batch`` runs per round either chosen by the design or
  from the paper's uniform grid (each fluence, interleaved low/high, at all six potentials in turn), and
  record the width of the threshold at <n_e> = 1 against the number of runs.  The issue asks for the
  design arm to reach a given width with >= 30 % fewer runs.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/design_refit_and_value.py refit --seeds 0 1 2 --out /tmp/dz
    PYTHONPATH=$PWD .venv/bin/python benchmarks/design_refit_and_value.py value --seeds 0 1 2 --rounds 6 --out /tmp/dz

    PYTHONPATH=$PWD .venv/bin/python benchmarks/design_refit_and_value.py summary --csv A.csv B.csv --out /tmp/dz

Results: ``OUT/refit.csv`` (seed, candidate, expected, realised) and ``OUT/value.csv`` (seed, arm, runs,
width), plus ``OUT/value.png`` (width vs runs, both arms, every seed) and a summary printed at the end.
"""

from __future__ import annotations

import argparse
import csv
import os
import pathlib
import shutil
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# the paper's grid: six doping levels x nine fluences (batch-a preset's <N> design, widened to nine)
SUPERSET_NE = (0.0, 0.4, 0.8, 1.0, 1.2, 1.5, 1.7, 1.9, 1.98)
SUPERSET_N = (0.1, 0.2, 0.35, 0.5, 0.8, 1.2, 1.6, 2.4, 3.2)
PAPER_NE = (0.0, 0.8, 1.5, 1.9, 1.98, 1.2)  # six potentials of the uniform grid
START_NE = (0.8, 1.5)
START_N = (0.2, 1.2, 3.2)
TARGET = "threshold-at-ne=1.0"  # the target; --target chooses another (the estimator's check)


def superset(out, seed, film=None):
    """The dense SYNTHETIC experiment of one seed (written once); ``film``: overrides of the batch-a preset."""
    from bayesgain.simulate import simulate_experiment

    folder = out / f"superset-seed{seed}"
    if not (folder / "experiment.toml").exists():
        simulate_experiment(folder, preset="batch-a", seed=seed, overwrite=True,
                            film_mean_electrons=SUPERSET_NE, film_mean_excitons=SUPERSET_N, **(film or {}))
    return folder


def runs_of(folder):
    """(potential_V, fluence) of every film TA run of the superset, from its manifest."""
    import tomllib

    m = tomllib.loads((folder / "experiment.toml").read_text())
    return sorted({(float(r["potential_V"]), float(r["fluence_photons_cm2"])) for r in m["film"]["ta"]})


def campaign_folder(superset_dir, runs, dest):
    """A copy of the superset whose manifest lists only the film TA runs ``runs`` (set of (V, F))."""
    import tomllib

    from bayesgain.simulate import to_toml

    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(superset_dir, dest)
    m = tomllib.loads((superset_dir / "experiment.toml").read_text())
    keep = {(round(v, 6), float(f)) for v, f in runs}
    m["film"]["ta"] = [r for r in m["film"]["ta"]
                       if (round(float(r["potential_V"]), 6), float(r["fluence_photons_cm2"])) in keep]
    for r in {pathlib.Path(r["file"]) for r in tomllib.loads((superset_dir / "experiment.toml").read_text())
              ["film"]["ta"]} - {pathlib.Path(r["file"]) for r in m["film"]["ta"]}:
        (dest / r).unlink()  # a file not in the campaign is not there at all
    (dest / "experiment.toml").write_text("# SYNTHETIC campaign subset of " + superset_dir.name + "\n" + to_toml(m))
    return dest


def fit(folder, args, seed):
    from bayesgain.model.core import GainModel

    m = GainModel(args.spec, [folder])
    m.build()
    m.fit(draws=args.draws, tune=args.tune, chains=args.chains, seed=seed, progress=False)
    return m


def width_now(model, target=TARGET):
    from bayesgain.design import target_draws, weighted_hdi_width, parse_target

    post = model.idata["posterior"]
    take = np.arange(post.sizes["chain"] * post.sizes["draw"])
    return weighted_hdi_width(target_draws(model, parse_target(target), take)[:, 0])


def nearest(runs, V, F):
    return min(runs, key=lambda r: (abs(r[0] - V), abs(np.log(r[1] / F))))


def pick(pool, values):
    """The superset run nearest to each of ``values`` (doping targets -> potentials via the superset order)."""
    pots = sorted({v for v, _ in pool})
    # superset potentials in the order of SUPERSET_NE (more negative = more electrons)
    by_ne = dict(zip(SUPERSET_NE, sorted(pots, reverse=True)))
    return [by_ne[x] for x in values]


def start_runs(pool):
    fl = sorted({f for _, f in pool})
    by_n = dict(zip(SUPERSET_N, fl))
    return {(v, by_n[n]) for v in pick(pool, START_NE) for n in START_N}


def coarse_start(out, seed, film=None):
    """The seed's superset folder, all its runs, and the coarse start (2 potentials x 3 fluences)."""
    sup = superset(out, seed, film)
    pool = runs_of(sup)
    return sup, pool, start_runs(pool)


def design_on(model, pool, measured, n, seed, target=TARGET):
    """The next ``n`` runs by the design: its greedy batch, then its single-run ranking, skipping measured runs
    (a repeat of a measured run is a real option in the lab, but a campaign folder cannot hold one twice)."""
    from bayesgain.design import design

    V = np.array(sorted({v for v, _ in pool}))
    F = np.array(sorted({f for _, f in pool}))
    r = design(model, target, potentials=V, fluences=F, n=n + 3, seed=seed)
    Vc, Fc = r.candidates.potentials_V, r.candidates.fluences_photons_cm2
    ranked = [(Vc[p], Fc[f]) for p, f in r.batch] + [(x["potential_V"], x["fluence_photons_cm2"]) for x in r.rows()]
    add = []
    for x in ranked:
        run = nearest(pool, *x)
        if run not in measured and run not in add:
            add.append(run)
        if len(add) == n:
            break
    return add


def refit_study(args):
    from bayesgain.design import design

    out = args.out
    rows = []
    for seed in args.seeds:
        sup, pool, start = coarse_start(out, seed, args.film)
        base = fit(campaign_folder(sup, start, out / f"refit-seed{seed}-start"), args, seed)
        V = np.array(sorted({v for v, _ in pool}))
        F = np.array(sorted({f for _, f in pool}))
        fitted = {}  # run -> refit (two targets may pick the same run)
        for target in args.target:
            r = design(base, target, potentials=V, fluences=F, n=1, seed=seed)
            ranked = [row for row in r.rows() if (row["potential_V"], row["fluence_photons_cm2"]) not in start]
            for label, row in (("best", ranked[0]), ("median", ranked[len(ranked) // 2]), ("worst", ranked[-1])):
                run = nearest(pool, row["potential_V"], row["fluence_photons_cm2"])
                if run not in fitted:
                    fitted[run] = fit(campaign_folder(sup, start | {run}, out / f"refit-seed{seed}-{run[0]:.3f}V-"
                                                      f"{run[1]:.3g}"), args, seed)
                m = fitted[run]
                conv = m.convergence
                rows.append(dict(seed=seed, target=target, candidate=label, potential_V=run[0],
                                 fluence_photons_cm2=run[1], current=r.current_width,
                                 expected=row["expected_hdi_width_after"], realised=width_now(m, target),
                                 converged=bool(conv.ok), start_converged=bool(base.convergence.ok),
                                 convergence=conv.text(), start_convergence=base.convergence.text()))
                print(rows[-1], flush=True)
                _write(out / "refit.csv", rows, quiet=True)  # after every refit: a long run can be stopped
    _write(out / "refit.csv", rows)
    for target in args.target:
        for label in ("best", "median", "worst"):
            sel = [x for x in rows if x["candidate"] == label and x["target"] == target]
            print(f"{target} {label:>6}: current {np.mean([x['current'] for x in sel]):.4g}, expected "
                  f"{np.mean([x['expected'] for x in sel]):.4g}, realised {np.mean([x['realised'] for x in sel]):.4g} "
                  f"(mean of {len(sel)} seeds)")


def value_study(args):
    out = args.out
    target = args.target[0]
    rows = []
    for seed in args.seeds:
        sup, pool, start = coarse_start(out, seed, args.film)
        fl = sorted({f for _, f in pool})
        # the paper's grid filled evenly: each fluence (interleaved low/high) at all six potentials in turn, so
        # every prefix of the queue is as close to a uniform grid as its length allows (the strong baseline; a
        # lab's potential-by-potential order would be a weaker one)
        uniform = [(v, fl[i]) for i in (0, 4, 8, 2, 6, 1, 5, 3, 7) for v in pick(pool, PAPER_NE)]
        start_fit = None
        for arm in ("design", "uniform"):
            measured = set(start)
            queue = [r for r in uniform if r not in measured]
            for rnd in range(args.rounds + 1):
                if rnd == 0 and start_fit is not None:
                    m = start_fit  # both arms start from the same runs and seed: the same fit, bit for bit
                else:
                    m = fit(campaign_folder(sup, measured, out / f"value-seed{seed}-{arm}"), args, seed)
                    if rnd == 0:
                        start_fit = m
                rows.append(dict(seed=seed, arm=arm, target=target, runs=len(measured), width=width_now(m, target),
                                 converged=bool(m.convergence.ok), convergence=m.convergence.text()))
                print(rows[-1], flush=True)
                _write(out / "value.csv", rows, quiet=True)
                if rnd == args.rounds:
                    break
                if arm == "uniform":
                    add = queue[:args.batch]
                    queue = queue[args.batch:]
                else:
                    add = design_on(m, pool, measured, args.batch, seed, target)
                measured |= set(add)
    _write(out / "value.csv", rows)
    _plot(rows, out / "value.png")
    print(runs_to_target_table(rows))


REDUCTIONS = (0.10, 0.15, 0.20, 0.25, 0.30, 0.40)


def runs_needed(curve, goal):
    """The fewest runs at which a campaign's width is at or below ``goal``; None if it never gets there."""
    return next((runs for runs, width in curve if width <= goal), None)


def runs_to_target_table(rows, reductions=REDUCTIONS):
    """Markdown: per seed and for the mean change over seeds, the runs each arm adds to the start to narrow the
    width by each of ``reductions`` against the start's (the issue's measure), and the share of runs the design
    saves.  "> B": not within the campaign's B runs (the share saved is then a lower bound, against B + 1)."""
    seeds = sorted({int(x["seed"]) for x in rows})
    curves = {}
    for seed in seeds:
        for arm in ("design", "uniform"):
            sel = sorted((int(x["runs"]), float(x["width"])) for x in rows if int(x["seed"]) == seed and x["arm"] == arm)
            # runs added to the start (what the campaign costs), width relative to the start's
            curves[seed, arm] = [(r - sel[0][0], w / sel[0][1]) for r, w in sel]
    for arm in ("design", "uniform"):  # the mean relative width over seeds, at the run counts all seeds share
        shared = sorted(set.intersection(*({r for r, _ in curves[s, arm]} for s in seeds)))
        curves["mean", arm] = [(r, float(np.mean([dict(curves[s, arm])[r] for s in seeds]))) for r in shared]
    budget = max(r for (_, _), c in curves.items() for r, _ in c)
    lines = ["| seed | " + " | ".join(f"-{f:.0%}: design / uniform" for f in reductions) + " |",
             "|---" * (len(reductions) + 1) + "|"]
    for seed in [*seeds, "mean"]:
        cells = []
        for f in reductions:
            d, u = (runs_needed(curves[seed, arm], 1 - f) for arm in ("design", "uniform"))
            cell = f"{d if d is not None else '>' + str(budget)} / {u if u is not None else '>' + str(budget)}"
            if d is not None and (u is None or u > d):
                cell += f" ({'>=' if u is None else ''}{1 - d / (u if u is not None else budget + 1):.0%} fewer)"
            cells.append(cell)
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(args):
    """The runs-to-target table and the figure from value CSVs already written (``--csv``), for ``--target``."""
    rows = []
    for path in args.csv:
        with open(path, newline="") as fh:
            rows += [x for x in csv.DictReader(fh) if x.get("target", TARGET) == args.target[0]]
    if not rows:
        raise SystemExit(f"no rows for target {args.target[0]} in {', '.join(map(str, args.csv))}")
    for x in rows:
        x["seed"], x["runs"], x["width"] = int(x["seed"]), int(x["runs"]), float(x["width"])
    print(runs_to_target_table(rows))
    _plot(rows, args.out / "value.png")


def _write(path, rows, quiet=False):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    if not quiet:
        print(f"wrote {path}")


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for arm, colour in (("design", "C0"), ("uniform", "C1")):
        for seed in sorted({x["seed"] for x in rows}):
            sel = [x for x in rows if x["arm"] == arm and x["seed"] == seed]
            ax.plot([x["runs"] for x in sel], [x["width"] for x in sel], "o-", color=colour, alpha=0.7,
                    label=arm if seed == rows[0]["seed"] else None)
    ax.set_xlabel("film TA runs")
    target = rows[0].get("target", TARGET)
    unit = {"threshold-fluence": " (photons/cm^2)", "tau_xx": " (ps)", "threshold-at": " (excitons/QD)"}
    unit = next((u for k, u in unit.items() if target.startswith(k)), "")
    ax.set_ylabel("94 % HDI width, " + ("<N_gain> at <n_e> = 1" if target == TARGET else target) + unit)
    ax.set_yscale("log")
    ax.legend()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study", choices=["refit", "value", "summary"])
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=6, help="design rounds after the start (value study)")
    ap.add_argument("--batch", type=int, default=3, help="runs added per round (value study)")
    ap.add_argument("--target", nargs="+", default=[TARGET],
                    help="design target(s) of the refit study; the value study uses the first (default: the issue's)")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--csv", type=pathlib.Path, nargs="+", help="value CSVs to summarise (summary)")
    ap.add_argument("--film", action="append", default=[], metavar="KEY=VALUE",
                    help="simulator override of the batch-a preset (repeatable), e.g. V_C_V=0.06 sigma_1S_V=0.04")
    ap.add_argument("--spec", default="joint", help="model fitted: a shipped name or a model TOML (default joint)")
    args = ap.parse_args(argv)
    args.film = {k: float(v) for k, v in (kv.split("=", 1) for kv in args.film)}
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    {"refit": refit_study, "value": value_study, "summary": summary}[args.study](args)
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
