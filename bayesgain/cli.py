"""Command line: ``bayesgain demo | check | simulate | classic | fit | compare | report``.

Exit status: 0 success, 1 invalid input (the message names the file and field), 2 usage error
(argparse), 3 a fit that did not converge under ``--strict``.
"""

import argparse
import sys


def _demo(args):
    from . import demo

    if args.dry_run:
        return 0 if demo.dry_run() else 1
    ok = demo.run(args.out, draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed,
                  progress=not args.quiet, figures=not args.no_figures, backend=args.backend)
    return 0 if ok or not args.strict else 3


def _check(args):
    from .io import check_experiment

    report = check_experiment(args.folder)
    print(report.text)
    return 0 if report.ok else 1


def _simulate(args):
    from .simulate import simulate_experiment

    try:
        path = simulate_experiment(args.out, preset=args.preset, seed=args.seed, overwrite=args.force)
    except FileExistsError as exc:
        print(f"bayesgain simulate: {exc} (use --force to replace a previous synthetic experiment)", file=sys.stderr)
        return 1
    print(f"wrote SYNTHETIC experiment '{args.preset}' (seed {args.seed}) to {path}; true parameters in "
          f"{path / 'truth.toml'}")
    return 0


def _prepare_out(out, force):
    """Refuse to write into an existing non-empty folder unless --force (nothing the user has is overwritten)."""
    import pathlib

    out = pathlib.Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"output folder {out} exists and is not empty; use --force to write into it")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _classic(args):
    import math

    from .classic import classic_analysis, write_classic_csv
    from .io import ExperimentError, load_experiment

    try:
        out = _prepare_out(args.out, args.force)
        tree = load_experiment(args.folder)
    except (FileExistsError, ExperimentError) as exc:
        print(f"bayesgain classic: {exc}", file=sys.stderr)
        return 1
    if tree.attrs.get("synthetic"):
        print(f"note: {args.folder} is a SYNTHETIC experiment (truth.toml beside it)")
    rows = classic_analysis(tree)
    write_classic_csv(rows, out / "classic.csv")
    print(f"{'quantity':<44} {'value':>12} {'+-':>10}  unit")
    subgap = [r for r in rows if r["name"].startswith("subgap_residual")]
    for r in rows:
        if r in subgap:  # one line per potential x fluence: summarised below, all in classic.csv
            continue
        v, u = r["value"], r["uncertainty"]
        vs = f"{v:12.5g}" if isinstance(v, float) and not math.isnan(v) else f"{'--':>12}"
        us = f"{u:10.3g}" if isinstance(u, float) and not math.isnan(u) else f"{'':>10}"
        print(f"{r['name']:<44} {vs} {us}  {r['unit']}" + (f"   ({r['note']})" if r.get("note") else ""))
    if subgap:
        worst = max(r["value"] for r in subgap)
        print(f"sub-gap residual after reflection correction: at most {worst:.3g} OD over {len(subgap)} TA files")
    print(f"wrote {out / 'classic.csv'}")
    if not args.no_figures:
        from .classic_figures import write_classic_figures

        for path in write_classic_figures(tree, out):
            print(f"wrote {path}")
    return 0


# ----------------------------------------------------------------------------- Bayesian fits
FIT_FILES = ("posterior.nc", "summary.csv", "thresholds.csv", "report.md")


def _load_spec_arg(model):
    from .model.spec import load_spec

    return load_spec(model)


