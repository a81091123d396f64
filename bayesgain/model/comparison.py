"""Model comparison with PSIS-LOO on the component log-likelihoods (ArviZ ``loo`` / ``compare``).

Fits of different specifications are compared on the observations they share: by default the
components every fit has (for "disorder versus none" that is everything; a fit without a
component cannot be scored on it).  The pointwise log-likelihoods of those components are joined
along one ``obs`` dim, so PSIS-LOO leaves out one observation (one window average) at a time.

The verdict is written for a spectroscopist: a difference counts as decisive when the elpd gap is
larger than 4 *and* larger than 4 standard errors of the difference; Pareto-k > 0.7 on more than
1 % of the points makes any verdict provisional.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

__all__ = ["compare", "joint_log_likelihood", "verdict", "DECISIVE_ELPD", "DECISIVE_SE"]

DECISIVE_ELPD = 4.0
DECISIVE_SE = 4.0


def _tree(fit):
    return fit.idata if hasattr(fit, "idata") else fit


def _components(tree):
    return [v for v in tree["log_likelihood"].data_vars]


def joint_log_likelihood(fit, components):
    """A copy of the fit's DataTree whose log_likelihood group holds one variable ``joint`` (chain, draw, obs)."""
    tree = _tree(fit)
    ll = tree["log_likelihood"].to_dataset()
    parts = []
    for c in components:
        da = ll[c]
        other = [d for d in da.dims if d not in ("chain", "draw")]
        da = da.stack(obs=other) if len(other) > 1 else da.rename({other[0]: "obs"})
        parts.append(da.drop_vars([k for k in da.coords if k not in ("chain", "draw")]))
    joint = xr.concat(parts, dim="obs").rename("joint")
    joint = joint.assign_coords(obs=np.arange(joint.sizes["obs"]))
    out = xr.DataTree()
    out["posterior"] = tree["posterior"]
    out["log_likelihood"] = xr.DataTree(xr.Dataset({"joint": joint}))
    return out


def compare(fits, components=None, method="stacking"):
    """Compare fits ({name: GainModel or DataTree}) by PSIS-LOO; returns (table DataFrame, verdict str).

    ``components``: the observed components to score (default: those all fits share).  The table is
    ArviZ's (elpd, se, elpd_diff, dse, weight, p, diagnostics) plus ``pareto_k_bad`` (share of points
    with k > 0.7) and ``components``.
    """
    import arviz as az

    if len(fits) < 2:
        raise ValueError("compare needs at least two fits")
    names = list(fits)
    shared = None
    for n in names:
        c = set(_components(_tree(fits[n])))
        shared = c if shared is None else shared & c
    if components is None:
        components = sorted(shared)
    missing = {n: sorted(set(components) - set(_components(_tree(fits[n])))) for n in names}
    missing = {n: m for n, m in missing.items() if m}
    if missing:
        raise ValueError(f"components {components} are not in every fit: missing {missing}")
    if not components:
        raise ValueError("the fits share no observed component: nothing to compare them on")
    sizes = {n: sum(int(np.prod([s for d, s in _tree(fits[n])["log_likelihood"][c].sizes.items()
                                 if d not in ("chain", "draw")])) for c in components) for n in names}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"the fits were made on different data (number of points {sizes}); LOO needs the same data")
    joint = {n: joint_log_likelihood(fits[n], components) for n in names}
    with warnings.catch_warnings():
        # ArviZ warns of Pareto k > 0.7 in the middle of the output; the table's pareto_k_bad and the verdict say it
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto", category=UserWarning)
        loos = {n: az.loo(joint[n], var_name="joint", pointwise=True) for n in names}
    table = az.compare(loos, method=method, round_to="none")
    bad = {}
    for n, lo in loos.items():
        k = np.asarray(lo.pareto_k).ravel()
        bad[n] = float(np.mean(k > 0.7))
    table["pareto_k_bad"] = [bad[i] for i in table.index]
    table["components"] = ",".join(components)
    return table, verdict(table)


def verdict(table):
    """Plain-language reading of a comparison table (best model first)."""
    best = table.index[0]
    lines = []
    for name in table.index[1:]:
        diff = -float(table.loc[name, "elpd_diff"])
        dse = float(table.loc[name, "dse"])
        ratio = diff / dse if dse > 0 else np.inf
        if diff > DECISIVE_ELPD and ratio > DECISIVE_SE:
            lines.append(f"'{best}' predicts the data decisively better than '{name}' (elpd difference {diff:.1f} "
                         f"+- {dse:.1f}, {ratio:.1f} standard errors).")
        elif diff > DECISIVE_ELPD and ratio > 2:
            lines.append(f"'{best}' is favoured over '{name}' (elpd difference {diff:.1f} +- {dse:.1f}), but not "
                         f"decisively ({ratio:.1f} standard errors < {DECISIVE_SE:g}).")
        else:
            lines.append(f"No decisive preference between '{best}' and '{name}' (elpd difference {diff:.1f} +- "
                         f"{dse:.1f}): the data do not tell them apart.")
    flagged = [n for n in table.index if table.loc[n, "pareto_k_bad"] > 0.01]
    if flagged:
        lines.append("Provisional: Pareto k > 0.7 on more than 1 % of the points for " + ", ".join(flagged) +
                     " (PSIS-LOO is unreliable there; refit leaving those points out, or use k-fold CV).")
    return "\n".join(lines)
