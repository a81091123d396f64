"""Figures of the classic analysis (:mod:`bayesgain.classic`), one PNG per method.

:func:`write_classic_figures` writes, at print resolution (200 dpi), with units on every axis:

* ``gain_maps.png`` -- A* = A_0 + Delta A_SEC + Delta A_TA (wavelength x delay, symlog delay) at the
  lowest and highest TA potential and the highest fluence, diverging colour map centred at 0
  (blue = negative = gain), 1S window marked, plus the window-averaged A*(t) (cf. paper Fig. 2f).
* ``threshold_fits.png`` -- per potential, the window-averaged bleach at 5 ps (after thermalisation) versus <N> = sigma J with
  the heuristic fit A (1 - exp(-B <N>)), the level A_0 + Delta A_SEC and the threshold (Fig. S26).
* ``charging_fit.png`` -- <n_e>(V) per cycle and sweep direction with the Fermi-Dirac fit
  (Gaussian disorder) and the normalised integrated PL (Fig. 1e / S12).
* ``kinetics_fits.png`` -- band-edge bleach kinetics of the neutral film at the fluences of
  :func:`bayesgain.classic.biexciton_lifetime` with the nested exponential fits (eq. S35, Fig. S27).
* ``cross_section_fit.png`` -- 1-3 ns solution bleach versus depth-averaged fluence with the
  eq. S34 fit (Fig. S19/S23).

A figure that cannot be made for an experiment (missing group, failed fit) is skipped with a
:func:`warnings.warn`; every file is written atomically, so no half-written file is ever left.
Synthetic experiments say "SYNTHETIC" in the title and in a footnote of every figure.
"""

from __future__ import annotations

import pathlib
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .. import physics as ph  # noqa: E402
from .. import preprocess as pp  # noqa: E402
from .._atomic import atomic_path  # noqa: E402
from ..fitting import fit_fermi_dirac, saturation_curve  # noqa: E402
from ..preprocess import GAIN_DELAY_PS  # noqa: E402
from .kinetics import biexciton_lifetime, nested_exponential_fits  # noqa: E402
from .saturation import _delay_mean, cross_section_from_tree, film_thresholds  # noqa: E402

__all__ = ["write_classic_figures", "FIGURE_NAMES", "DPI"]

DPI = 200
FIGURE_NAMES = ("gain_maps.png", "threshold_fits.png", "charging_fit.png", "kinetics_fits.png",
                "cross_section_fit.png")
_SKIP_ERRORS = (ValueError, KeyError, IndexError, np.linalg.LinAlgError)


# ----------------------------------------------------------------------------- helpers
def _is_synthetic(tree):
    return bool(tree.attrs.get("synthetic", False))


def _finish(fig, tree, title):
    """Suptitle (with SYNTHETIC when applicable) and a footnote naming the experiment."""
    name = tree.attrs.get("name", "experiment")
    if _is_synthetic(tree):
        fig.suptitle(f"SYNTHETIC DATA -- {title}", fontsize=12, color="firebrick", fontweight="bold")
        note = f"SYNTHETIC data ('{name}', bayesgain.simulate): not a measurement"
        fig.text(0.5, 0.005, note, ha="center", va="bottom", fontsize=7.5, color="firebrick")
    else:
        fig.suptitle(f"{title} ({name})", fontsize=12)
        fig.text(0.5, 0.005, f"experiment '{name}'; classic analysis (bayesgain.classic)", ha="center",
                 va="bottom", fontsize=7.5, color="0.3")


def _save(fig, path):
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return pathlib.Path(path)


def _ref_electrode(tree):
    try:
        ref = tree["film"].attrs.get("reference_electrode")
    except KeyError:
        ref = None
    return f"V vs {ref}" if ref else "V"


def _band_window(tree, corrected):
    return pp.resolve_window(tree, probe_wavelengths=corrected["dA"]["wavelength"].values)


