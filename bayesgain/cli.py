"""Command line: ``bayesgain demo | check | simulate | classic | fit | study | compare | report | design``.

Exit status: 0 success, 1 invalid input (the message names the file and field), 2 usage error
(argparse), 3 a fit that did not converge under ``--strict``, 130 interrupted (Ctrl-C).

Every command checks all of its input before it creates its output folder, writes that folder under a
lock (:mod:`bayesgain.safety.outfolder`) and stops cleanly on Ctrl-C (:mod:`bayesgain.safety.interrupt`).
"""

import argparse
import csv
import os
import pathlib
import sys
import warnings

from .safety import (EXIT_INTERRUPTED, OutputFolder, OutputFolderError, damage_reason, interruptible, is_interrupt,
                     output_file_problem, output_problem, raise_if_interrupted, stale_temporaries)


class Refused(Exception):
    """A one-line refusal: the message names the file or option and says what to do."""


def _say_notes(folder):
    for note in folder.notes:
        print(f"note: {note}", file=sys.stderr)


def _refuse_out(out, force):
    problem = output_problem(out, force)
    if problem:
        raise Refused(problem)


def _demo(args):
    from . import demo

    if args.dry_run:
        return 0 if demo.dry_run() else 1
    _refuse_out(args.out, True)  # the demo replaces files of the same names (its documented behaviour)
    with OutputFolder(args.out, force=True) as folder:
        _say_notes(folder)
        ok = demo.run(args.out, draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed,
                      progress=not args.quiet, figures=not args.no_figures, backend=args.backend)
        raise_if_interrupted()
    return 0 if ok or not args.strict else 3


def _check(args):
    from .io import check_experiment

    problem = output_problem(args.figures, True, option="--figures") if args.figures else None
    if problem:  # chirp.png is replaced, nothing else there is touched
        raise Refused(problem)
    report = check_experiment(args.folder)
    print(report.text)
    if args.figures and report.ok:
        from .chirp_figure import write_chirp_figure

        with OutputFolder(args.figures, force=True, option="--figures") as folder:
            _say_notes(folder)
            path = write_chirp_figure(report.tree, folder.path)
        print(f"wrote {path}" if path else f"no chirp correction in {args.folder}; no figure written")
    return 0 if report.ok else 1


def _simulate(args):
    from .safety import remove_simulated
    from .simulate import simulate_experiment

    _refuse_out(args.out, True)
    out = pathlib.Path(args.out)
    if out.is_dir() and not args.force and output_problem(out, False):
        raise Refused(f"output folder {out} exists and is not empty; use --force to replace a previous synthetic "
                      "experiment there (only the files it wrote are removed; a real experiment is never touched)")
    with OutputFolder(out, force=True) as folder:
        _say_notes(folder)
        removed = remove_simulated(out) if args.force else []
        if removed:
            print(f"removed {len(removed)} file(s) of the previous synthetic experiment in {out}")
        if args.scenario:
            from .scenarios import simulate_scenario

            path = simulate_scenario(args.scenario, out, seed=args.seed, overwrite=True)
        else:
            path = simulate_experiment(out, preset=args.preset, seed=args.seed, overwrite=True)
    what = f"scenario '{args.scenario}'" if args.scenario else f"'{args.preset}'"
    print(f"wrote SYNTHETIC experiment {what} (seed {args.seed}) to {path}; true parameters in "
          f"{path / 'truth.toml'}")
    return 0


def _delays_arg(text):
    """'5' -> 5.0; '1,3' -> (1.0, 3.0) (argparse type of --threshold-delay)."""
    try:
        vals = [float(x) for x in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) == 1 and vals[0] > 0:
        return vals[0]
    if len(vals) == 2 and 0 <= vals[0] <= vals[1]:
        return tuple(vals)
    raise argparse.ArgumentTypeError(f"expected a delay in ps (e.g. 5) or a range LO,HI (e.g. 1,3), got {text!r}")


def _load(folder):
    """load_experiment with its problems as a refusal."""
    from .io import ExperimentError, load_experiment

    try:
        return load_experiment(folder)
    except ExperimentError as exc:
        raise Refused(str(exc)) from None


