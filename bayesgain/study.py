"""A study of many films: one fit per film through Dask (and the partially pooled fit of all of them).

``run_study`` checks every film, connects to a Dask scheduler (or starts a local cluster), sends the fits
that are not done yet through :func:`bayesgain.model.distributed.fit_many` and writes, in the output
folder::

    films/<name>/posterior.nc   one fit per film (saved atomically as each job finishes)
    pooled/posterior.nc         with ``pooled=True``: the partially pooled fit of all films (spec's [pooling])
    study.csv                   per film: cross-section, V_1S, sigma_1S, tau_XX, <N_gain> at <n_e> = 1 (median,
                                94 % HDI), the convergence verdict and the fit's path
    study.png, study.md         the films side by side

Resuming: a film whose ``posterior.nc`` opens, holds a posterior and is a fit of this film with this model
is skipped; one that is unreadable, incomplete or of another film/model is fitted again (and said so).
"""

from __future__ import annotations

import csv
import math
import pathlib
import re

import numpy as np

from ._atomic import atomic_path, write_text_atomic
from .safety.containment import damage_reason

__all__ = ["StudyError", "Film", "plan_films", "saved_fit_problem", "connect", "run_study", "study_rows",
           "QUANTITIES", "THRESHOLD_NE", "close"]

THRESHOLD_NE = 1.0  # electrons/QD: the doping level of the study's threshold column
# column prefix -> (posterior variable or None for the threshold, unit, label)
QUANTITIES = {
    "cross_section_cm2": ("cross_section_cm2", "cm^2", "sigma_abs"),
    "V_1S_V": ("V_1S_V", "V", "V_1S"),
    "sigma_1S_V": ("sigma_1S_V", "V", "sigma_1S"),
    "tau_xx_ps": ("tau_xx_ps", "ps", "tau_XX"),
    "threshold_ne1_excitons": (None, "excitons/QD", "<N_gain> at <n_e> = 1"),
}
CONNECT_TIMEOUT_S = 5


class StudyError(ValueError):
    """A study that cannot run as asked (one line: which folder or option, and what to do)."""


class Film:
    """One experiment folder of the study: its unique name and where its fit lives."""

    def __init__(self, folder, name, out):
        self.folder = pathlib.Path(folder)
        self.name = name
        self.fit_path = pathlib.Path(out) / "films" / name / "posterior.nc"


def _film_names(folders):
    """Folder base names, made unique in the order given (a-b, a-b-2): stable between runs, so resuming works."""
    names, used = [], set()
    for folder in folders:
        p = pathlib.Path(folder)
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", (p.parent if p.name == "experiment.toml" else p).resolve().name)
        base = base.strip(".") or "film"
        name, k = base, 2
        while name in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        names.append(name)
    return names


def plan_films(folders, out):
    return [Film(f, n, out) for f, n in zip(folders, _film_names(folders))]


def saved_fit_problem(path, model_name, experiments):
    """Why the saved fit at ``path`` cannot be reused (None when it can): unreadable, no posterior, or a fit of
    another model or other films.  Reads the file's groups and attributes only (no model is built)."""
    import xarray as xr

    path = pathlib.Path(path)
    if not path.is_file():
        return "missing"
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            attrs = dict(tree.attrs)
            groups = set(tree.children)
            post = tree["posterior"] if "posterior" in groups else None
            n = int(post.sizes.get("chain", 0) * post.sizes.get("draw", 0)) if post is not None else 0
            if post is not None and n:
                next(iter(post.data_vars.values())).values  # noqa: B018 -- read one array: truncated data fail here
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 -- every way a file can be damaged ends in a refit
        return f"corrupt or incomplete ({damage_reason(exc, path, limit=120)})"
    if "reduced_data" not in groups or "model_spec_toml" not in attrs:
        return "incomplete (not a saved bayesgain fit)"
    if not n:
        return "incomplete (no posterior draws)"
    if attrs.get("model_name") != model_name:
        return f"a fit of model '{attrs.get('model_name')}', not '{model_name}'"
    if attrs.get("experiments") != ", ".join(experiments):
        return f"a fit of {attrs.get('experiments')!r}, not {', '.join(experiments)!r}"
    return None


