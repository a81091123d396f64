"""Sampling with nutpie from robust starting points.

:func:`sample_nutpie` compiles (or reuses) the nutpie model, picks the chains' starting points with
:func:`optimised_starts` and samples.  The starts: each chain's jittered start, unless L-BFGS from it
climbs into a basin far below the best one found; such a start is replaced by the best one's.

Why: NUTS cannot leave a local mode that is separated from the bulk by a barrier.  On the joint model
of ``data/synthetic-batch-a`` (SYNTHETIC), 4 chains from PyMC's jittered starts (seed 1) left one chain
in a basin where the solution noise scale was 0.10 instead of 0.0014 and the Auger lifetime 67 ps
instead of 310 -- 1567 nats below the other three -- and in another run one chain held a film file at
<N> = 21 instead of 5.7 (31 nats below).  L-BFGS on the compiled log density (no new compilation;
on that model ~5 s and < 1500 iterations per chain to reach the optimum, which lies ~48 nats above
the typical set's mean log density) shows which start lies in such a basin, and that chain starts from
the best climb's start instead.  Chains that agree keep their own starts, so R-hat
still compares chains from different points; :func:`bayesgain.model.convergence.stuck_chains` still checks
the result after sampling.

The log density climbed is nutpie's (unconstrained space, Jacobian terms included).  Its optimum is
not a start: where the data do not pin every file's calibration, the centred spread fluence_log_sd
has density ~ sd^(1 - n) exp(-sum c^2 / 2 sd^2), unbounded as sd and the c's go to 0 together (a
funnel's neck).  Starting all chains at the climbed optimum converged on batch A but left SBC
replicates of the gain component stuck (median R-hat 1.43 over 15 replicates), hence the rule above.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import threading

import numpy as np

__all__ = ["BACKENDS", "STARTS", "compile_nutpie", "sample_nutpie", "optimised_starts", "with_starts", "jitter_rvs",
           "logp_and_gradient", "report_text", "stuck_chain_gaps", "chain_init_seeds", "climbed_starts", "flat_layout", "initial_point"]

# PyTensor backends nutpie compiles the log density with (joint model, data/synthetic-batch-a,
# benchmarks/results/logp-cost-and-demo-time_2026-11-27.md).  numba: 0.41 ms per gradient, but every node is compiled by
# LLVM on its own: ~105 s cold (cached afterwards under PyTensor's compile directory: ~20 s).  jax
# (optional: ``pip install 'bayesgain[jax]'``): 0.55 ms per gradient and ~6 s to compile, cold or warm;
# nutpie calls it from Python, so the chains barely run in parallel and sampling takes ~1.5x numba's.
# The whole 4 x (1000 + 1000) fit: numba 167 s cold / 74 s warm, jax 85 s.
BACKENDS = ("numba", "jax")

# Chains start U(-1, 1) from their climbed points in whitened coordinates (~ a posterior sd): far enough that
# nutpie's first mass matrix, 1/|gradient|, is ~1 there, near enough to stay in the optimum's basin.
START_RADIUS = 1.0


def compile_nutpie(model, backend="numba", jitter_rvs=None, freeze_model=None, beside=None):
    """nutpie's compiled model of ``model`` with the PyTensor ``backend`` ("numba" or "jax").

    numba: the model's data arrays are lifted into shared variables and the compiled model is kept per
    structure in this process (:mod:`.compiled_cache`): a later model of the same structure gets it with
    its own data swapped in, without compiling.  ``freeze_model`` (jax): fold shared variables into
    constants (nutpie's default for jax); pass False to keep them swappable with ``with_data``.
    ``beside(n_dim, n_expanded)`` (numba): run in a thread while a first run's callbacks compile in a child process.
    """
    import functools

    import nutpie

    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "numba":
        from .compiled_cache import compiled_for

        names = None if jitter_rvs is None else [rv.name for rv in jitter_rvs]
        from .nutpie_numba import compile_pymc_model_cached

        compiled, _ = compiled_for(model, functools.partial(compile_pymc_model_cached, beside=beside), names)
        return compiled
    kw = {}
    if backend == "jax":
        try:
            import jax  # noqa: F401
        except ImportError as err:
            raise ImportError("backend='jax' needs JAX, which is optional: pip install 'bayesgain[jax]' "
                              "(or pip install jax); backend='numba' needs nothing more") from err
        kw = {"backend": "jax", "gradient_backend": "pytensor"}
        if freeze_model is not None:
            kw["freeze_model"] = bool(freeze_model)
    return nutpie.compile_pymc_model(model, jitter_rvs=jitter_rvs, **kw)


def _is_numba(compiled):
    # nutpie's jax models are PyFuncModels (Python callbacks); the numba ones carry C function pointers
    return not hasattr(compiled, "_make_logp_func")


def initial_point(compiled, seed):
    """The compiled model's (jittered) start for ``seed`` as a flat float64 vector, for either backend."""
    fn = compiled.initial_point_func if _is_numba(compiled) else compiled._make_initial_points
    return np.asarray(fn(int(seed)), dtype="float64")


def flat_layout(compiled):
    """``(names, slices)`` of the free (unconstrained) variables in ``compiled``'s flat vector.

    The order is the compiled model's own: numba follows ``model.free_RVs``; jax compiles a frozen copy of
    the model whose free variables may come in another order.
    """
    n_dim = compiled.n_dim
    if _is_numba(compiled):  # shape_info: the free variables first, then the deterministics
        pairs = [(n, sl) for n, sl in zip(compiled.shape_info[0], compiled.shape_info[1]) if sl.stop <= n_dim]
    else:  # jax (PyFuncModel): the expanded vector starts with the flat free vector
        pairs = [(v.name, slice(int(v.start_idx), int(v.end_idx))) for v in compiled._variables if v.end_idx <= n_dim]
    return [n for n, _ in pairs], [sl for _, sl in pairs]


def logp_and_gradient(compiled):
    """``f(x) -> (logp, grad)`` on nutpie's flat unconstrained vector: the very function nutpie samples with.

    numba: the C callback.  Calling it (not the PyTensor function behind it) costs no second compilation
    (measured: 14 s for the joint model's first PyTensor call) and sees the data swapped in by nutpie's
    ``with_data``.  A non-zero status (non-finite value or gradient) is reported as logp = -inf.
    jax: the Python function nutpie calls, with the model's shared data bound.
    """
    import ctypes

    if not _is_numba(compiled):
        import functools

        fn = functools.partial(compiled._make_logp_func(), **compiled._shared_data)

        def f_py(x):
            try:
                lp, grad = fn(np.ascontiguousarray(x, dtype="float64"))
            except (ValueError, FloatingPointError, ArithmeticError):
                return -np.inf, np.zeros(int(compiled.n_dim))
            return float(lp), np.asarray(grad, dtype="float64")

        return f_py

    fn = compiled.compiled_logp_func.ctypes
    n = int(compiled.n_dim)
    user_data = ctypes.c_void_p(compiled.user_data.ctypes.data)
    as_ptr = lambda a: a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))  # noqa: E731

    def f(x, _keep=compiled):  # _keep: the callback reads compiled.user_data, which must stay alive
        x = np.ascontiguousarray(x, dtype="float64")
        grad = np.empty(n)
        lp = np.empty(())
        status = fn(n, as_ptr(x), as_ptr(grad), as_ptr(lp), user_data)
        if status != 0:
            return -np.inf, np.zeros(n)
        return float(lp), grad

    return f


