"""The joint hierarchical model: one posterior from solution TA, SEC and film TA of one or more films.

``GainModel(spec, experiments)`` owns its priors (the spec, see :mod:`.spec`) and its data (the
reduced observations, see :mod:`.data`); ``build()`` wires the physics graphs of
:mod:`bayesgain.physics` into a ``pm.Model`` with named dims; ``fit()`` samples it (nutpie by
default) and returns an ``xarray.DataTree``; ``save``/``load`` round-trip the fit through one NetCDF
file that also holds the spec and the observations, so a fit can be reopened, checked and reported
in a new process without the raw folder.

Component by component (observations are 1S-window averages, in OD unless stated):

* cross_section: Delta A_sol(F, t) = gamma_sol [A_ens(<N>, neutral, t) - g_e g_h] at 1-3 ns with
  <N> = sigma J' c_F (J' depth-averaged nominal fluence, c_F a latent calibration factor per file,
  log c_F ~ Normal(0, fluence_log_sd)).  The Auger cascade (not only eq. S34's 1 - e^{-<N>}) is
  used, so biexcitons still alive at 1 ns do not bias sigma.
* charging: <n_e>_obs(V) = s_SEC <n_e>(V + offset_sweep) with the fractions of eq. S10-S16
  (sign-corrected), disorder "gaussian" (sigma_1S), "effective-temperature" (T_eff) or "none";
  offset_sweep ~ Normal(0, sweep_offset_sd_V) from the nominal potential scale on which the film TA
  potentials are set (drift and hysteresis of each sweep; not centred, so a drift common to all
  sweeps widens V_1S instead of shifting it).
* photoluminescence: PL(V)/PL(V_oc) = f_0 + q_1 f_1 + q_2 f_2 (same sweeps and offsets).
* gain + dynamics: A*(V, F, t) = A_pre,obs(V) + gamma [A_eff (1 - kappa x^4) - A_pre] - beta [occ - occ_pre]
  - (s_V - 1) S: preprocessing formed A* = A_0 + Delta A_SEC(V) + Delta A_TA, so the model predicts
  Delta A_TA (excited minus pre-pump state of the same charge distribution) and adds back the measured
  A_pre,obs = A_0 + Delta A_SEC in the window (SEC-interpolated; its errors are not the charge
  fractions' to explain).  A_eff(<N>, f(V), t) is the cascade absorption of transition counting (eq. S6, S17-S22; hole
  trapping: a fraction eta of the QDs counted with one hole off the band edge, in chains of their own; option
  hole_trapping_form = "emission" keeps the older eta x emission), x = (A_pre - A_eff) / (2 g_e g_h) the bleached fraction (the
  excited line shifts by ~x^2 through biexciton binding and its window average drops by kappa x^4;
  without this term the synthetic batch A, simulated with a 20 meV shift, gave tau_xx = 328 +- 2 ps
  against 310 true, and 308 +- 2 ps when simulated without the shift), occ the 1S(e) occupancy
  <min(N + n, g_e)>/g_e (higher transitions in the window bleach with it), A_pre and occ_pre their
  N = 0 values, <N> = sigma r J c_(V,F) with r
  the film/solution cross-section ratio, s_V the Delta R scale of the potential and S the
  sensitivity of the corrected Delta A to it.  Gain uses the early delays, dynamics the later ones.
  Sampled as gamma_scale + beta_rel (window bleach per electron) and, with hole trapping, as the
  emission scale gamma (1 - eta): the combinations the data pin (see ``_gamma_scale``).
  Option pump_attenuation = "beer-lambert": <N> is each file's front value and the prediction is averaged over
  depth, where the pump falls as 10^(-A_pump z) (Gauss-Legendre nodes, physics.optics.pump_depth_profile).
* reflection: corrected sub-gap Delta A = -(s_V - 1) S_subgap + noise (the true Delta A is ~0 there).

Physical parameters carry the dim ``experiment``; those named in [pooling] are partially pooled
across experiments (non-centred).  Optical-density scales are in units of each film's measured
A_0 in the 1S window, so the same priors fit thin and thick films.
"""

from __future__ import annotations

import datetime
import math
import pathlib
import time
import warnings

import numpy as np
import xarray as xr

from .. import __version__
from .._atomic import atomic_path
from .._logs import quiet_pymc
from ..physics.api import numpy_mode
from ..physics.charging import MODEL_QUADRATURE_HALF_WIDTH
from ..physics.poisson import required_n_max
from .data import concat_experiments, reduce_experiment
from .layout import film_layout, index_within_experiment
from .resolve import resolve_components
from .spec import DISTRIBUTIONS, ModelSpec, load_spec, spec_from_dict

__all__ = ["GainModel", "ConvergenceReport", "convergence_report", "PHYSICAL_PARAMETERS"]

PHYSICAL_PARAMETERS = ("cross_section_cm2", "film_cross_section_ratio", "V_1S_V", "V_C_V", "sigma_1S_V", "T_eff_K",
                       "tau_xx_ps", "tau_x_ps", "trion_rate_factor", "triexciton_rate_factor", "hole_trap_fraction",
                       "pl_yield_1", "pl_yield_2", "reflection_scale", "fluence_log_sd")
OBSERVED = ("cross_section", "charging", "photoluminescence", "gain", "dynamics", "reflection")


def _dist(name, p, **kw):
    """The prior ``p`` (a spec table) as a model variable ``name``, or unnamed (``.dist``) when name is None."""
    import pymc as pm

    cls = getattr(pm, DISTRIBUTIONS[p["dist"]][0])
    args = {k: v for k, v in p.items() if k not in ("dist", "unit", "doc", "component")}
    return cls.dist(**args, **kw) if name is None else cls(name, **args, **kw)


class ConvergenceReport(dict):
    """max R-hat, min bulk/tail ESS, divergences, and ``ok`` (R-hat <= 1.01, ESS >= min_ess, no divergence)."""

    @property
    def ok(self):
        return bool(self["ok"])

    def text(self):
        verdict = "converged" if self.ok else "NOT CONVERGED -- do not report these numbers"
        text = (f"{verdict}: max R-hat {self['max_r_hat']:.4f} (<= 1.01), min bulk ESS {self['min_ess_bulk']:.0f}, "
                f"min tail ESS {self['min_ess_tail']:.0f} (>= {self['min_ess']}), divergences {self['divergences']}")
        if self.get("stuck_chains"):
            text += f"; {self['stuck_chains']}"
        if self.get("note") and not self.ok:
            text += f"; {self['note']}"  # why a fit whose diagnostics pass is still not final
        return text


def stuck_chains(idata, min_gap_nats=5.0):
    """Chains whose mean log density lies far below the best chain's: trapped in a minor local mode.

    A chain that mixes with the others has a mean log density within ~1 nat of theirs; a gap larger
    than ``min_gap_nats`` and than the within-chain spread of the log density means that chain explores
    another, less probable region (seen on the joint model: one of four chains held one film file's <N>
    at 21 instead of 5.7, 31 nats lower).  Returns a sentence naming them, or "" when there are none.
    """
    from .sampling import stuck_chain_gaps

    bad, gap, best = stuck_chain_gaps(idata, min_gap_nats)
    if not bad:
        return ""
    parts = ", ".join(f"chain {int(c)} ({gap[c]:.0f} nats below)" for c in bad)
    return (f"stuck in a less probable local mode: {parts} the best chain (chain {best}) in mean log density; "
            "rerun with another seed or more tuning steps")