def connect(scheduler=None, n_workers=None, timeout=CONNECT_TIMEOUT_S):
    """A ``dask.distributed.Client``: to the scheduler at ``scheduler`` (refused in one line when it does not
    answer within ``timeout`` s) or to a new local cluster of ``n_workers`` single-threaded processes."""
    try:
        from dask.distributed import Client
    except ImportError:  # pragma: no cover -- exercised only without the extra
        from .model.distributed import _DASK_MISSING

        raise StudyError(_DASK_MISSING) from None
    if scheduler is not None:
        if not re.match(r"^(tcp|tls|inproc|ucx)://[^\s/]+(:\d+)?/?$", scheduler):
            raise StudyError(f"--scheduler {scheduler!r}: expected an address like tcp://host:8786")
        try:
            return Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise StudyError(f"--scheduler {scheduler}: no Dask scheduler answered within {timeout} s "
                             f"({type(exc).__name__}); start one (`dask scheduler`) or leave --scheduler out to use "
                             "this machine") from None
    from .model.distributed import local_cluster

    cluster = local_cluster(n_workers)
    client = Client(cluster)
    client._study_cluster = cluster  # closed with the client (run_study)
    return client


def close(client):
    cluster = getattr(client, "_study_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def _last_line(traceback_text):
    lines = [x.strip() for x in str(traceback_text).strip().splitlines() if x.strip()]
    return (lines[-1] if lines else "unknown error")[:200]


def run_study(films, out, spec, fit_kw, pooled=False, client=None, say=print, reuse_compiled=True):
    """Fit every film not fitted yet (and, with ``pooled``, the pooled fit), then write the study's table, figure
    and summary.  ``films``: from :func:`plan_films`; ``spec``: a ModelSpec; ``client``: a Dask client (not
    closed here).  Returns a dict: rows, failed (names), fitted, skipped, files."""
    from .model.distributed import fit_many

    from .safety import stale_temporaries

    out = pathlib.Path(out)
    names = [f.name for f in films]
    todo, skipped = [], []
    # the caller holds the folder's lock: temporaries here are from a killed run, not a live writer
    for folder in [f.fit_path.parent for f in films] + [out / "pooled"]:
        for tmp in stale_temporaries(folder):
            tmp.unlink()
            say(f"note: removed {tmp}, a temporary file left by an interrupted run")
    for f in films:
        problem = saved_fit_problem(f.fit_path, spec.name, [f.name])
        if problem is None:
            skipped.append(f.name)
            say(f"film {f.name}: already fitted ({f.fit_path}), skipped")
            continue
        if problem != "missing":
            say(f"film {f.name}: the saved fit {f.fit_path} is {problem}: fitting it again")
        todo.append({"name": f.name, "spec": spec.to_toml(), "experiments": [str(f.folder)], "names": [f.name],
                     "fit": dict(fit_kw), "output": str(f.fit_path), "reuse_compiled": reuse_compiled})
    pooled_path = out / "pooled" / "posterior.nc"
    if pooled:
        problem = saved_fit_problem(pooled_path, spec.name, names)
        if problem is None:
            skipped.append("pooled")
            say(f"pooled fit: already fitted ({pooled_path}), skipped")
        else:
            if problem != "missing":
                say(f"pooled fit: the saved fit {pooled_path} is {problem}: fitting it again")
            todo.append({"name": "pooled", "spec": spec.to_toml(), "experiments": [str(f.folder) for f in films],
                         "names": names, "fit": dict(fit_kw), "output": str(pooled_path),
                         "reuse_compiled": reuse_compiled})
    failed = {}
    done = [0]

    def report(i, r):
        done[0] += 1
        what = "pooled fit" if r.get("name") == "pooled" else f"film {r.get('name')}"
        if r.get("error"):
            failed[r["name"]] = _last_line(r["error"])
            state = f"FAILED ({failed[r['name']]})"
        else:
            state = "converged" if r.get("ok") else "NOT CONVERGED"
        say(f"[{done[0]}/{len(todo)}] {what}: {state}, {r['seconds']:.0f} s")

    if todo:
        say(f"fitting {len(todo)} of {len(films) + bool(pooled)} (model '{spec.name}', "
            f"{fit_kw.get('chains')} chains x {fit_kw.get('draws')} draws)")
        fit_many(todo, client=client, on_result=report)
    rows, notes = study_rows(films, spec.name, pooled_path if pooled else None, failed)
    files = write_study(out, rows, notes, spec.name)
    return {"rows": rows, "failed": failed, "fitted": [j["name"] for j in todo if j["name"] not in failed],
            "skipped": skipped, "files": files}


# ----------------------------------------------------------------------------------------- the table
def _interval(values):
    from .model.quantities import hdi_table

    import xarray as xr

    h = hdi_table(xr.DataArray(np.asarray(values, float).ravel(), dims=("sample",)))
    return float(h["median"]), float(h["hdi_low"]), float(h["hdi_high"])


def fit_row(model, experiment, name, fit, path):
    """One row of study.csv from a loaded fit: each quantity's median and 94 % HDI, convergence, path."""
    from .model.quantities import posterior_samples, threshold_curve

    row = {"name": name, "fit": fit}
    names = [v for v in (q[0] for q in QUANTITIES.values()) if v]
    s, _ = posterior_samples(model, names, experiment)
    for col, (var, _, _) in QUANTITIES.items():
        if var is None:
            try:
                values = threshold_curve(model, n_e=[THRESHOLD_NE], experiment=experiment).values
            except (KeyError, ValueError):  # a model without the charging parameters has no threshold
                values = None
        else:
            values = s.get(var)
        med, lo, hi = _interval(values) if values is not None and np.size(values) else (math.nan,) * 3
        row.update({f"{col}_median": med, f"{col}_hdi_low": lo, f"{col}_hdi_high": hi})
    conv = model.convergence or {}
    attrs = model.idata.attrs
    # the verdict saved with the fit includes the post-sampling checks (truncation, quadrature)
    ok = bool(int(attrs["converged"])) if "converged" in attrs else bool(conv.get("ok", False))
    row.update(converged=ok, max_r_hat=conv.get("max_r_hat", math.nan), min_ess_bulk=conv.get("min_ess_bulk", math.nan),
               divergences=conv.get("divergences", ""), synthetic=bool(int(attrs.get("synthetic", 0))),
               path=str(path), error="")
    return row


def _failed_row(name, fit, why):
    row = {"name": name, "fit": fit}
    for col in QUANTITIES:
        row.update({f"{col}_median": math.nan, f"{col}_hdi_low": math.nan, f"{col}_hdi_high": math.nan})
    row.update(converged=False, max_r_hat=math.nan, min_ess_bulk=math.nan, divergences="", synthetic=False, path="",
               error=why)
    return row


def study_rows(films, model_name, pooled_path=None, failed=None):
    """Rows of study.csv from the saved fits (one per film; with ``pooled_path`` one more per film from the
    pooled fit).  Returns (rows, notes)."""
    from .model.core import GainModel

    failed = failed or {}
    rows, notes = [], []
    for f in films:
        problem = saved_fit_problem(f.fit_path, model_name, [f.name])
        if problem is not None:
            why = failed.get(f.name) or f"no usable fit ({problem})"
            rows.append(_failed_row(f.name, "film", why))
            notes.append(f"film {f.name}: {why}")
            continue
        rows.append(fit_row(GainModel.load(f.fit_path), 0, f.name, "film", f.fit_path))
    if pooled_path is not None:
        names = [f.name for f in films]
        problem = saved_fit_problem(pooled_path, model_name, names)
        if problem is not None:
            why = failed.get("pooled") or f"no usable fit ({problem})"
            notes.append(f"pooled fit: {why}")
            rows += [_failed_row(n, "pooled", why) for n in names]
        else:
            model = GainModel.load(pooled_path)
            rows += [fit_row(model, i, n, "pooled", pooled_path) for i, n in enumerate(names)]
    return rows, notes


COLUMNS = (["name", "fit"] + [f"{c}_{k}" for c in QUANTITIES for k in ("median", "hdi_low", "hdi_high")]
           + ["converged", "max_r_hat", "min_ess_bulk", "divergences", "synthetic", "path", "error"])


def write_study(out, rows, notes, model_name):
    """study.csv, study.md and study.png in ``out`` (each atomically); returns their paths."""
    out = pathlib.Path(out)
    csv_path = out / "study.csv"
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) and not isinstance(v, bool) else v)
                        for k, v in r.items()})
    md_path = out / "study.md"
    write_text_atomic(md_path, study_markdown(rows, notes, model_name))
    png_path = out / "study.png"
    write_study_figure(rows, png_path)
    return [csv_path, md_path, png_path]