def _classic(args):
    from .classic import classic_analysis

    _refuse_out(args.out, args.force)
    tree = _load(args.folder)
    if tree.attrs.get("synthetic"):
        print(f"note: {args.folder} is a SYNTHETIC experiment (truth.toml beside it)")
    try:
        rows = classic_analysis(tree, threshold_delays_ps=args.threshold_delay)
    except (ValueError, ArithmeticError) as exc:
        raise Refused(f"{args.folder}: the classic analysis cannot run on this experiment ({exc}); check the probe "
                      "range of its files and the [analysis] windows in its experiment.toml") from None
    with OutputFolder(args.out, args.force) as folder:
        _say_notes(folder)
        return _classic_write(args, tree, rows, folder.path)


def _classic_write(args, tree, rows, out):
    import math

    from .classic import write_classic_csv

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
        from .classic.figures import write_classic_figures

        for path in write_classic_figures(tree, out, threshold_delays_ps=args.threshold_delay):
            print(f"wrote {path}")
    return 0


# ----------------------------------------------------------------------------- Bayesian fits
FIT_FILES = ("posterior.nc", "summary.csv", "thresholds.csv", "report.md")


def _load_spec_arg(model):
    from .model.spec import SpecError, load_spec

    try:
        return load_spec(model)
    except SpecError as exc:
        raise Refused(f"--model: {exc}") from None


def _check_folders(folders):
    """Every FOLDER exists, and no experiment is given twice (same resolved folder or identical manifest)."""
    from .safety.containment import repeated_folders

    for folder in folders:
        p = pathlib.Path(folder)
        if not (p.is_dir() or (p.name == "experiment.toml" and p.is_file())):
            raise Refused(f"experiment folder {folder} does not exist (or is not a folder); expected a folder "
                          "holding experiment.toml")
    for folder, earlier, how in repeated_folders(folders):
        raise Refused(f"experiment folder {folder} {how} {earlier}; expected each experiment once")


def _fit(args):
    import time

    from .io import ExperimentError
    from .model.spec import SpecError

    if args.sampler != "nutpie" and args.backend != "numba":
        raise Refused(f"--backend {args.backend} applies to --sampler nutpie only")
    _check_folders(args.folders)
    spec = _load_spec_arg(args.model)
    _refuse_out(args.out, args.force)
    from .model.core import GainModel
    from .report import write_fit_outputs

    say = (lambda s: None) if args.quiet else print
    t0 = time.time()
    try:
        model = GainModel(spec, list(args.folders))
        model.build()
    except (ExperimentError, SpecError, ValueError, KeyError) as exc:
        raise Refused(f"invalid input: {exc}") from None
    with OutputFolder(args.out, args.force) as folder:
        _say_notes(folder)
        return _fit_write(args, spec, model, folder.path, say, t0, write_fit_outputs)


def _fit_write(args, spec, model, out, say, t0, write_fit_outputs):
    import time

    synthetic = bool((model.data["experiment_synthetic"].values > 0).any())
    say(f"model '{spec.name}' ({', '.join(model.observed_names)}) on {', '.join(map(str, model.names))}"
        + (" -- SYNTHETIC data" if synthetic else ""))
    for note in model.component_notes:
        say(f"note: {note}")
    how = f"{args.sampler} ({args.backend})" if args.sampler == "nutpie" else args.sampler
    wait = "this can take minutes" if args.backend == "numba" else "seconds"
    say(f"sampling {args.chains} chains x {args.draws} draws after {args.tune} tuning steps with {how} "
        f"(compiling first: {wait})")
    model.fit(**_fit_options(args))
    raise_if_interrupted()  # nutpie returns the draws so far on Ctrl-C: never write those as a fit
    say(f"fitted in {time.time() - t0:.1f} s")
    classic_from = args.folders[0] if (not args.no_classic and len(args.folders) == 1) else None
    _report_failures(write_fit_outputs(model, out, classic_from, not args.no_figures, say))
    print(model.convergence.text())
    if not model.convergence.ok:
        written = [n for n in ("thresholds.csv", "summary.csv", "report.md") if (out / n).exists()]
        print(f"the results in {', '.join(written) or 'posterior.nc'} are NOT FINAL"
              + (" (marked so)" if written else ""))
    return 3 if (args.strict and not model.convergence.ok) else 0