def _climb(f, x0, maxiter):
    from scipy.optimize import minimize

    def neg(x):
        lp, g = f(x)
        if not np.isfinite(lp) or not np.all(np.isfinite(g)):
            return np.inf, np.zeros_like(x)
        return -lp, -g

    start_lp = f(x0)[0]
    try:
        res = minimize(neg, x0, jac=True, method="L-BFGS-B", options={"maxiter": int(maxiter)})
        x, lp = res.x, -float(res.fun)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
        x, lp = x0, start_lp
    if not np.isfinite(lp) or (np.isfinite(start_lp) and lp < start_lp):
        x, lp = x0, start_lp
    return np.asarray(x, dtype="float64"), float(lp), float(start_lp)


def _climbs(f, starts, maxiter, threads):
    """:func:`_climb` from each of ``starts``, in order; ``threads``: on the machine's cores at once (the numba
    callback releases the GIL and is re-entrant; each climb is independent, so the results do not depend on it)."""
    import concurrent.futures
    import os

    from threadpoolctl import threadpool_limits

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(len(starts), cores)
    if not threads or workers < 2:
        return [_climb(f, x0, maxiter) for x0 in starts]
    # L-BFGS-B's small BLAS calls on one thread each: BLAS threads spinning beside the climbs' doubled their time
    with threadpool_limits(limits=1, user_api="blas"), concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="bayesgain-climb") as pool:
        return list(pool.map(lambda x0: _climb(f, x0, maxiter), starts))