def _fit(args):
    import time

    from .io import ExperimentError
    from .model.spec import SpecError

    prog = "bayesgain fit"
    if args.sampler != "nutpie" and args.backend != "numba":
        print(f"{prog}: --backend {args.backend} applies to --sampler nutpie only", file=sys.stderr)
        return 1
    for folder in args.folders:
        import pathlib

        if not pathlib.Path(folder).exists():
            print(f"{prog}: experiment folder {folder} does not exist", file=sys.stderr)
            return 1
    try:
        spec = _load_spec_arg(args.model)
    except SpecError as exc:
        print(f"{prog}: --model: {exc}", file=sys.stderr)
        return 1
    import pathlib

    target = pathlib.Path(args.out)
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not args.force)):
        print(f"{prog}: output folder {target} exists and is not empty (or is a file); use --force to write into "
              "it (files of the same names are replaced)", file=sys.stderr)
        return 1
    from .model.core import GainModel
    from .report import write_fit_outputs

    say = (lambda s: None) if args.quiet else print
    t0 = time.time()
    try:
        model = GainModel(spec, list(args.folders))
        model.build()
    except (ExperimentError, SpecError, ValueError, KeyError) as exc:
        print(f"{prog}: invalid input: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    out = _prepare_out(target, True)
    synthetic = bool((model.data["experiment_synthetic"].values > 0).any())
    say(f"model '{spec.name}' ({', '.join(model.observed_names)}) on {', '.join(map(str, model.names))}"
        + (" -- SYNTHETIC data" if synthetic else ""))
    how = f"{args.sampler} ({args.backend})" if args.sampler == "nutpie" else args.sampler
    wait = "this can take minutes" if args.backend == "numba" else "seconds"
    say(f"sampling {args.chains} chains x {args.draws} draws after {args.tune} tuning steps with {how} "
        f"(compiling first: {wait})")
    model.fit(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed, sampler=args.sampler,
              progress=not args.quiet, max_treedepth=args.max_treedepth, starts=args.starts, backend=args.backend)
    say(f"fitted in {time.time() - t0:.1f} s")
    classic_from = args.folders[0] if (not args.no_classic and len(args.folders) == 1) else None
    _report_failures(write_fit_outputs(model, out, classic_from, not args.no_figures, say))
    print(model.convergence.text())
    if not model.convergence.ok:
        print("the thresholds in thresholds.csv and report.md are NOT FINAL (marked so in both)")
    return 3 if (args.strict and not model.convergence.ok) else 0


def _report_failures(result):
    """Print the figures that failed (they are recorded in report.md too); returns ``result``."""
    for k, v in result["figures"].items():
        if v.startswith("FAILED"):
            print(f"figure {k} {v} (recorded in report.md)", file=sys.stderr)
    return result


def _fit_path(d, prog):
    import pathlib

    d = pathlib.Path(d)
    path = d / "posterior.nc" if d.is_dir() else d
    if not path.exists():
        raise FileNotFoundError(f"{prog}: no saved fit {path} (run `bayesgain fit ... --out {d}` first)")
    return path


def _report(args):
    from .model.core import GainModel
    from .report import read_classic_csv, write_report

    prog = "bayesgain report"
    try:
        path = _fit_path(args.dir, prog)
        model = GainModel.load(path)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    out = path.parent
    classic_path = out / "classic.csv"
    rows = read_classic_csv(classic_path) if classic_path.exists() else None
    say = (lambda s: None) if args.quiet else print
    _report_failures(write_report(model, out, classic_rows=rows, figures=not args.no_figures, log=say))
    print(model.convergence.text() if model.convergence is not None else "no convergence report")
    return 3 if (args.strict and not (model.convergence and model.convergence.ok)) else 0


def _compare(args):
    import pathlib

    from .model.comparison import compare
    from .model.core import GainModel

    prog = "bayesgain compare"
    if len(args.dirs) < 2:
        print(f"{prog}: needs at least two fit folders", file=sys.stderr)
        return 1
    fits = {}
    try:
        for d in args.dirs:
            path = _fit_path(d, prog)
            m = GainModel.load(path)
            name = m.spec.name
            label = name if name not in fits else f"{name} ({pathlib.Path(d).name})"
            k = 2
            while label in fits:
                label = f"{name} ({pathlib.Path(d).name}) #{k}"
                k += 1
            fits[label] = m
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    for label, m in fits.items():
        if m.convergence is not None and not m.convergence.ok:
            print(f"warning: fit '{label}' did NOT converge; its comparison is not final")
    comps = [c.strip() for c in args.components.split(",") if c.strip()] if args.components else None
    try:
        table, verdict = compare(fits, components=comps)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.to_string())
    print()
    print(verdict)
    if args.out:
        from ._atomic import atomic_path

        target = pathlib.Path(args.out)
        if target.exists() and not args.force:
            print(f"{prog}: {target} exists; use --force to replace it", file=sys.stderr)
            return 1
        with atomic_path(target) as tmp:
            table.to_csv(tmp)
        print(f"wrote {target}")
    return 0


