"""The paper's Fig. 5 panels with posterior bands: charging, threshold versus doping, gain lifetime,
single-wavelength threshold spectrum, window gain coefficient."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

from ..cache import Skip
from ..common import G_MIN_PER_CM, HDI, _has, _hdi, _of_experiment, _post
from ..tables import _classic_thresholds
from .saving import _save


def _file_of_points(model, points):
    """Index into ``ta_mean_excitons`` (dim ta_file) and the potential index of each film TA point (model.layout)."""
    return model.layout.file_index[points], model.layout.ta_potential_index[points]


def _of(d, name, experiment_of, experiment):
    """The values of ``name`` of one experiment (``experiment_of``: the experiment of each value; all without it)."""
    v = d[name].values
    return v[d[experiment_of].values == experiment] if experiment_of in d else v


def _potential_grid(d, experiment):
    """131 potentials over one experiment's SEC range (its film TA potentials without SEC): the charging band's grid."""
    V = _of(d, "sec_point_potential", "sec_point_experiment", experiment) if "sec_point_potential" in d else []
    if len(V) == 0 and "ta_potential_V" in d:
        V = _of(d, "ta_potential_V", "ta_potential_experiment", experiment)
    return np.linspace(np.min(V), np.max(V), 131)


# ----------------------------------------------------------------------------- Fig. 5 panels
def fig_charging(model, cache, path, experiment=0):
    from ...model.quantities import mean_electrons_band

    if not _has(model, "V_1S_V", "V_C_V"):
        raise Skip("needs the charging parameters")
    d = model.data
    band = mean_electrons_band(model, potential_V=_potential_grid(d, experiment), experiment=experiment)
    V = band["potential"].values
    med, lo, hi = _hdi(band.values)
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    ax.fill_between(V, lo, hi, color="tab:blue", alpha=0.3, lw=0, label=f"posterior <n_e>(V), {HDI:.0%} HDI")
    ax.plot(V, med, color="tab:blue", lw=1.5, label="posterior median")
    if "sec_n_e" in d and "sec_bleach_scale" in _post(model):
        s = np.asarray(_of_experiment(_post(model)["sec_bleach_scale"], experiment).values).ravel()
        ax.plot(V, med * float(np.median(s)), color="tab:blue", lw=1, ls="--",
                label=f"x SEC bleach scale ({np.median(s):.3f}): what the SEC measures")
    if "sec_n_e" in d:
        sel = d["sec_point_experiment"].values == experiment if "sec_point_experiment" in d else slice(None)
        sw = d["sec_point_sweep"].values[sel]
        labels = d["sweep_label"].values if "sweep_label" in d else None
        cmap = plt.get_cmap("tab10")
        for k, s_ in enumerate(np.unique(sw)):
            m = sw == s_
            lab = str(labels[s_]) if labels is not None and s_ < len(labels) else f"sweep {s_}"
            ax.plot(d["sec_point_potential"].values[sel][m], d["sec_n_e"].values[sel][m], "o", ms=2.5,
                    color=cmap(k % 10), alpha=0.8, label=f"SEC data, {lab}")
    if "ta_potential_V" in d:
        for v in _of(d, "ta_potential_V", "ta_potential_experiment", experiment):
            ax.axvline(v, color="0.6", lw=0.6, ls=":")
    ax.set_xlabel("potential V (V vs reference electrode)")
    ax.set_ylabel("<n_e> (electrons/QD)")
    ax.legend(fontsize=6.5, loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, model, path, "<n_e>(V): SEC charging", experiment=experiment)


def fig_threshold(model, cache, path, classic=None, experiment=0):
    """Fig. 5b of one experiment; ``classic`` (the classic Dataset of experiment 0) is drawn on experiment 0."""
    curve, table = cache.threshold_curve(experiment)
    ne = table["n_e"].values
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    ax.fill_between(ne, table["hdi_low"].values, table["hdi_high"].values, color="tab:red", alpha=0.3, lw=0,
                    label=f"posterior <N_gain>, {HDI:.0%} HDI")
    ax.plot(ne, table["median"].values, color="tab:red", lw=1.5, label="posterior median")
    overlays = [("transition counting at the TA potentials", lambda: _plot_at_potentials(ax, cache, experiment)),
                ("measured thresholds", lambda: _plot_measured(ax, cache, experiment))]
    if experiment == 0:
        overlays.append(("classic thresholds", lambda: _plot_classic(ax, model, classic)))
    notes = [n for n in (_overlay(what, draw) for what, draw in overlays) if n]
    ax.set_xlabel("<n_e> (electrons/QD)")
    ax.set_ylabel("<N_gain> (excitons/QD)")
    ax.set_ylim(0, 1.45 * ax.get_ylim()[1])  # headroom: the legend sits above the points, not on them
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    return _save(fig, model, path, "gain threshold versus doping", experiment=experiment, notes=notes)


def _overlay(what, draw):
    """Draw an optional overlay: one this model cannot make (Skip) is left out silently (report.md says why); one
    that fails is left out with a note on the figure naming the error, so a bug is not mistaken for a choice."""
    try:
        draw()
    except Skip:
        return None
    except Exception as exc:  # noqa: BLE001 -- an overlay's failure is shown on the figure, the figure stands
        return f"overlay '{what}' FAILED ({type(exc).__name__}: {str(exc)[:80]})"
    return None


def _plot_at_potentials(ax, cache, experiment):
    """Transition counting's threshold at each measured film TA potential (t = 0) with its HDI bar on Fig. 5b."""
    at = cache.at_potentials(experiment)
    m, l_, h = _hdi(at["threshold_mean_excitons"].values)
    nm = np.median(at["mean_electrons"].values, axis=0)
    ax.errorbar(nm, m, yerr=[m - l_, h - m], fmt="s", color="black", ms=4, capsize=2,
                label="transition counting (t = 0) at the measured TA potentials")