def _fmt(v):
    return "--" if not np.isfinite(v) else f"{v:.3g}"


def study_markdown(rows, notes, model_name):
    synthetic = any(r["synthetic"] for r in rows)
    lines = [f"# Study: {len({r['name'] for r in rows})} films, model '{model_name}'", ""]
    if synthetic:
        lines += ["**SYNTHETIC data** in this study (simulated films; the truth is in their truth.toml).", ""]
    lines += ["Median [94 % HDI] per film; `pooled` rows come from the partially pooled fit of all films.", "",
              "| film | fit | " + " | ".join(f"{q[2]} ({q[1]})" for q in QUANTITIES.values()) + " | converged |",
              "|---|---|" + "---|" * len(QUANTITIES) + "---|"]
    for r in rows:
        cells = [f"{_fmt(r[f'{c}_median'])} [{_fmt(r[f'{c}_hdi_low'])}, {_fmt(r[f'{c}_hdi_high'])}]"
                 for c in QUANTITIES]
        conv = "FAILED" if r["error"] else ("yes" if r["converged"] else "**NO** (not final)")
        lines.append(f"| {r['name']} | {r['fit']} | " + " | ".join(cells) + f" | {conv} |")
    bad = [r["name"] + ("" if r["fit"] == "film" else " (pooled)") for r in rows if not r["converged"]]
    lines += ["", (f"Not converged or failed: {', '.join(bad)} -- their numbers are not final." if bad else
                   "Every fit converged (R-hat <= 1.01, bulk and tail ESS >= 400, no divergences).")]
    lines += [f"- {n}" for n in notes]
    lines += ["", "Per-film numbers and paths of the fits: study.csv; figure: study.png.", ""]
    return "\n".join(lines)