def _backend_option(parser):
    parser.add_argument("--backend", default="numba", choices=["numba", "jax"],
                        help="how nutpie compiles the model: numba (default: samples ~1.5x faster; a first "
                             "compile of ~2 min for the joint model, cached for later runs) or jax (optional, pip "
                             "install 'bayesgain[jax]': compiles in seconds, samples at ~2/3 of the speed)")


def build_parser():
    parser = argparse.ArgumentParser(prog="bayesgain", description="Bayesian analysis of optical gain in doped QD films")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="fit the joint model to the shipped SYNTHETIC experiment and write its report",
                       description="Fit models/joint.toml to data/synthetic-batch-a (SYNTHETIC) with nutpie and write "
                                   "report.md, summary.csv, thresholds.csv, classic.csv, posterior.nc and the figures "
                                   "to --out (files of the same names are replaced).")
    d.add_argument("--out", default="bayesgain-demo", help="output folder (default: ./bayesgain-demo)")
    d.add_argument("--draws", type=int, default=800, help="posterior draws per chain (default 800)")
    d.add_argument("--tune", type=int, default=500, help="tuning steps per chain (default 500)")
    d.add_argument("--no-figures", action="store_true", help="write the tables and report.md without PNG figures")
    d.add_argument("--chains", type=int, default=2, help="chains (default 2)")
    d.add_argument("--seed", type=int, default=1, help="random seed: same seed, same posterior (default 1)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    _backend_option(d)
    d.add_argument("--strict", action="store_true", help="exit with status 3 when the fit did not converge")
    d.add_argument("--dry-run", action="store_true",
                   help="check the installation in about a minute instead: validate the shipped demo data, build "
                        "every shipped model on it and evaluate its log density and gradient at the initial point "
                        "(no sampling, nothing written; exit 1 on a problem)")
    d.set_defaults(func=_demo)

    c = sub.add_parser("check", help="validate an experiment folder and print a report (exit 1 on problems)")
    c.add_argument("folder", help="folder holding experiment.toml (or the path of experiment.toml)")
    c.set_defaults(func=_check)

    from .simulate import PRESETS

    s = sub.add_parser("simulate", help="write a SYNTHETIC experiment folder with its truth.toml")
    s.add_argument("--out", required=True, help="output folder (must not exist or be empty unless --force)")
    s.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives byte-identical files")
    s.add_argument("--preset", default="batch-a", choices=sorted(PRESETS),
                   help="parameter set: batch-a (paper's main batch), batch-b (low-PLQY, hole trapping)")
    s.add_argument("--force", action="store_true", help="replace a previous synthetic experiment in --out")
    s.set_defaults(func=_simulate)

    k = sub.add_parser("classic", help="the paper's own analysis (point estimates + uncertainties) -> classic.csv")
    k.add_argument("folder", help="experiment folder (experiment.toml)")
    k.add_argument("--out", required=True, help="output folder for classic.csv (not overwritten without --force)")
    k.add_argument("--force", action="store_true", help="write into an existing non-empty --out")
    k.add_argument("--no-figures", action="store_true",
                   help="skip the PNG figures (gain maps, threshold fits, charging fit, kinetics, cross-section)")
    k.set_defaults(func=_classic)

    from .model.spec import available_models

    models = ", ".join(available_models())
    f = sub.add_parser(
        "fit", help="Bayesian fit of one or more experiment folders -> posterior.nc, summary.csv, thresholds.csv, "
                    "report.md, figures",
        description="Fit a model spec (models/*.toml) to one or more experiment folders with NUTS, then write "
                    "DIR/posterior.nc (the whole fit), summary.csv (parameters with units), thresholds.csv "
                    "(<N_gain> in excitons/QD versus <n_e> in electrons/QD: n_e, median, hdi_low, hdi_high), "
                    "report.md and PNG figures.  Exit status: 0 done, 1 invalid input, 3 not converged with "
                    "--strict.")
    f.add_argument("folders", nargs="+", metavar="FOLDER",
                   help="experiment folder(s) holding experiment.toml; several are fitted jointly (partial pooling)")
    f.add_argument("--model", default="joint",
                   help=f"model specification: a TOML file path or a shipped name ({models}); default joint")
    f.add_argument("--out", required=True,
                   help="output folder DIR (an existing non-empty folder is refused unless --force)")
    f.add_argument("--draws", type=int, default=1000, help="posterior draws per chain (count; default 1000)")
    f.add_argument("--tune", type=int, default=1000, help="tuning (warm-up) steps per chain (count; default 1000)")
    f.add_argument("--chains", type=int, default=4,
                   help="independent chains (count; default 4; at least 2 to check R-hat)")
    f.add_argument("--seed", type=int, default=0, help="random seed (integer): same seed, same posterior (default 0)")
    f.add_argument("--sampler", default="nutpie", choices=["nutpie", "pymc"],
                   help="NUTS implementation: nutpie (default; compiled as --backend says) or pymc (PyMC's own NUTS)")
    _backend_option(f)
    f.add_argument("--max-treedepth", type=int, default=None, metavar="DEPTH",
                   help="cap each NUTS trajectory at 2^DEPTH gradient steps (count; default: the sampler's 10); "
                        "for quick looks with few tuning steps, not for final fits")
    f.add_argument("--starts", default="optimum", choices=["optimum", "checked", "jitter"],
                   help="where the nutpie chains start: optimum (default: where L-BFGS from each jittered point "
                        "ends; a climb ending > 20 nats below the best takes the best one's end), checked (the "
                        "jittered points, those draining into a worse basin replaced) or jitter (PyMC's points)")
    f.add_argument("--force", action="store_true", help="write into an existing non-empty --out folder")
    f.add_argument("--strict", action="store_true",
                   help="exit with status 3 when the fit did not converge (R-hat > 1.01, bulk/tail ESS < 400 or "
                        "divergences); the files are written either way and say NOT CONVERGED")
    f.add_argument("--quiet", action="store_true", help="no progress bar and no per-file messages")
    f.add_argument("--no-figures", action="store_true", help="skip the PNG figures (tables and report.md only)")
    f.add_argument("--no-classic", action="store_true",
                   help="skip the classic analysis (classic.csv and the Bayesian-versus-classic table)")
    f.set_defaults(func=_fit)

    r = sub.add_parser(
        "report", help="remake report.md, summary.csv, thresholds.csv and the figures from DIR/posterior.nc",
        description="Reopen a saved fit (DIR/posterior.nc) and regenerate its report and figures in DIR without "
                    "resampling (posterior predictive and prior draws are redrawn with seed 0).")
    r.add_argument("dir", metavar="DIR", help="folder written by `bayesgain fit` (or the path of its posterior.nc)")
    r.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    r.add_argument("--quiet", action="store_true", help="no per-file messages")
    r.add_argument("--strict", action="store_true", help="exit with status 3 when the saved fit did not converge")
    r.set_defaults(func=_report)

    m = sub.add_parser(
        "compare", help="compare saved fits by PSIS-LOO (elpd differences, stacking weights, verdict)",
        description="Load DIR/posterior.nc of each fit and compare them by PSIS-LOO on the observed components "
                    "they share: elpd (log predictive density, nats) with standard errors, elpd differences, "
                    "stacking weights, share of Pareto k > 0.7, and a plain-language verdict.  Writes nothing "
                    "unless --out.")
    m.add_argument("dirs", nargs="+", metavar="DIR", help="folders written by `bayesgain fit` (two or more)")
    m.add_argument("--components", default=None,
                   help="comma-separated observed components to score (cross_section, charging, photoluminescence, "
                        "gain, dynamics, reflection); default: those every fit has")
    m.add_argument("--out", default=None, metavar="FILE.csv", help="also write the comparison table to this CSV file")
    m.add_argument("--force", action="store_true", help="replace an existing --out file")
    m.set_defaults(func=_compare)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