STARTS = ("optimum", "checked", "jitter")
# a chain this far below the best in mean log density is run again (see sample_nutpie)
RERUN_GAP_NATS = 20.0


# Parameter names of a location: a variable upstream only of another's location shifts it (a
# reparametrisation such as u = beta + gamma_scale), it opens no funnel.
_LOCATION_PARAMETERS = frozenset({"loc", "mu", "mean"})


def _parameter_names(op):
    """The distribution's parameter names in the order of its inputs (after rng and size), or () if unknown."""
    import inspect

    try:
        names = [n for n, p in inspect.signature(op.__call__).parameters.items()
                 if p.kind is p.POSITIONAL_OR_KEYWORD and n not in ("self", "size")]
    except (TypeError, ValueError):
        return ()
    return tuple(names)


def hyperparameter_slices(model, compiled, scale_only=False):
    """Slices of nutpie's flat vector holding hyperparameters: free variables among the ancestors of another
    free variable's distribution parameters (fluence_log_sd of the centred calibrations, pooling scales).

    ``scale_only``: only ancestors of scale-like parameters (not of a location).  Jittering a location's parent
    with the child at its optimum moves the fit's prediction, not a funnel's width: on the joint model
    gamma_scale (upstream of window_bleach_per_electron_rel's mean) puts every chain 5e4-5e5 nats below the
    optimum.  The default keeps that: it is what the mismatch scenarios validated, and the starts near the
    optimum lost convergence on two of them (docs/decisions/whitened-sampling.md); whitened sampling, which
    takes the curvature at the best start, uses ``scale_only``."""
    from pytensor.graph.traversal import ancestors

    free = set(model.free_RVs)
    names = set()
    for rv in model.free_RVs:
        params = rv.owner.inputs[2:]  # inputs: rng, size, then the distribution parameters
        labels = _parameter_names(rv.owner.op) if scale_only else ()
        if len(labels) == len(params):
            params = [p for p, label in zip(params, labels) if label not in _LOCATION_PARAMETERS]
        for a in ancestors(params):
            if a in free and a is not rv:
                names.add(model.rvs_to_values[a].name)
    all_names, all_slices = flat_layout(compiled)
    return [sl for n, sl in zip(all_names, all_slices) if n in names]