def _sigma_label(value, sd):
    k = int(np.floor(np.log10(abs(value)))) if value else 0
    return (rf"$a(1-e^{{-\sigma J'}})$: $\sigma = ({value / 10.0**k:.2f} \pm {sd / 10.0**k:.2f})"
            rf"\times10^{{{k}}}$ cm$^2$")


def _sci(x):
    m, e = f"{x:.2e}".split("e")
    return rf"{m}\times10^{{{int(e)}}}"


# ----------------------------------------------------------------------------- 1. gain maps
def gain_maps_figure(tree, corrected):
    esa = pp.excited_state_absorption(tree, corrected)
    A = esa["A_star"]
    bw = _band_window(tree, corrected)
    pots = np.sort(A["potential"].values)
    measured = pp.film_ta_measured(tree)
    # each potential at the highest fluence measured there (a grid with holes may lack the overall highest)
    top = {float(V): float(A["fluence"].values[measured.sel(potential=V).values].max()) for V in pots}
    F = max(top.values())
    chosen = [pots[0], pots[-1]] if pots.size > 1 else [pots[0]]
    maps = [A.sel(potential=V, fluence=top[float(V)]).transpose("wavelength", "delay") for V in chosen]
    lam = A["wavelength"].values
    t = A["delay"].values
    # colour range from the band-edge region (the blue end, far above the gap, saturates: extend="both")
    near = (lam >= bw.center - 6 * bw.hwhm) & (lam <= bw.center + 6 * bw.hwhm)
    vals = np.concatenate([m.values[near].ravel() for m in maps])
    half = 1.1 * float(np.nanpercentile(np.abs(vals), 99.5)) or 1e-3
    # A* = 0 contour only around the 1S window (elsewhere A* ~ 0 is noise, not a gain edge)
    edge = (lam >= bw.lo - 2 * bw.hwhm) & (lam <= bw.hi + 0.5 * bw.hwhm)
    norm = mcolors.CenteredNorm(vcenter=0.0, halfrange=half)
    ref = _ref_electrode(tree)

    fig, axes = plt.subplots(1, len(chosen) + 1, figsize=(5.2 * (len(chosen) + 1), 4.8),
                             gridspec_kw=dict(width_ratios=[1] * len(chosen) + [0.9]), layout="constrained")
    fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97), wspace=0.08)
    im = None
    for ax, V, m in zip(axes, chosen, maps):
        im = ax.pcolormesh(t, lam, m.values, cmap="RdBu_r", norm=norm, shading="nearest", rasterized=True)
        ax.contour(t, lam[edge], m.values[edge], levels=[0.0], colors="k", linewidths=0.9)
        ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
        for y in bw.bounds:
            ax.axhline(y, color="gold", lw=1.4, ls="--")
        ax.text(t.max(), bw.hi, " 1S window", color="goldenrod", fontsize=8, ha="right", va="bottom")
        ax.set_xlabel("pump-probe delay (ps, symlog)")
        ax.set_ylabel("probe wavelength (nm)")
        ax.set_title(f"V = {V:+.3f} {ref}\n" + rf"$J = {_sci(top[float(V)])}$ photons cm$^{{-2}}$", fontsize=9.5)
    cb = fig.colorbar(im, ax=axes[:len(chosen)], shrink=0.9, pad=0.01, extend="both")
    cb.set_label("A* = A$_0$ + ΔA$_{SEC}$ + ΔA$_{TA}$ (OD)\nnegative (blue) = gain; black line: A* = 0")

    ax = axes[-1]
    avg, sem = pp.window_average(A, bw)
    cmap = plt.get_cmap("viridis")
    for i, V in enumerate(pots):
        y = avg.sel(potential=V, fluence=top[float(V)]).values
        lower = "" if top[float(V)] == F else rf" ($J = {_sci(top[float(V)])}$)"
        ax.plot(t, y * 1e3, color=cmap(i / max(len(pots) - 1, 1)), lw=1.3, label=f"{V:+.3f} V{lower}")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
    ax.set_xlim(t.min(), t.max())
    ax.set_xlabel("pump-probe delay (ps, symlog)")
    ax.set_ylabel(f"A* averaged over {bw.lo:.0f}-{bw.hi:.0f} nm (mOD)")
    ax.set_title("1S-window A*(t) at the highest fluence\n(below 0 = gain)", fontsize=9.5)
    ax.legend(title=f"potential ({ref})", fontsize=7, title_fontsize=7.5, loc="best")
    _finish(fig, tree, "excited-state absorption A* (gain maps)")
    return fig


