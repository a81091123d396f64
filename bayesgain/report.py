"""The report of a Bayesian fit: CSV tables, a Markdown report and PNG figures (paper Fig. 5 with posterior bands).

:func:`write_report` takes a fitted :class:`~bayesgain.model.core.GainModel` (or one reopened with
``GainModel.load``) and writes, atomically, into ``out_dir``:

* ``summary.csv`` -- ArviZ summary of every physical parameter (mean, sd, 94 % HDI, ESS, R-hat) with units;
* ``thresholds.csv`` -- <N_gain> (excitons/QD) versus <n_e> (101 levels from 0 to g_e): columns
  ``n_e, median, hdi_low, hdi_high``; ``#`` comment lines above the header say what it is and, where
  it applies, ``SYNTHETIC`` and ``NOT CONVERGED`` (read it with ``pandas.read_csv(path, comment="#")``);
* ``thresholds_measured.csv`` -- per film TA potential the measured threshold (window A* at the gain delay
  crossing 0, :mod:`bayesgain.model.measured_thresholds`), the prediction of the same read-out and their
  difference: columns ``potential_V, n_e, measured_median, measured_hdi_low, measured_hdi_high,
  predicted_median, difference_median, difference_hdi_low, difference_hdi_high`` (``#`` comment lines above);
* ``report.md`` -- what was fitted, the convergence verdict and table, parameters with 94 % HDI and
  units, thresholds at the measured potentials, gain lifetimes, lowest single-wavelength thresholds,
  the Bayesian-versus-classic table (when classic rows are given), and links to the figures;
* PNG figures at :data:`DPI` dpi, units on every axis, SYNTHETIC in the title of synthetic data:

  ===============================  ===========================================================
  ``fig5a_charging.png``           <n_e>(V) posterior band with the SEC data points
  ``fig5b_threshold_vs_doping``    <N_gain> versus <n_e> with its band (+ classic estimates)
  ``fig5c_gain_lifetime.png``      gain lifetime versus <N> at several doping levels
  ``fig5d_single_wavelength.png``  single-wavelength threshold spectrum (log axis), g >= 50 cm^-1
  ``fig5e_gain_coefficient.png``   window gain coefficient versus <N> per potential
  ``trace.png`` / ``rank.png``     trace + marginal and rank plots of the physical parameters
  ``ppc.png``                      posterior predictive check of every observed component
  ``prior_posterior.png``          prior versus posterior of every physical parameter
  ``chirp.png``                    chirp t0(lambda) on the uncorrected TA map (only when an experiment had one)
  ===============================  ===========================================================

A figure the model cannot make (e.g. gain lifetimes without a dynamics component) is listed as
skipped with the reason; a figure that fails is listed with its error -- neither stops the report.
A fit that did not converge says so at the top of ``report.md``, in ``thresholds.csv`` and in the
title of every figure, and its thresholds are marked as not final.
"""

from __future__ import annotations

import csv
import io
import math
import pathlib
import textwrap
import traceback

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from ._atomic import atomic_path, write_text_atomic  # noqa: E402
from .chirp_figure import CHIRP_FIGURE_NAME as CHIRP_FIGURE  # noqa: E402


__all__ = ["write_report", "read_classic_csv", "DPI", "FIGURES", "Skip"]

DPI = 200
HDI = 0.94
G_MIN_PER_CM = 50.0
FIGURES = {
    "fig5a_charging.png": "<n_e>(V): posterior band of the charging model with the SEC data (paper Fig. 5a)",
    "fig5b_threshold_vs_doping.png": "<N_gain> versus <n_e> with the 94 % HDI band (paper Fig. 5b)",
    "fig5c_gain_lifetime.png": "gain lifetime versus <N> at several doping levels (paper Fig. 5c)",
    "fig5d_single_wavelength.png": "single-wavelength threshold spectrum, g >= 50 cm^-1 region (paper Fig. 5d-f)",
    "fig5e_gain_coefficient.png": "window gain coefficient versus <N> (paper Fig. 5)",
    "trace.png": "trace and marginal posterior of each physical parameter (per chain)",
    "rank.png": "rank histograms per chain of the physical parameters (uniform when the chains agree)",
    "ppc.png": "posterior predictive checks of every observed component",
    "residuals.png": "film TA residuals of the physics (without the discrepancy term) versus delay, per potential",
    "prior_posterior.png": "prior versus posterior of every physical parameter",
}
CHIRP_FIGURE_TEXT = ("chirp t0(lambda) (and +-3 IRF sigma) on the TA map before the chirp correction, per experiment "
                     "that had one")


class Skip(Exception):
    """A figure or table this model cannot make (the message says why); not an error."""


# ----------------------------------------------------------------------------- state of the fit
def _synthetic(model):
    d = model.data
    return "experiment_synthetic" in d and bool(np.any(np.asarray(d["experiment_synthetic"].values) > 0))


def _converged(model):
    conv = getattr(model, "convergence", None)
    return conv is not None and conv.ok


def _post(model):
    return model.idata["posterior"]


def _has(model, *names):
    return all(n in _post(model) for n in names)


def _title(fig, model, title):
    tags = []
    if _synthetic(model):
        tags.append("SYNTHETIC DATA")
    if not _converged(model):
        tags.append("NOT CONVERGED")
    head = " -- ".join(tags + [title])
    color = "firebrick" if tags else "black"
    head = textwrap.fill(head, 70)
    fig.suptitle(head, fontsize=10.5, color=color, fontweight="bold" if tags else "normal")
    notes = []
    if _synthetic(model):
        notes.append("SYNTHETIC data (bayesgain.simulate): not a measurement")
    if not _converged(model):
        notes.append("fit NOT CONVERGED: not final")
    notes.append(f"model '{model.spec.name}', experiments: {', '.join(map(str, model.names))}; bands: {HDI:.0%} HDI")
    fig.text(0.5, 0.003, "\n".join(notes), ha="center", va="bottom", fontsize=6.5, color=color)
    return head.count("\n") + 1, len(notes)


def _save(fig, model, path, title):
    title_lines, note_lines = _title(fig, model, title)
    h = fig.get_size_inches()[1]
    # room for the title (10.5 pt lines) and the notes (6.5 pt lines), in inches, as figure fractions
    top = (0.08 + 0.19 * title_lines) / h
    bottom = (0.04 + 0.11 * note_lines) / h
    fig.tight_layout(rect=(0, min(0.3, bottom), 1, 1 - min(0.3, top)))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    return path


def _hdi(x, axis=0, prob=HDI):
    """median, low, high of the finite values along ``axis`` (NaN where none)."""
    import xarray as xr

    from .model.quantities import hdi_table

    x = np.moveaxis(np.asarray(x, float), axis, 0)
    shape = x.shape[1:]
    da = xr.DataArray(x.reshape(x.shape[0], -1), dims=("sample", "i"))
    t = hdi_table(da, prob=prob)
    return tuple(np.asarray(t[k].values).reshape(shape) for k in ("median", "hdi_low", "hdi_high"))


def _fmt(x, digits=4):
    if x is None:
        return "--"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return "--"
    if math.isinf(x):
        return "inf"
    return f"{x:.{digits}g}"


# ----------------------------------------------------------------------------- classic rows
def read_classic_csv(path):
    """Rows of a ``classic.csv`` (as written by :func:`bayesgain.classic.write_classic_csv`) with float values."""
    rows = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            for k in ("value", "uncertainty"):
                try:
                    r[k] = float(r.get(k, "nan") or "nan")
                except ValueError:
                    r[k] = float("nan")
            rows.append(r)
    return rows


def _classic_value(rows, name):
    for r in rows or ():
        if r["name"] == name:
            return r
    return None