def convergence_report(idata, var_names, min_ess=400):
    import arviz as az

    post = idata["posterior"].to_dataset()
    names = [v for v in var_names if v in post]
    rhat = az.rhat(post[names])
    ess_b = az.ess(post[names], method="bulk")
    ess_t = az.ess(post[names], method="tail")
    def mx(ds):  # R-hat/ESS are NaN for constant draws (one chain, a fixed value): NaN, without a warning
        vals = [np.asarray(v, float) for v in ds.data_vars.values()]
        finite = [x[np.isfinite(x)] for x in vals]
        return float(max((x.max() for x in finite if x.size), default=np.nan))

    def mn(ds):
        finite = [np.asarray(v, float)[np.isfinite(np.asarray(v, float))] for v in ds.data_vars.values()]
        return float(min((x.min() for x in finite if x.size), default=np.nan))
    div = int(np.asarray(idata["sample_stats"]["diverging"]).sum()) if "diverging" in idata["sample_stats"] else 0
    r = ConvergenceReport(max_r_hat=mx(rhat), min_ess_bulk=mn(ess_b), min_ess_tail=mn(ess_t), divergences=div,
                          min_ess=min_ess)
    n_chains = idata["posterior"].sizes["chain"]
    r["ok"] = bool(r["max_r_hat"] <= 1.01 and r["min_ess_bulk"] >= min_ess and div == 0 and n_chains >= 2)
    if n_chains < 2:
        r["note"] = "one chain: R-hat cannot be checked"
    stuck = stuck_chains(idata)
    if stuck:
        r["stuck_chains"] = stuck
        r["ok"] = False
    return r


def _truncation_bucket(n):
    """A Poisson truncation rounded up to a multiple of 4: experiments of one design then share one compiled
    graph (model.compiled_cache) instead of differing by one term of the truncation."""
    return int(4 * np.ceil(n / 4))