def _fit_options(args):
    """``GainModel.fit``'s keywords from ``bayesgain fit``'s arguments (the fit's own defaults where not given)."""
    return dict(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed, sampler=args.sampler,
                progress=not args.quiet, max_treedepth=args.max_treedepth, starts=args.starts, backend=args.backend,
                **({} if args.target_accept is None else {"target_accept": args.target_accept}),
                **({"whiten": True} if args.whiten else {}))


def _report_failures(result):
    """Print the figures that failed (they are recorded in report.md too); returns ``result``."""
    for k, v in result["figures"].items():
        if v.startswith("FAILED"):
            print(f"figure {k} {v} (recorded in report.md)", file=sys.stderr)
    return result


def _fit_path(d):
    d = pathlib.Path(d)
    path = d / "posterior.nc" if d.is_dir() else d
    if not path.is_file():
        left = stale_temporaries(path.parent)
        why = (f"; {', '.join(p.name for p in left)} is a temporary file left by an interrupted run (delete it and "
               "rerun `bayesgain fit`)") if left else ""
        if path.exists():
            raise Refused(f"{path} is not a file; expected a saved fit posterior.nc")
        raise Refused(f"no saved fit {path}{why or f' (run `bayesgain fit ... --out {d}` first)'}")
    return path


def _open_fit(path):
    """GainModel.load with every way a file can be damaged said in one line."""
    from .model.core import GainModel

    try:
        return GainModel.load(path)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 -- h5py, xarray, TOML and spec errors alike mean a damaged file
        raise Refused(f"corrupt or incomplete fit file {path} ({damage_reason(exc, path)}); "
                      "rerun `bayesgain fit` to make it again") from None


def _read_classic(path):
    from .report import read_classic_csv

    try:
        return read_classic_csv(path)
    except (UnicodeDecodeError, ValueError, OSError, csv.Error) as exc:
        why = str(exc).removeprefix(f"{path}: ")  # the reader names the file; said once here
        raise Refused(f"corrupt or incomplete fit file {path} ({type(exc).__name__}: {why[:120]}); delete it "
                      "or rerun `bayesgain classic`") from None


def _report(args):
    from .report import write_report

    path = _fit_path(args.dir)
    out = path.parent
    classic_path = out / "classic.csv"
    classic = _read_classic(classic_path) if classic_path.exists() else None  # cheap: refuse before the fit loads
    model = _open_fit(path)
    say = (lambda s: None) if args.quiet else print
    with OutputFolder(out, force=True, option="DIR") as folder:
        _say_notes(folder)
        _report_failures(write_report(model, out, classic=classic, figures=not args.no_figures, log=say))
    print(model.convergence.text() if model.convergence is not None else "no convergence report")
    return 3 if (args.strict and not (model.convergence and model.convergence.ok)) else 0


def _draws(m):
    post = m.idata["posterior"] if "posterior" in m.idata else None
    return int(post.sizes.get("chain", 1) * post.sizes.get("draw", 0)) if post is not None else 0


