"""Where to measure next: Bayesian experimental design of the next film TA runs from a saved fit.

A candidate is one film TA run at potential V (V vs the experiment's reference electrode) and pump
fluence F (photons/cm^2), recorded at the delays of the existing runs and with their noise.  For each
candidate the *expected* width of the target's 94 % HDI after adding that run is estimated from the
posterior draws without refitting (pre-posterior analysis):

1. for every draw j the candidate's window-averaged Delta A_TA(t) is predicted with the model's own
   physics (:mod:`bayesgain.physics`: fractions, Poisson start, Auger cascade, the model's nuisance
   scales gamma, beta, kappa), the new file's unknown fluence calibration log c = fluence_log_sd x z
   on a grid of z;
2. K outcomes are simulated, y_k ~ p(y | draw k) (its own z_k, Gaussian noise of sd A0 x ta_noise_rel,
   the plain "scatter" error form);
3. every draw is weighted by p(y_k | draw j), with log c marginalised (Laplace on the z grid), and the
   target's weighted 94 % HDI width is taken; the average over k is the expected width.

When an outcome leaves fewer than ``min_ess`` effective draws the weighted HDI is noise, and that
outcome's width is taken from the linear-Gaussian (Bayes linear) update instead, computed from the same
draws (exact for a Gaussian posterior and a linear prediction); design.md says how often that happened.
A batch of ``n`` runs is chosen greedily: each step adds the candidate that minimises the expected
width given the outcomes already simulated for the chosen ones (joint weights: the log-likelihoods add),
so two runs that tell the same thing are not both chosen.

Not modelled in the candidate's prediction (stated in design.md): the per-potential Delta R scale of the
reflection component (taken as 1 at a new potential: the open-circuit Delta R is right there) and the
delay discrepancy term of ``discrepancy = "delay-gp"``; with ``measurement_error = "sem+scatter"`` the
median window SEM of the existing runs is added to the scatter in quadrature.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np

from . import physics as ph
from .physics import optics
from .model.components.charging_laws import law_for
from .model.quantities import CASCADE_PARAMETERS, _cascade_draw_fn, _trap_form, cascade_arguments

__all__ = ["DesignError", "Target", "parse_target", "Candidates", "candidate_grid", "weighted_hdi_width",
           "reweighted_widths", "linear_gaussian_width", "expected_width", "log_marginal_over_grid", "greedy_batch", "design",
           "DesignResult", "write_design", "prior_limited_target", "HDI_PROB"]

HDI_PROB = 0.94
TARGET_HELP = ("threshold-at-ne=<x> (e.g. threshold-at-ne=1.0), threshold-fluence-at-ne=<x> (the pump fluence at that threshold), threshold-curve, tau_xx")


class DesignError(ValueError):
    """A design request that cannot be answered: the message is one line saying what to change."""


# ----------------------------------------------------------------------------- targets
@dataclasses.dataclass(frozen=True)
class Target:
    """What the experimenter wants to know better: its name, the <n_e> levels it reads and its unit."""

    name: str
    kind: str  # "threshold" (at the levels in n_e), "threshold-fluence" (the same over the film cross-section), "tau_xx"
    n_e: tuple = ()
    unit: str = ""
    description: str = ""


def parse_target(text, g_e=2):
    """``threshold-at-ne=1.0`` | ``threshold-fluence-at-ne=1.0`` | ``threshold-curve`` | ``tau_xx`` -> :class:`Target`
    (DesignError otherwise).

    ``g_e=None`` checks the spelling only (before a fit is opened)."""
    t = str(text).strip().lower().replace("_", "-")
    if t in ("tau-xx", "tauxx"):
        return Target("tau_xx", "tau_xx", (), "ps", "biexciton Auger lifetime tau_XX")
    if t == "threshold-curve":
        g_e = 2 if g_e is None else g_e
        levels = tuple(float(x) for x in np.round(np.linspace(0.1, g_e - 0.1, 2 * g_e + 1), 6))
        return Target("threshold-curve", "threshold", levels, "excitons/QD",
                      f"gain threshold <N_gain> averaged over <n_e> = {levels[0]:g}..{levels[-1]:g} "
                      f"({len(levels)} levels)")
    m = re.fullmatch(r"threshold-(fluence-)?at-ne=([-+0-9.eE]+)", t)
    if m:
        try:
            x = float(m.group(2))
        except ValueError:
            x = math.nan
        if not (0.0 <= x < (math.inf if g_e is None else g_e)):
            raise DesignError(f"--target {text}: <n_e> must be a number from 0 to below g_e = {g_e} electrons/QD "
                              f"(at <n_e> = g_e there is no threshold)")
        if m.group(1):  # what the lab sets: the pump fluence, through the film cross-section the film TA measures
            return Target(f"threshold-fluence-at-ne={x:g}", "threshold-fluence", (x,), "photons/cm^2",
                          f"pump fluence at the gain threshold, <N_gain> / film cross-section, at <n_e> = {x:g} "
                          "electrons/QD")
        return Target(f"threshold-at-ne={x:g}", "threshold", (x,), "excitons/QD",
                      f"gain threshold <N_gain> at <n_e> = {x:g} electrons/QD")
    raise DesignError(f"--target {text}: unknown target; expected one of {TARGET_HELP}")


def target_draws(model, target, take, experiment=0):
    """(S, Q) values of the target for the posterior samples ``take`` (indices into chain x draw)."""
    from .model.quantities import posterior_samples, threshold_curve

    if target.kind == "tau_xx":
        s, _ = posterior_samples(model, ["tau_xx_ps"], experiment)
        if s["tau_xx_ps"] is None:
            raise DesignError(f"--target {target.name}: this fit has no tau_xx_ps (model '{model.spec.name}')")
        return s["tau_xx_ps"][take][:, None]
    if "V_C_V" not in model.idata["posterior"]:
        raise DesignError(f"--target {target.name}: this fit has no charging parameters (model "
                          f"'{model.spec.name}'); threshold targets need a joint fit")
    thr = threshold_curve(model, n_e=np.asarray(target.n_e), experiment=experiment).values[take]
    if target.kind == "threshold-fluence":
        s, _ = posterior_samples(model, ["film_cross_section_cm2"], experiment)
        if s["film_cross_section_cm2"] is None:
            raise DesignError(f"--target {target.name}: this fit has no film cross-section (model "
                              f"'{model.spec.name}'); the threshold fluence needs film TA in the fit")
        thr = thr / s["film_cross_section_cm2"][take][:, None]
    return thr


# ----------------------------------------------------------------------------- estimators
def weighted_hdi_width(values, weights=None, prob=HDI_PROB, n_grid=121):
    """Width of the shortest interval holding ``prob`` of the weighted sample (values (S,), weights (S,)).

    The weighted quantile function is interpolated between the samples' mid-masses and the lower tail
    mass is scanned on a grid: a step-wise (discrete) HDI overshoots prob by part of one sample's weight,
    a bias that grows with the spread of the weights (+0.3 % at log-weight sd 0.2, 600 draws) and would
    pass for a loss of information.  Non-finite values (no threshold reachable) are left out and the
    weights renormalised.
    """
    v = np.asarray(values, float)
    w = np.ones_like(v) if weights is None else np.asarray(weights, float)
    ok = np.isfinite(v) & (w > 0)
    if ok.sum() < 2:
        return math.nan
    order = np.argsort(v[ok])
    x = v[ok][order]
    ww = w[ok][order]
    c = (np.cumsum(ww) - 0.5 * ww) / ww.sum()  # mass at each sample's centre
    lo = np.linspace(0.0, 1.0 - prob, n_grid)
    q = lambda u: np.interp(u, c, x)  # noqa: E731 (flat beyond the outermost samples)
    return float(np.min(q(lo + prob) - q(lo)))


def _normalised(logw):
    lw = np.asarray(logw, float)
    lw = lw - np.max(lw, axis=-1, keepdims=True)
    w = np.exp(lw)
    return w / w.sum(axis=-1, keepdims=True)


def reweighted_widths(values, logw, prob=HDI_PROB, n_grid=121):
    """Weighted HDI widths per outcome: values (S, Q), logw (K, S) -> widths (K,) (mean over Q) and ESS (K,).

    The same estimate as :func:`weighted_hdi_width` row by row, with each target column sorted once for all
    outcomes (the greedy batch calls this thousands of times)."""
    v = np.asarray(values, float)
    v = v[:, None] if v.ndim == 1 else v
    w = _normalised(logw)
    ess = 1.0 / np.sum(w**2, axis=-1)
    lo = np.linspace(0.0, 1.0 - prob, n_grid)
    widths = np.zeros(w.shape[0])
    for q in range(v.shape[1]):
        ok = np.nonzero(np.isfinite(v[:, q]))[0]
        order = ok[np.argsort(v[ok, q])]
        x = v[order, q]
        W = w[:, order]
        tot = W.sum(axis=1, keepdims=True)
        c = (np.cumsum(W, axis=1) - 0.5 * W) / np.where(tot > 0, tot, 1.0)
        for k in range(w.shape[0]):
            widths[k] += np.min(np.interp(lo + prob, c[k], x) - np.interp(lo, c[k], x))
    return widths / v.shape[1], ess


def linear_gaussian_width(values, predictions, noise_var, prob=HDI_PROB):
    """Expected HDI width after observing y = prediction + noise, from the draws' joint (target, prediction).

    Bayes linear update: Var(t | y) = Var(t) - C_ty (C_yy + R)^-1 C_yt with the draw covariances and
    R = diag(noise_var); exact for a Gaussian posterior with a linear prediction.  The current sample HDI
    width is scaled by sqrt(Var(t | y) / Var(t)), so a skewed target keeps its shape.  ``values`` (S, Q),
    ``predictions`` (S, D), ``noise_var`` (D,); returns the mean over Q.
    """
    v = np.asarray(values, float)
    v = v[:, None] if v.ndim == 1 else v
    y = np.asarray(predictions, float)
    R = np.broadcast_to(np.asarray(noise_var, float), (y.shape[1],))
    out = []
    for q in range(v.shape[1]):
        ok = np.isfinite(v[:, q])
        if ok.sum() < 3:
            out.append(math.nan)
            continue
        n = ok.sum() - 1
        t = (v[ok, q] - v[ok, q].mean()) / math.sqrt(n)
        yy = (y[ok] - y[ok].mean(axis=0)) / math.sqrt(n)
        var_t = t @ t
        c_ty = t @ yy
        C = yy.T @ yy
        C[np.diag_indices_from(C)] += R
        reduction = c_ty @ np.linalg.solve(C, c_ty)
        ratio = max(var_t - reduction, 0.0) / var_t if var_t > 0 else 1.0
        out.append(weighted_hdi_width(v[ok, q], None, prob) * math.sqrt(ratio))
    return float(np.mean(out))


def log_marginal_over_grid(g, z):
    """log integral of exp(g(z)) dz from values g (..., Z) on an even grid z (Z,): Laplace or trapezoid.

    g includes the standard-normal log prior of z.  Where the maximum is interior and g is concave there,
    the parabola through the three grid points around it gives the Laplace value (exact for a quadratic g,
    right however narrow the peak is against the grid spacing); elsewhere the trapezoid rule is used.
    """
    g = np.asarray(g, float)
    dz = float(z[1] - z[0])
    i = np.argmax(g, axis=-1)
    interior = (i > 0) & (i < z.size - 1)
    ii = np.clip(i, 1, z.size - 2)
    gm = np.take_along_axis(g, (ii - 1)[..., None], -1)[..., 0]
    g0 = np.take_along_axis(g, ii[..., None], -1)[..., 0]
    gp = np.take_along_axis(g, (ii + 1)[..., None], -1)[..., 0]
    h = (gp - 2 * g0 + gm) / dz**2
    b = (gp - gm) / (2 * dz)
    concave = interior & (h < 0)
    hs = np.where(concave, h, -1.0)
    laplace = g0 - 0.5 * b**2 / hs + 0.5 * np.log(2 * np.pi / -hs)
    top = np.max(g, axis=-1, keepdims=True)
    e = np.exp(g - top)
    trap = top[..., 0] + np.log(dz * (e.sum(axis=-1) - 0.5 * (e[..., 0] + e[..., -1])))
    return np.where(concave, laplace, trap)


def expected_width(values, logliks, predictions, noise_var, min_ess=30.0, prob=HDI_PROB):
    """Expected HDI width of the target after the runs whose outcome log-likelihoods are ``logliks`` jointly.

    ``values`` (S, Q) target per draw; ``logliks`` a list (one per run) of (K, S) log p(y_k | draw j) for the
    K simulated outcomes (outcome k of every run simulated from the same draw, so they add); outcomes with
    ESS < ``min_ess`` use :func:`linear_gaussian_width` on ``predictions`` (list of (S, D) per run, each
    draw's prediction with its nuisances drawn) and ``noise_var`` (D,) per run.
    Returns (expected width, share of outcomes that fell back).
    """
    logw = sum(np.asarray(x, float) for x in logliks)
    widths, ess = reweighted_widths(values, logw, prob)
    low = ess < min_ess
    if low.any():
        preds = np.concatenate([np.asarray(x, float) for x in predictions], axis=1)
        lin = linear_gaussian_width(values, preds, np.tile(np.asarray(noise_var, float), len(predictions)), prob)
        widths = np.where(low, lin, widths)
    return float(np.mean(widths)), float(np.mean(low))


def greedy_batch(width_of, n_candidates, n):
    """Greedy batch: ``width_of(chosen_list)`` -> expected width; adds at each step the candidate (index in
    range(n_candidates)) that minimises it.  Returns (chosen indices, expected width after each step)."""
    chosen, widths = [], []
    for _ in range(min(n, n_candidates)):
        best, best_w = None, math.inf
        for c in range(n_candidates):
            if c in chosen:
                continue
            w = width_of(chosen + [c])
            if w < best_w - 1e-15:
                best, best_w = c, w
        if best is None:
            break
        chosen.append(best)
        widths.append(best_w)
    return chosen, widths


# ----------------------------------------------------------------------------- candidates
@dataclasses.dataclass
class Candidates:
    potentials_V: np.ndarray  # (P,)
    fluences_photons_cm2: np.ndarray  # (F,)

    @property
    def pairs(self):
        """(C, 2) potential, fluence of every candidate, potential-major."""
        P, F = np.meshgrid(self.potentials_V, self.fluences_photons_cm2, indexing="ij")
        return np.stack([P.ravel(), F.ravel()], axis=-1)


def _range_arg(text, what, unit):
    """'V1:V2:step' -> array; or a comma list."""
    s = str(text).strip()
    try:
        if ":" in s:
            parts = [float(x) for x in s.split(":")]
            if len(parts) != 3 or parts[2] <= 0 or parts[1] < parts[0]:
                raise ValueError
            n = int(math.floor((parts[1] - parts[0]) / parts[2] + 1e-9)) + 1
            if n > 400:
                raise DesignError(f"--{what} {text}: {n} values; expected at most 400 (use a larger step)")
            return parts[0] + parts[2] * np.arange(n)
        vals = np.array([float(x) for x in s.split(",") if x.strip()])
        if vals.size == 0:
            raise ValueError
        return vals
    except ValueError:
        raise DesignError(f"--{what} {text}: expected START:STOP:STEP with STOP >= START and STEP > 0, or a comma "
                          f"list, in {unit}") from None


def candidate_grid(model, potentials=None, fluences=None, experiment=0):
    """Candidate potentials and fluences, checked against the SEC sweeps and the fit's film TA runs.

    Defaults: the SEC range in 25 mV steps between the outermost film TA potentials widened by 0.1 V
    (inside the sweeps), and the existing film TA fluences.  Potentials outside the SEC sweeps are refused:
    there the charging model is an extrapolation the data never tested.
    """
    d = model.data
    if "ta_potential_V" not in d:
        raise DesignError("this fit has no film TA runs (model without the gain/dynamics components): there is "
                          "nothing to design; fit the joint model first")
    pots_ta = d["ta_potential_V"].values[d["ta_potential_experiment"].values == experiment]
    flu_ta = d["ta_fluence_nominal_photons_cm2"].values[d["ta_fluence_experiment"].values == experiment]
    if "sec_point_potential" in d:
        sec = d["sec_point_potential"].values[d["sec_point_experiment"].values == experiment]
        lo, hi = float(sec.min()), float(sec.max())
    else:
        lo, hi = float(pots_ta.min()), float(pots_ta.max())
    if potentials is None:
        a, b = max(lo, pots_ta.min() - 0.1), min(hi, pots_ta.max() + 0.1)
        V = np.round(np.arange(a, b + 1e-9, 0.025), 4)
    else:
        V = _range_arg(potentials, "potentials", "V vs the reference electrode") if isinstance(potentials, str) \
            else np.asarray(potentials, float)
        bad = V[(V < lo - 1e-9) | (V > hi + 1e-9)]
        if bad.size:
            raise DesignError(f"--potentials: {bad[0]:g} V is outside the SEC sweeps of this fit ({lo:g} to {hi:g} V "
                              "vs the reference electrode); expected candidates inside the measured charging range")
    if fluences is None:
        Fl = np.sort(np.unique(flu_ta))
    else:
        Fl = _range_arg(fluences, "fluences", "photons/cm^2") if isinstance(fluences, str) \
            else np.asarray(fluences, float)
        if np.any(~np.isfinite(Fl)) or np.any(Fl <= 0):
            raise DesignError("--fluences: expected positive pump fluences in photons/cm^2")
        top = 3.0 * float(flu_ta.max())
        if np.any(Fl > top):
            raise DesignError(f"--fluences: {Fl.max():.3g} photons/cm^2 is more than 3x the highest measured film "
                              f"TA fluence ({flu_ta.max():.3g}); expected candidates where the Poisson truncation "
                              "of the fit holds")
    return Candidates(np.unique(V), np.unique(Fl))


# ----------------------------------------------------------------------------- prediction
class _Predictor:
    """Per-draw window-averaged Delta A_TA(t) (OD) of candidate runs, as the fitted model predicts it."""

    def __init__(self, model, take, candidates, delays, experiment=0):
        from .model.quantities import posterior_samples

        d = model.data
        self.g_e = int(d["experiment_g_e"].values[experiment])
        self.g_h = int(d["experiment_g_h"].values[experiment])
        T = float(d["experiment_temperature_K"].values[experiment])
        names = ["V_1S_V", "V_C_V", "sigma_1S_V", "T_eff_K", *CASCADE_PARAMETERS, "gamma_OD", "window_occupancy_bleach_OD",
                 "window_shift_loss", "film_cross_section_cm2", "fluence_log_sd", "ta_noise_rel",
                 "window_tail_amplitude_rel", "window_tail_time_ps", "window_tail_basis_amplitudes_rel"]
        s, _ = posterior_samples(model, names, experiment)
        missing = [n for n in ("tau_xx_ps", "gamma_OD", "film_cross_section_cm2", "ta_noise_rel", "V_1S_V")
                   if s[n] is None]
        if missing:
            raise DesignError(f"the fit has no {', '.join(missing)}: design needs a model with the film TA "
                              "(gain, dynamics) and charging components")
        self.p = {k: (None if v is None else np.asarray(v)[take]) for k, v in s.items()}
        n = take.size
        V = candidates.potentials_V
        p = self.p
        per_draw = {k: p[k][:, None] for k in ("V_1S_V", "V_C_V", "sigma_1S_V", "T_eff_K") if p[k] is not None}
        self.f = law_for(model.spec).numpy_fractions(V[None, :], per_draw, T, self.g_e,
                                                     n_nodes=max(model.quadrature_nodes or 0, 40))
        self.F = candidates.fluences_photons_cm2
        self.t = np.asarray(delays, float)
        A0 = float(d["experiment_film_A0_1S_OD"].values[experiment])
        sd2 = (A0 * p["ta_noise_rel"]) ** 2
        self.extra_sem = 0.0
        if model.spec.options.get("measurement_error") == "sem+scatter" and "ta_A_sem" in d:
            self.extra_sem = float(np.nanmedian(d["ta_A_sem"].values))
        self.sd = np.sqrt(sd2 + self.extra_sem**2)  # (S,)
        self.fl_sd = p["fluence_log_sd"] if p["fluence_log_sd"] is not None else np.full(n, 1e-6)
        top = float(np.max(p["film_cross_section_cm2"]) * self.F.max() * np.exp(4.5 * np.max(self.fl_sd)))
        self.n_max = max(int(ph.poisson.required_n_max(top, tail=1e-7)), self.g_e, self.g_h + 1)
        self.fn = _cascade_draw_fn(self.g_e, self.g_h, self.n_max, occupancy=True, hole_trapping=_trap_form(model))
        S = self.g_e + 1
        self.table0 = ph.band_edge_absorption(np.zeros(S), np.arange(S), self.g_e, self.g_h)
        self.occ0 = ph.transitions.occupancy_table(0, self.g_e)[0]  # 1S(e) occupancy of the unexcited states
        self.A0 = A0
        # the window tail's amplitude is its size at the earliest film TA delay the fit saw (as in the model)
        self.t_ref = float(d["ta_point_delay"].values[d["ta_point_experiment"].values == experiment].min())
        self.tail_times = [float(t) for t in model.spec.options.get("window_tail_times_ps", [])]
        # a Beer-Lambert pump: <N> falls through the film as r_k; the run's Delta A is the depth average (weights w_k)
        self.depth = (np.ones(1), np.ones(1))
        if model.spec.options.get("pump_attenuation") == "beer-lambert":
            od = float(np.nan_to_num(d["experiment_film_pump_OD"].values[experiment], nan=0.0))
            r, w = ph.api.pump_depth_profile(od, optics.pump_depth_node_count(np.array([od])))
            self.depth = (np.asarray(r, float).reshape(-1), np.asarray(w, float))

    def delta_A(self, j, z):
        """Delta A_TA (OD) of draw j for every candidate and calibration z: (P, F, Z, T)."""
        p, g_e = self.p, self.g_e
        S = g_e + 1
        c = self.fl_sd[j] * np.asarray(z, float)
        front = p["film_cross_section_cm2"][j] * self.F[:, None] * np.exp(c)[None, :]  # (F, Z)
        r, w = self.depth
        means = (front[..., None] * r).ravel()  # (F*Z*K,): every depth node of every run
        eye = np.eye(S)
        m = np.repeat(means, S)
        f = np.tile(eye, (means.size, 1))
        opt = lambda name, default: default if p[name] is None else float(p[name][j])  # noqa: E731
        out = self.fn(*cascade_arguments(p, j), m, f, self.t)  # (F*Z*S, 2, T)
        K = r.size
        basis = out.reshape(self.F.size, c.size, K, S, 2, self.t.size)
        fj = self.f[j]  # (P, S)
        both = np.einsum("ps,fzksqt->pfzkqt", fj, basis)
        A_eff, occ = both[..., 0, :], both[..., 1, :]  # (P, F, Z, K, T)
        A_pre = (fj @ self.table0)[:, None, None, None, None]
        occ_pre = (fj @ self.occ0)[:, None, None, None, None]
        dA = optics.window_absorption_change(A_eff, occ, A_pre, occ_pre, p["gamma_OD"][j],
                                             opt("window_shift_loss", 0.0), p["window_occupancy_bleach_OD"][j], g_e,
                                             self.g_h)
        for amplitude, time in self._tail_terms(j):
            N = (front[..., None] * r)[None, :, :, :, None]  # (1, F, Z, K, 1)
            dA = dA - optics.window_tail_bleach(N, self.t, self.t_ref, self.A0 * amplitude, time)
        return np.sum(dA * w[:, None], axis=-2)  # depth average: (P, F, Z, T)

    def _tail_terms(self, j):
        """The window tail of draw j as [(amplitude / A0_1S, decay time ps)], as the model's film TA has it."""
        p = self.p
        if p["window_tail_amplitude_rel"] is not None:
            return [(p["window_tail_amplitude_rel"][j], p["window_tail_time_ps"][j])]
        if p["window_tail_basis_amplitudes_rel"] is not None:
            return list(zip(p["window_tail_basis_amplitudes_rel"][j], self.tail_times))
        return []


def _film_delays(model, experiment=0):
    """Delays (ps) of one existing film TA run (the first file): the candidate is recorded the same way."""
    d = model.data
    fi = model.file_index
    sel = np.nonzero((d["ta_point_experiment"].values == experiment))[0]
    first = sel[fi[sel] == fi[sel].min()]
    return np.sort(d["ta_point_delay"].values[first])


# ----------------------------------------------------------------------------- the design
@dataclasses.dataclass
class DesignResult:
    target: Target
    candidates: Candidates
    current_width: float
    expected_width: np.ndarray  # (P, F) after one run at each candidate
    n_e_median: np.ndarray  # (P,)
    batch: list  # [(p index, f index)]
    batch_widths: list  # expected width after the first 1..n runs of the batch
    fallback_fraction: np.ndarray  # (P, F) share of outcomes below the ESS guard (linear-Gaussian used)
    min_ess: float
    n_draws: int
    n_outcomes: int
    existing: np.ndarray  # (R, 2) potential, fluence of the fit's runs
    notes: list
    seconds: float
    pump_wavelength_nm: float
    reference_electrode: str = "the reference electrode"
    limited_by: str = ""  # a sentence when the target follows one parameter the data barely inform

    @property
    def expected_reduction(self):
        return 1.0 - self.expected_width / self.current_width

    def rows(self):
        """design.csv rows sorted by expected reduction, largest first (rank 1 = best single run)."""
        P, F = np.meshgrid(self.candidates.potentials_V, self.candidates.fluences_photons_cm2, indexing="ij")
        ne = np.broadcast_to(self.n_e_median[:, None], P.shape)
        red = self.expected_reduction
        order = np.lexsort((F.ravel(), P.ravel(), -red.ravel()))
        rows = []
        for r, i in enumerate(order, 1):
            rows.append({"rank": r, "potential_V": float(P.ravel()[i]), "fluence_photons_cm2": float(F.ravel()[i]),
                         "n_e_at_potential": float(ne.ravel()[i]),
                         "expected_hdi_width_after": float(self.expected_width.ravel()[i]),
                         "expected_reduction": float(red.ravel()[i])})
        return rows


CSV_COLUMNS = ("rank", "potential_V", "fluence_photons_cm2", "n_e_at_potential", "expected_hdi_width_after",
               "expected_reduction")


def design(model, target="threshold-at-ne=1.0", potentials=None, fluences=None, n=5, max_draws=600, n_outcomes=32,
           n_z=17, min_ess=30.0, pool=60, seed=0, experiment=0):
    """Expected target width after each candidate run, and a greedy batch of ``n`` runs (see module doc).

    ``model``: a fitted or reloaded :class:`~bayesgain.model.core.GainModel`.  ``max_draws`` thins the
    posterior (every draw is simulated and re-weighted), ``n_outcomes`` simulated outcomes per candidate
    (common to all candidates, so their ranking is not Monte Carlo noise), ``n_z`` grid points of the new
    run's log fluence calibration over +-4 sd, ``min_ess`` the effective-sample-size guard, ``pool`` the
    number of best single runs the greedy batch chooses from.
    """
    import time

    t0 = time.time()
    if model.idata is None or "posterior" not in model.idata:
        raise DesignError("the model has no posterior draws; fit it (or GainModel.load a saved fit) first")
    g_e = int(model.data["experiment_g_e"].values[experiment])
    tgt = target if isinstance(target, Target) else parse_target(target, g_e)
    if n < 1:
        raise DesignError(f"--n {n}: expected at least 1 run")
    cand = candidate_grid(model, potentials, fluences, experiment)
    post = model.idata["posterior"]
    total = int(post.sizes["chain"] * post.sizes["draw"])
    rng = np.random.default_rng(seed)
    take = np.arange(total) if total <= max_draws else np.sort(rng.choice(total, max_draws, replace=False))
    S = take.size
    # the target on all draws once (the threshold curve is computed for every draw either way): the thinned draws
    # drive the design, all of them set the widths' scale
    values_all = target_draws(model, tgt, np.arange(total), experiment)
    values = values_all[take]  # (S, Q)
    current = _mean_hdi_width(values)
    pred = _Predictor(model, take, cand, _film_delays(model, experiment), experiment)
    P, F, T = cand.potentials_V.size, cand.fluences_photons_cm2.size, pred.t.size
    K = min(n_outcomes, S)
    L, mu_s = _outcome_likelihoods(pred, rng, S, K, n_z, (P, F, T))
    noise_var = np.full(T, float(np.mean(pred.sd**2)))

    def width_of(chosen):
        return expected_width(values, [L[p, f] for p, f in chosen], [mu_s[:, p, f] for p, f in chosen], noise_var,
                              min_ess)

    expected = np.empty((P, F))
    fallback = np.empty((P, F))
    for p in range(P):
        for f in range(F):
            expected[p, f], fallback[p, f] = width_of([(p, f)])
    # greedy batch over the best single runs (``pool`` of them): the first pick is the best single run, later
    # picks condition on the chosen ones jointly
    order = np.argsort(expected.ravel(), kind="stable")[:max(pool, n)]
    pairs = [(int(i) // F, int(i) % F) for i in order]
    chosen, widths = greedy_batch(lambda idx: width_of([pairs[i] for i in idx])[0], len(pairs), n)
    if S < total:
        current, expected, widths = on_all_draws(values_all, current, expected, widths)
    d = model.data
    ne = np.median(pred.f @ np.arange(g_e + 1.0), axis=0)
    lay = model.layout  # the runs measured (a grid may have holes)
    mine = lay.file_experiment == experiment
    existing = np.column_stack([d["ta_potential_V"].values[lay.file_potential[mine]],
                                d["ta_fluence_nominal_photons_cm2"].values[lay.file_fluence[mine]]])
    notes = _design_notes(model, pred, experiment)
    return DesignResult(tgt, cand, current, expected, ne, [pairs[i] for i in chosen], widths, fallback, min_ess, S, K,
                        existing, notes, time.time() - t0,
                        float(d["experiment_pump_wavelength_nm"].values[experiment]),
                        limited_by=prior_limited_target(model, tgt, values[:, 0], take, experiment))


def _mean_hdi_width(values):
    """The 94 % HDI width of a target's draws (S, Q), averaged over its Q quantities."""
    return float(np.mean([weighted_hdi_width(values[:, q]) for q in range(values.shape[1])]))


def on_all_draws(values_all, current, expected, widths):
    """The widths of a design on thinned draws, put on the scale of all the fit's draws (``values_all`` (N, Q)).

    The HDI of 600 thinned draws scatters ~3 % around that of all draws and runs 0.4-2 % short (measured on a
    batch-A fit, 50 thinnings); each expected width is that thinned width times a ratio, so it is rescaled to
    all draws' current width, which is the fit's own interval.  The ratios that rank the runs are unchanged.
    """
    scale = _mean_hdi_width(values_all) / current
    return current * scale, np.asarray(expected) * scale, [w * scale for w in widths]


def prior_limited_target(model, target, values, take, experiment=0, min_corr=0.9, min_ratio=0.5):
    """A sentence when the target's draws follow one physical parameter (|correlation| >= ``min_corr``) whose
    posterior sd is still >= ``min_ratio`` of its prior's (on the prior's own scale: log for a LogNormal), else "".

    Then no run that does not measure that parameter narrows the target much, and the target's width moves with
    where that parameter's posterior lands (measured: the threshold at <n_e> = 1 follows V_C, correlation -1.00
    with V_C and -0.94 with its log, and V_C stays at ~100 % of its prior's width on batch-A-like films).
    """
    from .model.quantities import posterior_samples

    if np.std(values) == 0:
        return ""
    priors = {k: v for k, v in model.spec.priors.items() if v["dist"] in ("Normal", "LogNormal", "HalfNormal")}
    draws, _ = posterior_samples(model, list(priors), experiment)
    best = None
    for name, prior in priors.items():
        x = draws[name]
        if x is None or x.ndim != 1:  # one value per draw only: vectors (per file, per sweep) are not one cause
            continue
        x = x[take]
        if not np.all(np.isfinite(x)):
            continue
        if prior["dist"] == "LogNormal":
            if np.any(x <= 0):
                continue
            x, prior_sd = np.log(x), float(prior["sigma"])
        elif prior["dist"] == "HalfNormal":
            prior_sd = float(prior["sigma"]) * np.sqrt(1.0 - 2.0 / np.pi)
        else:
            prior_sd = float(prior["sigma"])
        if np.std(x) == 0:
            continue
        corr = float(np.corrcoef(x, values)[0, 1])
        if best is None or abs(corr) > abs(best[1]):
            best = (name, corr, float(np.std(x)) / prior_sd)
    if best is None or abs(best[1]) < min_corr or best[2] < min_ratio:
        return ""
    name, corr, ratio = best
    return (f"{target.name} follows {name} over the posterior draws (correlation {corr:+.2f}), and the data have "
            f"narrowed {name} only to {100 * ratio:.0f} % of its prior's width.  A run that does not measure {name} "
            f"cannot narrow this target much, and its width will move with where {name}'s posterior lands; a "
            f"measurement that informs {name} (or a justified tighter prior) will.")


def _outcome_likelihoods(pred, rng, S, K, n_z, shape):
    """Simulated outcomes of every candidate run and each posterior draw's log likelihood of them.

    ``K`` outcomes (P, F, K, T) are drawn from ``K`` draws at a random calibration with the fit's scatter;
    returns L (P, F, K, S): draw s's log marginal likelihood of outcome k (the run's log calibration over an
    ``n_z`` grid of +-4 sd), and mu_s (S, P, F, T): each draw's prediction at a sampled calibration (for the
    linear update).  The random numbers are drawn in a fixed order: outcome draws, their calibrations, their
    noise, the draws' sampled calibrations."""
    P, F, T = shape
    kk = rng.choice(S, K, replace=False)  # draws that generate the simulated outcomes
    zk = rng.standard_normal(K)
    eps = rng.standard_normal((K, T))
    z = np.linspace(-4.0, 4.0, n_z)
    Y = np.empty((P, F, K, T))
    zs = rng.standard_normal(S)
    mu_s = np.empty((S, P, F, T))
    for i, j in enumerate(kk):
        Y[:, :, i] = pred.delta_A(j, [zk[i]])[:, :, 0] + pred.sd[j] * eps[i]
    logz_prior = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    L = np.empty((P, F, K, S))
    Y2 = np.einsum("pfkt,pfkt->pfk", Y, Y)
    for j in range(S):
        mu = pred.delta_A(j, np.append(z, zs[j]))  # (P, F, Z + 1, T)
        mu_s[j] = mu[:, :, -1]
        mu = mu[:, :, :-1]
        # sum_t (y - mu)^2 = y.y - 2 y.mu + mu.mu for every outcome k and grid point z at once
        ss = Y2[..., None] - 2 * np.matmul(Y, mu.transpose(0, 1, 3, 2)) + np.sum(mu * mu, axis=-1)[:, :, None]
        g = -0.5 * ss / pred.sd[j] ** 2 - T * math.log(pred.sd[j]) + logz_prior
        L[..., j] = log_marginal_over_grid(g, z)
    return L, mu_s


def _design_notes(model, pred, experiment):
    """What the design assumes about the candidate runs, in words (for design.md)."""
    notes = ["the candidate run's window-averaged Delta A_TA is predicted at the delays of the existing runs with the "
             "fit's scatter A0 x ta_noise_rel (plain 'scatter' error form)"
             + (f" plus the median window SEM {pred.extra_sem:.2g} OD in quadrature" if pred.extra_sem else ""),
             "the new run's fluence calibration is a free nuisance (log c ~ Normal(0, fluence_log_sd)), marginalised",
             "a new potential's Delta R scale (reflection component) is taken as 1 (open-circuit Delta R)"]
    if model.spec.options.get("discrepancy", "none") != "none":
        notes.append("the fit's delay discrepancy term is not part of the candidate's prediction")
    if len(model.names) > 1:
        notes.append(f"designed for experiment '{model.names[experiment]}' of the {len(model.names)} in the fit")
    return notes


# ----------------------------------------------------------------------------- outputs
def _uJ(fluence, pump_nm):
    return ph.fluence_to_energy_density_nJ_cm2(np.asarray(fluence, float), pump_nm) / 1000.0


def write_design(result, out, figure=True):
    """DIR/design.csv, batch.csv, design.md and design.png (atomic writes); returns the written paths."""
    import csv
    import pathlib

    from ._atomic import atomic_path

    out = pathlib.Path(out)
    written = []
    rows = result.rows()
    with atomic_path(out / "design.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    written.append(out / "design.csv")
    V, Fl = result.candidates.potentials_V, result.candidates.fluences_photons_cm2
    with atomic_path(out / "batch.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["order", "potential_V", "fluence_photons_cm2", "fluence_uJ_cm2", "n_e_at_potential",
                        "expected_hdi_width_after_batch", "expected_reduction_after_batch"])
            for i, ((p, f), wdt) in enumerate(zip(result.batch, result.batch_widths), 1):
                w.writerow([i, f"{V[p]:.6g}", f"{Fl[f]:.6g}", f"{float(_uJ(Fl[f], result.pump_wavelength_nm)):.4g}",
                            f"{result.n_e_median[p]:.4g}", f"{wdt:.6g}", f"{1 - wdt / result.current_width:.4g}"])
    written.append(out / "batch.csv")
    if figure:
        written.append(_figure(result, out / "design.png"))
    with atomic_path(out / "design.md") as tmp:
        pathlib.Path(tmp).write_text(design_markdown(result), encoding="utf-8")
    written.append(out / "design.md")
    return written


def design_markdown(r):
    t = r.target
    V, Fl = r.candidates.potentials_V, r.candidates.fluences_photons_cm2
    pump = r.pump_wavelength_nm
    lines = [f"# Where to measure next: {t.description}", "",
             f"Target: **{t.name}** ({t.unit}); its 94 % HDI is now **{r.current_width:#.4g} {t.unit}** wide.", "",
             f"Candidates: {V.size} potentials from {V.min():g} to {V.max():g} V vs {r.reference_electrode} x "
             f"{Fl.size} pump fluences from {Fl.min():.3g} to {Fl.max():.3g} photons/cm² "
             f"({float(_uJ(Fl.min(), pump)):.3g} to {float(_uJ(Fl.max(), pump)):.3g} µJ/cm² at {pump:g} nm), "
             "each one film TA run recorded at the delays and with the noise of the existing runs.", "",
             "## Measure these, in this order", "",
             "| # | potential (V vs ref.) | ⟨n_e⟩ (e⁻/QD) | fluence (photons/cm²) | fluence (µJ/cm²) | "
             f"expected width after (cumulative, {t.unit}) | reduction |",
             "|---|---|---|---|---|---|---|"]
    for i, ((p, f), w) in enumerate(zip(r.batch, r.batch_widths), 1):
        lines.append(f"| {i} | {V[p]:.3f} | {r.n_e_median[p]:.2f} | {Fl[f]:.3g} | {float(_uJ(Fl[f], pump)):.3g} | "
                     f"{w:#.4g} | {100 * (1 - w / r.current_width):.1f} % |")
    best = r.rows()[0]
    if r.limited_by:
        lines += ["", "## What limits this target", "", r.limited_by]
    lines += ["", "## Why", "",
              f"The single most informative run is at {best['potential_V']:.3f} V vs {r.reference_electrode} "
              f"({best['n_e_at_potential']:.2f} "
              f"e⁻/QD) and {best['fluence_photons_cm2']:.3g} photons/cm² "
              f"({float(_uJ(best['fluence_photons_cm2'], pump)):.3g} µJ/cm²): it is expected to narrow the interval by "
              f"{100 * best['expected_reduction']:.1f} %.  The batch is chosen one run at a time, each given the runs "
              "before it, so it does not repeat a measurement that tells the same thing.  design.csv ranks every "
              "candidate as a single next run; design.png maps the expected reduction.", "",
              "## How this was computed", "",
              f"Pre-posterior analysis on {r.n_draws} posterior draws: for {r.n_outcomes} simulated outcomes of each "
              "candidate (from the draws' own predictions plus noise), every draw was re-weighted by the outcome's "
              "likelihood and the target's weighted 94 % HDI width averaged.  Where an outcome left fewer than "
              f"{r.min_ess:g} effective draws the linear-Gaussian update from the same draws was used instead "
              f"({100 * float(np.mean(r.fallback_fraction)):.0f} % of the single-run outcomes).  "
              f"Computed in {r.seconds:.1f} s.", ""]
    lines += [f"- {n}" for n in r.notes]
    lines += ["", "Expected widths carry Monte Carlo error of a few per cent of the width; differences smaller than "
              "that between candidates are not meaningful.", ""]
    return "\n".join(lines)


def _figure(r, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ._atomic import atomic_path

    V, Fl = r.candidates.potentials_V, r.candidates.fluences_photons_cm2
    fig, ax = plt.subplots(figsize=(7.5, 4.8), constrained_layout=True)
    red = 100 * r.expected_reduction
    if V.size > 1 and Fl.size > 1:
        mesh = ax.pcolormesh(V, Fl, red.T, shading="nearest", cmap="viridis")
    else:
        mesh = ax.scatter(np.repeat(V, Fl.size), np.tile(Fl, V.size), c=red.ravel(), cmap="viridis", s=80)
    fig.colorbar(mesh, ax=ax, label=f"expected reduction of the 94 % HDI of {r.target.name} (%)")
    if r.existing.size:
        ax.scatter(r.existing[:, 0], r.existing[:, 1], marker="x", color="white", s=30, label="existing runs")
    for i, (p, f) in enumerate(r.batch, 1):
        ax.annotate(str(i), (V[p], Fl[f]), color="red", fontsize=12, fontweight="bold", ha="center", va="center")
    ax.set_yscale("log")
    ax.set_xlabel(f"potential (V vs {r.reference_electrode})")
    ax.set_ylabel("pump fluence (photons/cm$^2$)")
    lo, hi = float(Fl.min()), float(Fl.max())
    ax.text(1.0, -0.13, f"{lo:.3g} photons/cm$^2$ = {float(_uJ(lo, r.pump_wavelength_nm)):.3g} uJ/cm$^2$, "
            f"{hi:.3g} = {float(_uJ(hi, r.pump_wavelength_nm)):.3g} uJ/cm$^2$ at {r.pump_wavelength_nm:g} nm",
            transform=ax.transAxes, ha="right", va="top", fontsize=7)
    ax.set_title(f"next film TA runs for {r.target.name} (red numbers: chosen batch)", fontsize=10)
    if r.existing.size:
        ax.legend(loc="lower left", fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path