def _classic_thresholds(rows):
    """(V, value, uncertainty) of the classic ``threshold_excitons[V=...]`` rows."""
    out = []
    for r in rows or ():
        n = r["name"]
        if n.startswith("threshold_excitons[V="):
            try:
                V = float(n.split("=", 1)[1].rstrip("]"))
            except ValueError:
                continue
            out.append((V, float(r["value"]), float(r["uncertainty"])))
    return out


# ----------------------------------------------------------------------------- quantities (cached)
class _Cache:
    def __init__(self, model):
        self.model = model
        self._c = {}

    def get(self, key, fn):
        if key not in self._c:
            try:
                self._c[key] = (True, fn())
            except Exception as exc:  # noqa: BLE001 -- Skip or failure, recorded in the report
                self._c[key] = (False, exc)
        ok, v = self._c[key]
        if not ok:
            raise v
        return v

    def threshold_curve(self):
        from .model.quantities import hdi_table, threshold_curve

        def f():
            if not _has(self.model, "V_C_V"):
                raise Skip("needs the charging parameters (charging or gain component)")
            curve = threshold_curve(self.model)
            return curve, hdi_table(curve)

        return self.get("curve", f)

    def at_potentials(self):
        from .model.quantities import thresholds_at_potentials

        def f():
            if not _has(self.model, "ta_charge_fractions"):
                raise Skip("needs the gain or dynamics component (film TA potentials)")
            return thresholds_at_potentials(self.model)

        return self.get("at_potentials", f)

    def lifetimes(self):
        from .model.quantities import gain_lifetime_curves

        def f():
            if not _has(self.model, "tau_xx_ps", "V_C_V"):
                raise Skip("needs the Auger rates (gain, dynamics or cross-section component) and the charging "
                           "parameters")
            g_e = int(self.model.data["experiment_g_e"].values[0])
            levels = tuple(x for x in (0.0, 0.5, 1.0, 1.5, 1.9) if x < g_e)
            return gain_lifetime_curves(self.model, n_e_levels=levels, mean_excitons=np.linspace(0.5, 8.0, 16),
                                        max_samples=100)

        return self.get("lifetimes", f)

    def single_wavelength(self):
        from .model.quantities import single_wavelength_thresholds

        def f():
            if "spectrum_A_star" not in self.model.data or not _has(self.model, "ta_mean_excitons"):
                raise Skip("needs the gain component (film TA spectra)")
            return single_wavelength_thresholds(self.model, g_min_per_cm=G_MIN_PER_CM, max_samples=60)

        return self.get("single_wavelength", f)

    def gain_coefficient(self):
        from .model.quantities import gain_coefficient

        def f():
            if "ta_A" not in self.model.data or not _has(self.model, "ta_mean_excitons"):
                raise Skip("needs the gain or dynamics component (film TA)")
            return gain_coefficient(self.model)

        return self.get("gain_coefficient", f)


    def measured_thresholds(self):
        from .model.measured_thresholds import threshold_comparison

        def f():
            if "ta_A" not in self.model.data or not _has(self.model, "ta_mean_excitons", "ta_charge_fractions"):
                raise Skip("needs the gain component (film TA at the gain delay)")
            return threshold_comparison(self.model, prob=HDI)

        return self.get("measured_thresholds", f)

    def residuals(self):
        from .model.checks import film_residual_check

        def f():
            out = film_residual_check(self.model)
            if out is None:
                raise Skip("needs the gain or dynamics component (film TA)")
            return out

        return self.get("residuals", f)


def _file_of_points(model, points):
    """Index into ``ta_mean_excitons`` (dim ta_file) and the potential index of each film TA point (the model's layout)."""
    return model.layout.file_index[points], model.layout.ta_potential_index[points]


# ----------------------------------------------------------------------------- Fig. 5 panels
def fig_charging(model, cache, path):
    from .model.quantities import mean_electrons_band

    if not _has(model, "V_1S_V", "V_C_V"):
        raise Skip("needs the charging parameters")
    d = model.data
    band = mean_electrons_band(model)
    V = band["potential"].values
    med, lo, hi = _hdi(band.values)
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    ax.fill_between(V, lo, hi, color="tab:blue", alpha=0.3, lw=0, label=f"posterior <n_e>(V), {HDI:.0%} HDI")
    ax.plot(V, med, color="tab:blue", lw=1.5, label="posterior median")
    if "sec_n_e" in d and "sec_bleach_scale" in _post(model):
        s = np.asarray(_post(model)["sec_bleach_scale"].isel(experiment=0).values).ravel()
        ax.plot(V, med * float(np.median(s)), color="tab:blue", lw=1, ls="--",
                label=f"x SEC bleach scale ({np.median(s):.3f}): what the SEC measures")
    if "sec_n_e" in d:
        sel = d["sec_point_experiment"].values == 0 if "sec_point_experiment" in d else slice(None)
        sw = d["sec_point_sweep"].values[sel]
        labels = d["sweep_label"].values if "sweep_label" in d else None
        cmap = plt.get_cmap("tab10")
        for k, s_ in enumerate(np.unique(sw)):
            m = sw == s_
            lab = str(labels[s_]) if labels is not None and s_ < len(labels) else f"sweep {s_}"
            ax.plot(d["sec_point_potential"].values[sel][m], d["sec_n_e"].values[sel][m], "o", ms=2.5,
                    color=cmap(k % 10), alpha=0.8, label=f"SEC data, {lab}")
    if "ta_potential_V" in d:
        for v in d["ta_potential_V"].values:
            ax.axvline(v, color="0.6", lw=0.6, ls=":")
    ax.set_xlabel("potential V (V vs reference electrode)")
    ax.set_ylabel("<n_e> (electrons/QD)")
    ax.legend(fontsize=6.5, loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, model, path, "<n_e>(V): SEC charging")


def fig_threshold(model, cache, path, classic_rows=None):
    curve, table = cache.threshold_curve()
    ne = table["n_e"].values
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    ax.fill_between(ne, table["hdi_low"].values, table["hdi_high"].values, color="tab:red", alpha=0.3, lw=0,
                    label=f"posterior <N_gain>, {HDI:.0%} HDI")
    ax.plot(ne, table["median"].values, color="tab:red", lw=1.5, label="posterior median")
    try:
        at = cache.at_potentials()
        thr = at["threshold_mean_excitons"].values
        nel = at["mean_electrons"].values
        m, l_, h = _hdi(thr)
        nm = np.median(nel, axis=0)
        ax.errorbar(nm, m, yerr=[m - l_, h - m], fmt="s", color="black", ms=4, capsize=2,
                    label="transition counting (t = 0) at the measured TA potentials")
    except Exception:  # noqa: BLE001 -- optional overlay
        pass
    _plot_measured(ax, cache)
    ct = _classic_thresholds(classic_rows)
    if ct:
        from .model.quantities import mean_electrons_band

        Vs = np.array([c[0] for c in ct])
        try:
            nes = np.median(mean_electrons_band(model, potential_V=Vs).values, axis=0)
            vals = np.array([c[1] for c in ct])
            errs = np.array([c[2] for c in ct])
            ok = np.isfinite(vals)
            ax.errorbar(nes[ok], vals[ok], yerr=np.where(np.isfinite(errs[ok]), errs[ok], 0), fmt="D", mfc="white",
                        color="tab:green", ms=5, capsize=2,
                        label="classic point estimates (+-1 sd; <n_e> from the posterior median)")
        except Exception:  # noqa: BLE001
            pass
    ax.set_xlabel("<n_e> (electrons/QD)")
    ax.set_ylabel("<N_gain> (excitons/QD)")
    ax.set_ylim(0, 1.45 * ax.get_ylim()[1])  # headroom: the legend sits above the points, not on them
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    return _save(fig, model, path, "gain threshold versus doping")