def _compare(args):
    from .model.comparison import compare

    if len(args.dirs) < 2:
        raise Refused("needs at least two fit folders")
    if args.out:
        problem = output_file_problem(args.out, args.force)
        if problem:
            raise Refused(problem)
    fits = {}
    for d in args.dirs:
        path = _fit_path(d)
        m = _open_fit(path)
        name = m.spec.name
        label = name if name not in fits else f"{name} ({pathlib.Path(d).name})"
        k = 2
        while label in fits:
            label = f"{name} ({pathlib.Path(d).name}) #{k}"
            k += 1
        fits[label] = m
    for label, m in fits.items():
        if m.convergence is not None and not m.convergence.ok:
            print(f"warning: fit '{label}' did NOT converge; its comparison is not final")
    comps = [c.strip() for c in args.components.split(",") if c.strip()] if args.components else None
    try:
        table, verdict = compare(fits, components=comps)
    except ValueError as exc:
        if "n_draws_tail" in str(exc) or "tail" in str(exc).lower():
            have = ", ".join(f"'{k}' {_draws(m)}" for k, m in fits.items())
            raise Refused(f"PSIS-LOO needs at least {LOO_MIN_DRAWS} posterior draws (chains x draws) per fit; the "
                          f"fits have {have}: refit with more --draws") from None
        raise Refused(str(exc)) from None
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.to_string())
    print()
    print(verdict)
    if args.out:
        from ._atomic import atomic_path

        target = pathlib.Path(args.out)
        problem = output_file_problem(target, args.force)  # again: it may have appeared meanwhile
        if problem:
            raise Refused(problem)
        with atomic_path(target, create_parent=False) as tmp:
            table.to_csv(tmp)
        print(f"wrote {target}")
    return 0


def _design(args):
    from .design import DesignError, parse_target, write_design
    from .design import design as run_design

    try:
        parse_target(args.target, g_e=None)  # spelling first: refuse before the fit is opened
    except DesignError as exc:
        raise Refused(str(exc)) from None
    path = _fit_path(args.dir)
    _refuse_out(args.out, args.force)
    model = _open_fit(path)
    if model.convergence is not None and not model.convergence.ok:
        print(f"warning: the fit in {path} did NOT converge; the design is not final")
    try:
        result = run_design(model, args.target, potentials=args.potentials, fluences=args.fluences, n=args.n,
                            max_draws=args.max_draws, seed=args.seed)
    except DesignError as exc:
        raise Refused(str(exc)) from None
    with OutputFolder(args.out, args.force) as folder:
        _say_notes(folder)
        for p in write_design(result, folder.path, figure=not args.no_figures):
            print(f"wrote {p}")
    V, F = result.candidates.potentials_V, result.candidates.fluences_photons_cm2
    print(f"{result.target.name}: 94 % HDI now {result.current_width:#.4g} {result.target.unit}; next runs "
          + ", ".join(f"{V[p]:.3f} V x {F[f]:.3g} photons/cm^2" for p, f in result.batch)
          + (f" -> expected {result.batch_widths[-1]:#.4g} {result.target.unit}" if result.batch_widths else "")
          + f" ({result.seconds:.0f} s)")
    if result.limited_by:
        print(f"note: {result.limited_by}")
    return 0


# PSIS fits a generalised Pareto to the largest min(S/5, 3 sqrt(S)) ratios and needs >= 5 of them: S >= 25
LOO_MIN_DRAWS = 25


def _study(args):
    from . import study
    from .io import ExperimentError
    from .model.spec import SpecError

    if args.scheduler and args.workers:
        raise Refused("--workers sets the size of the local cluster; with --scheduler the scheduler's workers run "
                      "the fits: give one of the two")
    _check_folders(args.folders)
    spec = _load_spec_arg(args.model)
    _refuse_out(args.out, True)
    out = pathlib.Path(args.out)
    if not args.force and output_problem(out, False) and not (out / "films").is_dir():
        raise Refused(f"output folder {out} exists, is not empty and holds no study (no films/ folder); choose "
                      "another --out or use --force to write into it")
    from .model.core import GainModel

    films = study.plan_films(args.folders, out)
    for film in films:  # every film's data checked before any fit starts
        try:
            GainModel(spec, [str(film.folder)], names=[film.name])
        except (ExperimentError, SpecError, ValueError, KeyError) as exc:
            lines = [x.strip().lstrip("- ") for x in str(exc).splitlines() if x.strip()]  # one line per refusal
            raise Refused(f"invalid input: {'; '.join(lines)}") from None
    try:
        client = study.connect(args.scheduler, args.workers)
    except study.StudyError as exc:
        raise Refused(str(exc)) from None
    say = (lambda s: None) if args.quiet else print
    fit_kw = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": args.seed}
    try:
        with OutputFolder(out, force=True) as folder:
            _say_notes(folder)
            result = study.run_study(films, out, spec, fit_kw, pooled=args.pooled, client=client, say=say)
            raise_if_interrupted()
    finally:
        study.close(client)
    for path in result["files"]:
        print(f"wrote {path}")
    if result["failed"]:
        print(f"{len(result['failed'])} fit(s) FAILED: {', '.join(result['failed'])} (see study.md); rerun the same "
              "command to retry them", file=sys.stderr)
        return 1
    bad = [r["name"] for r in result["rows"] if not r["converged"]]
    if bad:
        print(f"NOT CONVERGED: {', '.join(dict.fromkeys(bad))}; their numbers in study.csv are not final")
    return 3 if (args.strict and bad) else 0


