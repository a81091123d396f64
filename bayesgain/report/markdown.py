"""The sections of report.md and the page that joins them."""

from __future__ import annotations

import numpy as np

from ..classic.dataset import row_name
from .cache import Skip
from .common import (G_MIN_PER_CM, HDI, _conv_stats, _converged, _fmt, _hdi, _not_final, _of_experiment, _post,
                     _synthetic)
from .figures import CHIRP_FIGURE, CHIRP_FIGURE_TEXT, FIGURES, figure_files
from .tables import _classic_rows_by_potential, _classic_thresholds, _classic_value


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
    post = _post(model)
    rows = []
    for name, r in summary.iterrows():
        base = str(name).split("[")[0]
        m, lo, hi = _parameter_interval(post, str(name), base, r)
        doc = model.spec.priors.get(base, {}).get("doc", "")
        rows.append([f"`{name}`", r.get("unit", ""), _fmt(m), _fmt(lo), _fmt(hi), doc])
    return (["## Physical parameters (posterior median and 94 % HDI)", "",
             _md_table(["parameter", "unit", "median", "HDI low", "HDI high", "meaning"], rows), ""]
            + _effective_temperature_line(model, post))


def _parameter_interval(post, name, base, r):
    """Median and 94 % HDI of the summary row ``name`` (``base[label, ...]``) from its draws; the summary's own
    columns where the row's labels do not match the posterior's."""
    try:
        da = post[base]
        if name != base:
            labels = [x.strip() for x in name[len(base):].strip("[]").split(",")]
            other = [dd for dd in da.dims if dd not in ("chain", "draw")]
            da = da.isel({dim: [str(v) for v in da[dim].values].index(key) for dim, key in zip(other, labels)})
    except (KeyError, ValueError, IndexError):
        m = float(r.get("median", r.get("mean", np.nan)))
        return m, float(r.get("hdi94_lb", np.nan)), float(r.get("hdi94_ub", np.nan))
    m, lo, hi = _hdi(np.asarray(da.values).ravel())
    return float(m), float(lo), float(hi)


def _effective_temperature_line(model, post):
    from ..model.quantities import effective_temperature

    try:
        te = effective_temperature(model)
    except Exception:  # noqa: BLE001 -- an optional line below the table, which stands without it
        return []
    if te is None or "sigma_1S_V" not in post:
        return []
    m, lo, hi = _hdi(te.values)
    return [f"T_eff equivalent of sigma_1S: {_fmt(float(m))} K (94 % HDI {_fmt(float(lo))} -- {_fmt(float(hi))} K).",
            ""]


def _guarded(body):
    """The report lines ``body()`` returns; a quantity this model lacks (Skip) or one that fails becomes
    a line saying so, and the rest of the report goes on."""
    try:
        return body()
    except Skip as exc:
        return [f"Not available for this model: {exc}.", ""]
    except Exception as exc:  # noqa: BLE001 -- recorded in the report
        return [f"FAILED: {type(exc).__name__}: {exc}", ""]


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


def _section_measured(model, cache):
    def body():
        rows, ds = cache.measured_thresholds()
        flagged = [f"{r['potential_V']:+.3f} V (<n_e> = {_fmt(round(r['n_e'], 6), 3)}: {_fmt(r['difference_median'])})"
                   for r in rows if r["excludes_zero"]]
        verdict = (f"The difference's simultaneous {HDI:.0%} interval excludes 0 at {', '.join(flagged)}: there the "
                   "measured threshold departs from transition counting's prediction." if flagged else
                   f"The difference's simultaneous {HDI:.0%} interval includes 0 at every potential with a measured "
                   "threshold: the measurement agrees with transition counting's prediction.")
        return [_measured_explanation(ds), "",
                _md_table(["potential (V)", "<n_e>", "measured [94 % HDI]", "predicted", "predicted t = 0",
                           "measured - predicted [94 % HDI]", "simultaneous interval, excludes 0"],
                          _measured_rows(rows, _hdi(ds["predicted_t0"].values)[0])), "",
                verdict, ""]

    return [f"### Measured versus predicted{_not_final(model)}", ""] + _guarded(body)


