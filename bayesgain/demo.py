"""The quick-start demo: the joint Bayesian model on the shipped synthetic experiment, with its report.

``bayesgain demo`` fits ``models/joint.toml`` to ``data/synthetic-batch-a`` (SYNTHETIC: made by
``bayesgain.simulate``, truth in its truth.toml) -- solution cross-section, SEC charging with
Gaussian disorder, film gain and Auger dynamics at six potentials x nine fluences, and the
reflection scale -- and writes the report of ``bayesgain fit`` (report.md, CSV tables, figures) to
``./bayesgain-demo``; it prints the physical parameters and the gain thresholds beside the
simulation truth.  Every output says that the data are synthetic.
"""

import pathlib
import time
import tomllib

import numpy as np

from ._shipped import shipped_folder


SYNTHETIC_NOTE = "SYNTHETIC data (data/synthetic-batch-a, made by bayesgain.simulate; not a measurement)"
DEMO_FOLDER = shipped_folder("data") / "synthetic-batch-a"


def dry_run(folder=DEMO_FOLDER, models=None, log=print):
    """Check an installation without sampling: the shipped demo experiment and every shipped model.

    Validates ``folder`` (the report of ``bayesgain check``), builds each model specification on it and
    evaluates the log density and its gradient at the model's initial point on PyTensor's Python VM
    (seconds per model; a fit's numba compilation takes minutes).  Writes nothing.  Returns True
    when the data are valid and every log density and gradient is finite.
    """
    from pytensor.compile.mode import Mode
    from pytensor.link.vm import VMLinker

    from .io import check_experiment, load_experiment
    from .model.core import GainModel
    from .model.spec import MODELS_DIR, available_models

    # one evaluation per model: the fewest rewrites on the Python VM compile fastest (no C, no numba)
    mode = Mode(VMLinker(use_cloop=False, c_thunks=False), "fast_compile")

    folder = pathlib.Path(folder)
    report = check_experiment(folder)
    log(report.text)
    if not report.ok:
        return False
    tree = load_experiment(folder)
    ok = True
    log(f"\nShipped models ({MODELS_DIR}) on {folder.name}: log density and its gradient at the initial point "
        "(no sampling)")
    for name in models or available_models():
        t0 = time.time()
        gm = GainModel(name, tree, names=[folder.name])
        gm.build()
        logp, grad = gm.model.compile_fn([gm.model.logp(), gm.model.dlogp()], mode=mode)(gm.model.initial_point())
        logp, grad = float(logp), np.asarray(grad)
        finite = bool(np.isfinite(logp) and np.isfinite(grad).all())
        ok &= finite
        log(f"  {name:<28} logp {logp:12.2f}   |gradient| {np.linalg.norm(grad):10.3g}   {len(grad):4d} coordinates"
            f"   {time.time() - t0:4.1f} s   {'OK' if finite else 'NOT FINITE'}")
    log(f"\nInstallation check: {'OK' if ok else 'FAILED'} ({SYNTHETIC_NOTE}; nothing written)")
    return ok