def _plot_classic(ax, model, classic):
    """The classic analysis's thresholds (+-1 sd) on Fig. 5b, at the <n_e> of their potentials (posterior median)."""
    from ...model.quantities import mean_electrons_band

    ct = _classic_thresholds(classic)
    if not ct:
        return
    nes = np.median(mean_electrons_band(model, potential_V=np.array([c[0] for c in ct])).values, axis=0)
    vals = np.array([c[1] for c in ct])
    errs = np.array([c[2] for c in ct])
    ok = np.isfinite(vals)
    ax.errorbar(nes[ok], vals[ok], yerr=np.where(np.isfinite(errs[ok]), errs[ok], 0), fmt="D", mfc="white",
                color="tab:green", ms=5, capsize=2,
                label="classic point estimates (+-1 sd; <n_e> from the posterior median)")


def _plot_measured(ax, cache, experiment):
    """Measured thresholds (window A* at the gain delay crossing 0) with their HDI bars on Fig. 5b."""
    rows, ds = cache.measured_thresholds(experiment)
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


def fig_lifetime(model, cache, path, experiment=0):
    lt = cache.lifetimes(experiment)
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
    return _save(fig, model, path, "gain lifetime versus excitation", experiment=experiment)


def fig_single_wavelength(model, cache, path, experiment=0):
    sw = cache.single_wavelength(experiment)
    lam = sw["wavelength"].values
    V = sw["potential"].values
    sigma = np.asarray(_of_experiment(_post(model)["film_cross_section_cm2"], experiment).values).ravel()
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
    ax.text(0.02, 0.02, f"curves: <N> at which g >= {G_MIN_PER_CM:g} cm$^{{-1}}$ "
            "(the gain region lies above each curve);\n"
            f"missing where not reached in at least half the draws; fluence axis = <N> / film sigma ({sig:.3g} cm$^2$)",
            transform=ax.transAxes, fontsize=6.5, va="bottom")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, model, path, f"single-wavelength threshold spectrum (g >= {G_MIN_PER_CM:g} per cm)",
                 experiment=experiment)


def _gain_per_file(model, gc):
    """Per draw the window gain coefficient and <N> of every film TA file (gain delays averaged), and each file's
    potential index."""
    points = gc["point"].values
    comp = model.data["ta_point_component"].values[points]
    use = comp == "gain" if np.any(comp == "gain") else np.ones(points.size, bool)
    points = points[use]
    g = gc["gain_per_cm"].values[:, use]
    files, pot_index = _file_of_points(model, points)
    Nf = np.asarray(_post(model)["ta_mean_excitons"].values)
    Nf = Nf.reshape(-1, Nf.shape[-1])
    ufiles, inv = np.unique(files, return_inverse=True)
    gf = np.stack([g[:, inv == k].mean(axis=1) for k in range(ufiles.size)], axis=1)
    potf = np.array([pot_index[inv == k][0] for k in range(ufiles.size)])
    return gf, Nf[:, ufiles], potf


def fig_gain_coefficient(model, cache, path, experiment=0):
    gc = cache.gain_coefficient(experiment)
    d = model.data
    gf, Nfile, potf = _gain_per_file(model, gc)
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
    return _save(fig, model, path, "gain coefficient versus excitation", experiment=experiment)