def _measured_rows(rows, t0):
    """A table row per potential: measured, predicted (read-out and t = 0), their difference and the flag."""
    return [[f"{r['potential_V']:+.3f}", _fmt(round(r["n_e"], 6), 3),
             f"{_fmt(r['measured_median'])} [{_fmt(r['measured_hdi_low'])}, {_fmt(r['measured_hdi_high'])}]",
             _fmt(r["predicted_median"]), _fmt(t0[k]),
             f"{_fmt(r['difference_median'])} [{_fmt(r['difference_hdi_low'])}, {_fmt(r['difference_hdi_high'])}]",
             f"[{_fmt(r['difference_sim_low'])}, {_fmt(r['difference_sim_high'])}] "
             + ("**yes**" if r["excludes_zero"] else ("n/a: " + r["reason"] if r["reason"] else "no"))]
            for k, r in enumerate(rows)]


def _measured_explanation(ds):
    """What measured, predicted and t = 0 mean, and when a departure is flagged (one paragraph)."""
    return (f"Measured: the <N> at which the window A* {ds.attrs['read_out']} crosses 0, from a curve of A* "
            f"versus <N> that does not use transition counting ({ds.attrs['family']}: a Poisson average of a free "
            "per-QD absorption for 1, 2, ... excitons, anchored at the measured A_pre), fitted per posterior draw "
            "to that draw's <N> of every file with a noise replicate of the observations; never extrapolated "
            "beyond the measured <N>. Predicted: transition counting's crossing of the same read-out (its ensemble "
            "absorption through the Auger cascade to the read-out delay, on the measured pre-pump absorbance, "
            "in A_0 = g_e g_h units; not the fit's window terms, which would bend to a departure and hide it); "
            "t = 0: transition counting at t = 0 (the table above, the paper's red line), which a 5 ps "
            "read-out exceeds by ~0.05-0.08 excitons/QD on films that follow it (Auger decay by then, absorption "
            "under the band edge). The Auger part is in the prediction; the unbleached absorption (+0.03 at "
            "<n_e> = 0 on the synthetic batch A, benchmarks/readout_bias.py) remains in the difference. "
            "A departure is flagged where the difference's interval simultaneous over the potentials (each at "
            f"1 - {1 - HDI:.2f}/P) excludes 0: per-potential {HDI:.0%} intervals would exclude 0 somewhere by "
            "chance in about a third of experiments that follow transition counting. "
            "All in `thresholds_measured.csv`.")


def _section_adequacy(model, cache):
    """Does the physics explain the film TA kinetics?  The residual-structure check and the discrepancy term."""
    from ..model.checks import RESIDUAL_P_THRESHOLD

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


def _section_classic(model, cache, classic):
    """The side-by-side table; ``classic`` is the classic Dataset (:mod:`bayesgain.classic.dataset`) or None."""
    lines = ["## Bayesian versus classic (the paper's point estimates)", ""]
    if classic is None or not classic.data_vars:
        return lines + ["No classic analysis given (run `bayesgain classic FOLDER` or `bayesgain fit` on an "
                        "experiment folder).", ""]
    rows = (_classic_parameter_rows(model, classic) + _classic_threshold_rows(cache, classic)
            + _classic_single_wavelength_rows(cache, classic))
    lines += [_md_table(["quantity", "unit", "classic (value +- 1 sd)", "Bayesian median [94 % HDI]", "classic note"],
                        rows), ""]
    lines += ["The classic rows are the paper's own chain of separate fits (`bayesgain.classic`); the Bayesian "
              "column propagates every uncertainty of this model jointly.", ""]
    return lines


def _interval(x):
    """'median [HDI low, HDI high]' of the draws ``x``."""
    m, lo, hi = _hdi(np.asarray(x).ravel())
    return f"{_fmt(float(m))} [{_fmt(float(lo))}, {_fmt(float(hi))}]"