def _plot_measured(ax, cache):
    """Measured thresholds (window A* at the gain delay crossing 0) with their HDI bars on Fig. 5b."""
    try:
        rows, ds = cache.measured_thresholds()
    except Exception:  # noqa: BLE001 -- optional overlay
        return
    r = [x for x in rows if np.isfinite(x["measured_median"])]
    if not r:
        return
    ne = np.array([x["n_e"] for x in r]) + 0.02  # beside the predicted squares, not on them
    m = np.array([x["measured_median"] for x in r])
    lo = np.array([x["measured_hdi_low"] for x in r])
    hi = np.array([x["measured_hdi_high"] for x in r])
    ax.errorbar(ne, m, yerr=[m - lo, hi - m], fmt="o", mfc="white", color="tab:blue", ms=5, capsize=2,
                label=f"measured: A* {ds.attrs['read_out']} crosses 0 ({HDI:.0%} HDI)")
    ax.plot(ne, [x["predicted_median"] for x in r], "x", color="tab:red", ms=5,
            label="transition counting for the same read-out (cascade to that delay)")


def fig_lifetime(model, cache, path):
    lt = cache.lifetimes()
    Nm = lt["mean_excitons"].values
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    cmap = plt.get_cmap("viridis")
    levels = lt["n_e"].values
    for i, n in enumerate(levels):
        m, l_, h = _hdi(lt.isel(n_e=i).values)
        c = cmap(i / max(1, len(levels) - 1))
        ax.fill_between(Nm, l_, h, color=c, alpha=0.25, lw=0)
        ax.plot(Nm, m, color=c, lw=1.5, label=f"<n_e> = {n:g}")
    ax.set_yscale("log")
    ax.set_xlabel("<N> (excitons/QD)")
    ax.set_ylabel("gain lifetime (ps)")
    ax.legend(fontsize=7, title=f"median, {HDI:.0%} HDI band", title_fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, model, path, "gain lifetime versus excitation")


def fig_single_wavelength(model, cache, path):
    sw = cache.single_wavelength()
    lam = sw["wavelength"].values
    V = sw["potential"].values
    sigma = np.asarray(_post(model)["film_cross_section_cm2"].isel(experiment=0).values).ravel()
    sig = float(np.median(sigma))
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    cmap = plt.get_cmap("plasma")
    for p in range(V.size):
        c = cmap(p / max(1, V.size - 1) * 0.85)
        g = sw["gain_mean_excitons"].isel(potential=p).values  # (sample, wavelength)
        frac_finite = np.mean(np.isfinite(g), axis=0)
        m, l_, h = _hdi(g)
        ok = frac_finite >= 0.5
        if not np.any(ok):
            continue
        ax.fill_between(lam, np.where(ok, l_, np.nan), np.where(ok, h, np.nan), color=c, alpha=0.2, lw=0)
        ax.plot(lam, np.where(ok, m, np.nan), color=c, lw=1.3, label=f"V = {V[p]:+.3f} V")
    ax.set_yscale("log")
    ax.set_xlabel("probe wavelength (nm)")
    ax.set_ylabel(f"<N> for g >= {G_MIN_PER_CM:g} cm$^{{-1}}$ (excitons/QD)")
    sec = ax.secondary_yaxis("right", functions=(lambda n: n / sig, lambda J: J * sig))
    sec.set_ylabel("pump fluence (photons/cm$^2$)", labelpad=8)
    ax.text(0.02, 0.02, f"curves: <N> at which g >= {G_MIN_PER_CM:g} cm$^{{-1}}$ (the gain region lies above each curve);\n"
            f"missing where not reached in at least half the draws; fluence axis = <N> / film sigma ({sig:.3g} cm$^2$)",
            transform=ax.transAxes, fontsize=6.5, va="bottom")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, model, path, f"single-wavelength threshold spectrum (g >= {G_MIN_PER_CM:g} per cm)")


def fig_gain_coefficient(model, cache, path):
    gc = cache.gain_coefficient()
    d = model.data
    points = gc["point"].values
    comp = d["ta_point_component"].values[points]
    use = comp == "gain" if np.any(comp == "gain") else np.ones(points.size, bool)
    points = points[use]
    g = gc["gain_per_cm"].values[:, use]
    files, pot_index = _file_of_points(model, points)
    Nf = np.asarray(_post(model)["ta_mean_excitons"].values)
    Nf = Nf.reshape(-1, Nf.shape[-1])
    # average the gain delays of each file (g and <N> per draw)
    ufiles, inv = np.unique(files, return_inverse=True)
    gf = np.stack([g[:, inv == k].mean(axis=1) for k in range(ufiles.size)], axis=1)
    Nfile = Nf[:, ufiles]
    potf = np.array([pot_index[inv == k][0] for k in range(ufiles.size)])
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    cmap = plt.get_cmap("plasma")
    Vaxis = d["ta_potential_V"].values
    upots = np.unique(potf)
    for i, p in enumerate(upots):
        m = potf == p
        c = cmap(i / max(1, upots.size - 1) * 0.85)
        gm, gl, gh = _hdi(gf[:, m])
        nm, nl, nh = _hdi(Nfile[:, m])
        o = np.argsort(nm)
        ax.errorbar(nm[o], gm[o], xerr=[nm[o] - nl[o], nh[o] - nm[o]], yerr=[gm[o] - gl[o], gh[o] - gm[o]], fmt="o-",
                    ms=3, lw=1, capsize=1.5, color=c, label=f"V = {Vaxis[p]:+.3f} V")
    ax.axhline(G_MIN_PER_CM, color="0.3", ls="--", lw=0.8)
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.set_xscale("log")
    # the <N> range spans ~1.5 decades: matplotlib labels the minor ticks too and they overlap (seen in the
    # demo), so label 1-2-5 steps in plain numbers and leave the minor ticks bare
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("<N> (excitons/QD, posterior)")
    ax.set_ylabel("1S-window gain coefficient g (cm$^{-1}$)")
    ax.legend(fontsize=7, title=f"g = -A* ln10 / d; dashed: {G_MIN_PER_CM:g} cm$^{{-1}}$", title_fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, model, path, "gain coefficient versus excitation")


# ----------------------------------------------------------------------------- diagnostics
def _physical_scalars(model):
    """Physical parameters (dims chain, draw, experiment only) present in the posterior."""
    from .model.core import PHYSICAL_PARAMETERS

    post = _post(model)
    out = []
    for n in PHYSICAL_PARAMETERS:
        if n in post and set(post[n].dims) <= {"chain", "draw", "experiment"}:
            out.append(n)
    return out


def _unit(model, name):
    p = model.spec.priors.get(name)
    return p.get("unit", "") if p else ""