def _count(low, high=None, what="a count"):
    """argparse type: an integer in [low, high] (checked before anything runs)."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} (an integer), got {text!r}") from None
        if v < low or (high is not None and v > high):
            rng = f">= {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"expected {what} {rng}, got {v}")
        return v
    return parse


_SEED = _count(0, 2**32 - 1, "a seed")


def _acceptance(text):
    """argparse type: a NUTS target acceptance probability, strictly between 0 and 1."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability (a number), got {text!r}") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability strictly between 0 and 1, got {v}")
    return v


class _ListPriors(argparse.Action):
    """``--list-priors``: print every parameter's default prior, unit and meaning, then exit."""

    def __init__(self, option_strings, dest, **kw):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            print(list_priors_text())
        except BrokenPipeError:  # `bayesgain fit --list-priors | head`
            sys.stdout = open(os.devnull, "w")
        parser.exit(0)


def list_priors_text():
    from .model.spec import DEFAULT_PRIORS

    lines = ["default priors (override them in a model file's [priors] table):", ""]
    for name, p in DEFAULT_PRIORS.items():
        args = ", ".join(f"{k} = {v:.6g}" for k, v in p.items() if k not in ("dist", "unit", "doc", "component"))
        lines.append(f"{name:<30} {p['dist']}({args})  [{p['unit']}]")
        lines.append(f"{'':<30} {p['doc']} (used with: {p['component'].replace('|', ', ')})")
    return "\n".join(lines)


def _backend_option(parser):
    parser.add_argument("--backend", default="numba", choices=["numba", "jax"],
                        help="how nutpie compiles the model: numba (default: samples ~1.5x faster; a first "
                             "compile of ~2 min for the joint model, cached for later runs) or jax (optional, pip "
                             "install 'bayesgain[jax]': compiles in seconds, samples at ~2/3 of the speed)")


def build_parser():
    parser = argparse.ArgumentParser(prog="bayesgain", description="Bayesian analysis of optical gain in doped QD films")
    sub = parser.add_subparsers(dest="command", required=True)
    # the order here is the order of `bayesgain --help`
    for add in (_add_demo, _add_check, _add_simulate, _add_classic, _add_fit, _add_study, _add_report, _add_compare,
                _add_design):
        add(sub)
    return parser


