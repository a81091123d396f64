"""Sampling and model diagnostics: trace, rank plots, posterior predictive checks, prior versus posterior."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

from ..cache import Skip
from ..common import HDI, _hdi, _of_experiment, _physical_scalars, _post, _unit
from .saving import _save


def fig_trace(model, cache, path):
    names = _physical_scalars(model)
    if not names:
        raise Skip("no physical parameter in the posterior")
    try:
        title = "trace (left: marginal per chain; right: draws per chain)"
        return _save(_trace_arviz(model, names), model, path, title)
    except Exception:  # noqa: BLE001 -- arviz-plots' API moves between versions: the plain matplotlib figure instead
        plt.close("all")
    return _trace_matplotlib(model, names, path)


def _trace_arviz(model, names):
    """arviz-plots' trace and marginal figure with units in the labels and axis multipliers moved into them."""
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
    return fig


def _trace_matplotlib(model, names, path):
    """The trace figure without arviz-plots: marginal and draws per chain."""
    post = _post(model)
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 1.9 * len(names) + 0.6), squeeze=False)
    for i, n in enumerate(names):
        x = np.asarray(_of_experiment(post[n], 0).values)  # experiment 0 (arviz's figure shows every experiment)
        for c in range(x.shape[0]):
            axes[i, 0].hist(x[c], bins=30, histtype="step", density=True)
            axes[i, 1].plot(x[c], lw=0.6)
        axes[i, 0].set_xlabel(f"{n} ({_unit(model, n)})")
        axes[i, 0].set_ylabel("density (1/unit)")
        axes[i, 1].set_xlabel("draw")
        axes[i, 1].set_ylabel(f"{n} ({_unit(model, n)})")
    return _save(fig, model, path, "trace (per chain)")


def _panels(n, width, height):
    """A grid of up to 3 columns of width x height inch panels: (figure, its first n axes; the rest hidden)."""
    ncol = min(3, n)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(width * ncol, height * nrow + 0.5), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n]


def fig_rank(model, cache, path, experiment=0):
    names = _physical_scalars(model)
    if not names:
        raise Skip("no physical parameter in the posterior")
    post = _post(model)
    n_ch = post.sizes["chain"]
    if n_ch < 2:
        raise Skip("rank plots need at least two chains")
    from scipy.stats import rankdata

    fig, axes = _panels(len(names), 3.4, 2.6)
    for ax, n in zip(axes, names):
        x = np.asarray(_of_experiment(post[n], experiment).values)
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
    axes[0].legend(fontsize=6)
    return _save(fig, model, path, "rank plots (grey: 94 % band of uniform ranks)", experiment=experiment)


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
    fig, axes = plt.subplots(len(comps), 2, figsize=(10, 3.0 * len(comps) + 0.6), squeeze=False)
    for i, c in enumerate(comps):
        _ppc_row(axes[i], model.data, c, np.asarray(pp_[c].values))
    return _save(fig, model, path, "posterior predictive checks")


def _ppc_row(axes, d, c, y):
    """Component ``c``'s row: predictive interval and observations versus the natural x (left), predicted versus
    observed (right); ``y`` its predictive draws (chain, draw, point)."""
    point_dim, obs_name, x_name, xlabel, ylabel = _PPC_AXES[c]
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
    ax = axes[0]
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
    ax = axes[1]
    ax.errorbar(obs, m, yerr=[m - l_, h - m], fmt=".", ms=2, color="tab:blue", ecolor="tab:blue", alpha=0.5, lw=0.6)
    lim = [np.nanmin([obs.min(), l_.min()]), np.nanmax([obs.max(), h.max()])]
    ax.plot(lim, lim, color="0.3", lw=0.8, ls="--", label="predicted = observed")
    ax.set_xlabel(f"observed: {ylabel}")
    ax.set_ylabel("predicted (median, 94 % interval)")
    # at most 5 ticks: sub-gap values like -0.00015 overlapped at the default count
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
    ax.legend(fontsize=6)


def _prior(model, seed=0, draws=500):
    idata = getattr(model, "_report_prior", None)
    if idata is None:
        # the parameters only: the observations' prior predictive is not plotted
        pm_model = model.model or model.build()
        names = [v.name for v in pm_model.free_RVs] + [n for n in _physical_scalars(model) if n in pm_model.named_vars]
        idata = model.sample_prior_predictive(draws=draws, seed=seed, var_names=list(dict.fromkeys(names)))
        model._report_prior = idata
    return idata["prior"]


def fig_prior_posterior(model, cache, path, experiment=0):
    names = _physical_scalars(model)
    if not names:
        raise Skip("no physical parameter in the posterior")
    prior = _prior(model)
    post = _post(model)
    fig, axes = _panels(len(names), 3.5, 2.7)
    for ax, n in zip(axes, names):
        q = np.asarray(_of_experiment(post[n], experiment).values).ravel()
        p = np.asarray(_of_experiment(prior[n], experiment).values).ravel() if n in prior else np.array([])
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
    # a single-experiment fit keeps its title; a fit of several names the experiment on a line of its own
    title = "prior versus posterior" + ("" if len(model.names) > 1 else " (experiment 0)")
    return _save(fig, model, path, title, experiment=experiment)