def fig_trace(model, cache, path):
    names = _physical_scalars(model)
    if not names:
        raise Skip("no physical parameter in the posterior")
    try:
        import arviz_plots as azp

        pc = azp.plot_trace_dist(model.idata, var_names=names, backend="matplotlib", compact=True)
        fig = pc.viz["figure"].item() if hasattr(pc.viz["figure"], "item") else pc.get_viz("figure")
        fig.set_size_inches(10, 1.9 * len(names) + 0.9)
        units = {n: _unit(model, n) for n in names}
        for ax in fig.axes:  # arviz labels with the bare variable name: add the unit
            if ax.get_xlabel() in units:
                ax.set_xlabel(f"{ax.get_xlabel()} ({units[ax.get_xlabel()]})")
            elif ax.get_xlabel() == "Draw":
                ax.set_xlabel("draw (iteration after tuning)")
            if ax.get_ylabel() in units:  # the trace panel beside the named one: the unit is enough (and fits)
                ax.set_ylabel(f"value ({units[ax.get_ylabel()]})")
            for axis in (ax.xaxis, ax.yaxis):  # a multiplier only (below): an additive offset needs another label
                if isinstance(axis.get_major_formatter(), matplotlib.ticker.ScalarFormatter):
                    axis.get_major_formatter().set_useOffset(False)
        # matplotlib's axis multiplier ("1e-14") sits at the axis end, under the neighbouring panel's label
        # (seen for the cross-section): move it into the axis label instead
        fig.canvas.draw()
        for ax in fig.axes:
            for axis, get, set_ in ((ax.xaxis, ax.get_xlabel, ax.set_xlabel), (ax.yaxis, ax.get_ylabel, ax.set_ylabel)):
                off = axis.get_offset_text().get_text()
                if off and get():
                    axis.get_offset_text().set_visible(False)
                    set_(f"{get()} [x {off}]")
        return _save(fig, model, path, "trace (left: marginal per chain; right: draws per chain)")
    except Exception:  # noqa: BLE001 -- matplotlib fallback below
        plt.close("all")
    post = _post(model)
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 1.9 * len(names) + 0.6), squeeze=False)
    for i, n in enumerate(names):
        x = np.asarray(post[n].isel(experiment=0).values if "experiment" in post[n].dims else post[n].values)
        for c in range(x.shape[0]):
            axes[i, 0].hist(x[c], bins=30, histtype="step", density=True)
            axes[i, 1].plot(x[c], lw=0.6)
        axes[i, 0].set_xlabel(f"{n} ({_unit(model, n)})")
        axes[i, 0].set_ylabel("density (1/unit)")
        axes[i, 1].set_xlabel("draw")
        axes[i, 1].set_ylabel(f"{n} ({_unit(model, n)})")
    return _save(fig, model, path, "trace (per chain)")


