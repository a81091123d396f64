"""Command line: ``bayesgain demo | check | simulate | classic`` (fit commands arrive with the model issue).

Exit status: 0 success, 1 invalid input (the message names the file and field), 2 usage error
(argparse), 3 a fit that did not converge under ``--strict``.
"""

import argparse
import sys


def _demo(args):
    from . import demo

    ok = demo.run(args.out, draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed,
                  progress=not args.quiet)
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


def build_parser():
    parser = argparse.ArgumentParser(prog="bayesgain", description="Bayesian analysis of optical gain in doped QD films")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="fit the demo (synthetic SEC charging -> gain threshold) and print the results")
    d.add_argument("--out", default="bayesgain-demo", help="output folder (default: ./bayesgain-demo)")
    d.add_argument("--draws", type=int, default=1000, help="posterior draws per chain (default 1000)")
    d.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (default 1000)")
    d.add_argument("--chains", type=int, default=2, help="chains (default 2)")
    d.add_argument("--seed", type=int, default=1, help="random seed: same seed, same posterior (default 1)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.add_argument("--strict", action="store_true", help="exit with status 3 when the fit did not converge")
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
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