def write_study_figure(rows, path):
    """One panel per quantity: each film's median with its 94 % HDI bar (film fits and, if any, pooled)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    films = list(dict.fromkeys(r["name"] for r in rows))
    y = {n: i for i, n in enumerate(films)}
    fig, axes = plt.subplots(1, len(QUANTITIES), figsize=(3.0 * len(QUANTITIES), 2.2 + 0.35 * len(films)),
                             sharey=True, squeeze=False)
    styles = {"film": ("C0", "o", -0.12, "one fit per film"), "pooled": ("C1", "s", 0.12, "pooled fit")}
    for ax, (col, (_, unit, label)) in zip(axes[0], QUANTITIES.items()):
        for kind, (color, marker, dy, legend) in styles.items():
            for ok in (True, False):  # open markers: not converged, not final
                sel = [r for r in rows if r["fit"] == kind and r["converged"] == ok and np.isfinite(r[f"{col}_median"])]
                if not sel:
                    continue
                med = np.array([r[f"{col}_median"] for r in sel])
                lo = np.array([r[f"{col}_hdi_low"] for r in sel])
                hi = np.array([r[f"{col}_hdi_high"] for r in sel])
                yy = np.array([y[r["name"]] for r in sel]) + dy
                ax.errorbar(med, yy, xerr=[np.clip(med - lo, 0, None), np.clip(hi - med, 0, None)], fmt=marker,
                            color=color, mfc=color if ok else "none", capsize=2,
                            label=legend if ok else f"{legend}, NOT converged")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_yticks(range(len(films)), films)
    axes[0][0].invert_yaxis()
    handles = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), fontsize=7,
               frameon=False)
    synthetic = " (SYNTHETIC data)" if any(r["synthetic"] for r in rows) else ""
    fig.suptitle(f"films compared: median and 94 % HDI{synthetic}", fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