def fig_rank(model, cache, path):
    names = _physical_scalars(model)
    if not names:
        raise Skip("no physical parameter in the posterior")
    post = _post(model)
    n_ch = post.sizes["chain"]
    if n_ch < 2:
        raise Skip("rank plots need at least two chains")
    ncol = min(3, len(names))
    nrow = math.ceil(len(names) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 2.6 * nrow + 0.5), squeeze=False)
    from scipy.stats import rankdata

    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    for ax, n in zip(axes.ravel(), names):
        x = np.asarray(post[n].isel(experiment=0).values if "experiment" in post[n].dims else post[n].values)
        r = rankdata(x.ravel()).reshape(x.shape)
        total = r.size
        bins = np.linspace(0, total, min(20, max(5, x.shape[1] // 10)) + 1)
        expected = x.shape[1] / (bins.size - 1)
        for c in range(n_ch):
            h, _ = np.histogram(r[c], bins=bins)
            ax.stairs(h / expected, bins / total, lw=1, label=f"chain {c}")
        # 94 % band of a uniform histogram count (binomial)
        from scipy.stats import binom

        lo, hi = binom.ppf([0.03, 0.97], x.shape[1], 1.0 / (bins.size - 1)) / expected
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.axhline(1.0, color="0.4", lw=0.7)
        ax.set_title(n, fontsize=8)
        ax.set_xlabel("fractional rank (1)")
        ax.set_ylabel("count / uniform (1)")
    axes.ravel()[0].legend(fontsize=6)
    return _save(fig, model, path, "rank plots (grey: 94 % band of uniform ranks)")


_PPC_AXES = {
    "cross_section": ("sol_point", "sol_dA", "sol_fluence_eff_photons_cm2", "depth-averaged fluence (photons/cm$^2$)",
                      "solution $\\Delta$A, 1S window (OD)"),
    "charging": ("sec_point", "sec_n_e", "sec_point_potential", "potential (V)", "SEC <n_e> (electrons/QD)"),
    "photoluminescence": ("sec_point", "sec_pl", "sec_point_potential", "potential (V)", "PL / PL(V_oc) (1)"),
    "gain": ("gain_point", "ta_A", "ta_point_fluence", "fluence index (1)", "film A*, 1S window (OD)"),
    "dynamics": ("dynamics_point", "ta_A", "ta_point_delay", "delay (ps)", "film A*, 1S window (OD)"),
    "reflection": ("subgap_point", "subgap_dA", "subgap_point_potential", "potential (V)",
                   "sub-gap corrected $\\Delta$A (OD)"),
}


def fig_ppc(model, cache, path):
    if "posterior_predictive" not in model.idata:
        model.sample_posterior_predictive(seed=0)
    pp_ = model.idata["posterior_predictive"]
    comps = [c for c in model.observed_names if c in pp_]
    if not comps:
        raise Skip("no posterior predictive draws")
    d = model.data
    fig, axes = plt.subplots(len(comps), 2, figsize=(10, 3.0 * len(comps) + 0.6), squeeze=False)
    for i, c in enumerate(comps):
        point_dim, obs_name, x_name, xlabel, ylabel = _PPC_AXES[c]
        y = np.asarray(pp_[c].values)
        y = y.reshape(-1, y.shape[-1])
        m, l_, h = _hdi(y)
        if c in ("gain", "dynamics"):
            idx = np.nonzero(d["ta_point_component"].values == c)[0]
        else:
            idx = np.arange(d.sizes[point_dim] if point_dim in d.dims else y.shape[1])
        obs = d[obs_name].values[idx]
        x = d[x_name].values[idx]  # every x array is per observation point (sol_fluence_eff too)
        if c == "gain":  # the fluence index into the nominal fluences
            x = d["ta_fluence_nominal_photons_cm2"].values[x.astype(int)]
            xlabel = "nominal pump fluence (photons/cm$^2$)"
        ax = axes[i, 0]
        ax.errorbar(x, m, yerr=[m - l_, h - m], fmt="none", ecolor="tab:orange", alpha=0.5, lw=0.8,
                    label=f"posterior predictive {HDI:.0%} interval")
        ax.plot(x, obs, ".", ms=2.5, color="black", label="observed")
        if c in ("dynamics", "gain", "cross_section"):
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        inside = float(np.mean((obs >= l_) & (obs <= h)))
        ax.set_title(f"{c}: {inside:.0%} of {obs.size} points inside their {HDI:.0%} interval", fontsize=8)
        ax.legend(fontsize=6)
        ax = axes[i, 1]
        ax.errorbar(obs, m, yerr=[m - l_, h - m], fmt=".", ms=2, color="tab:blue", ecolor="tab:blue", alpha=0.5,
                    lw=0.6)
        lim = [np.nanmin([obs.min(), l_.min()]), np.nanmax([obs.max(), h.max()])]
        ax.plot(lim, lim, color="0.3", lw=0.8, ls="--", label="predicted = observed")
        ax.set_xlabel(f"observed: {ylabel}")
        ax.set_ylabel("predicted (median, 94 % interval)")
        # at most 5 ticks: sub-gap values like -0.00015 overlapped at the default count
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        ax.legend(fontsize=6)
    return _save(fig, model, path, "posterior predictive checks")


def fig_residuals(model, cache, path):
    """Standardised residual of the physics (posterior median of (y - mu_physics) / sd) versus delay, a panel per
    potential, a colour per fluence: smooth structure along delay is what the physics does not explain."""
    chk = cache.residuals()
    d = model.data
    r = chk["standardized_residual"]
    delay = d["ta_point_delay"].values
    pot = d["ta_point_potential"].values
    fl = d["ta_point_fluence"].values.astype(int)
    pots = np.unique(pot)
    ncol = min(3, pots.size)
    nrow = int(math.ceil(pots.size / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.0 * ncol, 2.8 * nrow + 0.6), squeeze=False, sharey=True)
    cmap = plt.get_cmap("viridis")
    n_fl = max(int(fl.max()) + 1, 2)
    for k, V in enumerate(pots):
        ax = axes.flat[k]
        for j in np.unique(fl):
            sel = np.nonzero((pot == V) & (fl == j))[0]
            o = sel[np.argsort(delay[sel])]
            ax.plot(delay[o], r[o], ".-", ms=2.5, lw=0.6, color=cmap(j / (n_fl - 1)))
        ax.axhline(0, color="0.3", lw=0.6)
        ax.set_xscale("log")
        ax.set_title(f"{V:+.3f} V", fontsize=8)
        ax.set_xlabel("delay (ps)")
        if k % ncol == 0:
            ax.set_ylabel("residual / sd")
    for ax in list(axes.flat)[pots.size:]:
        ax.set_visible(False)
    verdict = "structure along delay" if chk["flagged"] else "no structure detected"
    return _save(fig, model, path, f"film TA residuals of the physics (colour: fluence); lag-1 autocorrelation "
                                   f"{chk['T_observed']:.2f}, p = {chk['p_value']:.3f}: {verdict}")


def _prior(model, seed=0, draws=500):
    idata = getattr(model, "_report_prior", None)
    if idata is None:
        # the parameters only: the observations' prior predictive is not plotted
        pm_model = model.model or model.build()
        names = [v.name for v in pm_model.free_RVs] + [n for n in _physical_scalars(model) if n in pm_model.named_vars]
        idata = model.sample_prior_predictive(draws=draws, seed=seed, var_names=list(dict.fromkeys(names)))
        model._report_prior = idata
    return idata["prior"]


def fig_prior_posterior(model, cache, path):
    names = _physical_scalars(model)
    if not names:
        raise Skip("no physical parameter in the posterior")
    prior = _prior(model)
    post = _post(model)
    ncol = min(3, len(names))
    nrow = math.ceil(len(names) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.5 * ncol, 2.7 * nrow + 0.5), squeeze=False)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    for ax, n in zip(axes.ravel(), names):
        q = np.asarray(post[n].isel(experiment=0).values if "experiment" in post[n].dims else post[n].values).ravel()
        if n in prior:
            p = np.asarray(prior[n].isel(experiment=0).values if "experiment" in prior[n].dims
                           else prior[n].values).ravel()
        else:
            p = np.array([])
        positive = np.all(q > 0) and (p.size == 0 or np.all(p > 0))
        spread = (q.max() / q.min()) if positive and q.min() > 0 else 0
        logx = positive and spread > 1 and (p.size and np.quantile(p, 0.99) / np.quantile(p, 0.01) > 20)
        allv = np.concatenate([q, p]) if p.size else q
        lo, hi = np.quantile(allv, [0.005, 0.995])
        lo, hi = min(lo, q.min()), max(hi, q.max())
        bins = np.geomspace(lo, hi, 60) if logx else np.linspace(lo, hi, 60)
        if p.size:
            ax.hist(p, bins=bins, density=True, histtype="stepfilled", color="0.75", label="prior")
        ax.hist(q, bins=bins, density=True, histtype="stepfilled", alpha=0.7, color="tab:blue", label="posterior")
        if logx:
            ax.set_xscale("log")
            # a span of less than a decade gets minor-tick labels that overlap (seen on sigma_1S_V)
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(f"{n} ({_unit(model, n)})")
        ax.set_ylabel("density (1/unit)")
        ax.set_title(n, fontsize=8)
        ax.legend(fontsize=6)
    return _save(fig, model, path, "prior versus posterior (experiment 0)")


# ----------------------------------------------------------------------------- tables
def _summary(model):
    s = model.summary()
    return s


def _threshold_csv_text(model, table):
    lines = ["# <N_gain> (excitons/QD, t = 0, transition counting) versus <n_e> (electrons/QD); median and "
             f"{HDI:.0%} HDI; model '{model.spec.name}'"]
    if _synthetic(model):
        lines.append("# SYNTHETIC data (made by bayesgain.simulate): not a measurement")
    if not _converged(model):
        lines.append("# NOT CONVERGED: these thresholds are not final -- " + _conv_stats(model))
    fin = np.asarray(table["fraction_inf"].values)
    if np.any(fin > 0):
        lines.append("# some draws reach no threshold (inf); the HDI is over the finite draws")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["n_e", "median", "hdi_low", "hdi_high"])
    for n, m, lo, hi in zip(table["n_e"].values, table["median"].values, table["hdi_low"].values,
                            table["hdi_high"].values):
        w.writerow([f"{n:.6g}", f"{m:.6g}", f"{lo:.6g}", f"{hi:.6g}"])
    return "\n".join(lines) + "\n" + buf.getvalue()


def _md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _section_convergence(model, summary):
    conv = model.convergence
    lines = ["## Convergence", ""]
    if conv is None:
        return lines + ["No convergence report (no posterior).", ""]
    lines += [conv.text(), ""]
    if conv.get("note"):
        lines += [f"Note: {conv['note']}", ""]
    starts = model.idata.attrs.get("chain_starts") if model.idata is not None else None
    if starts:
        lines += [f"Chain starts: {starts}.", ""]
    rows = []
    for name, r in summary.iterrows():
        flag = []
        if float(r.get("r_hat", np.nan)) > 1.01:
            flag.append("R-hat")
        if float(r.get("ess_bulk", np.nan)) < conv["min_ess"]:
            flag.append("bulk ESS")
        if float(r.get("ess_tail", np.nan)) < conv["min_ess"]:
            flag.append("tail ESS")
        rows.append([f"`{name}`", _fmt(r.get("r_hat"), 4), _fmt(r.get("ess_bulk"), 4), _fmt(r.get("ess_tail"), 4),
                     ", ".join(flag) or "ok"])
    lines += [_md_table(["parameter", "R-hat (<= 1.01)", f"bulk ESS (>= {conv['min_ess']})",
                         f"tail ESS (>= {conv['min_ess']})", "check"], rows), ""]
    return lines


def _section_parameters(model, summary):
    lines = ["## Physical parameters (posterior median and 94 % HDI)", ""]
    rows = []
    post = _post(model)
    for name, r in summary.iterrows():
        base = str(name).split("[")[0]
        try:
            sel = str(name)[len(base):]
            da = post[base]
            if sel:
                idx = [x.strip() for x in sel.strip("[]").split(",")]
                other = [dd for dd in da.dims if dd not in ("chain", "draw")]
                sel_d = {}
                for dim, key in zip(other, idx):
                    vals = [str(v) for v in da[dim].values]
                    sel_d[dim] = vals.index(key)
                da = da.isel(sel_d)
            x = np.asarray(da.values).ravel()
            m, lo, hi = _hdi(x)
            m, lo, hi = float(m), float(lo), float(hi)
        except Exception:  # noqa: BLE001 -- fall back to the summary columns
            m = float(r.get("median", r.get("mean", np.nan)))
            lo, hi = float(r.get("hdi94_lb", np.nan)), float(r.get("hdi94_ub", np.nan))
        doc = model.spec.priors.get(base, {}).get("doc", "")
        rows.append([f"`{name}`", r.get("unit", ""), _fmt(m), _fmt(lo), _fmt(hi), doc])
    lines += [_md_table(["parameter", "unit", "median", "HDI low", "HDI high", "meaning"], rows), ""]
    try:
        from .model.quantities import effective_temperature

        te = effective_temperature(model)
        if te is not None and "sigma_1S_V" in post:
            m, lo, hi = _hdi(te.values)
            lines += [f"T_eff equivalent of sigma_1S: {_fmt(float(m))} K (94 % HDI {_fmt(float(lo))} -- "
                      f"{_fmt(float(hi))} K).", ""]
    except Exception:  # noqa: BLE001
        pass
    return lines


def _conv_stats(model):
    conv = model.convergence
    if conv is None:
        return "no convergence report"
    return conv.text().split(":", 1)[-1].strip() if ":" in conv.text() else conv.text()


def _guarded(body):
    """The report lines ``body()`` returns; a quantity this model lacks (Skip) or one that fails becomes
    a line saying so, and the rest of the report goes on."""
    try:
        return body()
    except Skip as exc:
        return [f"Not available for this model: {exc}.", ""]
    except Exception as exc:  # noqa: BLE001 -- recorded in the report
        return [f"FAILED: {type(exc).__name__}: {exc}", ""]


def _not_final(model):
    return "" if _converged(model) else " **(NOT FINAL: the fit did not converge)**"


def _section_thresholds(model, cache):
    def curve():
        _, table = cache.threshold_curve()
        pick = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 1.9, 2.0]
        ne = table["n_e"].values
        rows = []
        for p in pick:
            if p > ne.max() + 1e-9:
                continue
            i = int(np.argmin(np.abs(ne - p)))
            rows.append([_fmt(ne[i], 3), _fmt(table["median"].values[i]), _fmt(table["hdi_low"].values[i]),
                         _fmt(table["hdi_high"].values[i]), _fmt(table["fraction_inf"].values[i], 2)])
        return ["All 101 levels are in `thresholds.csv`.", "",
                _md_table(["<n_e> (electrons/QD)", "median (excitons/QD)", "HDI low", "HDI high",
                           "fraction of draws without threshold"], rows), ""]

    def at_potentials():
        at = cache.at_potentials()
        rows = []
        m, lo, hi = _hdi(at["threshold_mean_excitons"].values)
        nm, nlo, nhi = _hdi(at["mean_electrons"].values)
        for k, V in enumerate(at["potential"].values):
            rows.append([f"{V:+.3f}", f"{_fmt(nm[k], 3)} [{_fmt(nlo[k], 3)}, {_fmt(nhi[k], 3)}]", _fmt(m[k]),
                         _fmt(lo[k]), _fmt(hi[k])])
        return [_md_table(["potential (V)", "<n_e> (electrons/QD) [94 % HDI]", "<N_gain> median (excitons/QD)",
                           "HDI low", "HDI high"], rows), ""]

    return ([f"## Gain threshold <N_gain> versus doping{_not_final(model)}", ""] + _guarded(curve)
            + [f"### At the measured film TA potentials{_not_final(model)}", ""] + _guarded(at_potentials))