def optimised_starts(compiled, chains, seed, maxiter=2000, max_gap_nats=20.0, at_optimum=True, keep_jittered=()):
    """One starting point per chain, and a report.

    Chain c's jittered start is ``compiled.initial_point_func(seed * 1000 + c)`` (PyMC's start,
    jittered where :meth:`GainModel.jitter_rvs` allows).  From each, L-BFGS climbs at most ``maxiter``
    iterations.  A climb that ends more than ``max_gap_nats`` below the best climb drained into a worse
    basin; that chain takes the best climb's point instead.  ``at_optimum``: chains start where their
    climb ended (default), else at their jittered start (the climb only checks the basin).
    ``keep_jittered``: slices of the flat vector (the hyperparameters, see :func:`hyperparameter_slices`)
    that start at their jittered values even with ``at_optimum``.

    Measured on data/synthetic-batch-a (4 chains x 1000 after 1000, seed 1): all four climbs reached
    the same optimum; started there the fit converged (R-hat 1.004, bulk ESS 4354), started from the
    jittered points two chains were trapped during warm-up (130 and 153 nats below, R-hat 1.88).
    Where the data do not pin every file's calibration the optimum lies in a funnel's neck (the spread
    -> 0 with every calibration); on 6 SBC replicates of the gain component alone, chains started there
    gave R-hat 1.33-2.46 (1.02-1.70 from the jittered points).  Hence ``keep_jittered``: the spreads
    start at their jittered values, out of the neck, the rest at the optimum.  Returns ``(starts, report)``: flat float64
    arrays and a dict with the log densities before/after the climbs and the replaced chains.
    """
    f = logp_and_gradient(compiled)
    jittered = [initial_point(compiled, int(seed) * 1000 + c) for c in range(int(chains))]
    climbs = _climbs(f, jittered, maxiter, threads=_is_numba(compiled))
    climbed, after, before = (list(v) for v in zip(*climbs))  # _climb: (point, log density, at the start)
    after_arr = np.asarray(after)
    best = int(np.nanargmax(np.where(np.isfinite(after_arr), after_arr, -np.inf)))
    replaced = [c for c in range(len(after)) if not after_arr[c] >= after_arr[best] - max_gap_nats]
    starts = [x.copy() for x in (climbed if at_optimum else jittered)]
    for c in replaced:
        starts[c] = starts[best].copy()
    if at_optimum:
        for c, x in enumerate(starts):
            for sl in keep_jittered:
                x[sl] = jittered[c][sl]
    report = {"logp_start": before, "logp_climbed": after, "best_chain": best, "replaced_chains": replaced,
              "max_gap_nats": float(max_gap_nats), "maxiter": int(maxiter), "at_optimum": bool(at_optimum)}
    return starts, report


def climbed_starts(model, compiled, chains, seed, at_optimum=True, scale_only=False):
    """The chains' starts as :func:`sample_nutpie` picks them (``starts`` "optimum" or, with
    ``at_optimum=False``, "checked"): :func:`optimised_starts` with the hyperparameters kept jittered
    (``scale_only``: see :func:`hyperparameter_slices`).  Returns ``(starts, report)``."""
    keep = hyperparameter_slices(model, compiled, scale_only=scale_only)
    return optimised_starts(compiled, chains, seed, at_optimum=at_optimum, keep_jittered=keep)


def stuck_chain_gaps(idata, min_gap_nats=5.0):
    """``(stuck, gaps, best)``: chains whose mean log density lies more than ``min_gap_nats`` (and more than
    the median within-chain spread) below the best chain's, every chain's gap in nats, and the best chain.

    A chain that mixes with the others has a mean log density within ~1 nat of theirs.  Empty when the
    tree has no log density per draw or fewer than two chains.
    """
    ss = idata["sample_stats"] if "sample_stats" in idata else {}
    name = next((n for n in ("logp", "lp") if n in ss), None)
    if name is None or idata["posterior"].sizes.get("chain", 1) < 2:
        return [], np.zeros(0), 0
    lp = np.asarray(ss[name].values, dtype=float)  # (chain, draw)
    means = lp.mean(axis=1)
    spread = float(np.median(lp.std(axis=1)))
    gaps = means.max() - means
    stuck = [int(c) for c in np.nonzero(gaps > max(min_gap_nats, spread))[0]]
    return stuck, gaps, int(np.argmax(means))


