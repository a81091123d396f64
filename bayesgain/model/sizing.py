"""The model's static sizes and their post-sampling checks: Poisson truncation and disorder quadrature.

Both are fixed before sampling (they size the graphs) from quick least-squares estimates on the reduced
data, and checked against the posterior afterwards: :func:`truncation_check` (the Poisson tail at the
largest posterior <N>) and :func:`quadrature_check` (the disorder average at the largest posterior sigma_1S
against a finer rule).  :func:`resize_truncation` raises a truncation the posterior outgrew.
"""

from __future__ import annotations

import math

import numpy as np

from ..physics.charging import MODEL_QUADRATURE_HALF_WIDTH
from ..physics.poisson import required_n_max
from .components.charging_laws import law_for

__all__ = ["POISSON_TAIL", "QUADRATURE_TOL", "truncation_bucket", "choose_n_max", "choose_nodes",
           "cross_section_estimate", "truncation_check", "quadrature_check", "resize_truncation"]

# neglected Poisson weight: it changes A_ens by at most g_e g_h x tail (8e-7 gamma ~ 1e-9 OD here)
POISSON_TAIL = 1e-7
# error of the disorder average in the fractions (SEC <n_e> scatters by ~1e-2)
QUADRATURE_TOL = 1e-5
# the largest truncation a refit may raise to: the cascade costs ~n_max^2, and a posterior <N> beyond ~200 is a
# run-away chain (measured: a prior draw of the SBC reached 1e15, where scipy's Poisson quantile is NaN), not physics
MAX_N_MAX = 256


def truncation_bucket(n):
    """A Poisson truncation rounded up to a multiple of 4: experiments of one design then share one compiled
    graph (model.compiled_cache) instead of differing by one term of the truncation."""
    return int(4 * np.ceil(n / 4))


def choose_n_max(spec, data):
    """Poisson truncations (static: they size the cascade) ``(n_max, film, solution)``.

    <N> at the highest fluence is estimated with the solution cross-section of a quick eq. S34
    fit (prior median without solution data), times a margin of 1.3 for the film ratio, the
    fluence calibration and the posterior spread; n_max keeps P(N > n_max) < ``POISSON_TAIL``
    there.  After sampling, :func:`truncation_check` verifies the posterior stays inside (the
    cost of the cascade grows as n_max^2, so the margin is not made generous).
    """
    sigma = cross_section_estimate(spec, data)
    film = solution = 0
    if "ta_fluence_nominal_photons_cm2" in data:
        film = truncation_bucket(required_n_max(1.3 * sigma * float(data["ta_fluence_nominal_photons_cm2"].max()),
                                                tail=POISSON_TAIL))
    if "sol_fluence_eff_photons_cm2" in data:
        solution = truncation_bucket(required_n_max(1.3 * sigma * float(data["sol_fluence_eff_photons_cm2"].max()),
                                                    tail=POISSON_TAIL))
    return max(film, solution, 8), film, solution


def choose_nodes(spec, data):
    """Trapezoid nodes of the disorder average: the spec's ``quadrature_nodes``, or (0) enough for
    1.5 x the sigma_1S of a quick Fermi-Dirac least-squares fit of the SEC <n_e> at ``QUADRATURE_TOL``."""
    from ..physics.charging import disorder_nodes

    n = int(spec.options["quadrature_nodes"])
    if n > 0 or not law_for(spec).uses_quadrature:
        return max(n, 1)
    sigma = 0.2
    if "sec_n_e" in data:
        from ..fitting import fit_fermi_dirac

        try:
            # V_C fixed at 0: sigma_1S then absorbs kT V_C, the larger (safer) width for the nodes
            fit = fit_fermi_dirac(data["sec_point_potential"].values, data["sec_n_e"].values, V_C=0.0,
                                  temperature_K=float(data["experiment_temperature_K"].values[0]))
            sigma = float(fit["sigma_1S"][0])
        except (ValueError, RuntimeError, KeyError, TypeError):
            sigma = 0.2
    T = float(np.min(data["experiment_temperature_K"].values))
    return disorder_nodes(1.5 * max(sigma, 0.02), T, tol=QUADRATURE_TOL, minimum=24,
                          half_width=MODEL_QUADRATURE_HALF_WIDTH)


def cross_section_estimate(spec, data):
    """Solution cross-section (cm^2) of a quick eq. S34 fit; the prior median without solution data or a fit."""
    p = spec.priors.get("cross_section_cm2", {"dist": "LogNormal", "mu": math.log(3.5e-14), "sigma": 0})
    prior_median = math.exp(p["mu"]) if p["dist"] == "LogNormal" else float(p.get("mu", 3.5e-14))
    if "sol_dA" not in data:
        return prior_median
    from ..fitting import fit_cross_section

    try:
        fi = data["sol_point_fluence"].values
        n = np.bincount(fi)
        keep = n > 0
        y = np.bincount(fi, -data["sol_dA"].values)[keep] / n[keep]
        J = np.bincount(fi, data["sol_fluence_eff_photons_cm2"].values)[keep] / n[keep]
        est = fit_cross_section(J, y)["value"]
    except (ValueError, RuntimeError):
        return prior_median
    return float(est) if np.isfinite(est) and est > 0 else prior_median