# ----------------------------------------------------------------------------- 2. thresholds
def threshold_figure(tree, corrected, sigma_cm2, delays_ps=GAIN_DELAY_PS):
    results = film_thresholds(tree, sigma_cm2, corrected, delays_ps=delays_ps)
    esa = pp.excited_state_absorption(tree, corrected)
    bw = _band_window(tree, corrected)
    read = _delay_mean(corrected["dA"], delays_ps)
    bleach, bleach_sem = pp.window_average(-read, bw)
    level, level_sem = pp.window_average(esa["A_pre"], bw)
    N = sigma_cm2 * corrected["fluence"].values
    Ngrid = np.linspace(0.0, N.max() * 1.05, 300)
    pots = sorted(results)
    ncol = min(3, len(pots))
    nrow = int(np.ceil(len(pots) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.3 * ncol, 3.4 * nrow + 0.6), squeeze=False,
                             layout="constrained")
    fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    ref = _ref_electrode(tree)
    for ax, V in zip(axes.flat, pots):
        y = np.abs(bleach.sel(potential=V).values)
        ax.errorbar(N, y * 1e3, yerr=bleach_sem.sel(potential=V).values * 1e3, fmt="o", ms=4, color="C0",
                    capsize=2, label="|ΔA| 1S window")
        A0 = float(level.sel(potential=V))
        ax.axhline(A0 * 1e3, color="C3", ls="--", lw=1.2, label="A$_0$ + ΔA$_{SEC}$")
        res = results[V]
        if isinstance(res, Exception):
            ax.text(0.03, 0.97, "no threshold:\n" + str(res)[:90], transform=ax.transAxes, va="top", fontsize=7,
                    color="C3", wrap=True)
        else:
            ax.plot(Ngrid, saturation_curve(Ngrid, res["A"], res["B"]) * 1e3, color="k", lw=1.2,
                    label="A(1-e$^{-B⟨N⟩}$)")
            th, sd = res["value"], res["uncertainty"]
            ax.axvspan(th - sd, th + sd, color="C2", alpha=0.2, lw=0)
            ax.axvline(th, color="C2", lw=1.4, label=f"⟨N⟩$_{{gain}}$ = {th:.3g} ± {sd:.2g}")
        ax.set_xlim(0, Ngrid[-1])
        ax.set_ylim(0, max(np.nanmax(y), A0, 0) * 1.25 * 1e3)
        ax.set_title(f"V = {V:+.3f} {ref}", fontsize=9.5)
        ax.set_xlabel("⟨N⟩ = σJ (excitons per QD)")
        ax.set_ylabel(f"|ΔA| {read.attrs['read_out'].split(' (')[0]} (mOD)")
        ax.legend(fontsize=6.5, loc="lower right")
    for ax in list(axes.flat)[len(pots):]:
        ax.set_visible(False)
    _finish(fig, tree, rf"gain thresholds (heuristic fit), $\sigma = {_sci(sigma_cm2)}$ cm$^2$")
    return fig