def _add_demo(sub):
    """``demo``: fit the shipped SYNTHETIC experiment (or check the installation with --dry-run)."""
    d = sub.add_parser("demo", help="fit the joint model to the shipped SYNTHETIC experiment and write its report",
                       description="Fit models/joint.toml to data/synthetic-batch-a (SYNTHETIC) with nutpie and write "
                                   "report.md, summary.csv, thresholds.csv, classic.csv, posterior.nc and the figures "
                                   "to --out (files of the same names are replaced).")
    d.add_argument("--out", default="bayesgain-demo", help="output folder (default: ./bayesgain-demo)")
    d.add_argument("--draws", type=_count(1), default=1000, help="posterior draws per chain (default 1000)")
    d.add_argument("--tune", type=_count(0), default=1000, help="tuning steps per chain (default 1000)")
    d.add_argument("--no-figures", action="store_true", help="write the tables and report.md without PNG figures")
    d.add_argument("--chains", type=_count(1, 64), default=4, help="chains (default 4: R-hat compares four)")
    d.add_argument("--seed", type=_SEED, default=1, help="random seed: same seed, same posterior (default 1)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    _backend_option(d)
    d.add_argument("--strict", action="store_true", help="exit with status 3 when the fit did not converge")
    d.add_argument("--dry-run", action="store_true",
                   help="check the installation in about a minute instead: validate the shipped demo data, build "
                        "every shipped model on it and evaluate its log density and gradient at the initial point "
                        "(no sampling, nothing written; exit 1 on a problem)")
    d.set_defaults(func=_demo)


def _add_check(sub):
    """``check``: validate an experiment folder."""
    c = sub.add_parser("check", help="validate an experiment folder and print a report (exit 1 on problems)")
    c.add_argument("folder", help="folder holding experiment.toml (or the path of experiment.toml)")
    c.add_argument("--figures", metavar="DIR",
                   help="also write chirp.png there: the chirp t0(lambda) on the uncorrected TA map (when a TA "
                        "entry has a chirp correction)")
    c.set_defaults(func=_check)


def _add_simulate(sub):
    """``simulate``: write a SYNTHETIC experiment folder."""
    from .scenarios import scenario_names
    from .simulate import PRESETS

    s = sub.add_parser("simulate", help="write a SYNTHETIC experiment folder with its truth.toml")
    s.add_argument("--out", required=True, help="output folder (must not exist or be empty unless --force)")
    s.add_argument("--seed", type=_SEED, default=0, help="random seed; the same seed gives byte-identical files")
    s.add_argument("--preset", default="batch-a", choices=sorted(PRESETS),
                   help="parameter set: batch-a (paper's main batch), batch-b (low-PLQY, hole trapping)")
    s.add_argument("--scenario", choices=scenario_names(),
                   help="a named mismatch scenario (docs/mismatch-scenarios.md); replaces --preset")
    s.add_argument("--force", action="store_true", help="replace a previous synthetic experiment in --out")
    s.set_defaults(func=_simulate)


def _add_classic(sub):
    """``classic``: the paper's own analysis."""
    k = sub.add_parser("classic", help="the paper's own analysis (point estimates + uncertainties) -> classic.csv")
    k.add_argument("folder", help="experiment folder (experiment.toml)")
    k.add_argument("--out", required=True, help="output folder for classic.csv (not overwritten without --force)")
    k.add_argument("--force", action="store_true", help="write into an existing non-empty --out")
    k.add_argument("--no-figures", action="store_true",
                   help="skip the PNG figures (gain maps, threshold fits, charging fit, kinetics, cross-section)")
    k.add_argument("--threshold-delay", type=_delays_arg, default=5.0, metavar="PS",
                   help="read the gain thresholds at this delay (nearest measured, default 5 ps, after "
                        "thermalisation, as the paper) or averaged over a range LO,HI (e.g. 1,3)")
    k.set_defaults(func=_classic)


def _add_fit(sub):
    """``fit``: the Bayesian fit of one or more experiment folders."""
    models = _shipped_models()
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
    f.add_argument("--draws", type=_count(1), default=1000, help="posterior draws per chain (count; default 1000)")
    f.add_argument("--tune", type=_count(0), default=1000, help="tuning (warm-up) steps per chain (count; default 1000)")
    f.add_argument("--chains", type=_count(1, 64), default=4,
                   help="independent chains (count; default 4; at least 2 to check R-hat)")
    f.add_argument("--seed", type=_SEED, default=0, help="random seed (integer): same seed, same posterior (default 0)")
    f.add_argument("--sampler", default="nutpie", choices=["nutpie", "pymc"],
                   help="NUTS implementation: nutpie (default; compiled as --backend says) or pymc (PyMC's own NUTS)")
    _backend_option(f)
    f.add_argument("--target-accept", type=_acceptance, default=None, metavar="P",
                   help="NUTS target acceptance (default: the fit's, see GainModel.fit); raise it (0.98) when a fit "
                        "reports divergences")
    f.add_argument("--max-treedepth", type=_count(1, 30, "a depth"), default=None, metavar="DEPTH",
                   help="cap each NUTS trajectory at 2^DEPTH gradient steps (count; default: the sampler's 10); "
                        "for quick looks with few tuning steps, not for final fits")
    f.add_argument("--starts", default="optimum", choices=["optimum", "checked", "jitter"],
                   help="where the nutpie chains start: optimum (default: where L-BFGS from each jittered point "
                        "ends; a climb ending > 20 nats below the best takes the best one's end), checked (the "
                        "jittered points, those draining into a worse basin replaced) or jitter (PyMC's points)")
    f.add_argument("--whiten", action="store_true",
                   help="sample coordinates whitened by the curvature at the best climbed start, each start moved ~1 "
                        "posterior sd from its climbed point: ~40 %% fewer warm-up gradients, not yet validated as "
                        "the default (docs/decisions/whitened-sampling.md)")
    f.add_argument("--force", action="store_true", help="write into an existing non-empty --out folder")
    f.add_argument("--strict", action="store_true",
                   help="exit with status 3 when the fit did not converge (R-hat > 1.01, bulk/tail ESS < 400 or "
                        "divergences); the files are written either way and say NOT CONVERGED")
    f.add_argument("--quiet", action="store_true", help="no progress bar and no per-file messages")
    f.add_argument("--no-figures", action="store_true", help="skip the PNG figures (tables and report.md only)")
    f.add_argument("--list-priors", action=_ListPriors,
                   help="print every parameter's default prior with its unit and meaning, then exit")
    f.add_argument("--no-classic", action="store_true",
                   help="skip the classic analysis (classic.csv and the Bayesian-versus-classic table)")
    f.set_defaults(func=_fit)


def _add_study(sub):
    """``study``: many films fitted through Dask."""
    models = _shipped_models()
    t = sub.add_parser(
        "study", help="fit many films through Dask (resumable) -> study.csv, study.png, study.md",
        description="Fit each experiment folder (one film each) on a Dask cluster -- a local one, or the scheduler "
                    "at --scheduler -- and, with --pooled, the partially pooled model of all of them.  Each fit is "
                    "saved as OUT/films/<name>/posterior.nc as it finishes; a rerun skips the fits already done "
                    "(an unreadable or incomplete one is fitted again).  Writes OUT/study.csv (per film: cross-"
                    "section, V_1S, sigma_1S, tau_XX and <N_gain> at <n_e> = 1, each median with its 94 % HDI, "
                    "convergence, the fit's path), study.png and study.md.  Exit status: 0 done, 1 invalid input "
                    "or a failed fit, 3 not converged with --strict.")
    t.add_argument("folders", nargs="+", metavar="FOLDER", help="experiment folders, one film each")
    t.add_argument("--out", required=True, help="study folder (created, or an earlier study's folder to resume)")
    t.add_argument("--scheduler", default=None, metavar="tcp://HOST:8786",
                   help="address of a running Dask scheduler (default: a local cluster on this machine); its workers "
                        "read the FOLDERs and write the fits into --out: use paths on a file system they share")
    t.add_argument("--workers", type=_count(1, 1024, "a number of workers"), default=None,
                   help="worker processes of the local cluster (default: the number of cores)")
    t.add_argument("--pooled", action="store_true",
                   help="also fit all films together with the model's [pooling] table (partial pooling)")
    t.add_argument("--model", default="joint",
                   help=f"model specification: a TOML file path or a shipped name ({models}); default joint")
    t.add_argument("--draws", type=_count(1), default=1000, help="posterior draws per chain (default 1000)")
    t.add_argument("--tune", type=_count(0), default=1000, help="tuning steps per chain (default 1000)")
    t.add_argument("--chains", type=_count(1, 64), default=4, help="chains per fit (default 4)")
    t.add_argument("--seed", type=_SEED, default=0, help="random seed of every fit (default 0)")
    t.add_argument("--force", action="store_true", help="write into an existing non-empty folder that holds no study")
    t.add_argument("--strict", action="store_true", help="exit with status 3 when a fit did not converge")
    t.add_argument("--quiet", action="store_true", help="no per-film progress lines")
    t.set_defaults(func=_study)


def _add_report(sub):
    """``report``: remake a saved fit's report."""
    r = sub.add_parser(
        "report", help="remake report.md, summary.csv, thresholds.csv and the figures from DIR/posterior.nc",
        description="Reopen a saved fit (DIR/posterior.nc) and regenerate its report and figures in DIR without "
                    "resampling (posterior predictive and prior draws are redrawn with seed 0).")
    r.add_argument("dir", metavar="DIR", help="folder written by `bayesgain fit` (or the path of its posterior.nc)")
    r.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    r.add_argument("--quiet", action="store_true", help="no per-file messages")
    r.add_argument("--strict", action="store_true", help="exit with status 3 when the saved fit did not converge")
    r.set_defaults(func=_report)


def _add_compare(sub):
    """``compare``: saved fits compared by PSIS-LOO."""
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


def _add_design(sub):
    """``design``: where to measure next."""
    g = sub.add_parser(
        "design", help="where to measure next: expected gain in a target's precision from each candidate film TA run",
        description="Reopen a saved fit (DIR/posterior.nc) and, for each candidate film TA run (potential x pump "
                    "fluence, recorded like the existing runs), estimate the expected width of the target's 94 % HDI "
                    "after adding it, by simulating the run for every posterior draw and re-weighting the draws "
                    "(no refit).  Writes OUT/design.csv (every candidate, best first), batch.csv (a greedy batch of "
                    "--n runs that accounts for their overlap), design.md and design.png.")
    g.add_argument("dir", metavar="FIT_DIR", help="folder written by `bayesgain fit` (or the path of its posterior.nc)")
    g.add_argument("--out", required=True, help="output folder (an existing non-empty folder is refused unless --force)")
    g.add_argument("--target", default="threshold-at-ne=1.0",
                   help="what to learn: threshold-at-ne=<x> (<N_gain> at <n_e> = x electrons/QD), "
                        "threshold-fluence-at-ne=<x> (the pump fluence at that threshold, photons/cm^2), "
                        "threshold-curve (mean width over <n_e> levels), tau_xx; default threshold-at-ne=1.0")
    g.add_argument("--potentials", default=None, metavar="V1:V2:STEP",
                   help="candidate potentials in V vs the reference electrode (START:STOP:STEP or a comma list), "
                        "inside the SEC sweeps; default: 25 mV steps around the measured film TA potentials")
    g.add_argument("--fluences", default=None, metavar="F1,F2,...",
                   help="candidate pump fluences in photons/cm^2 (comma list or START:STOP:STEP); default: those of "
                        "the existing film TA runs")
    g.add_argument("--n", type=_count(1, 50, "a number of runs"), default=5, help="runs in the batch (default 5)")
    g.add_argument("--max-draws", type=_count(50, 100000, "a number of draws"), default=600,
                   help="posterior draws used (thinned at random beyond; default 600)")
    g.add_argument("--seed", type=_SEED, default=0, help="seed of the simulated outcomes (default 0)")
    g.add_argument("--force", action="store_true", help="write into an existing non-empty output folder")
    g.add_argument("--no-figures", action="store_true", help="skip design.png")
    g.set_defaults(func=_design)


def _shipped_models():
    from .model.spec import available_models

    return ", ".join(available_models())


def main(argv=None):
    args = build_parser().parse_args(argv)
    prog = f"bayesgain {args.command}"
    stopped = f"{prog}: interrupted; temporary files removed, nothing half-written was kept"
    with interruptible(stopped), warnings.catch_warnings():
        # NaN diagnostics (e.g. R-hat of one chain) are reported in words; numpy's warning adds nothing
        warnings.filterwarnings("ignore", message="All-NaN slice encountered", category=RuntimeWarning)
        try:
            rc = args.func(args)
            raise_if_interrupted()
            return rc
        except (Refused, OutputFolderError) as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 1
        except BaseException as exc:
            if not is_interrupt(exc):
                if isinstance(exc, (SystemExit, GeneratorExit)) or os.environ.get("BAYESGAIN_DEBUG"):
                    raise
                # a bug, not bad input: one line, and the way to the traceback
                print(f"{prog}: internal error ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); please "
                      "report it (BAYESGAIN_DEBUG=1 shows the traceback)", file=sys.stderr)
                return 1
    print(stopped, file=sys.stderr)
    return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