def _measured_csv_text(model, rows, ds):
    from .model.measured_thresholds import COLUMNS

    lines = [f"# gain thresholds at the film TA potentials (excitons/QD): measured = <N> where the window A* "
             f"{ds.attrs['read_out']} crosses 0 ({ds.attrs['family']}, per posterior draw, {ds.attrs['draws']} draws); "
             "predicted = transition counting's crossing of the same read-out (cascade to that delay, measured A_pre, A_0 = "
             "g_e g_h units); difference = measured - "
             f"predicted per draw; medians and {HDI:.0%} HDIs; model '{model.spec.name}'"]
    if _synthetic(model):
        lines.append("# SYNTHETIC data (made by bayesgain.simulate): not a measurement")
    if not _converged(model):
        lines.append("# NOT CONVERGED: these thresholds are not final -- " + _conv_stats(model))
    lines += [f"# {r['potential_V']:+.3f} V: nan -- {r['reason']}" for r in rows if r["reason"]]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([f"{r[c]:.6g}" for c in COLUMNS])
    return "\n".join(lines) + "\n" + buf.getvalue()


def _section_measured(model, cache):
    def body():
        rows, ds = cache.measured_thresholds()
        t0 = _hdi(ds["predicted_t0"].values)[0]
        table = [[f"{r['potential_V']:+.3f}", _fmt(round(r["n_e"], 6), 3),
                  f"{_fmt(r['measured_median'])} [{_fmt(r['measured_hdi_low'])}, {_fmt(r['measured_hdi_high'])}]",
                  _fmt(r["predicted_median"]), _fmt(t0[k]),
                  f"{_fmt(r['difference_median'])} [{_fmt(r['difference_hdi_low'])}, {_fmt(r['difference_hdi_high'])}]",
                  f"[{_fmt(r['difference_sim_low'])}, {_fmt(r['difference_sim_high'])}] "
                  + ("**yes**" if r["excludes_zero"] else ("n/a: " + r["reason"] if r["reason"] else "no"))]
                 for k, r in enumerate(rows)]
        flagged = [f"{r['potential_V']:+.3f} V (<n_e> = {_fmt(round(r['n_e'], 6), 3)}: {_fmt(r['difference_median'])})"
                   for r in rows if r["excludes_zero"]]
        verdict = (f"The difference's simultaneous {HDI:.0%} interval excludes 0 at {', '.join(flagged)}: there the "
                   "measured threshold departs from transition counting's prediction." if flagged else
                   f"The difference's simultaneous {HDI:.0%} interval includes 0 at every potential with a measured "
                   "threshold: the measurement agrees with transition counting's prediction.")
        return [f"Measured: the <N> at which the window A* {ds.attrs['read_out']} crosses 0, from a curve of A* "
                f"versus <N> that does not use transition counting ({ds.attrs['family']}: a Poisson average of a free "
                "per-QD absorption for 1, 2, ... excitons, anchored at the measured A_pre), fitted per posterior draw "
                "to that draw's <N> of every file with a noise replicate of the observations; never extrapolated "
                "beyond the measured <N>. Predicted: transition counting's crossing of the same read-out (its ensemble "
                "absorption through the Auger cascade to the read-out delay, on the measured pre-pump absorbance, "
                "in A_0 = g_e g_h units; not the fit's window terms, which would bend to a departure and hide it); "
                "t = 0: transition counting at t = 0 (the table above, the paper's red line), which a 5 ps "
                "read-out exceeds by ~0.05 excitons/QD on films that follow it (Auger decay by then, absorption "
                "under the band edge). About +0.02 of that (the unbleached absorption) remains in the difference. "
                "A departure is flagged where the difference's interval simultaneous over the potentials (each at "
                f"1 - {1 - HDI:.2f}/P) excludes 0: per-potential {HDI:.0%} intervals would exclude 0 somewhere by "
                "chance in about a third of experiments that follow transition counting. "
                "All in `thresholds_measured.csv`.", "",
                _md_table(["potential (V)", "<n_e>", "measured [94 % HDI]", "predicted", "predicted t = 0",
                           "measured - predicted [94 % HDI]", "simultaneous interval, excludes 0"], table), "",
                verdict, ""]

    return [f"### Measured versus predicted{_not_final(model)}", ""] + _guarded(body)


def _section_adequacy(model, cache):
    """Does the physics explain the film TA kinetics?  The residual-structure check and the discrepancy term."""
    from .model.checks import RESIDUAL_P_THRESHOLD

    def body():
        chk = cache.residuals()
        gp = model.spec.options.get("discrepancy", "none") != "none"
        lines = [f"Lag-1 autocorrelation of the physics' residuals along delay, mean over {chk['n_files']} film TA "
                 f"files: observed {chk['T_observed']:.3f}, replicated white noise {chk['T_replicated']:.3f}; "
                 f"posterior predictive p = {chk['p_value']:.3f} ({chk['n_draws']} draws; see `residuals.png`).", ""]
        if chk["flagged"]:
            lines += [f"**The physics leaves structure along delay (p < {RESIDUAL_P_THRESHOLD:g})**: something in the "
                      "film kinetics is not in the model (a 2S/higher-band tail, hot-carrier cooling, a shifted "
                      "biexciton line, baseline drift)."]
            lines += (["The fit carries a discrepancy term (`discrepancy = \"delay-gp\"`), so the intervals above "
                       "include this misfit."] if gp else
                      ["The intervals above do **not** account for it: refit with `discrepancy = \"delay-gp\"` in "
                       "the spec's [options] (a smooth misfit per file) before trusting the kinetic parameters."])
        else:
            lines += ["No structure along delay beyond the noise: the physics explains the film TA kinetics."]
        post = _post(model)
        if gp and "discrepancy_amplitude_rel" in post and "ta_noise_rel" in post:
            a = post["discrepancy_amplitude_rel"].values.reshape(-1)
            n = post["ta_noise_rel"].values.reshape(-1)
            lo, hi = _hdi(a[:, None])[1:]
            lines += ["", f"Discrepancy amplitude {np.median(a):.3g} A0_1S (94 % HDI {float(lo[0]):.3g}-"
                      f"{float(hi[0]):.3g}) against an extra scatter of {np.median(n):.3g} A0_1S per point."]
        return lines + [""]

    return ["## Does the physics explain the film TA kinetics?", ""] + _guarded(body)