class GainModel:
    """A Bayesian model of doped-QD gain experiments, built from a spec and reduced observations.

    Parameters
    ----------
    spec : ModelSpec, path to a TOML file, or the name of a shipped model (``"joint"``).
    experiments : DataTree, folder path, or a list of them (several films / batches in one fit).
    names : optional names of the experiments (default: folder names or ``exp0``, ``exp1``...).
    """

    def __init__(self, spec="joint", experiments=None, names=None, _reduced=None):
        self.spec = spec if isinstance(spec, ModelSpec) else load_spec(spec)
        if _reduced is not None:
            self.data = _reduced
        else:
            if experiments is None:
                raise ValueError("GainModel needs experiments: a folder, a loaded DataTree, or a list of them")
            self.data = self._reduce(experiments, names)
        self.names = list(self.data["experiment"].values)
        # film TA file and potential of every ta_point: the one place that defines this layout (None without film TA)
        self.layout = film_layout(self.data)
        self.model = None
        self.idata = None
        self.start_report = None
        self.n_max = self._choose_n_max()
        self.quadrature_nodes = self._choose_nodes()

    # ------------------------------------------------------------------ data
    @property
    def file_index(self):
        """Film TA file (dim ``ta_file``) of every ``ta_point``; None without film TA data."""
        return None if self.layout is None else self.layout.file_index

    @property
    def ta_potential_index(self):
        """``ta_potential`` of every ``ta_point``; None without film TA data."""
        return None if self.layout is None else self.layout.ta_potential_index

    @property
    def file_experiment(self):
        """Experiment of every film TA file; None without film TA data."""
        return None if self.layout is None else self.layout.file_experiment

    def _reduce(self, experiments, names):
        from ..io import ExperimentError, load_experiment
        from ..safety.containment import repeated_folders

        items = experiments if isinstance(experiments, (list, tuple)) else [experiments]
        for item, earlier, how in repeated_folders([x for x in items if isinstance(x, (str, pathlib.Path))]):
            raise ExperimentError(f"experiment folder {item} {how} {earlier}; expected each experiment once")
        trees, labels = [], []
        for i, item in enumerate(items):
            if isinstance(item, (str, pathlib.Path)):
                label = pathlib.Path(item).name
                tree = load_experiment(item)
            else:
                tree = item
                label = str(tree.attrs.get("name", f"exp{i}"))
            if names is not None:
                label = names[i]
            trees.append(tree)
            labels.append(label)
        # components the data cannot feed are switched off here (with a note) or refused
        res = resolve_components(self.spec, trees, labels)
        self.spec = res.spec
        reduced = [reduce_experiment(t, self.spec.options, lab, comp)
                   for t, lab, comp in zip(trees, labels, res.per_experiment)]
        data = concat_experiments(reduced)
        data.attrs["component_notes"] = "\n".join(res.notes)
        return data

    @property
    def component_notes(self):
        """What the data switched off in the requested spec (one sentence per line; see ``model/resolve.py``)."""
        text = str(self.data.attrs.get("component_notes", ""))
        return [line for line in text.split("\n") if line]

    # neglected Poisson weight: it changes A_ens by at most g_e g_h x tail (8e-7 gamma ~ 1e-9 OD here)
    POISSON_TAIL = 1e-7

    def _choose_n_max(self):
        """Poisson truncations (static: they size the cascade), film and solution separately.

        <N> at the highest fluence is estimated with the solution cross-section of a quick eq. S34
        fit (prior median without solution data), times a margin of 1.3 for the film ratio, the
        fluence calibration and the posterior spread; n_max keeps P(N > n_max) < ``POISSON_TAIL``
        there.  After sampling, :meth:`truncation_check` verifies the posterior stays inside (the
        cost of the cascade grows as n_max^2, so the margin is not made generous).
        """
        d = self.data
        sigma = self._cross_section_estimate()
        self.n_max_film = self.n_max_solution = 0
        if "ta_fluence_nominal_photons_cm2" in d:
            self.n_max_film = _truncation_bucket(required_n_max(1.3 * sigma * float(d["ta_fluence_nominal_photons_cm2"].max()),
                                                    tail=self.POISSON_TAIL))
        if "sol_fluence_eff_photons_cm2" in d:
            self.n_max_solution = _truncation_bucket(required_n_max(1.3 * sigma * float(d["sol_fluence_eff_photons_cm2"].max()),
                                                        tail=self.POISSON_TAIL))
        return max(self.n_max_film, self.n_max_solution, 8)

    # error of the disorder average in the fractions (SEC <n_e> scatters by ~1e-2)
    QUADRATURE_TOL = 1e-5

    def _choose_nodes(self):
        """Trapezoid nodes of the disorder average: the spec's ``quadrature_nodes``, or (0) enough for
        1.5 x the sigma_1S of a quick Fermi-Dirac least-squares fit of the SEC <n_e> at ``QUADRATURE_TOL``."""
        from ..physics.charging import disorder_nodes

        n = int(self.spec.options["quadrature_nodes"])
        if n > 0 or self.spec.options["disorder"] != "gaussian":
            return max(n, 1)
        sigma = 0.2
        d = self.data
        if "sec_n_e" in d:
            from ..fitting import fit_fermi_dirac

            try:
                # V_C fixed at 0: sigma_1S then absorbs kT V_C, the larger (safer) width for the nodes
                fit = fit_fermi_dirac(d["sec_point_potential"].values, d["sec_n_e"].values, V_C=0.0,
                                      temperature_K=float(d["experiment_temperature_K"].values[0]))
                sigma = float(fit["sigma_1S"][0])
            except (ValueError, RuntimeError, KeyError, TypeError):
                sigma = 0.2
        T = float(np.min(d["experiment_temperature_K"].values))
        return disorder_nodes(1.5 * max(sigma, 0.02), T, tol=self.QUADRATURE_TOL, minimum=24,
                              half_width=MODEL_QUADRATURE_HALF_WIDTH)

    def _cross_section_estimate(self):
        p = self.spec.priors.get("cross_section_cm2", {"dist": "LogNormal", "mu": math.log(3.5e-14), "sigma": 0})
        prior_median = math.exp(p["mu"]) if p["dist"] == "LogNormal" else float(p.get("mu", 3.5e-14))
        d = self.data
        if "sol_dA" not in d:
            return prior_median
        from ..fitting import fit_cross_section

        try:
            fi = d["sol_point_fluence"].values
            n = np.bincount(fi)
            keep = n > 0
            y = np.bincount(fi, -d["sol_dA"].values)[keep] / n[keep]
            J = np.bincount(fi, d["sol_fluence_eff_photons_cm2"].values)[keep] / n[keep]
            est = fit_cross_section(J, y)["value"]
        except (ValueError, RuntimeError):
            return prior_median
        return float(est) if np.isfinite(est) and est > 0 else prior_median

    def truncation_check(self, tail=1e-5):
        """Largest posterior <N> (film files, solution fluences) and the Poisson tail P(N > n_max) there."""
        from ..physics.poisson import truncated_tail

        post = self.idata["posterior"]
        out = {"ok": True}
        if "ta_mean_excitons" in post:
            worst = float(post["ta_mean_excitons"].max())
            t = float(truncated_tail(worst, self.n_max_film))
            out.update(film_max_mean_excitons=worst, film_n_max=self.n_max_film, film_tail=t)
            out["ok"] &= t < tail
        if "fluence_log_cal_solution" in post:
            e = self.data["sol_fluence_experiment"].values
            J = np.zeros(self.data.sizes["sol_fluence"])
            J[self.data["sol_point_fluence"].values] = self.data["sol_fluence_eff_photons_cm2"].values
            sig = post["cross_section_cm2"].values[..., e]
            worst = float(np.max(sig * J * np.exp(post["fluence_log_cal_solution"].values)))
            t = float(truncated_tail(worst, self.n_max_solution))
            out.update(solution_max_mean_excitons=worst, solution_n_max=self.n_max_solution, solution_tail=t)
            out["ok"] &= t < tail
        out["ok"] = bool(out["ok"])
        return out

    def quadrature_check(self, tol=1e-4):
        """Error of the disorder average at the largest posterior sigma_1S of each experiment.

        The trapezoid nodes were sized before sampling from a quick Fermi-Dirac fit (1.5 x its sigma at
        ``QUADRATURE_TOL``); this checks the posterior did not go beyond them.  The model's rule is compared
        (``physics.api.charge_fractions``, the same graph on NumPy arrays) with a rule of 8x the nodes on
        +-9 sigma at potentials V_1S +- 8 sigma, with that draw's V_1S, V_C and sigma_1S.  ``tol`` (in the fractions) is ten times the sizing tolerance and two orders
        below the scatter of SEC <n_e>.  Models without Gaussian disorder pass trivially.
        """
        from ..physics import api

        out = {"ok": True}
        post = self.idata["posterior"]
        if self.spec.options["disorder"] != "gaussian" or "sigma_1S_V" not in post:
            return out
        g_e = int(self.data["experiment_g_e"].values[0])
        temps = self.data["experiment_temperature_K"].values
        worst = 0.0
        for k in range(len(self.names)):
            sig = post["sigma_1S_V"].values[..., k].reshape(-1)
            i = int(np.argmax(sig))
            V1 = float(post["V_1S_V"].values[..., k].reshape(-1)[i]) if "V_1S_V" in post else 0.0
            Vc = float(post["V_C_V"].values[..., k].reshape(-1)[i]) if "V_C_V" in post else 0.0
            s = float(sig[i])
            V = V1 + s * np.linspace(-8.0, 8.0, 161)
            model = api.charge_fractions(V, V1, Vc, s, temps[k], g_e, n_nodes=self.quadrature_nodes,
                                         half_width=MODEL_QUADRATURE_HALF_WIDTH)
            fine = api.charge_fractions(V, V1, Vc, s, temps[k], g_e, n_nodes=8 * self.quadrature_nodes)
            worst = max(worst, float(np.max(np.abs(model - fine))))
            out[f"sigma_1S_max_{self.names[k]}"] = s
        out.update(nodes=int(self.quadrature_nodes), max_error=worst, tol=float(tol), ok=bool(worst < tol))
        return out

    @property
    def coords(self):
        d = self.data
        c = {"experiment": self.names}
        for dim in ("sweep", "ta_potential", "ta_fluence", "sol_fluence"):
            if dim in d.dims:
                c[dim] = np.arange(d.sizes[dim])
        if "ta_point_component" in d:
            comp = d["ta_point_component"].values
            for label in ("gain", "dynamics"):
                if self.spec.components[label]:
                    c[f"{label}_point"] = np.nonzero(comp == label)[0]
        for dim in ("sol_point", "sec_point", "subgap_point"):
            if dim in d.dims:
                c[dim] = np.arange(d.sizes[dim])
        if "ta_potential" in d.dims:
            c["ta_file"] = np.arange(self._n_ta_files())
        c["charge_state"] = np.arange(int(d["experiment_g_e"].values[0]) + 1)
        if self.spec.options["discrepancy"] != "none" and "ta_potential" in d.dims:
            c["discrepancy_basis"] = np.arange(int(self.spec.options["discrepancy_basis"]))
        return c

    def _n_ta_files(self):
        d = self.data
        return int(sum(int((d["ta_potential_experiment"] == e).sum()) * int((d["ta_fluence_experiment"] == e).sum())
                       for e in range(len(self.names))))

    # ------------------------------------------------------------------ priors
    def _physical(self, name, rv_name=None):
        """A physical parameter with dim experiment; partially pooled when [pooling] names it.

        ``rv_name``: the variable's name in the model when it differs from the prior's (reparametrisation).
        """
        import pymc as pm

        p = self.spec.priors[name]
        label = rv_name or name
        n = len(self.names)
        if name in self.spec.pooling and n > 1:
            pool = self.spec.pooling[name]
            mu = pm.Normal(f"{label}__population", p["mu"], p["sigma"])
            spread = _dist(f"{label}__pooling_sd", pool)
            z = pm.Normal(f"{label}__z", 0.0, 1.0, dims="experiment")
            inner = mu + spread * z
            value = pt_exp(inner) if p["dist"] == "LogNormal" else inner
            return pm.Deterministic(label, value, dims="experiment")
        kw = {}
        if name == "V_C_V" and self.spec.options["charging_energy_transform"] == "softplus":
            from .transforms import ScaledSoftplus

            kw["default_transform"] = ScaledSoftplus(1e-3)  # volts: linear above a few mV
        return _dist(label, p, dims="experiment", **kw)

    def jitter_rvs(self, max_scale=0.25):
        """Free variables whose starting point may be jittered by U(-1, 1) in the unconstrained space.

        PyMC and nutpie jitter every free variable by U(-1, 1) unless told otherwise; that is harmless for
        standard normals and log-scale positives but moves a 10 mV sweep offset by up to 1 V and a per-file
        log fluence calibration (scale 0.05) by a factor up to e.  Such variables -- Normals and LogNormals
        whose sigma is below ``max_scale`` or depends on other variables -- start at their prior centre.
        """
        from pytensor.graph.basic import Constant
        from pytensor.graph.traversal import ancestors

        model = self.model or self.build()
        free = set(model.free_RVs)
        keep = set()
        for rv in model.free_RVs:
            if type(rv.owner.op).__name__ in ("NormalRV", "LogNormalRV"):
                sigma = rv.owner.inputs[-1]
                parents = list(ancestors([sigma]))
                if any(a in free for a in parents) or not any(isinstance(a, Constant) for a in parents):
                    continue
                try:
                    if np.min(np.asarray(sigma.eval())) < max_scale:
                        continue
                except Exception:  # not a constant expression: do not jitter
                    continue
            keep.add(rv)
        return keep

    def _log_calibration(self, label, dims, sd):
        """Log fluence calibration factors log c ~ Normal(0, sd) per file, in the spec's parametrisation.

        Film TA pins every file's <N>, so log c is identified file by file and the non-centred form
        (z = log c / sd) turns that into a thin curved sheet in (sd, z): measured, the gain SBC ranks of
        fluence_log_sd and of the z's were far from uniform and a 4-chain joint fit had a chain trapped at
        sd = 0.18 (true 0.05).  Both forms expose ``label`` (log c) in the posterior.
        """
        import pymc as pm

        if self.spec.options["fluence_calibration"] == "centered":
            return pm.Normal(label, 0.0, sd, dims=dims)
        z = pm.Normal(label.replace("log_cal", "z"), 0.0, 1.0, dims=dims)
        return pm.Deterministic(label, sd * z, dims=dims)

    def _fluence_log_sd(self):
        """Spread of the per-file log fluence calibrations: ``fluence_log_sd_floor`` plus a variable with the spec's prior.

        Without a floor the centred calibrations form a funnel whenever the true spread is below the precision
        with which the data pin each file's <N> (true fluence = nominal: the data pin the spread near 0 and
        sd and every log c shrink together; measured R-hat 1.08-1.56 and chains 240 nats apart on such an
        experiment).  No pump is reproducible to better than ~1 % per run, so a floor of that order is
        physics, and it keeps the calibrations' conditional scale above their data precision.
        """
        import pymc as pm

        floor = float(self.spec.options["fluence_log_sd_floor"])
        if floor <= 0:
            return self._nuisance("fluence_log_sd")
        excess = _dist("fluence_log_sd_excess", self.spec.priors["fluence_log_sd"], dims="experiment")
        return pm.Deterministic("fluence_log_sd", floor + excess, dims="experiment")

    def _nuisance(self, name, dims="experiment"):
        return _dist(name, self.spec.priors[name], dims=dims)

    def _gamma_scale(self, eta=None):
        """gamma / (A0_1S / g_e g_h), with its prior from the spec.

        With hole trapping the film TA pins the stimulated-emission scale gamma (1 - eta) tightly and gamma
        itself weakly; sampled as (gamma, eta) the two lie on a thin curved ridge (r = 0.95; R-hat 1.06, bulk
        ESS 49 on batch B).  So the sampled variable is the emission scale: gamma_scale's prior is placed on
        ``gamma_emission_scale`` = gamma (1 - eta) / c, c = exp(E[log(1 - eta)]) under eta's prior, and gamma =
        c x gamma_emission_scale / (1 - eta) keeps the stated median (its prior is a little wider than stated,
        by eta's spread).
        """
        import pymc as pm

        if eta is None:
            return self._nuisance("gamma_scale")
        draws = pm.draw(_dist(None, self.spec.priors["hole_trap_fraction"]), 20000, random_seed=0)
        c = float(np.exp(np.mean(np.log1p(-np.clip(draws, 0.0, 1.0 - 1e-12)))))
        emission = _dist("gamma_emission_scale", self.spec.priors["gamma_scale"], dims="experiment")
        return pm.Deterministic("gamma_scale", c * emission / (1.0 - eta), dims="experiment")

    def _occupancy_bleach(self, gamma_scale):
        """beta / A0_1S, with the spec's prior, sampled centred on -gamma_scale.

        The film TA pins u = gamma_scale + beta_rel, the window bleach per 1S(e) electron relative to A0_1S /
        g_e, far better than either (r(gamma, beta) = -0.98 to -0.999 on batches A and B).  For a Normal or
        Student-t prior of beta the sampled variable is u ~ prior of beta shifted by gamma_scale, the same joint
        prior (unit Jacobian); other priors sample beta itself.
        """
        import pymc as pm

        p = dict(self.spec.priors["window_occupancy_bleach_rel"])
        if p["dist"] not in ("Normal", "StudentT"):
            return self._nuisance("window_occupancy_bleach_rel")
        u = _dist("window_bleach_per_electron_rel", {**p, "mu": p["mu"] + gamma_scale}, dims="experiment")
        return pm.Deterministic("window_occupancy_bleach_rel", u - gamma_scale, dims="experiment")

    def _error_sd(self, scatter, sem_name):
        """Standard deviation of each observation: the fitted scatter, with the window SEM in quadrature
        under ``measurement_error = "sem+scatter"``."""
        import pytensor.tensor as pt

        if self.spec.options["measurement_error"] == "sem+scatter" and sem_name in self.data:
            return pt.sqrt(scatter**2 + self.data[sem_name].values ** 2)
        return scatter

    def _delay_discrepancy(self, file_index, file_experiment, A0):
        """Smooth misfit f_file(log t) of every film TA point (see :mod:`.discrepancy`), in OD."""
        import pymc as pm
        import pytensor.tensor as pt

        from .discrepancy import expquad_sqrt_spectral_density, hsgp_basis

        x = np.log(self.data["ta_point_delay"].values)
        phi, sqrt_lam = hsgp_basis(x, self.spec.options["discrepancy_basis"])
        amp = self._nuisance("discrepancy_amplitude_rel")
        ell = self._nuisance("discrepancy_lengthscale")
        z = pm.Normal("discrepancy_z", 0.0, 1.0, dims=("ta_file", "discrepancy_basis"))
        fe = file_experiment
        scale = (A0[fe] * amp[fe])[:, None] * expquad_sqrt_spectral_density(sqrt_lam[None, :], ell[fe][:, None], xp=pt)
        return pt.sum(phi * (scale * z)[file_index], axis=1)

    # ------------------------------------------------------------------ build
    def build(self):
        """Create ``self.model`` (a pm.Model) from the spec and the data; returns it."""
        import pymc as pm
        import pytensor.tensor as pt

        from ..physics import auger, charging, optics, transitions

        spec, d, comp, opt = self.spec, self.data, self.spec.components, self.spec.options
        n_exp = len(self.names)
        g_e = int(d["experiment_g_e"].values[0])
        g_h = int(d["experiment_g_h"].values[0])
        if not (np.all(d["experiment_g_e"].values == g_e) and np.all(d["experiment_g_h"].values == g_h)):
            raise ValueError("all experiments of one fit must share g_e and g_h")
        T = pt.as_tensor_variable(d["experiment_temperature_K"].values)
        A0 = d["experiment_film_A0_1S_OD"].values
        gg = g_e * g_h
        S = g_e + 1
        nodes = self.quadrature_nodes
        likelihood = opt["likelihood"]
        coords = self.coords
        with pm.Model(coords=coords) as model:
            P = {}
            for name in spec.priors:
                if name in PHYSICAL_PARAMETERS and name not in ("reflection_scale", "fluence_log_sd", "V_1S_V"):
                    P[name] = self._physical(name)
            if "V_1S_V" in spec.priors:
                # The SEC data pin the half-filling potential V_1S - V_C/2 (g_e = 2: <n_e> = 1 there), not V_1S
                # and V_C apart, and V_C is prior-dominated: sampling (V_1S, V_C) directly gave a curved ridge
                # (bulk ESS ~110 of 1000 draws).  So the V_1S prior is placed on the midpoint and V_1S is derived;
                # with V_C (mV) << the prior width (0.2 V) the implied prior on V_1S is the stated one to < 2 %.
                mid = self._physical("V_1S_V", rv_name="V_half_filling_V")
                half = P["V_C_V"] * (g_e - 1) / 2.0 if "V_C_V" in P else 0.0
                P["V_1S_V"] = pm.Deterministic("V_1S_V", mid + half, dims="experiment")
            nu = self._nuisance("student_nu", None) if likelihood == "student-t" else None

            def observe(label, mu, sigma, obs, dims):
                if nu is not None:
                    return pm.StudentT(label, nu=nu, mu=mu, sigma=sigma, observed=obs, dims=dims)
                return pm.Normal(label, mu=mu, sigma=sigma, observed=obs, dims=dims)

            def fractions(V, e_idx):
                V1 = P["V_1S_V"][e_idx]
                Vc = P["V_C_V"][e_idx]
                if opt["disorder"] == "gaussian":
                    return charging.charge_fractions_disordered(V, V1, Vc, P["sigma_1S_V"][e_idx], T[e_idx], g_e,
                                                                n_nodes=nodes, half_width=MODEL_QUADRATURE_HALF_WIDTH)
                temp = P["T_eff_K"][e_idx] if opt["disorder"] == "effective-temperature" else T[e_idx]
                return charging.charge_fractions(V, V1, Vc, temp, g_e)

            needs_cascade = comp["cross_section"] or comp["gain"] or comp["dynamics"]
            if needs_cascade:
                k_xx = pm.Deterministic("k_xx_per_ps", 1.0 / P["tau_xx_ps"], dims="experiment")
                k_x = 1.0 / P["tau_x_ps"] if "tau_x_ps" in P else pt.zeros(n_exp)
                M = self.n_max
                rates = auger.rate_table(M, g_e, k_xx[:, None, None], k_x[:, None, None])  # (E, S, M)
                if opt["auger"] == "free":
                    rates = auger.free_auger_rates(rates, M, g_e, k_x[:, None, None], P["trion_rate_factor"][:, None, None],
                                                   P["triexciton_rate_factor"][:, None, None])
                table = transitions.transition_table(M, g_e, g_h)  # (M+1, S)
                emission = transitions.emission_table(M, g_e, g_h)
                occupancy = transitions.occupancy_table(M, g_e)
                J_sat = max(g_e, g_h)
                # Bateman coefficients once per experiment at the longer truncation, shared by the solution and
                # film cascades (exact: see auger.cascade_absorption); one coefficient graph to compile, not two
                coeff = [auger.bateman_coefficients(rates[k], n_rows=J_sat) for k in range(n_exp)]
                fl_sd = self._fluence_log_sd()

            if comp["gain"] or comp["dynamics"]:
                eta = P["hole_trap_fraction"] if comp["hole_trapping"] else None
                gamma_scale = self._gamma_scale(eta)
                gamma = pm.Deterministic("gamma_OD", A0 / gg * gamma_scale, dims="experiment")
                beta = pm.Deterministic("window_occupancy_bleach_OD", A0 * self._occupancy_bleach(gamma_scale),
                                        dims="experiment")
                shift_loss = self._nuisance("window_shift_loss")
                ta_noise = self._nuisance("ta_noise_rel")
                film_sigma = pm.Deterministic("film_cross_section_cm2", P["cross_section_cm2"] *
                                              P["film_cross_section_ratio"], dims="experiment")
            if comp["reflection"]:
                refl = self._nuisance("reflection_scale", dims="ta_potential")
                sub_noise = self._nuisance("subgap_noise_rel")

            # ---------------------------------------------------------- cross-section (solution)
            if comp["cross_section"]:
                log_cal_sol = self._log_calibration("fluence_log_cal_solution", "sol_fluence",
                                                     fl_sd[d["sol_fluence_experiment"].values])
                gamma_sol = d["experiment_solution_A0_1S_OD"].values / gg * self._nuisance("solution_gamma_scale")
                sol_noise = self._nuisance("solution_noise_rel")
                e = d["sol_point_experiment"].values
                fi = d["sol_point_fluence"].values
                J_sol = np.zeros(d.sizes["sol_fluence"])
                J_sol[fi] = d["sol_fluence_eff_photons_cm2"].values
                f_neutral = np.eye(S)[0]
                mus = []
                for k in range(n_exp):
                    # the cascade is evaluated once per fluence on the shared delays, then gathered
                    sel = np.nonzero(e == k)[0]
                    files, f_loc = np.unique(fi[sel], return_inverse=True)
                    delays, t_loc = np.unique(d["sol_point_delay"].values[sel], return_inverse=True)
                    mean_f = P["cross_section_cm2"][k] * J_sol[files] * pt.exp(log_cal_sol[files])
                    Ms = self.n_max_solution
                    f_sol = np.tile(f_neutral, (files.size, 1))
                    # the dots in solution trap holes as in the film (the simulator's batch B does: without this
                    # the late-delay solution bleach pulled the cross-section 8 % and tau_x 2x low)
                    eta_sol = P["hole_trap_fraction"][k] if comp["hole_trapping"] else None
                    if eta_sol is not None and opt["hole_trapping_form"] == "counting":
                        fx, rx, tx = auger.hole_trap_chains(
                            f_sol, eta_sol, rates[k][:, :Ms], auger.trapped_hole_rate_table(Ms, g_e, k_xx[k], k_x[k]),
                            table[: Ms + 1], transitions.trapped_hole_transition_table(Ms, g_e, g_h))
                        A = auger.cascade_absorption(mean_f, fx, delays, rx, tx, max(g_e, g_h + 1))
                    else:
                        tab = table[: Ms + 1] if eta_sol is None else table[: Ms + 1] + eta_sol * emission[: Ms + 1]
                        A = auger.cascade_absorption(mean_f, f_sol, delays, rates[k][:, :Ms], tab, J_sat,
                                                     coefficients=coeff[k])
                    mus.append(gamma_sol[k] * (A[f_loc, t_loc] - gg))
                mu = pt.concatenate(mus)
                sd = self._error_sd(d["experiment_solution_A0_1S_OD"].values[e] * sol_noise[e], "sol_dA_sem")
                observe("cross_section", mu, sd, d["sol_dA"].values, "sol_point")

            # ---------------------------------------------------------- charging and PL (SEC)
            if comp["charging"]:
                sd_off = float(opt["sweep_offset_sd_V"])
                # each sweep's offset (reference drift, hysteresis) from the nominal potential scale, the scale
                # the film TA potentials are set on.  Not centred: SEC alone cannot tell a drift common to all
                # sweeps from V_1S (its uncertainty belongs in V_1S), and the TA data can.  Centring them put
                # the mean drift of batch B (-0.9 mV) into V_1S and pulled <n_e> at the TA potentials 5 sd off.
                offset = pm.Normal("sweep_offset_V", 0.0, sd_off, dims="sweep")
                e = d["sec_point_experiment"].values
                V = d["sec_point_potential"].values + offset[d["sec_point_sweep"].values]
                f = fractions(V, e)
                scale = self._nuisance("sec_bleach_scale")
                noise = self._nuisance("sec_noise")
                mu = scale[e] * charging.mean_electrons(f)
                observe("charging", mu, self._error_sd(noise[e], "sec_n_e_sem"), d["sec_n_e"].values, "sec_point")
                if comp["photoluminescence"]:
                    if g_e != 2:
                        raise ValueError("the photoluminescence component is written for g_e = 2")
                    mu_pl = f[:, 0] + P["pl_yield_1"][e] * f[:, 1] + P["pl_yield_2"][e] * f[:, 2]
                    observe("photoluminescence", mu_pl, self._nuisance("pl_noise")[e], d["sec_pl"].values, "sec_point")

            # ---------------------------------------------------------- gain and dynamics (film TA)
            if comp["gain"] or comp["dynamics"]:
                pot_exp = d["ta_potential_experiment"].values
                f_pot = fractions(d["ta_potential_V"].values, pot_exp)  # (ta_potential, S)
                pm.Deterministic("ta_charge_fractions", f_pot, dims=("ta_potential", "charge_state"))
                e = d["ta_point_experiment"].values
                lay = self.layout
                file_index, pot_index, fe = lay.file_index, lay.ta_potential_index, lay.file_experiment
                J_file = d["ta_fluence_nominal_photons_cm2"].values[lay.file_fluence]
                # <N> of every film TA file: film cross-section x nominal fluence x latent calibration
                log_cal_film = self._log_calibration("fluence_log_cal_film", "ta_file", fl_sd[fe])
                # with pump_attenuation = "beer-lambert" this is the front value: <N> falls through the film as
                # 10^(-OD_pump z) and every film TA prediction is the depth average over the nodes r_k (weights w_k)
                file_mean = pm.Deterministic("ta_mean_excitons", film_sigma[fe] * J_file * pt.exp(log_cal_film),
                                             dims="ta_file")
                depth = None
                if opt["pump_attenuation"] == "beer-lambert":
                    from ..physics.optics import pump_depth_node_count, pump_depth_profile

                    od = np.nan_to_num(d["experiment_film_pump_OD"].values, nan=0.0)  # NaN: an experiment without film TA
                    depth = pump_depth_profile(od, pump_depth_node_count(od))  # r (experiment, K), w (K,)
                    pm.Deterministic("ta_mean_excitons_depth_average",
                                     file_mean * pt.sum(depth[0][fe] * depth[1], axis=-1), dims="ta_file")
                tail = None
                if opt["discrepancy"] == "window-tail":
                    tail = (self._nuisance("window_tail_amplitude_rel"), self._nuisance("window_tail_time_ps"))
                mus = []
                for k in range(n_exp):
                    sel = np.nonzero(e == k)[0]
                    Mf = self.n_max_film
                    tab = table[: Mf + 1]
                    if eta is not None and opt["hole_trapping_form"] == "emission":
                        tab = tab + eta[k] * emission[: Mf + 1]
                    # once per file on the experiment's delays (all files share them), then gathered per point
                    files, f_loc = np.unique(file_index[sel], return_inverse=True)
                    delays, t_loc = np.unique(d["ta_point_delay"].values[sel], return_inverse=True)
                    pot_of_file = pot_index[sel][np.unique(f_loc, return_index=True)[1]]
                    f_files = f_pot[pot_of_file]
                    N_files = file_mean[files]
                    if depth is not None:  # every file once per depth node (file-major), averaged back below
                        K = int(depth[1].type.shape[0])
                        N_files = (N_files[:, None] * depth[0][k][None, :]).reshape((-1,))
                        f_files = pt.repeat(f_files, K, axis=0)
                    # absorption and occupancy are two read-outs of the same populations: one cascade
                    tabs = pt.stack([tab, occupancy[: Mf + 1]])
                    if eta is not None and opt["hole_trapping_form"] == "counting":
                        # trapped-hole QDs as their own chains (transition counting with the hole off the band edge)
                        fx, rx, tx = auger.hole_trap_chains(
                            f_files, eta[k], rates[k][:, :Mf], auger.trapped_hole_rate_table(Mf, g_e, k_xx[k], k_x[k]),
                            tabs, pt.stack([transitions.trapped_hole_transition_table(Mf, g_e, g_h), occupancy[: Mf + 1]]))
                        both = auger.cascade_absorption(N_files, fx, delays, rx, tx, max(g_e, g_h + 1))
                    else:
                        both = auger.cascade_absorption(N_files, f_files, delays, rates[k][:, :Mf], tabs, J_sat,
                                                        coefficients=coeff[k])
                    A_eff, occ = both[:, 0], both[:, 1]
                    # bleached fraction x of the band edge; the excited line shifts (biexciton binding) by ~x^2 and
                    # its window average drops by ~shift^2: gamma A_eff (1 - kappa x^4)
                    A_pre = pt.sum(f_files * table[0], axis=-1)[:, None]
                    occ_pre = pt.sum(f_files * occupancy[0], axis=-1)[:, None]
                    # the data are A_pre(measured) + Delta A_TA: the model predicts Delta A_TA, the excited minus
                    # the pre-pump state of the same charge distribution (b cancels), and the measured A_pre of
                    # the file's potential is added back.  Modelling A* whole attributed the SEC-interpolated
                    # A_pre's errors (drift, hysteresis, 20 mV grid: up to 0.009 e-/QD on batch B) to the
                    # charge fractions and pulled sigma_1S 1 % low.
                    dA = optics.window_absorption_change(A_eff, occ, A_pre, occ_pre, gamma[k], shift_loss[k], beta[k],
                                                         g_e, g_h)
                    if tail is not None:
                        # amplitude at the earliest delay fitted: a tail faster than the data's delays then has
                        # no free amplitude (measured: divergences at tau < 1 ps with the t = 0 amplitude)
                        dA = dA - optics.window_tail_bleach(N_files[:, None], delays[None, :], float(delays.min()),
                                                            A0[k] * tail[0][k], tail[1][k], pt.exp)
                    if depth is not None:
                        dA = pt.sum(dA.reshape((files.size, K, delays.size)) * depth[1][None, :, None], axis=1)
                    a_pre = d["ta_potential_A_pre_OD"].values[pot_of_file][:, None]
                    mus.append((a_pre + dA)[f_loc, t_loc])
                mu = pt.concatenate(mus)
                if comp["reflection"]:
                    mu = mu - (refl[pot_index] - 1.0) * d["ta_reflection_sensitivity"].values
                # the physics' prediction and the error, kept for the residual checks (bayesgain.model.checks)
                self.film_mean_physics = mu
                if opt["discrepancy"] == "delay-gp":
                    mu = mu + self._delay_discrepancy(file_index, fe, A0)
                sd = self._error_sd(A0[e] * ta_noise[e], "ta_A_sem")
                self.film_sd = sd
                comp_label = d["ta_point_component"].values
                for label in ("gain", "dynamics"):
                    if comp[label]:
                        idx = np.nonzero(comp_label == label)[0]
                        observe(label, mu[idx], sd[idx], d["ta_A"].values[idx], f"{label}_point")

            if comp["reflection"]:
                e = d["subgap_point_experiment"].values
                pot_sub = index_within_experiment(d["subgap_point_potential"].values, d["ta_potential_V"].values, e,
                                    d["ta_potential_experiment"].values)
                mu = -(refl[pot_sub] - 1.0) * d["subgap_reflection_sensitivity"].values
                observe("reflection", mu, self._error_sd(A0[e] * sub_noise[e], "subgap_dA_sem"), d["subgap_dA"].values,
                        "subgap_point")
        self.model = model
        return model

    # ------------------------------------------------------------------ sampling
    @property
    def observed_names(self):
        return [n for n in OBSERVED if self.spec.components.get(n)]

    @property
    def parameter_names(self):
        """Physical parameters of the posterior (what summary.csv reports)."""
        if self.model is None:
            self.build()
        names = [n for n in PHYSICAL_PARAMETERS if n in self.model.named_vars]
        extra = ["film_cross_section_cm2", "gamma_OD", "window_occupancy_bleach_OD",
                 "sweep_offset_V", "sec_bleach_scale", "student_nu"]
        return names + [n for n in extra if n in self.model.named_vars]

    def sample_prior_predictive(self, draws=200, seed=0, var_names=None):
        """Prior (and, unless ``var_names`` leaves them out, prior predictive) draws as a DataTree."""
        import pymc as pm

        model = self.model or self.build()
        with model, quiet_pymc():
            return pm.sample_prior_predictive(draws=draws, random_seed=seed, var_names=var_names,
                                              compile_kwargs={"mode": numpy_mode()})

    def fit(self, draws=1000, tune=1000, chains=4, seed=0, sampler="nutpie", progress=True, target_accept=0.9,
            cores=None, min_ess=400, adaptation="low_rank", max_treedepth=None, starts="optimum", backend="numba",
            initvals=None, rerun_stuck=True, resize_truncation=True):
        """Sample the posterior; returns the DataTree (also kept as ``self.idata``) with log-likelihoods.

        ``sampler``: "nutpie" (default) or "pymc".  ``backend`` (nutpie): the PyTensor backend of the log
        density, "numba" (default: ~105 s to compile cold, cached afterwards; the fastest sampling) or "jax"
        (optional dependency: ~6 s to compile, but sampling takes ~1.5x as long, its Python callbacks barely
        running in parallel: the faster choice for a first or one-off fit; see :data:`.sampling.BACKENDS`).
        ``initvals`` (PyMC's sampler only): one start per chain, dicts of value-variable name -> value
        (unconstrained names such as ``tau_xx_ps_log__`` take unconstrained values), used as they are (no
        jitter); e.g. the climbed starts nutpie gets.  With nutpie the mass matrix is
        adapted with a low-rank correction (``adaptation="low_rank"``): the cross-section, the film ratio
        and the per-file fluence calibrations form long correlated directions that a diagonal mass
        matrix crawls along (measured: bulk ESS 5 of 600 draws with "diag").  ``max_treedepth`` caps the
        NUTS trajectory at 2^depth steps (default: the sampler's 10): for short illustrative fits (the
        notebooks' CI settings), where the first tuning steps otherwise take hundreds of gradient
        evaluations each; a capped converged fit is still valid, a capped short one is only cheaper.
        ``starts`` (nutpie): "optimum" starts each chain where L-BFGS from its jittered point ends, a chain
        whose climb ends far below the best at the best one's end; "checked" keeps the jittered points
        (replacing only those in a worse basin); "jitter" is PyMC's (see :mod:`.sampling`; the report is
        in ``self.start_report`` and the tree's attrs).  ``rerun_stuck`` (nutpie): run a chain stuck in a minor
        mode again from the best chain's start (a safety net; benchmarks switch it off to see the geometry).
        ``resize_truncation``: where the posterior reaches <N> beyond what the Poisson truncation (sized before
        sampling from the nominal fluences) holds, raise the truncation to the posterior's largest <N> and fit
        once more (a more accurate model, not a rescue of mixing: measured under a 20 % fluence calibration
        spread, draws reached <N> = 15-22 against a truncation sized for ~9).  The convergence report is in
        ``self.convergence`` and in the tree's attrs; a fit that is not converged says so everywhere.
        """
        import pymc as pm

        from .sampling import sample_nutpie

        model = self.model or self.build()
        t0 = time.time()
        with model, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*BLAS.*")
            if sampler == "nutpie":
                idata, self.start_report = sample_nutpie(
                    model, draws=draws, tune=tune, chains=chains, seed=seed, cores=cores, target_accept=target_accept,
                    adaptation=adaptation, max_treedepth=max_treedepth, progress=progress,
                    jitter_rvs=self.jitter_rvs(), starts=starts, backend=backend, rerun_stuck=rerun_stuck)
            else:
                if backend != "numba":
                    raise ValueError(f"backend={backend!r} applies to the nutpie sampler only")
                kw = dict(draws=draws, tune=tune, chains=chains, random_seed=seed, progressbar=progress,
                          nuts_sampler=sampler, target_accept=target_accept)
                if cores is not None:
                    kw["cores"] = cores
                if max_treedepth is not None:
                    kw["nuts"] = {"max_treedepth": int(max_treedepth)}  # pm.sample moves target_accept into it
                if initvals is not None:
                    kw.update(initvals=initvals, init="adapt_diag")
                idata = pm.sample(**kw)
                idata.attrs["chain_starts"] = ("given per chain (adapt_diag, no jitter)" if initvals is not None else
                                               "PyMC's own (jitter+adapt_diag: U(-1, 1) jitter around the prior centres)")
            t1 = time.time()
            pm.compute_log_likelihood(idata, var_names=self.observed_names, progressbar=False)
        self.idata = idata
        self._finish(idata, sampling_s=t1 - t0, min_ess=min_ess)
        if resize_truncation and self._resize_truncation():
            return self.fit(draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler, progress=progress,
                            target_accept=target_accept, cores=cores, min_ess=min_ess, adaptation=adaptation,
                            max_treedepth=max_treedepth, starts=starts, backend=backend, initvals=initvals,
                            rerun_stuck=rerun_stuck, resize_truncation=False)
        return idata

    def _resize_truncation(self, margin=1.2):
        """Raise the Poisson truncations the posterior outgrew (to its largest <N> x ``margin``); True if any was
        raised (the model is then rebuilt).  A note says so in the report."""
        trunc = self.truncation_check()
        if trunc["ok"]:
            return False
        raised = []
        for kind in ("film", "solution"):
            worst = trunc.get(f"{kind}_max_mean_excitons")
            # every truncation short of the sizing's own tail is raised, not only the one the check failed on:
            # the refit's draws move (measured: the film tail 1e-5 -> 2.6e-5 after raising the solution only)
            if worst is None or trunc[f"{kind}_tail"] < self.POISSON_TAIL:
                continue
            new = _truncation_bucket(required_n_max(margin * worst, tail=self.POISSON_TAIL))
            old = getattr(self, f"n_max_{kind}")
            if new > old:
                setattr(self, f"n_max_{kind}", new)
                raised.append(f"{kind} {old} -> {new} (posterior <N> up to {worst:.3g})")
        if not raised:
            return False
        self.n_max = max(self.n_max_film, self.n_max_solution, 8)
        note = "Poisson truncation raised after a first fit outgrew it, and the model fitted again: " + "; ".join(raised)
        self.data.attrs["component_notes"] = "\n".join([*self.component_notes, note])
        self.model = None
        self.build()
        return True

    def _finish(self, idata, sampling_s=None, min_ess=400):
        self.convergence = convergence_report(idata, self.parameter_names, min_ess=min_ess)
        a = idata.attrs
        a["bayesgain_version"] = __version__
        a["model_name"] = self.spec.name
        a["model_spec_toml"] = self.spec.to_toml()
        a["convergence"] = self.convergence.text()
        a["n_max"] = self.n_max
        a["n_max_film"] = self.n_max_film
        a["n_max_solution"] = self.n_max_solution
        a["component_notes"] = "\n".join(self.component_notes)
        trunc = self.truncation_check()
        if not trunc["ok"]:
            self.convergence["ok"] = False
            self.convergence["note"] = f"Poisson truncation too short for the posterior: {trunc}"
        quad = self.quadrature_check()
        a["disorder_quadrature"] = str(quad)
        if not quad["ok"]:
            self.convergence["ok"] = False
            note = f"disorder quadrature too coarse for the posterior sigma_1S (set quadrature_nodes higher): {quad}"
            self.convergence["note"] = "; ".join(x for x in (self.convergence.get("note"), note) if x)
        a["converged"] = int(self.convergence.ok)
        a["experiments"] = ", ".join(self.names)
        a["synthetic"] = int(bool(np.any(self.data["experiment_synthetic"].values > 0)))
        if sampling_s is not None:
            a["sampling_seconds"] = float(sampling_s)
        a.setdefault("created", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))

    def sample_posterior_predictive(self, seed=0, var_names=None, max_draws=500):
        """Posterior predictive draws of every observed component (added to ``self.idata``).

        The posterior is thinned evenly to at most ``max_draws`` draws (chains kept): a predictive check's
        bands need hundreds of draws, not thousands, and each costs a forward pass of the whole model.
        """
        import math

        import pymc as pm

        if self.idata is None:
            raise RuntimeError("fit() or load() first")
        model = self.model or self.build()
        post = self.idata["posterior"].to_dataset()
        n = post.sizes["chain"] * post.sizes["draw"]
        step = max(1, math.ceil(n / max_draws)) if max_draws else 1
        with model, quiet_pymc():
            # Python-VM mode: a numba compile of the forward graph costs minutes, the draws seconds
            pp = pm.sample_posterior_predictive(post.isel(draw=slice(None, None, step)),
                                                var_names=var_names or self.observed_names, random_seed=seed,
                                                progressbar=False, compile_kwargs={"mode": numpy_mode()})
        self.idata["posterior_predictive"] = pp["posterior_predictive"]
        return self.idata["posterior_predictive"]

    # ------------------------------------------------------------------ results
    def summary(self, var_names=None):
        """ArviZ summary (mean, sd, 94 % HDI, ESS, R-hat) of the physical parameters, with a unit column."""
        import arviz as az

        names = var_names or self.parameter_names
        s = az.summary(self.idata, var_names=[n for n in names if n in self.idata["posterior"]], ci_prob=0.94,
                       ci_kind="hdi", round_to="none")
        units = {k: p["unit"] for k, p in self.spec.priors.items()}
        units.update(film_cross_section_cm2="cm^2", gamma_OD="OD", window_occupancy_bleach_OD="OD",
                     sweep_offset_V="V", k_xx_per_ps="1/ps")
        s.insert(0, "unit", [units.get(str(i).split("[")[0], "") for i in s.index])
        return s

    def save(self, path, overwrite=False):
        """Write the fit (posterior, log-likelihoods, observations, spec, version) to one NetCDF file atomically."""
        path = pathlib.Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        if self.idata is None:
            raise RuntimeError("nothing to save: fit() first")
        tree = self.idata.copy()
        # h5netcdf cannot write numpy strings inside list attributes: store them as plain str
        tree.attrs = {k: [str(x) if isinstance(x, str) else x for x in v] if isinstance(v, (list, tuple)) else v
                      for k, v in tree.attrs.items()}
        tree["reduced_data"] = xr.DataTree(_netcdf_safe(self.data))
        with atomic_path(path) as tmp:
            tree.to_netcdf(tmp, engine="h5netcdf")
        return path

    @classmethod
    def load(cls, path):
        """Reopen a saved fit: the model is rebuilt from the stored spec and observations."""
        path = pathlib.Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no saved fit at {path}")
        tree = xr.open_datatree(path, engine="h5netcdf").load()
        if "reduced_data" not in tree or "model_spec_toml" not in tree.attrs:
            raise ValueError(f"{path}: not a bayesgain fit (no reduced_data group or model_spec_toml attribute)")
        import tomllib

        spec = spec_from_dict(tomllib.loads(tree.attrs["model_spec_toml"]), source=f"{path}:model_spec_toml",
                              text=tree.attrs["model_spec_toml"])
        data = _netcdf_restore(tree["reduced_data"].to_dataset())
        obj = cls(spec, _reduced=data)
        obj.n_max = int(tree.attrs.get("n_max", obj.n_max))
        obj.n_max_film = int(tree.attrs.get("n_max_film", obj.n_max_film))
        obj.n_max_solution = int(tree.attrs.get("n_max_solution", obj.n_max_solution))
        del tree["reduced_data"]
        obj.idata = tree
        obj.build()
        obj.convergence = convergence_report(tree, obj.parameter_names) if "posterior" in tree else None
        return obj


def pt_exp(x):
    import pytensor.tensor as pt

    return pt.exp(x)


def _netcdf_safe(ds):
    ds = ds.copy()
    ds.attrs = {k.replace(":", "__"): v for k, v in ds.attrs.items()}
    for k in list(ds.variables):
        if ds[k].dtype.kind == "U":
            ds[k] = ds[k].astype(object)
    return ds


def _netcdf_restore(ds):
    ds = ds.copy()
    ds.attrs = {k.replace("__", ":"): v for k, v in ds.attrs.items()}
    for k in list(ds.variables):
        if ds[k].dtype.kind == "O":
            ds[k] = ds[k].astype(str)
    return ds
