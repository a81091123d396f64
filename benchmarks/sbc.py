"""Simulation-based calibration (Talts et al. 2018) of the charging or the gain component.

For every replicate i: parameters and observations are drawn from the model's prior predictive
(on the real observation layout of data/synthetic-batch-a: reduced once, then only the observed
arrays are replaced), the model is conditioned on the simulated observations and fitted with nutpie,
and the rank of each true parameter among ``L`` thinned posterior draws is recorded.  If the
inference is calibrated the ranks are uniform on 0..L.  Printed per parameter: chi-square over
``--bins`` rank bins with its p-value, and the maximum ECDF deviation from uniform (with the 95 %
Kolmogorov bound 1.36/sqrt(n)); also the number of non-converged replicates.  Ranks go to a CSV.

The fits run through Dask (bayesgain.model.distributed.fit_many): a local cluster by default,
``--scheduler tcp://host:8786`` for any running cluster.  Each worker compiles the model once and
swaps the simulated observations in for the later replicates.

    .venv/bin/python benchmarks/sbc.py --component charging --replicates 100
    .venv/bin/python benchmarks/sbc.py --component gain --replicates 100
    .venv/bin/python benchmarks/sbc.py --component charging+gain --replicates 100
    .venv/bin/python benchmarks/sbc.py --component charging+gain --layout thin --max-treedepth 7  # cheaper replicates
    .venv/bin/python benchmarks/sbc.py --component joint --layout thin --replicates 60  # the shipped default
    .venv/bin/python benchmarks/sbc.py --component joint-realistic --layout thin --draws 500 --tune 500

All replicates share the spec's quadrature: ``quadrature_nodes`` is fixed to the count the model chooses
on the real data (the default choice depends on the observations, which would change the model per
replicate).  Gain alone: V_1S, V_C, sigma_1S are weakly identified without the SEC data (SBC stays valid, but
the chains mix slowly); ``charging+gain`` is the gain component as the joint model uses it, with the
SEC sweeps fixing the doping at every TA potential.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPECS = {
    "charging": {"components": {"cross_section": False, "gain": False, "dynamics": False, "reflection": False,
                                "photoluminescence": False}},
    "gain": {"components": {"cross_section": False, "charging": False, "dynamics": False, "reflection": False,
                            "photoluminescence": False}},
    # the gain component as it is used: with the SEC sweeps that fix the doping of every TA potential
    # non-centred calibrations: prior draws of the noise (ta_noise_rel ~ HalfNormal(0.05)) often leave a file's
    # <N> loosely pinned by its two gain delays, and centred calibrations then form a funnel with a small
    # fluence_log_sd (measured: replicate 1, truth 0.0087, bulk ESS 30 centred)
    "charging+gain": {"components": {"cross_section": False, "charging": True, "gain": True, "dynamics": False,
                                     "reflection": False, "photoluminescence": False},
                      "options": {"fluence_calibration": "non-centered"}},
    # the shipped default as a user fits it (every component, its discrepancy term, priors and centred
    # calibrations): the check that the defaults themselves are calibrated on data drawn from them
    "joint": {"extends": "joint"},
    # the shipped joint model (its components, options, discrepancy term, centred calibrations and nuisance
    # priors) with the physical parameters' priors narrowed to films like the shipped batches: prior draws of
    # the defaults reach <N> ~ 1e3 and tau_XX of 20 ps or 4 ns, replicates that take 10+ minutes each on this
    # layout (measured: 637 s, not converged); SBC holds for any prior, so this calibrates the same likelihood,
    # sampler and starts where real films lie
    "joint-realistic": {"extends": "joint", "priors": {
        "cross_section_cm2": {"dist": "LogNormal", "mu": -30.98, "sigma": 0.25, "unit": "cm^2"},
        "V_1S_V": {"dist": "Normal", "mu": -1.2, "sigma": 0.08, "unit": "V"},
        "sigma_1S_V": {"dist": "LogNormal", "mu": -2.3, "sigma": 0.3, "unit": "V"},
        "tau_xx_ps": {"dist": "LogNormal", "mu": 5.7, "sigma": 0.3, "unit": "ps"},
    }},
}


def thin_layout(data, sweeps=2, sec_every=2, ta_every=2):
    """A smaller observation layout of the same experiment: the first ``sweeps`` SEC sweeps, every
    ``sec_every``-th SEC potential of each and every ``ta_every``-th film TA delay of each file.

    SBC is valid on any layout (the replicates are drawn from the prior predictive on it), and its cost
    per replicate falls with the number of points: the charging term (SEC points x disorder nodes) is
    ~half of the joint gradient.  All potentials, fluences and files are kept, so the same model graph
    (every TA file, the same quadrature) is calibrated, only with fewer points per curve.
    """
    d = data
    if "sec_point" in d.dims:
        sweep = np.asarray(d["sec_point_sweep"].values)
        keep = np.zeros(sweep.size, bool)
        for s in range(min(int(sweeps), d.sizes["sweep"])):
            idx = np.nonzero(sweep == s)[0]
            keep[idx[::int(sec_every)]] = True
        d = d.isel(sec_point=np.nonzero(keep)[0], sweep=slice(0, min(int(sweeps), d.sizes["sweep"])))
    if "ta_point" in d.dims:
        # every ta_every-th delay of each file: files are the (potential, fluence) pairs
        key = np.stack([d["ta_point_potential"].values, d["ta_point_fluence"].values.astype(float)], axis=1)
        keep = np.zeros(key.shape[0], bool)
        _, inverse = np.unique(key, axis=0, return_inverse=True)
        for f in np.unique(inverse):
            idx = np.nonzero(inverse.ravel() == f)[0]
            keep[idx[::int(ta_every)]] = True
        d = d.isel(ta_point=np.nonzero(keep)[0])
    return d


def rank_statistics(ranks, n_draws, bins=10):
    """Chi-square (over ``bins`` equal bins of the L+1 rank values) with p-value, and max ECDF deviation."""
    from scipy import stats

    ranks = np.asarray(ranks)
    ranks = ranks[np.isfinite(ranks)].astype(int)
    n = ranks.size
    L1 = n_draws + 1
    edges = np.linspace(0, L1, bins + 1)
    counts = np.histogram(ranks, bins=edges)[0]
    expected = n * np.diff(edges) / L1
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    p = float(stats.chi2.sf(chi2, bins - 1))
    r = np.arange(L1)
    ecdf = np.searchsorted(np.sort(ranks), r, side="right") / n
    dev = float(np.max(np.abs(ecdf - (r + 1) / L1)))
    return {"n": n, "chi2": chi2, "p": p, "ecdf_max_dev": dev, "ecdf_bound95": 1.36 / np.sqrt(n), "counts": counts}


def _rank_rows(i, r, prior, params):
    """CSV rows (one per scalar parameter) of replicate ``i``: the rank of the truth among its thinned draws."""
    if r.get("error"):
        return []
    rows = []
    for name in params:
        truth = np.asarray(prior[name].values[0, i]).ravel()
        draws = np.asarray(r["draws"][name]).reshape(len(r["draws"][name]), -1)
        ranks = (draws < truth[None, :]).sum(axis=0)
        for j, (t, rank) in enumerate(zip(truth, ranks)):
            label = name if truth.size == 1 else f"{name}[{j}]"
            rows.append({"replicate": i, "parameter": label, "base": name, "truth": float(t), "rank": int(rank),
                         "converged": bool(r["ok"]), "max_r_hat": r["convergence"]["max_r_hat"],
                         "min_ess_bulk": r["convergence"]["min_ess_bulk"],
                         "divergences": r["convergence"]["divergences"], "seconds": r["seconds"],
                         "worst_r_hat": r["convergence"].get("worst_r_hat", ""),
                         "worst_ess_bulk": r["convergence"].get("worst_ess_bulk", "")})
    return rows


def _write_csv(df, path):
    from bayesgain._atomic import atomic_path

    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def print_statistics(df, n_draws, bins=10):
    """The rank-uniformity table of a ranks frame (as written to the CSV), per parameter."""
    L = n_draws
    n_rep = df["replicate"].nunique() if len(df) else 0
    n_conv = df.drop_duplicates("replicate")["converged"].sum() if len(df) else 0
    print(f"rank uniformity of {n_rep} replicates ({n_conv} converged) over {bins} bins (chi-square, {bins - 1} dof) "
          "and max ECDF deviation")
    print(f"{'parameter':34s} {'n':>4s} {'chi2':>7s} {'p':>7s} {'ECDF dev':>9s} {'95% bound':>9s}  bin counts")
    # vector parameters with many elements: one pooled row (elements are exchangeable a priori)
    for base_name, g in (df.groupby("base", sort=False) if len(df) else []):
        elements = g["parameter"].unique()
        todo = [(base_name + "[*]", g)] if len(elements) > 6 else [(e, g[g["parameter"] == e]) for e in elements]
        for label, gg in todo:
            s = rank_statistics(gg["rank"].values, L, bins)
            flag = "  <-- p < 0.01" if s["p"] < 0.01 else ""
            print(f"{label:34s} {s['n']:4d} {s['chi2']:7.2f} {s['p']:7.3f} {s['ecdf_max_dev']:9.3f} "
                  f"{s['ecdf_bound95']:9.3f}  {' '.join(str(c) for c in s['counts'])}{flag}")
    if len(df):
        _print_mixing(df)
    conv = df[df["converged"]] if len(df) else df
    if n_conv >= 20 and n_conv < n_rep:  # with a handful the subset statistics say nothing
        print("\nconverged replicates only (chi-square p):",
              ", ".join(f"{p}: {rank_statistics(g['rank'].values, L, bins)['p']:.3f}"
                        for p, g in conv.groupby("parameter", sort=False) if "[" not in p))


def _print_mixing(df, bad_r_hat=1.1):
    """How well the replicates mixed, and which prior draws mixed badly (median truths, bad vs the rest)."""
    rep = df.drop_duplicates("replicate").set_index("replicate")
    q = rep[["max_r_hat", "min_ess_bulk", "divergences", "seconds"]].quantile([0.1, 0.5, 0.9])
    print("\nmixing per replicate (10 / 50 / 90 % quantiles): "
          + "; ".join(f"{c} {q[c].iloc[0]:.3g} / {q[c].iloc[1]:.3g} / {q[c].iloc[2]:.3g}" for c in q.columns))
    bad = rep["max_r_hat"] > bad_r_hat
    if not 0 < bad.sum() < len(rep):
        return
    truth = df[~df["parameter"].str.contains(r"\[", regex=True)].pivot(index="replicate", columns="parameter",
                                                                      values="truth")
    print(f"{int(bad.sum())} replicates with R-hat > {bad_r_hat}: median truths, those / the rest")
    for c in truth.columns:
        a, b = truth.loc[bad[bad].index, c].median(), truth.loc[bad[~bad].index, c].median()
        print(f"  {c:32s} {a:11.4g} / {b:11.4g}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--component", choices=sorted(SPECS), default=None, help="required unless --summarize")
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--draws", type=int, default=250, help="per chain, after --tune")
    ap.add_argument("--tune", type=int, default=250)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--min-ess", type=int, default=100,
                    help="bulk ESS a replicate needs to count as converged (with R-hat <= 1.01, no divergence); "
                         "ranks use ~--rank-draws draws, so ESS of that order is what matters")
    ap.add_argument("--starts", default="optimum", choices=["optimum", "checked", "jitter"],
                    help="chain starts of every replicate (see GainModel.fit)")
    ap.add_argument("--max-treedepth", type=int, default=8,
                    help="NUTS depth cap per replicate (2^depth steps): a prior draw in a weakly identified corner "
                         "otherwise holds a worker for many minutes; capped chains stay valid MCMC, and a "
                         "replicate that suffers from the cap shows up as not converged")
    ap.add_argument("--rank-draws", type=int, default=99, help="L: thinned posterior draws per rank (ranks 0..L)")
    ap.add_argument("--bins", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--experiment", default=str(ROOT / "data" / "synthetic-batch-a"))
    ap.add_argument("--layout", default="full", choices=["full", "thin"],
                    help="observation layout of the replicates: 'full' (every point of --experiment) or 'thin' "
                         "(2 SEC sweeps, every 2nd SEC potential and every 2nd film TA delay: a cheaper "
                         "replicate of the same model graph, see thin_layout)")
    ap.add_argument("--scheduler", default=None, help="address of a Dask scheduler (default: a local cluster)")
    ap.add_argument("--workers", type=int, default=None, help="local cluster size (default: core count)")
    ap.add_argument("--csv", default=None, help="ranks CSV (default: sbc_<component>_ranks.csv here)")
    ap.add_argument("--summarize", default=None, metavar="CSV",
                    help="only print the statistics of a ranks CSV written earlier (also a partial one)")
    args = ap.parse_args(argv)

    import pandas as pd

    if args.summarize:
        print_statistics(pd.read_csv(args.summarize), args.rank_draws, args.bins)
        return 0
    if args.component is None:
        ap.error("--component is required (or --summarize CSV)")

    from bayesgain.model.core import GainModel
    from bayesgain.model.distributed import fit_many
    from bayesgain.model.spec import spec_from_dict

    t0 = time.time()
    base = GainModel(spec_from_dict(SPECS[args.component]), args.experiment)
    spec_dict = {**SPECS[args.component], "options": {**SPECS[args.component].get("options", {}),
                                                      "quadrature_nodes": int(base.quadrature_nodes)}}
    spec = spec_from_dict(spec_dict)
    data = thin_layout(base.data) if args.layout == "thin" else base.data
    model = GainModel(spec, _reduced=data)
    model.build()
    labels = model.observed_names
    free = [rv.name for rv in model.model.free_RVs]
    params = list(dict.fromkeys(free + [n for n in model.parameter_names if n in model.model.named_vars]))
    print(f"SBC of the {args.component} component ({', '.join(labels)} observed) on {args.experiment}: "
          f"{args.layout} layout ({model.data.sizes.get('sec_point', 0)} SEC, {model.data.sizes.get('ta_point', 0)} TA "
          f"points), {args.replicates} replicates, {args.chains} chains x {args.draws} draws after {args.tune} tune, "
          f"ranks among L = {args.rank_draws} thinned draws; quadrature nodes {spec.options['quadrature_nodes']}",
          flush=True)
    # all replicates' prior draws in one call (one compile); replicate i = prior predictive draw i
    pp = model.sample_prior_predictive(draws=args.replicates, seed=args.seed)
    prior, prior_pred = pp["prior"], pp["prior_predictive"]
    print(f"prior predictive: {time.time() - t0:.1f} s", flush=True)
    spec_toml = spec.to_toml()
    jobs = []
    for i in range(args.replicates):
        obs = {lab: np.asarray(prior_pred[lab].values[0, i]) for lab in labels}
        jobs.append({"name": f"rep{i}", "spec": spec_toml, "reduced": model.data, "observed": obs,
                     "fit": {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": 1000 + i,
                             "cores": 1, "min_ess": args.min_ess, "max_treedepth": args.max_treedepth,
                             "starts": args.starts},
                     "return_draws": params, "thin_to": args.rank_draws})
    csv = pathlib.Path(args.csv or f"sbc_{args.component}_ranks.csv")
    rows = []
    finished = [0]

    def save_partial(i, r):
        # ranks are saved as replicates finish (every 5th), so an interrupted study keeps what it computed;
        # `sbc.py --summarize CSV` prints the statistics of such a file
        rows.extend(_rank_rows(i, r, prior, params))
        finished[0] += 1
        if finished[0] % 5 == 0:
            _write_csv(pd.DataFrame(rows), csv)

    t1 = time.time()
    results = fit_many(jobs, scheduler=args.scheduler, n_workers=args.workers, progress=True, on_result=save_partial)
    t_fit = time.time() - t1
    failed = sum(bool(r.get("error")) for r in results)
    not_converged = sum(not r.get("error") and not r["ok"] for r in results)
    for i, r in enumerate(results):
        if r.get("error"):
            print(f"replicate {i} FAILED:\n{r['error']}", file=sys.stderr)
    rows.sort(key=lambda row: row["replicate"])
    df = pd.DataFrame(rows)
    _write_csv(df, csv)
    print(f"\nfits: {t_fit:.0f} s for {len(results)} replicates ({failed} failed, {not_converged} not converged: "
          f"R-hat > 1.01, bulk ESS < {args.min_ess} or divergences); per replicate median "
          f"{np.median([r['seconds'] for r in results]):.1f} s, compiled {sum(bool(r.get('compiled')) for r in results)} x")
    print_statistics(df, args.rank_draws, args.bins)
    print(f"\nranks written to {csv}; total {time.time() - t0:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