# ----------------------------------------------------------------------------- 3. charging
def charging_figure(tree, V_C=None):
    sec = pp.sec_electrons(tree)
    ne = sec["n_e"]
    V = ne["potential"].values
    g_e = int(tree.attrs.get("g_e", 2))
    T = float(tree.attrs["temperature_K"])
    Vs = np.broadcast_to(V, ne.shape)
    fd = fit_fermi_dirac(Vs.ravel(), ne.values.ravel(), V_C=V_C, temperature_K=T, g_e=g_e)
    Vgrid = np.linspace(V.min(), V.max(), 400)
    curve = ph.mean_electrons(ph.charge_fractions(Vgrid, fd["V_1S"][0], fd["V_C"][0], fd["sigma_1S"][0], T, g_e))
    has_pl = "pl_norm" in sec
    fig, axes = plt.subplots(2 if has_pl else 1, 1, figsize=(7.0, 7.4 if has_pl else 4.6), sharex=True,
                             squeeze=False, layout="constrained")
    fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    axes = axes[:, 0]
    ref = _ref_electrode(tree)
    markers = {"forward": ("o", "-"), "backward": ("s", "--")}
    ax = axes[0]
    cycles = ne["cycle"].values
    for i, c in enumerate(cycles):
        for d in ne["direction"].values:
            mk, ls = markers.get(str(d), ("^", ":"))
            ax.plot(V, ne.sel(cycle=c, direction=d).values, marker=mk, ls=ls, lw=0.7, ms=3.2, mfc="none",
                    color=f"C{i}", label=f"cycle {c}, {d}")
    ax.plot(Vgrid, curve, color="k", lw=2.0,
            label=(f"Fermi-Dirac fit: V$_{{1S}}$ = {fd['V_1S'][0]:.3f} V ± {fd['V_1S'][1] * 1e3:.1f} mV\n"
                   f"σ$_{{1S}}$ = {fd['sigma_1S'][0] * 1e3:.0f} ± {fd['sigma_1S'][1] * 1e3:.0f} mV, "
                   f"V$_C$ = {fd['V_C'][0] * 1e3:.1f} mV{' (fixed)' if V_C is not None else ''}"))
    ax.axvline(fd["V_1S"][0], color="0.5", lw=0.8, ls=":")
    ax.set_ylabel("⟨n$_e$⟩ (electrons per QD)")
    ax.set_title(f"1S electrons from the SEC bleach (window {sec.attrs['window_nm'][0]:.0f}-"
                 f"{sec.attrs['window_nm'][1]:.0f} nm); fit rms {fd['rms']:.3f}", fontsize=9.5)
    ax.legend(fontsize=7, loc="best")
    if has_pl:
        ax = axes[1]
        pl = sec["pl_norm"]
        for i, c in enumerate(cycles):
            for d in pl["direction"].values:
                mk, ls = markers.get(str(d), ("^", ":"))
                ax.plot(V, pl.sel(cycle=c, direction=d).values, marker=mk, ls=ls, lw=0.7, ms=3.2, mfc="none",
                        color=f"C{i}", label=f"cycle {c}, {d}")
        ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
        ax.set_ylabel("integrated PL / PL at open circuit (1)")
        ax.set_title("normalised photoluminescence", fontsize=9.5)
        ax.legend(fontsize=7, loc="best", ncol=2)
    axes[-1].set_xlabel(f"electrode potential ({ref})")
    _finish(fig, tree, "electrochemical charging (Fermi-Dirac fit)")
    return fig


