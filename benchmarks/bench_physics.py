"""Cost of one log-density + gradient evaluation of the physics on a realistic grid (prints figures).

Grid: 9 fluences x 3 charge states (6 potentials) x 120 delays, window-averaged band-edge signal.
Targets (issue "physics core"): under 1 ms each on one core.  Run:
    .venv/bin/python benchmarks/bench_physics.py
"""

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pymc as pm  # noqa: E402
import pytensor  # noqa: E402

from bayesgain import physics as ph  # noqa: E402
from bayesgain.physics import auger, charging, ensemble, poisson, transitions  # noqa: E402


def synthetic_grid(seed=0):
    rng = np.random.default_rng(seed)
    fluence = np.geomspace(1e13, 2e14, 9)  # photons/cm^2
    potential = np.array([-0.3, -1.17, -1.24, -1.33, -1.45, -1.56])  # V
    delays = np.concatenate([np.linspace(0.5, 10, 20), np.geomspace(11, 3000, 100)])
    f = ph.charge_fractions(potential, -1.25, 0.005, 0.11)
    mean = 3.6e-14 * fluence
    A = 0.004 / 8 * ph.cascade_absorption(mean[None, :], f[:, None, :], delays, 1 / 310, 1 / 20000)
    return fluence, potential, delays, A + rng.normal(0, 2e-5, A.shape)


def cascade_model(fluence, potential, delays, data):
    n_max = poisson.required_n_max(3.6e-14 * 1.5 * fluence.max())
    with pm.Model() as model:
        sigma = pm.LogNormal("sigma_1e14", np.log(0.36), 0.2)
        tau_xx = pm.LogNormal("tau_xx_ps", np.log(300), 0.3)
        V_1S = pm.Normal("V_1S", -1.2, 0.1)
        s1 = pm.HalfNormal("sigma_1S", 0.2)
        gamma = pm.LogNormal("gamma_OD", np.log(0.0005), 0.3)
        noise = pm.HalfNormal("noise", 1e-4)
        f = charging.charge_fractions_disordered(potential, V_1S, 0.005, s1, 293.0, 2, 64)
        rates = auger.rate_table(n_max, 2, 1 / tau_xx, 1 / 20000)
        table = transitions.transition_table(n_max, 2, 4)
        mean = sigma * 1e-14 * fluence
        mu = gamma * auger.cascade_absorption(mean[None, :], f[:, None, :], delays, rates, table, n_saturated=4)
        pm.Normal("obs", mu, noise, observed=data)
    return model


def threshold_model(fluence, potential, data5ps):
    n_max = poisson.required_n_max(3.6e-14 * 1.5 * fluence.max())
    with pm.Model() as model:
        sigma = pm.LogNormal("sigma_1e14", np.log(0.36), 0.2)
        V_1S = pm.Normal("V_1S", -1.2, 0.1)
        s1 = pm.HalfNormal("sigma_1S", 0.2)
        gamma = pm.LogNormal("gamma_OD", np.log(0.0005), 0.3)
        noise = pm.HalfNormal("noise", 1e-4)
        f = charging.charge_fractions_disordered(potential, V_1S, 0.005, s1, 293.0, 2, 64)
        table = transitions.transition_table(n_max, 2, 4)
        mu = gamma * ensemble.ensemble_absorption((sigma * 1e-14 * fluence)[None, :], f[:, None, :], table)
        pm.Normal("obs", mu, noise, observed=data5ps)
        pm.Deterministic("threshold", ensemble.solve_threshold(f, transitions.transition_table(40, 2, 4), upper=12.0))
    return model


def time_logp_dlogp(model, mode, repeats=300):
    logp, dlogp = model.logp(), model.dlogp()
    inputs = model.value_vars
    fn = pytensor.function(inputs, [logp, dlogp], mode=mode)
    point = model.initial_point()
    args = [point[v.name] for v in inputs]
    fn(*args)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn(*args)
    return (time.perf_counter() - t0) / repeats


def main():
    fluence, potential, delays, data = synthetic_grid()
    print(f"grid: {fluence.size} fluences x {potential.size} potentials (3 charge states) x {delays.size} delays")
    for name, model in [("cascade A*(t)", cascade_model(fluence, potential, delays, data)),
                        ("ensemble at 5 ps + threshold", threshold_model(fluence, potential, data[:, :, 0]))]:
        for mode in ["NUMBA", "FAST_RUN"]:
            t0 = time.perf_counter()
            try:
                dt = time_logp_dlogp(model, mode)
            except Exception as exc:  # report, keep benchmarking the rest
                print(f"{name:<30} {mode:<8} failed: {exc}")
                continue
            total = time.perf_counter() - t0
            print(f"{name:<30} {mode:<8} logp+grad {dt * 1e3:7.3f} ms   (compile + runs {total:5.1f} s)")
    t0 = time.perf_counter()
    rng = np.random.default_rng(1)
    V1 = rng.normal(-1.25, 0.01, 4000)
    s1 = rng.normal(0.11, 0.005, 4000)
    ne = np.linspace(0.02, 1.98, 101)
    ph.threshold_versus_doping(ne[:, None], V1, 0.005, s1)
    print(f"threshold curve, 4000 draws x 101 doping levels: {time.perf_counter() - t0:6.2f} s (incl. compile)")


if __name__ == "__main__":
    main()