def run(out_dir="bayesgain-demo", draws=1000, tune=1000, chains=4, seed=1, progress=True, folder=DEMO_FOLDER,
        force=True, figures=True, backend="numba"):
    """The README's main job: the joint model on the shipped synthetic experiment, with the report.

    Fits ``models/joint.toml`` (cross-section, charging, gain, dynamics, reflection) to
    ``data/synthetic-batch-a`` with nutpie, writes ``posterior.nc``, ``summary.csv``,
    ``thresholds.csv``, ``classic.csv``, ``report.md`` and the figures into ``out_dir``, and prints the
    physical parameters and the gain thresholds next to the simulation truth.  Returns True when the
    fit converged (R-hat <= 1.01, bulk ESS >= 400, no divergence).  ``backend``: nutpie's PyTensor
    backend, "numba" or "jax" (see :meth:`GainModel.fit`).
    """
    import arviz as az

    from .io import load_experiment
    from .model import quantities as q
    from .model.core import GainModel
    from .report import write_fit_outputs

    out = pathlib.Path(out_dir)
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    folder = pathlib.Path(folder)
    truth = tomllib.loads((folder / "truth.toml").read_text()) if (folder / "truth.toml").exists() else {}
    print(f"bayesgain demo -- {SYNTHETIC_NOTE}")
    t0 = time.time()
    tree = load_experiment(folder)
    model = GainModel("joint", tree, names=[folder.name])
    model.build()
    d = model.data
    print(f"  joint model: {d.sizes.get('sol_point', 0)} solution, {d.sizes.get('sec_point', 0)} SEC, "
          f"{d.sizes.get('ta_point', 0)} film TA and {d.sizes.get('subgap_point', 0)} sub-gap window averages; "
          f"{len(model.model.free_RVs)} parameter groups")
    print(f"  sampling {chains} chains x {draws} draws after {tune} tuning steps (nutpie with {backend}; "
          "compiling first)")
    model.fit(draws=draws, tune=tune, chains=chains, seed=seed, progress=progress, backend=backend)
    fit_s = time.time() - t0
    write_fit_outputs(model, out, classic_folder=tree, figures=figures)

    post = model.idata["posterior"]
    print(f"\nFitted in {fit_s:.0f} s. {model.convergence.text()}")
    print("\nPosterior (median, 94 % HDI)                      truth (simulation)")
    rows_p = [("cross_section_cm2", "400 nm cross-section", "cm^2", "cross_section_400nm_cm2"),
              ("film_cross_section_ratio", "film / solution cross-section", "", "film_cross_section_ratio"),
              ("V_1S_V", "V_1S", "V", "V_1S_V"), ("V_C_V", "V_C", "V", "V_C_V"),
              ("sigma_1S_V", "sigma_1S", "V", "sigma_1S_V"), ("tau_xx_ps", "biexciton lifetime", "ps", "tau_xx_ps"),
              ("k_x_per_ns", "single-exciton decay rate", "1/ns", "k_x_per_ns")]
    if "k_x_per_ps" in truth:  # the simulator states the rate per ps; the model's prior is on the rate per ns
        truth = {**truth, "k_x_per_ns": 1e3 * float(truth["k_x_per_ps"])}
    for name, label, unit, key in rows_p:
        if name not in post:
            continue
        x = post[name].values.reshape(-1)
        lo, hi = np.asarray(az.hdi(x, prob=0.94))
        print(f"  {label:<30} {np.median(x):10.4g} [{lo:10.4g}, {hi:10.4g}] {unit:<5} {truth.get(key, float('nan')):10.4g}")
    at = q.thresholds_at_potentials(model)
    tab = q.hdi_table(at["threshold_mean_excitons"])
    ne = q.hdi_table(at["mean_electrons"])
    true_thr = truth.get("film_threshold_t0_mean_excitons", {})
    print("\nGain threshold <N_gain> (excitons/QD, t = 0) at the film TA potentials")
    print("  potential   <n_e>    median   94 % HDI             truth")
    for i, V in enumerate(tab["potential"].values):
        tt = true_thr.get(f"{V:.3f}V", float("nan"))
        print(f"  {V:7.3f} V  {float(ne['median'][i]):5.2f}   {float(tab['median'][i]):6.3f}   "
              f"[{float(tab['hdi_low'][i]):6.3f}, {float(tab['hdi_high'][i]):6.3f}]   {tt:6.3f}")
    verdict = "OK" if model.convergence.ok else "NOT CONVERGED -- do not use these numbers (run more draws)"
    print(f"\nConvergence: {verdict}")
    print(f"Wrote {out}/report.md, summary.csv, thresholds.csv, classic.csv, posterior.nc and the figures "
          f"({SYNTHETIC_NOTE})")
    return model.convergence.ok
