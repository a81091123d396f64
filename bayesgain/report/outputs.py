"""What a fit leaves in its output folder: posterior.nc, classic.csv, the CSV tables, the figures and report.md,
each written atomically."""

from __future__ import annotations

import pathlib
import traceback

import matplotlib.pyplot as plt

from .._atomic import atomic_path, write_text_atomic
from ..classic.dataset import classic_dataset
from .cache import Skip, _Cache
from .common import _converged, _synthetic
from .figures import _FIGURE_FUNCS, fig_threshold, figure_files
from .markdown import _report_text
from .tables import _measured_csv_text, _summary, _threshold_csv_text


def write_fit_outputs(model, out_dir, classic_folder=None, figures=True, log=None):
    """Everything a fit leaves in ``out_dir``: posterior.nc, classic.csv (when ``classic_folder``, an
    experiment folder or its loaded DataTree, is given) and :func:`write_report`'s tables, report.md and figures --
    the one sequence that ``bayesgain fit``, ``bayesgain demo`` and the benchmark share.

    The classic analysis only feeds the side-by-side table: when it fails the reason is printed to
    stderr and the report is written without it.  Returns :func:`write_report`'s dict.
    """
    import sys

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = log or (lambda s: None)
    model.save(out / "posterior.nc", overwrite=True)
    say(f"wrote {out / 'posterior.nc'}")
    classic = None
    if classic_folder is not None:
        try:
            from ..classic import classic_results, write_classic_csv
            from ..io import load_experiment

            tree = classic_folder if hasattr(classic_folder, "children") else load_experiment(classic_folder)
            classic = classic_results(tree)
            write_classic_csv(classic, out / "classic.csv")
            say(f"wrote {out / 'classic.csv'} (classic analysis)")
        except Exception as exc:  # noqa: BLE001 -- the Bayesian report does not depend on it
            print(f"note: classic analysis of {classic_folder} failed ({type(exc).__name__}: {exc}); "
                  "report without it", file=sys.stderr)
            classic = None
    return write_report(model, out, classic=classic, figures=figures, log=log)


def write_report(model, out_dir, classic=None, figures=True, log=None):
    """Write summary.csv, thresholds.csv, report.md and the figures of a fitted model into ``out_dir``.

    ``classic``: the classic results (:func:`bayesgain.classic.classic_dataset`, or the rows of
    :func:`bayesgain.classic.classic_analysis`, turned into it) for the side-by-side table and the classic points
    of Fig. 5b.
    ``figures=False`` skips the PNGs.  ``log``: a callable given one line per file written (e.g. print).
    Returns a dict: ``files`` (paths written), ``figures`` ({name: "ok" | "skipped: ..." | "FAILED: ..."}),
    ``converged``, ``synthetic``.
    """
    if model.idata is None or "posterior" not in model.idata:
        raise ValueError("write_report needs a fitted model (fit() or GainModel.load())")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = log or (lambda s: None)
    files = []
    classic = None if classic is None else classic_dataset(classic)
    cache = _Cache(model)
    summary = _summary(model)
    with atomic_path(out / "summary.csv") as tmp:
        summary.to_csv(tmp)
    files.append(out / "summary.csv")
    say(f"wrote {out / 'summary.csv'}")
    thr_status = _write_thresholds(model, cache, out, say, files)
    status = _write_figures(model, cache, out, classic, say, files) if figures else {}
    text = _report_text(model, cache, summary, classic, status, thr_status, figures)
    write_text_atomic(out / "report.md", text)
    files.append(out / "report.md")
    say(f"wrote {out / 'report.md'}")
    return {"files": files, "figures": status, "converged": _converged(model), "synthetic": _synthetic(model)}


def _write_thresholds(model, cache, out, say, files):
    """thresholds.csv and thresholds_measured.csv (experiment 0); returns thresholds.csv's status for report.md."""
    try:
        _, table = cache.threshold_curve()
        write_text_atomic(out / "thresholds.csv", _threshold_csv_text(model, table))
        files.append(out / "thresholds.csv")
        say(f"wrote {out / 'thresholds.csv'}")
        thr_status = "ok"
    except Skip as exc:
        thr_status = f"not written: {exc}"
        say(f"thresholds.csv {thr_status}")
    except Exception as exc:  # noqa: BLE001 -- recorded in report.md (and its section says FAILED)
        thr_status = f"not written: {type(exc).__name__}: {exc}"
        say(f"thresholds.csv {thr_status}")

    try:
        rows, ds = cache.measured_thresholds()
        write_text_atomic(out / "thresholds_measured.csv", _measured_csv_text(model, rows, ds))
        files.append(out / "thresholds_measured.csv")
        say(f"wrote {out / 'thresholds_measured.csv'}")
    except Skip as exc:
        say(f"thresholds_measured.csv not written: {exc}")
    except Exception as exc:  # noqa: BLE001 -- reported in report.md's section
        say(f"thresholds_measured.csv not written: {type(exc).__name__}: {exc}")
    return thr_status


def _write_figures(model, cache, out, classic, say, files):
    """Every figure (one file per experiment where :func:`figure_files` says so); returns {file name: status}."""
    status = {}
    for name, fn in _FIGURE_FUNCS.items():
        for file, experiment in figure_files(model, name):
            kw = {} if experiment is None else {"experiment": experiment}
            if fn is fig_threshold:
                kw["classic"] = classic
            try:
                fn(model, cache, out / file, **kw)
                status[file] = "ok"
                files.append(out / file)
                say(f"wrote {out / file}")
            except Skip as exc:
                status[file] = f"skipped: {exc}"
            except Exception as exc:  # noqa: BLE001 -- one figure must not stop the report
                plt.close("all")
                tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
                status[file] = f"FAILED: {tb}"
                say(f"figure {file} FAILED: {tb}")
    return status