def _classic_row(r, bayes, name=None, unit=None, note=None):
    """A row of the classic table: classic ``r`` (value +- sd) beside the Bayesian text ``bayes``."""
    return [f"`{name or r['name']}`", r.get("unit", "") if unit is None else unit,
            f"{_fmt(r['value'])} +- {_fmt(r['uncertainty'], 2)}", bayes,
            (r.get("note") or "")[:80] if note is None else note]


def _cached(get):
    """(value, None) of a cache lookup, or (None, what the classic table says in its place)."""
    try:
        return get(), None
    except Skip:
        return None, "not in this model"
    except Exception as exc:  # noqa: BLE001 -- the quantity's own section says FAILED with the message
        return None, f"FAILED: {type(exc).__name__}"


def _classic_parameter_rows(model, classic):
    post = _post(model)
    rows = []
    for cname, pname in _CLASSIC_MAP.items():
        r = _classic_value(classic, cname)
        if r is None:
            continue
        if pname in post:
            b = _interval(_of_experiment(post[pname], 0).values)
        elif pname == "T_eff_K" and "sigma_1S_V" in post:
            from ..model.quantities import effective_temperature

            b = _interval(effective_temperature(model).values) + " (from sigma_1S)"
        else:
            b = "not in this model"
        rows.append(_classic_row(r, b))
    return rows


def _classic_threshold_rows(cache, classic):
    at, why = _cached(cache.at_potentials)
    rows = []
    for V, val, unc in _classic_thresholds(classic):
        b = why or "not in this model"
        if at is not None:
            k = int(np.argmin(np.abs(at["potential"].values - V)))
            if abs(at["potential"].values[k] - V) < 5e-4:
                b = _interval(at["threshold_mean_excitons"].values[:, k])
        rows.append(_classic_row({"value": val, "uncertainty": unc}, b,
                                 name=row_name("threshold_excitons", potential=V), unit="excitons/QD", note=""))
    return rows


def _classic_single_wavelength_rows(cache, classic):
    sw, why = _cached(cache.single_wavelength)
    tag = f"g{G_MIN_PER_CM:g}"
    rows = []
    for unit_tag, var, unit in (("excitons", "lowest_gain_mean_excitons", "excitons/QD"),
                                ("photons_cm2", "lowest_gain_fluence_photons_cm2", "photons/cm^2"),
                                ("nJ_cm2", "lowest_gain_energy_nJ_cm2", "nJ/cm^2")):
        for V, r in _classic_rows_by_potential(classic, f"lowest_threshold_{tag}_{unit_tag}"):
            b = why or "not in this model"
            if sw is not None:
                k = int(np.argmin(np.abs(sw["potential"].values - V)))
                if abs(sw["potential"].values[k] - V) < 5e-4:
                    b = _interval(sw[var].isel(potential=k).values)
            rows.append(_classic_row(r, b, unit=unit))
    return rows


def _component_notes(model):
    """Components the data switched off (stored with the fit; older fits have none)."""
    attrs = model.idata.attrs if hasattr(model.idata, "attrs") else {}
    text = attrs.get("component_notes") or model.data.attrs.get("component_notes", "")
    return [line for line in str(text).split("\n") if line]


def _report_text(model, cache, summary, classic, status, thr_status, figures):
    """report.md: ``status`` {figure file: "ok" | "skipped: ..." | "FAILED: ..."}, ``thr_status`` thresholds.csv's."""
    L = _banners(model) + [f"# bayesgain fit report: model `{model.spec.name}`", ""] + _what_was_fitted(model)
    L += _section_convergence(model, summary)
    L += _section_parameters(model, summary)
    L += _section_thresholds(model, cache)
    L += _section_measured(model, cache)
    if thr_status != "ok":
        L += [f"`thresholds.csv` {thr_status}", ""]
    L += _section_adequacy(model, cache)
    L += _section_lifetimes(model, cache)
    L += _section_single_wavelength(model, cache)
    L += _section_classic(model, cache, classic)
    L += _figure_list(model, status, figures)
    L += ["## Files", "", "- `posterior.nc`: the fit (posterior, log-likelihoods, observations, spec); "
          "`bayesgain report DIR` remakes this report from it",
          "- `summary.csv`: ArviZ summary with units", "- `thresholds.csv`: <N_gain> versus <n_e> (n_e, median, "
          "hdi_low, hdi_high; comment lines start with #)",
          "- `thresholds_measured.csv`: measured and predicted thresholds at the film TA potentials and their "
          "difference (medians, HDIs)", ""]
    return "\n".join(L)