def _section_lifetimes(model, cache):
    def body():
        lt = cache.lifetimes()
        Nm = lt["mean_excitons"].values
        show = [x for x in (1.0, 2.0, 3.0, 4.0, 6.0, 8.0) if Nm.min() <= x <= Nm.max()]
        rows = []
        for i, n in enumerate(lt["n_e"].values):
            for x in show:
                j = int(np.argmin(np.abs(Nm - x)))
                m, lo, hi = _hdi(lt.isel(n_e=i, mean_excitons=j).values)
                rows.append([_fmt(n, 3), _fmt(Nm[j], 3), _fmt(float(m)), _fmt(float(lo)), _fmt(float(hi))])
        return ["Time until the band edge absorbs again (A_ens(t) >= 0); 0 = no gain at t = 0.", "",
                _md_table(["<n_e> (electrons/QD)", "<N> (excitons/QD)", "median (ps)", "HDI low (ps)",
                           "HDI high (ps)"], rows), ""]

    return [f"## Gain lifetime{_not_final(model)}", ""] + _guarded(body)


def _section_single_wavelength(model, cache):
    def body():
        sw = cache.single_wavelength()
        rows = []
        for k, V in enumerate(sw["potential"].values):
            vals = []
            for name in ("lowest_gain_mean_excitons", "lowest_gain_fluence_photons_cm2", "lowest_gain_energy_nJ_cm2",
                         "lowest_gain_wavelength_nm"):
                m, lo, hi = _hdi(sw[name].isel(potential=k).values)
                vals.append(f"{_fmt(float(m))} [{_fmt(float(lo))}, {_fmt(float(hi))}]")
            rows.append([f"{V:+.3f}"] + vals)
        return [_md_table(["potential (V)", "<N> (excitons/QD)", "fluence (photons/cm^2)", "energy (nJ/cm^2)",
                           "wavelength (nm)"], rows),
                "", "Median [94 % HDI]; the minimum over wavelengths is biased low.", ""]

    return ([f"## Lowest single-wavelength threshold (g >= {G_MIN_PER_CM:g} cm^-1){_not_final(model)}", ""]
            + _guarded(body))


_CLASSIC_MAP = {  # classic row name -> posterior variable
    "cross_section_cm2": "cross_section_cm2",
    "V_1S_V": "V_1S_V",
    "sigma_1S_V": "sigma_1S_V",
    "V_C_V": "V_C_V",
    "T_eff_K": "T_eff_K",
    "biexciton_lifetime_ps": "tau_xx_ps",
}


def _section_classic(model, cache, classic_rows):
    lines = ["## Bayesian versus classic (the paper's point estimates)", ""]
    if not classic_rows:
        return lines + ["No classic analysis given (run `bayesgain classic FOLDER` or `bayesgain fit` on an "
                        "experiment folder).", ""]
    post = _post(model)
    rows = []
    for cname, pname in _CLASSIC_MAP.items():
        r = _classic_value(classic_rows, cname)
        if r is None:
            continue
        if pname in post:
            m, lo, hi = _hdi(np.asarray(post[pname].isel(experiment=0).values if "experiment" in post[pname].dims
                                        else post[pname].values).ravel())
            b = f"{_fmt(float(m))} [{_fmt(float(lo))}, {_fmt(float(hi))}]"
        elif pname == "T_eff_K" and "sigma_1S_V" in post:
            from .model.quantities import effective_temperature

            m, lo, hi = _hdi(effective_temperature(model).values)
            b = f"{_fmt(float(m))} [{_fmt(float(lo))}, {_fmt(float(hi))}] (from sigma_1S)"
        else:
            b = "not in this model"
        rows.append([f"`{cname}`", r.get("unit", ""), f"{_fmt(r['value'])} +- {_fmt(r['uncertainty'], 2)}", b,
                     (r.get("note") or "")[:80]])
    try:
        at = cache.at_potentials()
        m, lo, hi = _hdi(at["threshold_mean_excitons"].values)
        Vb = at["potential"].values
    except Exception:  # noqa: BLE001
        Vb = None
    for V, val, unc in _classic_thresholds(classic_rows):
        b = "not in this model"
        if Vb is not None:
            k = int(np.argmin(np.abs(Vb - V)))
            if abs(Vb[k] - V) < 5e-4:
                b = f"{_fmt(float(m[k]))} [{_fmt(float(lo[k]))}, {_fmt(float(hi[k]))}]"
        rows.append([f"`threshold_excitons[V={V:+.3f}]`", "excitons/QD", f"{_fmt(val)} +- {_fmt(unc, 2)}", b, ""])
    try:
        sw = cache.single_wavelength()
        Vs = sw["potential"].values
    except Exception:  # noqa: BLE001
        sw, Vs = None, None
    tag = f"g{G_MIN_PER_CM:g}"
    for unit_tag, var, unit in (("excitons", "lowest_gain_mean_excitons", "excitons/QD"),
                                ("photons_cm2", "lowest_gain_fluence_photons_cm2", "photons/cm^2"),
                                ("nJ_cm2", "lowest_gain_energy_nJ_cm2", "nJ/cm^2")):
        for r in classic_rows:
            if not r["name"].startswith(f"lowest_threshold_{tag}_{unit_tag}[V="):
                continue
            V = float(r["name"].split("=", 1)[1].rstrip("]"))
            b = "not in this model"
            if sw is not None:
                k = int(np.argmin(np.abs(Vs - V)))
                if abs(Vs[k] - V) < 5e-4:
                    mm, ll, hh = _hdi(sw[var].isel(potential=k).values)
                    b = f"{_fmt(float(mm))} [{_fmt(float(ll))}, {_fmt(float(hh))}]"
            rows.append([f"`{r['name']}`", unit, f"{_fmt(r['value'])} +- {_fmt(r['uncertainty'], 2)}", b,
                         (r.get("note") or "")[:80]])
    lines += [_md_table(["quantity", "unit", "classic (value +- 1 sd)", "Bayesian median [94 % HDI]", "classic note"],
                        rows), ""]
    lines += ["The classic rows are the paper's own chain of separate fits (`bayesgain.classic`); the Bayesian "
              "column propagates every uncertainty of this model jointly.", ""]
    return lines


# ----------------------------------------------------------------------------- entry point
def fig_chirp(model, cache, path):
    """The chirp t0(lambda) on the uncorrected TA map of every experiment that had a chirp correction."""
    from .chirp_figure import draw_chirp_map
    from .io.chirp import chirp_map_from_attrs

    maps = [(n, chirp_map_from_attrs(model.data.attrs, f"{n}:")) for n in model.names]
    maps = [(n, ds) for n, ds in maps if ds is not None]
    if not maps:
        raise Skip("no experiment had a chirp correction")
    fig, axes = plt.subplots(len(maps), 1, figsize=(7.0, 4.2 * len(maps)), squeeze=False)
    for ax, (n, ds) in zip(axes[:, 0], maps):
        draw_chirp_map(ax, ds)
        ax.set_title(f"{n}: {ax.get_title()}", fontsize=8.5)
    return _save(fig, model, path, "chirp correction: t0(lambda) on the TA map before the correction")


