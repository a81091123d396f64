"""Posterior predictive checks of residual structure in the film TA (does the physics explain the kinetics?).

For each (thinned) posterior draw theta, the residual of every film TA file along delay is
r(theta) = y - mu_physics(theta), with mu_physics the physical model's prediction (transition
counting, cascade, reflection) *without* the discrepancy term.  If the physics explains the data,
r is white noise of the model's error sd(theta), and its lag-1 autocorrelation along delay,
averaged over files,

    T(r) = mean_files  sum_i r_i r_{i+1} / sum_i r_i^2,

is as large as that of replicated white noise eps(theta) ~ N(0, sd(theta)).  The posterior
predictive p-value p = P(T(eps) >= T(r)) is uniform-ish when the physics holds and ~0 when a
smooth misfit runs through the kinetics (a 2S tail with its own clock, cooling, a shifted line).
Under the ``delay-gp`` discrepancy the fit absorbs such a misfit (and widens the intervals for it);
this check still tells the user that it was needed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["film_residual_check", "lag1_autocorrelation", "RESIDUAL_P_THRESHOLD"]

# p below this flags residual structure: the statistic is a mean over ~50 files, so a misfit moves it many sd
RESIDUAL_P_THRESHOLD = 0.01


def lag1_autocorrelation(r, groups):
    """Mean over ``groups`` (list of index arrays, each sorted by delay) of sum r_i r_{i+1} / sum r_i^2.

    ``r``: array (..., n_points); returns an array of shape ``r.shape[:-1]``.
    """
    out = []
    for g in groups:
        x = r[..., g]
        num = np.sum(x[..., 1:] * x[..., :-1], axis=-1)
        den = np.sum(x * x, axis=-1)
        out.append(num / np.where(den > 0, den, np.inf))
    return np.mean(out, axis=0)


def _file_groups(gm):
    """Index arrays of the film TA points of each file, sorted by delay."""
    d = gm.data
    delay = d["ta_point_delay"].values
    groups = []
    for f in np.unique(gm.file_index):
        idx = np.nonzero(gm.file_index == f)[0]
        if idx.size >= 3:
            groups.append(idx[np.argsort(delay[idx], kind="stable")])
    return groups


def _physics_mean_and_sd(gm, max_draws):
    """(mu_physics, sd) for evenly thinned posterior draws: arrays (draws, ta_point)."""
    import pytensor

    from ..physics.api import numpy_mode

    model = gm.model or gm.build()
    post = gm.idata["posterior"]
    rvs = [rv for rv in model.free_RVs]
    fn = pytensor.function(rvs, [gm.film_mean_physics, gm.film_sd], mode=numpy_mode(), on_unused_input="ignore")
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    flat = [(c, k) for c in range(n_chain) for k in range(n_draw)]
    pick = np.unique(np.round(np.linspace(0, len(flat) - 1, min(max_draws, len(flat)))).astype(int))
    mus, sds = [], []
    n = gm.data.sizes["ta_point"]
    draws = [post[rv.name].values for rv in rvs]  # once: a DataTree lookup per draw cost more than the draw
    for i in pick:
        c, k = flat[i]
        vals = [np.asarray(v[c, k], dtype=rv.dtype) for v, rv in zip(draws, rvs)]
        mu, sd = fn(*vals)
        mus.append(np.asarray(mu, float))
        sds.append(np.broadcast_to(np.asarray(sd, float), (n,)))
    return np.array(mus), np.array(sds)


def film_residual_check(gm, max_draws=200, seed=0):
    """The residual-structure check of a fitted :class:`~bayesgain.model.core.GainModel` with film TA.

    Returns a dict: ``p_value`` (posterior predictive, lag-1 autocorrelation along delay), ``T_observed`` and
    ``T_replicated`` (posterior medians), ``flagged`` (p < :data:`RESIDUAL_P_THRESHOLD`), ``n_files``,
    ``n_draws``, and ``standardized_residual`` (posterior median of r / sd per film TA point, for figures).
    None when the model has no film TA.
    """
    if gm.idata is None or "ta_point" not in gm.data.dims:
        return None
    if gm.model is None:
        gm.build()
    if not hasattr(gm, "film_mean_physics"):
        return None
    y = gm.data["ta_A"].values
    mu, sd = _physics_mean_and_sd(gm, max_draws)
    groups = _file_groups(gm)
    r = y[None, :] - mu
    rng = np.random.default_rng(seed)
    # several white-noise replicates per draw: with few draws the p-value still has a resolution of ~1/400
    reps = max(1, int(np.ceil(400 / mu.shape[0])))
    eps = sd[:, None, :] * rng.standard_normal((sd.shape[0], reps, sd.shape[1]))
    t_obs = lag1_autocorrelation(r, groups)
    t_rep = lag1_autocorrelation(eps, groups)
    p = float(np.mean(t_rep >= t_obs[:, None]))
    return {"p_value": p, "T_observed": float(np.median(t_obs)), "T_replicated": float(np.median(t_rep)),
            "flagged": bool(p < RESIDUAL_P_THRESHOLD), "n_files": len(groups), "n_draws": int(mu.shape[0]),
            "standardized_residual": np.median(r / sd, axis=0)}