def _banners(model):
    """The NOT CONVERGED and SYNTHETIC warnings above the title."""
    L = []
    if not _converged(model):
        L += ["> **NOT CONVERGED** -- " + _conv_stats(model) +
              ". The numbers below, thresholds included, are **not final**: sample longer (more --draws/--tune), "
              "check the trace and rank plots, then refit.", ""]
    if _synthetic(model):
        L += ["> **SYNTHETIC data**: the experiments were made by `bayesgain.simulate` (truth.toml beside them); "
              "not a measurement.", ""]
    return L


def _film_run_lines(model):
    """One line per experiment: its film TA runs on the potential x fluence grid (the cells not measured)."""
    lay, d = model.layout, model.data
    if lay is None:
        return []
    out = []
    for k, name in enumerate(model.names):
        n_pot = int((d["ta_potential_experiment"].values == k).sum())
        n_fl = int((d["ta_fluence_experiment"].values == k).sum())
        n = int((lay.file_experiment == k).sum())
        holes = f" ({n_pot * n_fl - n} cells not measured)" if n < n_pot * n_fl else ""
        out.append(f"- film TA runs of {name}: {n} files on {n_pot} potentials x {n_fl} fluences{holes}")
    return out


def _what_was_fitted(model):
    from .. import __version__

    attrs = model.idata.attrs if hasattr(model.idata, "attrs") else {}
    post = _post(model)
    comps = [k for k, v in model.spec.components.items() if v]
    return ["## What was fitted", "",
            f"- model spec: `{model.spec.name}` -- {model.spec.description}",
            f"- components: {', '.join(comps)}; observed: {', '.join(model.observed_names)}",
            f"- options: disorder = {model.spec.options.get('disorder')}, auger = {model.spec.options.get('auger')}, "
            f"likelihood = {model.spec.options.get('likelihood')}",
            *[f"- {note}" for note in _component_notes(model)],
            f"- experiments: {', '.join(map(str, model.names))}",
            *_film_run_lines(model),
            "- observations: " + ", ".join(f"{d} {model.data.sizes[d]}" for d in
                                            ("sol_point", "sec_point", "ta_point", "subgap_point")
                                            if d in model.data.dims),
            f"- sampling: {post.sizes['chain']} chains x {post.sizes['draw']} draws"
            + (f", {float(attrs['sampling_seconds']):.1f} s" if "sampling_seconds" in attrs else "")
            + f"; Poisson truncation n_max = {model.n_max}",
            f"- bayesgain {attrs.get('bayesgain_version', __version__)}"
            + (f", fitted {attrs['created']}" if "created" in attrs else ""), ""]


def _figure_list(model, status, figures):
    """A line per figure file (a link when made, the reason when not) and the Fig. 5 panels shown inline."""
    L = ["## Figures", ""]
    if not figures:
        return L + ["Figures were not made (--no-figures).", ""]
    shown = []
    for name, what in FIGURES.items():
        for file, experiment in figure_files(model, name):
            text = what if file == name else f"{what}; experiment {model.names[experiment]}"
            st = status.get(file, "not made")
            L += [f"- [{file}]({file}): {text}" if st == "ok" else f"- {file}: {text} -- {st}"]
            if st == "ok" and name.startswith("fig5"):
                shown.append(file)
    if status.get(CHIRP_FIGURE) == "ok":  # listed only for experiments that had a chirp correction
        L += [f"- [{CHIRP_FIGURE}]({CHIRP_FIGURE}): {CHIRP_FIGURE_TEXT}"]
    return L + [""] + [f"![{n}]({n})" for n in shown] + [""]