# ----------------------------------------------------------------------------- 4. kinetics
def kinetics_figure(tree, corrected, fluence_indices=(0, 3), t_min_ps=1.0):
    bx = biexciton_lifetime(tree, corrected, fluence_indices=fluence_indices, t_min_ps=t_min_ps)
    dA = corrected["dA"]
    bw = _band_window(tree, corrected)
    V_oc = float(tree["film"].attrs["open_circuit_potential_V"])
    sub = dA.sel(potential=V_oc, method="nearest")
    Vsel = float(sub["potential"])
    bleach, bleach_sem = pp.window_average(-sub, bw)
    t = dA["delay"].values
    traces = bleach.isel(fluence=list(fluence_indices)).transpose("fluence", "delay").values
    fits = nested_exponential_fits(t, traces, n_terms=len(fluence_indices), t_min_ps=t_min_ps)
    rates = [f["rate"] for f in fits]
    fit_sel = t >= t_min_ps
    tpos = t > 0
    tgrid = np.geomspace(t_min_ps, t.max(), 300)

    fig, axes = plt.subplots(2, 1, figsize=(9.6, 6.6), sharex=True, height_ratios=[3, 1], layout="constrained")
    fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    ax, axr = axes
    all_F = dA["fluence"].values
    for j in range(all_F.size):
        if j not in fluence_indices:
            ax.plot(t[tpos], bleach.isel(fluence=j).values[tpos] * 1e3, color="0.8", lw=0.7, zorder=0)
    for k, fi in enumerate(fluence_indices):
        y = traces[k]
        # amplitudes and background by linear least squares at the classic fit's rates (same optimum)
        def basis(tt, _r=tuple(rates[:k + 1])):
            return np.column_stack([np.ones_like(tt)] + [np.exp(-r * tt) for r in _r])

        coef, *_ = np.linalg.lstsq(basis(t[fit_sel]), y[fit_sel], rcond=None)
        col = f"C{k}"
        ax.errorbar(t[tpos], y[tpos] * 1e3, yerr=bleach_sem.isel(fluence=fi).values[tpos] * 1e3, fmt="o", ms=3,
                    color=col, mfc="none", elinewidth=0.6, capsize=0,
                    label=rf"$J = {_sci(all_F[fi])}$ photons cm$^{{-2}}$")
        taus = ", ".join(f"τ$_{i + 1}$ = {1 / r:.0f} ps" for i, r in enumerate(rates[:k + 1]))
        ax.plot(tgrid, basis(tgrid) @ coef * 1e3, color=col, lw=1.8,
                label=f"order-{k + 1} fit ({taus}{', fixed τ$_1$' if k else ''})")
        axr.plot(t[fit_sel], (y[fit_sel] - basis(t[fit_sel]) @ coef) * 1e3, "o", ms=2.5, color=col, mfc="none")
    ax.axvline(t_min_ps, color="0.5", ls=":", lw=0.8)
    ax.text(t_min_ps, ax.get_ylim()[1], " fit start", fontsize=7, color="0.4", va="top")
    axr.axhline(0.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_ylabel(f"-ΔA over {bw.lo:.0f}-{bw.hi:.0f} nm (mOD)")
    ax.set_title(f"neutral film, V = {Vsel:+.3f} {_ref_electrode(tree)}\n"
                 f"biexciton lifetime τ$_{{XX}}$ = {bx['lifetime_ps']:.0f} ± {bx['lifetime_sd_ps']:.0f} ps "
                 f"(single exciton {bx['r1_lifetime_ps']:.0f} ps)", fontsize=9.5)
    ax.plot([], [], color="0.8", lw=0.7, label="other fluences (not fitted)")
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    axr.set_xlabel("pump-probe delay (ps, log)")
    axr.set_ylabel("residual (mOD)")
    _finish(fig, tree, "band-edge bleach kinetics (nested exponential fits)")
    return fig


# ----------------------------------------------------------------------------- 5. cross-section
def cross_section_figure(tree, cs=None, delays_ps=(1000.0, 3000.0)):
    cs = cross_section_from_tree(tree, delays_ps=delays_ps) if cs is None else cs
    sol = tree["solution"]
    ta = sol["ta"]
    bw = pp.BandEdgeWindow(*cs["window_nm"], source="from cross_section_from_tree")
    late = _delay_mean(ta, delays_ps)
    mean, sem = pp.window_average(late, bw)
    Jp = np.asarray(cs["fluence_avg"], float)
    y = np.abs(mean.values)
    Jgrid = np.linspace(0.0, Jp.max() * 1.1, 300)
    xs = 10.0 ** np.floor(np.log10(Jp.max()))  # axis in units of 10^k photons/cm^2 (no offset text)
    fig, ax = plt.subplots(figsize=(6.8, 4.9), layout="constrained")
    fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    ax.errorbar(Jp / xs, y * 1e3, yerr=sem.values * 1e3, fmt="o", ms=5, capsize=2, color="C0",
                label=f"|ΔA| {delays_ps[0] / 1e3:g}-{delays_ps[1] / 1e3:g} ns, {bw.lo:.0f}-{bw.hi:.0f} nm")
    ax.plot(Jgrid / xs, saturation_curve(Jgrid, cs["amplitude"], cs["value"]) * 1e3, color="k", lw=1.5,  # eq. S34
            label=_sigma_label(cs["value"], cs["uncertainty"]))
    ax.axhline(cs["amplitude"] * 1e3, color="C3", ls="--", lw=1.0,
               label=f"a = {cs['amplitude'] * 1e3:.2f} ± {cs['amplitude_sd'] * 1e3:.2f} mOD")
    ax.set_xlim(0, Jgrid[-1] / xs)
    ax.set_ylim(0, max(y.max(), cs["amplitude"]) * 1.15e3)
    ax.set_xlabel(f"depth-averaged pump fluence J' ($10^{{{int(np.log10(xs))}}}$ photons cm$^{{-2}}$)")
    ax.set_ylabel("|ΔA| solution 1S bleach (mOD)")
    ax.set_title(f"QD solution, pump absorbance {float(sol.attrs['pump_absorbance']):.3g} OD "
                 "(J' averaged over the cuvette depth)", fontsize=9.5)
    ax.legend(fontsize=8, loc="lower right")
    _finish(fig, tree, "absorption cross-section (eq. S34)")
    return fig


# ----------------------------------------------------------------------------- driver
def write_classic_figures(tree, out_dir, corrected=None, threshold_delays_ps=GAIN_DELAY_PS):
    """Write the classic-analysis figures of ``tree`` into ``out_dir``; returns the paths written.

    ``corrected`` is the output of :func:`bayesgain.preprocess.reflection_correct_film` (computed when
    absent and needed); ``threshold_delays_ps`` the read-out of the threshold fits
    (:func:`bayesgain.classic.delay_selection`).  A figure that cannot be made (missing group, failed fit) is skipped with a
    warning naming the reason; each file is written atomically.
    """
    out_dir = pathlib.Path(out_dir)
    written = []
    state = {"corrected": corrected}

    def corr():
        if state["corrected"] is None:
            state["corrected"] = pp.reflection_correct_film(tree)
        return state["corrected"]

    def sigma():
        if "cs" not in state:
            if not pp._has(tree, "solution"):
                state["cs"] = ValueError("the experiment has no /solution group (no cross-section)")
            else:
                try:
                    state["cs"] = cross_section_from_tree(tree)
                except _SKIP_ERRORS as err:
                    state["cs"] = err
        if isinstance(state["cs"], Exception):
            raise ValueError(f"cross-section unavailable: {state['cs']}")
        return state["cs"]

    def need(path):
        if not pp._has(tree, path):
            raise ValueError(f"the experiment has no /{path} group")

    makers = {
        "gain_maps.png": lambda: (need("film/ta"), gain_maps_figure(tree, corr()))[1],
        "threshold_fits.png": lambda: (need("film/ta"), threshold_figure(tree, corr(), sigma()["value"],
                                                                                  threshold_delays_ps))[1],
        "charging_fit.png": lambda: (need("film/sec"), charging_figure(tree))[1],
        "kinetics_fits.png": lambda: (need("film/ta"), kinetics_figure(tree, corr()))[1],
        "cross_section_fit.png": lambda: (need("solution"), cross_section_figure(tree, sigma()))[1],
    }
    for name, make in makers.items():
        before = set(plt.get_fignums())
        try:
            fig = make()
        except _SKIP_ERRORS as err:
            for num in set(plt.get_fignums()) - before:  # only figures this attempt opened
                plt.close(num)
            warnings.warn(f"classic figure {name} skipped: {err}", stacklevel=2)
            continue
        written.append(_save(fig, out_dir / name))
    return written