def _replace_chain(tree, chain, new):
    """``tree`` with chain ``chain`` of every group that has chains replaced by the single chain of ``new``."""
    import xarray as xr

    out = tree.copy()
    for name, node in tree.children.items():
        ds = node.to_dataset()
        if "chain" not in ds.dims or name not in new.children:
            continue
        fresh = new[name].to_dataset().assign_coords(chain=[chain])
        merged = xr.concat([ds.drop_sel(chain=chain), fresh], dim="chain", data_vars="all", coords="minimal",
                           compat="override", join="override").sortby("chain")
        merged.attrs = ds.attrs
        out[name] = xr.DataTree(merged)
    return out


def report_text(report):
    """One line for the fit's attrs and logs."""
    gaps = [report["logp_climbed"][report["best_chain"]] - x for x in report["logp_climbed"]]
    where = "where the climb ended" if report.get("at_optimum", True) else "at their jittered points"
    text = (f"chains start {where} (L-BFGS from jittered points, <= {report['maxiter']} iterations); climb's end "
            "below the best, per chain: " + ", ".join(f"{g:.1f}" for g in gaps) + " nats")
    if report["replaced_chains"]:
        text += (f"; chains {report['replaced_chains']} drained into a basin > {report['max_gap_nats']:.0f} nats "
                 f"below the best and start from chain {report['best_chain']}'s point")
    if not report.get("starts_pinned", True):
        text += ("; the starts went to the chains in the order nutpie's threads asked (their seeds could not be "
                 "read off), so the same seed may give other draws")
    if report.get("whitened"):
        text += f"; sampled in coordinates whitened by the curvature at chain {report['best_chain']}'s start"
        if report.get("start_radius"):
            text += f", each start moved by U(-{report['start_radius']:g}, {report['start_radius']:g}) there"
    for c, gap, best in report.get("rerun_chains", []):
        text += (f"; chain {c} held a mode {gap:.0f} nats below chain {best} in mean log density and was run again "
                 f"(new seed) from chain {best}'s start")
    return text


def _with_initial_point(compiled, fn):
    field = "initial_point_func" if _is_numba(compiled) else "_make_initial_points"
    return dataclasses.replace(compiled, **{field: fn})


def chain_init_seeds(compiled, chains, seed, point=None):
    """The seed nutpie hands to the initial-point function for each chain, in chain order.

    nutpie asks for the chains' starts from its worker threads, in whatever order they run (seen: chains
    0 and 1 swapped between two runs of the same seed on 2 cores), but each chain's seed is a fixed
    function of (seed, chain).  A one-draw run on one core, where the chains start one after another,
    reads them off (trajectories capped at 2 steps: ~0.1 s), every chain started at ``point`` (default: its
    own jittered start).  Returns None where that run did not ask exactly once per chain.
    """
    import warnings

    import nutpie

    seen = []
    lock = threading.Lock()

    def record(s):
        with lock:
            seen.append(int(s))
        return np.array(point, dtype="float64") if point is not None else initial_point(compiled, s)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ArviZ: "chain dimension longer than draw dimension" (one draw)
            nutpie.sample(_with_initial_point(compiled, record), draws=1, tune=1, chains=int(chains), cores=1,
                          seed=int(seed), progress_bar=False, maxdepth=1)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 -- nutpie's Rust panics are BaseExceptions; the real run will report
        return None
    return seen if len(seen) == int(chains) and len(set(seen)) == int(chains) else None


def with_starts(compiled, starts, chain_seeds=None):
    """``compiled`` whose initial-point function hands out ``starts``: chain c gets ``starts[c]``.

    ``chain_seeds`` (from :func:`chain_init_seeds`): nutpie's seed for each chain's start, so the chain
    that asks with ``chain_seeds[c]`` gets ``starts[c]`` whatever order the threads ask in (same seed,
    same posterior).  Without it (or for a seed not in it), the starts go out in the order asked.
    """
    starts = [np.array(s, dtype="float64") for s in starts]
    by_seed = dict(zip((int(s) for s in chain_seeds), range(len(starts)))) if chain_seeds is not None else {}
    cycle = itertools.cycle(starts)
    lock = threading.Lock()

    def start(seed):  # the points are fixed; nutpie's seed drives the sampler
        with lock:
            k = by_seed.get(int(seed))
            return starts[k].copy() if k is not None else next(cycle).copy()

    return _with_initial_point(compiled, start)