_FIGURE_FUNCS = {
    "fig5a_charging.png": fig_charging,
    "fig5b_threshold_vs_doping.png": fig_threshold,
    "fig5c_gain_lifetime.png": fig_lifetime,
    "fig5d_single_wavelength.png": fig_single_wavelength,
    "fig5e_gain_coefficient.png": fig_gain_coefficient,
    "trace.png": fig_trace,
    "rank.png": fig_rank,
    "ppc.png": fig_ppc,
    "residuals.png": fig_residuals,
    "prior_posterior.png": fig_prior_posterior,
    CHIRP_FIGURE: fig_chirp,
}


def write_fit_outputs(model, out_dir, classic_folder=None, figures=True, log=None):
    """Everything a fit leaves in ``out_dir``: posterior.nc, classic.csv (when ``classic_folder``, an
    experiment folder or its loaded DataTree, is given) and :func:`write_report`'s tables, report.md and figures -- the one sequence that
    ``bayesgain fit``, ``bayesgain demo`` and the benchmark share.

    The classic analysis only feeds the side-by-side table: when it fails the reason is printed to
    stderr and the report is written without it.  Returns :func:`write_report`'s dict.
    """
    import sys

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = log or (lambda s: None)
    model.save(out / "posterior.nc", overwrite=True)
    say(f"wrote {out / 'posterior.nc'}")
    rows = None
    if classic_folder is not None:
        try:
            from .classic import classic_analysis, write_classic_csv
            from .io import load_experiment

            tree = classic_folder if hasattr(classic_folder, "children") else load_experiment(classic_folder)
            rows = classic_analysis(tree)
            write_classic_csv(rows, out / "classic.csv")
            say(f"wrote {out / 'classic.csv'} (classic analysis)")
        except Exception as exc:  # noqa: BLE001 -- the Bayesian report does not depend on it
            print(f"note: classic analysis of {classic_folder} failed ({type(exc).__name__}: {exc}); "
                  "report without it", file=sys.stderr)
            rows = None
    return write_report(model, out, classic_rows=rows, figures=figures, log=log)


def write_report(model, out_dir, classic_rows=None, figures=True, log=None):
    """Write summary.csv, thresholds.csv, report.md and the figures of a fitted model into ``out_dir``.

    ``classic_rows``: rows of :func:`bayesgain.classic.classic_analysis` (dicts name, value,
    uncertainty, unit, method, note) for the side-by-side table and the classic points of Fig. 5b.
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
    cache = _Cache(model)
    status = {}

    summary = _summary(model)
    with atomic_path(out / "summary.csv") as tmp:
        summary.to_csv(tmp)
    files.append(out / "summary.csv")
    say(f"wrote {out / 'summary.csv'}")

    try:
        _, table = cache.threshold_curve()
        write_text_atomic(out / "thresholds.csv", _threshold_csv_text(model, table))
        files.append(out / "thresholds.csv")
        say(f"wrote {out / 'thresholds.csv'}")
        thr_status = "ok"
    except Exception as exc:  # noqa: BLE001
        thr_status = f"not written: {exc}"
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

    if figures:
        for name, fn in _FIGURE_FUNCS.items():
            try:
                if fn is fig_threshold:
                    fn(model, cache, out / name, classic_rows)
                else:
                    fn(model, cache, out / name)
                status[name] = "ok"
                files.append(out / name)
                say(f"wrote {out / name}")
            except Skip as exc:
                status[name] = f"skipped: {exc}"
            except Exception as exc:  # noqa: BLE001 -- one figure must not stop the report
                plt.close("all")
                tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
                status[name] = f"FAILED: {tb}"
                say(f"figure {name} FAILED: {tb}")

    text = _report_text(model, cache, summary, classic_rows, status, thr_status, figures)
    write_text_atomic(out / "report.md", text)
    files.append(out / "report.md")
    say(f"wrote {out / 'report.md'}")
    return {"files": files, "figures": status, "converged": _converged(model), "synthetic": _synthetic(model)}


def _component_notes(model):
    """Components the data switched off (stored with the fit; older fits have none)."""
    attrs = model.idata.attrs if hasattr(model.idata, "attrs") else {}
    text = attrs.get("component_notes") or model.data.attrs.get("component_notes", "")
    return [line for line in str(text).split("\n") if line]


def _report_text(model, cache, summary, classic_rows, status, thr_status, figures):
    from . import __version__

    attrs = model.idata.attrs if hasattr(model.idata, "attrs") else {}
    L = []
    if not _converged(model):
        L += ["> **NOT CONVERGED** -- " + _conv_stats(model) +
              ". The numbers below, thresholds included, are **not final**: sample longer (more --draws/--tune), "
              "check the trace and rank plots, then refit.", ""]
    if _synthetic(model):
        L += ["> **SYNTHETIC data**: the experiments were made by `bayesgain.simulate` (truth.toml beside them); "
              "not a measurement.", ""]
    L += [f"# bayesgain fit report: model `{model.spec.name}`", ""]
    post = _post(model)
    comps = [k for k, v in model.spec.components.items() if v]
    L += ["## What was fitted", "",
          f"- model spec: `{model.spec.name}` -- {model.spec.description}",
          f"- components: {', '.join(comps)}; observed: {', '.join(model.observed_names)}",
          f"- options: disorder = {model.spec.options.get('disorder')}, auger = {model.spec.options.get('auger')}, "
          f"likelihood = {model.spec.options.get('likelihood')}",
          *[f"- {note}" for note in _component_notes(model)],
          f"- experiments: {', '.join(map(str, model.names))}",
          "- observations: " + ", ".join(f"{d} {model.data.sizes[d]}" for d in
                                          ("sol_point", "sec_point", "ta_point", "subgap_point")
                                          if d in model.data.dims),
          f"- sampling: {post.sizes['chain']} chains x {post.sizes['draw']} draws"
          + (f", {float(attrs['sampling_seconds']):.1f} s" if "sampling_seconds" in attrs else "")
          + f"; Poisson truncation n_max = {model.n_max}",
          f"- bayesgain {attrs.get('bayesgain_version', __version__)}"
          + (f", fitted {attrs['created']}" if "created" in attrs else ""), ""]
    L += _section_convergence(model, summary)
    L += _section_parameters(model, summary)
    L += _section_thresholds(model, cache)
    L += _section_measured(model, cache)
    if thr_status != "ok":
        L += [f"`thresholds.csv` {thr_status}", ""]
    L += _section_adequacy(model, cache)
    L += _section_lifetimes(model, cache)
    L += _section_single_wavelength(model, cache)
    L += _section_classic(model, cache, classic_rows)
    L += ["## Figures", ""]
    if not figures:
        L += ["Figures were not made (--no-figures).", ""]
    else:
        for name, what in FIGURES.items():
            st = status.get(name, "not made")
            if st == "ok":
                L += [f"- [{name}]({name}): {what}"]
            else:
                L += [f"- {name}: {what} -- {st}"]
        if status.get(CHIRP_FIGURE) == "ok":  # listed only for experiments that had a chirp correction
            L += [f"- [{CHIRP_FIGURE}]({CHIRP_FIGURE}): {CHIRP_FIGURE_TEXT}"]
        L += [""]
        L += [f"![{n}]({n})" for n in FIGURES if status.get(n) == "ok" and n.startswith("fig5")] + [""]
    L += ["## Files", "", "- `posterior.nc`: the fit (posterior, log-likelihoods, observations, spec); "
          "`bayesgain report DIR` remakes this report from it",
          "- `summary.csv`: ArviZ summary with units", "- `thresholds.csv`: <N_gain> versus <n_e> (n_e, median, "
          "hdi_low, hdi_high; comment lines start with #)",
          "- `thresholds_measured.csv`: measured and predicted thresholds at the film TA potentials and their "
          "difference (medians, HDIs)", ""]
    return "\n".join(L)