def truncation_check(model, tail=1e-5):
    """Largest posterior <N> (film files, solution fluences) of a fitted GainModel and the Poisson tail
    P(N > n_max) there."""
    from ..physics.poisson import truncated_tail

    post, data = model.idata["posterior"], model.data
    out = {"ok": True}
    if "ta_mean_excitons" in post:
        worst = float(post["ta_mean_excitons"].max())
        t = float(truncated_tail(worst, model.n_max_film))
        out.update(film_max_mean_excitons=worst, film_n_max=model.n_max_film, film_tail=t)
        out["ok"] &= t < tail
    if "fluence_log_cal_solution" in post:
        e = data["sol_fluence_experiment"].values
        J = np.zeros(data.sizes["sol_fluence"])
        J[data["sol_point_fluence"].values] = data["sol_fluence_eff_photons_cm2"].values
        sig = post["cross_section_cm2"].values[..., e]
        worst = float(np.max(sig * J * np.exp(post["fluence_log_cal_solution"].values)))
        t = float(truncated_tail(worst, model.n_max_solution))
        out.update(solution_max_mean_excitons=worst, solution_n_max=model.n_max_solution, solution_tail=t)
        out["ok"] &= t < tail
    out["ok"] = bool(out["ok"])
    return out


def quadrature_check(model, tol=1e-4):
    """Error of the disorder average at the largest posterior sigma_1S of each experiment of a fitted GainModel.

    The trapezoid nodes were sized before sampling from a quick Fermi-Dirac fit (1.5 x its sigma at
    ``QUADRATURE_TOL``); this checks the posterior did not go beyond them.  The model's rule is compared
    (``physics.api.charge_fractions``, the same graph on NumPy arrays) with a rule of 8x the nodes on
    +-9 sigma at potentials V_1S +- 8 sigma, with that draw's V_1S, V_C and sigma_1S.  ``tol`` (in the fractions)
    is ten times the sizing tolerance and two orders below the scatter of SEC <n_e>.  Models whose charging law
    has no disorder quadrature pass trivially.
    """
    from ..physics import api

    out = {"ok": True}
    post = model.idata["posterior"]
    if not law_for(model.spec).uses_quadrature or "sigma_1S_V" not in post:
        return out
    g_e = int(model.data["experiment_g_e"].values[0])
    temps = model.data["experiment_temperature_K"].values
    worst = 0.0
    for k, name in enumerate(model.names):
        sig = post["sigma_1S_V"].values[..., k].reshape(-1)
        i = int(np.argmax(sig))
        V1 = float(post["V_1S_V"].values[..., k].reshape(-1)[i]) if "V_1S_V" in post else 0.0
        Vc = float(post["V_C_V"].values[..., k].reshape(-1)[i]) if "V_C_V" in post else 0.0
        s = float(sig[i])
        V = V1 + s * np.linspace(-8.0, 8.0, 161)
        rule = api.charge_fractions(V, V1, Vc, s, temps[k], g_e, n_nodes=model.quadrature_nodes,
                                    half_width=MODEL_QUADRATURE_HALF_WIDTH)
        fine = api.charge_fractions(V, V1, Vc, s, temps[k], g_e, n_nodes=8 * model.quadrature_nodes)
        worst = max(worst, float(np.max(np.abs(rule - fine))))
        out[f"sigma_1S_max_{name}"] = s
    out.update(nodes=int(model.quadrature_nodes), max_error=worst, tol=float(tol), ok=bool(worst < tol))
    return out


def resize_truncation(model, margin=1.2):
    """Raise the Poisson truncations of a fitted GainModel that its posterior outgrew (to its largest <N> x
    ``margin``); True if any was raised (the model is then rebuilt).  A note says so in the report."""
    trunc = truncation_check(model)
    if trunc["ok"]:
        return False
    raised = []
    for kind in ("film", "solution"):
        worst = trunc.get(f"{kind}_max_mean_excitons")
        # every truncation short of the sizing's own tail is raised, not only the one the check failed on:
        # the refit's draws move (measured: the film tail 1e-5 -> 2.6e-5 after raising the solution only)
        if worst is None or trunc[f"{kind}_tail"] < POISSON_TAIL:
            continue
        if not np.isfinite(worst) or margin * worst > MAX_N_MAX:
            # left as it is: the truncation check keeps the fit NOT CONVERGED and its note names the <N> reached
            continue
        new = truncation_bucket(required_n_max(margin * worst, tail=POISSON_TAIL))
        old = getattr(model, f"n_max_{kind}")
        if new > old:
            setattr(model, f"n_max_{kind}", new)
            raised.append(f"{kind} {old} -> {new} (posterior <N> up to {worst:.3g})")
    if not raised:
        return False
    model.n_max = max(model.n_max_film, model.n_max_solution, 8)
    note = "Poisson truncation raised after a first fit outgrew it, and the model fitted again: " + "; ".join(raised)
    model.data.attrs["component_notes"] = "\n".join([*model.component_notes, note])
    model.model = None
    model.build()
    return True