def sample_nutpie(model, compiled=None, *, draws=1000, tune=1000, chains=4, seed=0, cores=None, target_accept=0.95,
                  adaptation="low_rank", max_treedepth=None, progress=True, jitter_rvs=None, starts="optimum",
                  rerun_stuck=True, backend="numba", whiten=False, start_radius=None, while_compiling=None):
    """Sample ``model`` (a pm.Model) with nutpie; returns ``(idata, start_report_or_None)``.

    ``compiled``: a nutpie model compiled from ``model`` (with its data swapped in), else it is compiled
    here with ``jitter_rvs`` and ``backend`` (see :func:`compile_nutpie`).  ``starts``: "optimum" (each chain where L-BFGS from its jittered point
    ends, hyperparameters at their jittered values, see :func:`optimised_starts`), "checked" (the jittered points, a point whose climb ends in a
    worse basin replaced) or "jitter" (PyMC's jittered points as they are).  The DataTree is patched as ``pm.sample`` patches it (coords,
    dims, deterministics, sampling time).

    ``rerun_stuck`` (not with "jitter"): a chain whose mean log density ends more than 20 nats below the best
    chain's held a minor mode for the whole run (NUTS does not cross such barriers; seen on the joint model of
    batch A: one chain of four, 114 nats below, from good climbed starts -- it drifted there during warm-up).
    Such a chain is run once more, tuning included, from the best chain's start with a new seed, and replaces
    the stuck one; the report and the tree's attrs say so.  Kept, the stuck chain would give that mode a
    quarter of the draws; unless the mode is e^20 times wider than the best one, its share of the posterior is
    negligible.  A chain still stuck after the rerun stays and the convergence report flags it.

    ``whiten`` (off by default; climbed starts): nutpie samples z with x = mu + L z, L from the curvature at the
    best chain's start (:mod:`~bayesgain.model.whitening`): the same posterior.  Its starts jitter only the scale
    hyperparameters (``hyperparameter_slices(scale_only=True)``), so the curvature is taken near the optimum.
    ``start_radius`` r (None: :data:`START_RADIUS` when whitened): each chain's start moves by U(-r, r) in every
    whitened coordinate (seeded by ``seed``), about a posterior sd from the climbed point, where the gradient is
    not ~0 and nutpie's first mass matrix (1/|gradient|) is about right: a 40 % shorter warm-up on batch A, but
    two fits of a hard mismatch scenario missed the convergence rule (docs/decisions/whitened-sampling.md).
    ``while_compiling``: a callable run while a first run's numba callbacks compile in a child process (other
    compilations of the fit, overlapped on a second core), beside the whitening callbacks' own.
    """
    import time

    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata

    if starts not in STARTS:
        raise ValueError(f"starts={starts!r}: expected one of {', '.join(STARTS)}")
    whiten, start_radius = _whitening_settings(starts, whiten, start_radius)
    if compiled is None:
        compiled = compile_nutpie(model, backend=backend, jitter_rvs=jitter_rvs,
                                  beside=_compiling_beside(whiten, while_compiling))
    report = None
    if starts != "jitter":
        points, report = climbed_starts(model, compiled, chains, seed, at_optimum=starts == "optimum",
                                        scale_only=whiten)
        seeds = chain_init_seeds(compiled, chains, seed, point=points[report["best_chain"]])
        report["starts_pinned"] = seeds is not None
        report["whitened"] = False
        if whiten:
            compiled, points = _whitened(compiled, points, report, seed, start_radius)
        compiled = with_starts(compiled, points, seeds)
    extra = {} if adaptation == "diag" else {"adaptation": adaptation}
    if max_treedepth is not None:
        extra["maxdepth"] = int(max_treedepth)
    bar = contextlib.nullcontext()
    if progress:
        from pymc.progress_bar.progress import NutpieProgressBarManager

        bar = NutpieProgressBarManager(chains=chains, draws=draws, progressbar=True)
        extra["progress_callback"] = bar.update
    t0 = time.time()
    with bar:
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=cores, seed=int(seed),
                              target_accept=target_accept, progress_bar=False, save_warmup=False, **extra)
    if rerun_stuck and report is not None:
        stuck, gaps, best = stuck_chain_gaps(idata, min_gap_nats=RERUN_GAP_NATS)
        report["rerun_chains"] = []
        extra.pop("progress_callback", None)
        for k, c in enumerate(stuck):
            if progress:
                print(f"chain {c} holds a mode {gaps[c]:.0f} nats below chain {best}: running it again", flush=True)
            one = nutpie.sample(with_starts(compiled, [points[best]]), draws=draws, tune=tune, chains=1, cores=1,
                                seed=int(seed) + 1_000_003 * (k + 1), target_accept=target_accept, progress_bar=False,
                                save_warmup=False, **extra)
            idata = _replace_chain(idata, c, one)
            report["rerun_chains"].append((c, float(gaps[c]), best))
    patch_nutpie_idata(idata, model, sampling_time=time.time() - t0)
    if report is not None:
        idata.attrs["chain_starts"] = report_text(report)
    return idata, report


