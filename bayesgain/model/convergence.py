"""Convergence of a fit: R-hat, bulk and tail ESS, divergences, and chains stuck in a minor local mode.

:func:`convergence_report` is what every fit carries (``GainModel.convergence``, the tree's attrs, report.md);
the post-sampling checks of the model's static sizes are in :mod:`.sizing`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ConvergenceReport", "stuck_chains", "convergence_report"]


class ConvergenceReport(dict):
    """max R-hat, min bulk/tail ESS, divergences, and ``ok`` (R-hat <= 1.01, ESS >= min_ess, no divergence)."""

    @property
    def ok(self):
        return bool(self["ok"])

    def text(self):
        verdict = "converged" if self.ok else "NOT CONVERGED -- do not report these numbers"
        text = (f"{verdict}: max R-hat {self['max_r_hat']:.4f} (<= 1.01), min bulk ESS {self['min_ess_bulk']:.0f}, "
                f"min tail ESS {self['min_ess_tail']:.0f} (>= {self['min_ess']}), divergences {self['divergences']}")
        if not self.ok and self.get("worst_r_hat"):
            # which parameters fail: the first thing a user asks of a fit that did not converge
            text += f"; largest R-hat: {self['worst_r_hat']}, smallest bulk ESS: {self['worst_ess_bulk']}"
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


def _extreme_element(ds, largest):
    """(value, ``name[i, j]``) of the largest (or smallest) finite value over the variables of ``ds``; (NaN, "")
    when none is finite (R-hat/ESS are NaN for constant draws: one chain, a fixed value)."""
    best, where = np.nan, ""
    for name, da in ds.data_vars.items():
        x = np.asarray(da, float)
        if not np.isfinite(x).any():
            continue
        flat = np.where(np.isfinite(x), x, -np.inf if largest else np.inf)
        i = int(np.argmax(flat) if largest else np.argmin(flat))
        v = float(flat.ravel()[i])
        if not np.isfinite(best) or (v > best if largest else v < best):
            idx = np.unravel_index(i, x.shape) if x.ndim else ()
            best, where = v, name + (f"[{', '.join(str(int(j)) for j in idx)}]" if idx else "")
    return best, where


def convergence_report(idata, var_names, min_ess=400):
    """The :class:`ConvergenceReport` of the posterior variables ``var_names`` of ``idata``."""
    import arviz as az

    post = idata["posterior"].to_dataset()
    names = [v for v in var_names if v in post]
    rhat = az.rhat(post[names])
    ess_b = az.ess(post[names], method="bulk")
    ess_t = az.ess(post[names], method="tail")
    div = int(np.asarray(idata["sample_stats"]["diverging"]).sum()) if "diverging" in idata["sample_stats"] else 0
    max_r_hat, worst_r_hat = _extreme_element(rhat, True)
    min_ess_bulk, worst_ess_bulk = _extreme_element(ess_b, False)
    r = ConvergenceReport(max_r_hat=max_r_hat, min_ess_bulk=min_ess_bulk, min_ess_tail=_extreme_element(ess_t, False)[0],
                          divergences=div, min_ess=min_ess, worst_r_hat=worst_r_hat, worst_ess_bulk=worst_ess_bulk)
    n_chains = idata["posterior"].sizes["chain"]
    r["ok"] = bool(r["max_r_hat"] <= 1.01 and r["min_ess_bulk"] >= min_ess and div == 0 and n_chains >= 2)
    if n_chains < 2:
        r["note"] = "one chain: R-hat cannot be checked"
    stuck = stuck_chains(idata)
    if stuck:
        r["stuck_chains"] = stuck
        r["ok"] = False
    return r