def _compiling_beside(whiten, while_compiling):
    """What a first run compiles beside the model's callbacks: the whitening callbacks, then ``while_compiling``."""
    from . import whitening

    def beside(n_dim, n_expanded):
        if whiten:
            whitening.precompile(n_dim, n_expanded)
        if while_compiling is not None:
            while_compiling()

    return beside


def _whitening_settings(starts, whiten, start_radius):
    """``(whiten, start_radius)`` resolved from the caller's (radius None: the default); ValueError where they clash."""
    if whiten and starts == "jitter":
        raise ValueError("whiten=True takes the curvature at a climbed start: it needs starts='optimum' or 'checked'")
    if start_radius is None:
        start_radius = START_RADIUS if whiten else 0.0
    if start_radius and not whiten:
        raise ValueError("start_radius moves the starts in whitened coordinates: it needs whiten=True and climbed starts")
    if not (np.isfinite(start_radius) and start_radius >= 0):
        raise ValueError(f"start_radius must be a finite number >= 0; got {start_radius!r}")
    return bool(whiten), float(start_radius)


def _whitened(compiled, points, report, seed, start_radius):
    """``(model, starts)`` in whitened coordinates (:mod:`.whitening`), the factor taken at the best chain's start,
    each start moved by U(-r, r) there when ``start_radius`` r; as given where the curvature is not finite.
    ``report`` records what was done."""
    from . import whitening

    factor = whitening.laplace_factor(logp_and_gradient(compiled), points[report["best_chain"]])
    if factor is None:
        return compiled, points
    report["whitened"] = True
    points = whitening.to_whitened(points, *factor)
    if start_radius:
        rng = np.random.default_rng(int(seed))
        points = [z + rng.uniform(-start_radius, start_radius, size=z.size) for z in points]
        report["start_radius"] = float(start_radius)
    return whitening.whitened(compiled, *factor), points


def jitter_rvs(model, max_scale=0.25):
    """Free variables whose starting point may be jittered by U(-1, 1) in the unconstrained space.

    PyMC and nutpie jitter every free variable by U(-1, 1) unless told otherwise; that is harmless for
    standard normals and log-scale positives but moves a 10 mV sweep offset by up to 1 V and a per-file
    log fluence calibration (scale 0.05) by a factor up to e.  Such variables -- Normals and LogNormals
    whose sigma is below ``max_scale`` or depends on other variables -- start at their prior centre.
    """
    from pytensor.graph.basic import Constant
    from pytensor.graph.fg import MissingInputError
    from pytensor.graph.traversal import ancestors

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
            except MissingInputError:  # a root that is neither constant nor shared: not a fixed scale, no jitter
                continue
        keep.add(rv)
    return keep
