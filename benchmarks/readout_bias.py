"""Where the measured-minus-predicted threshold of a fit comes from: the read-out prediction built up term by term.

``thresholds_measured.csv`` compares the threshold read off the data at the gain delay (a free absorption
ladder, no transition counting) with transition counting's prediction of the same read-out in its own scale
(A_0 / g_e g_h per unit of A*).  On data that follow transition counting the difference is not zero: the
5 ps window read-out also holds what the fit's window terms describe.  This script recomputes, on the same
posterior draws, the prediction with each window term of the fitted film TA mean added in turn:

    t0          transition counting at t = 0 (the paper's red line)
    readout     + the Auger cascade to the read-out delay (what thresholds_measured.csv reports)
    gamma       + the fitted bleach scale gamma_OD instead of A_0 / g_e g_h (the part of the window
                  absorbance the pump does not bleach: 2S/shell wings)
    window      + the shift loss and the occupancy bleach (``optics.window_absorption_change``)
    tail        + the window-tail bleach at the read-out delay (``optics.window_tail_bleach``)

and prints the median and 94 % HDI of measured - prediction per potential.  Each row's difference from the
one above is what that term explains.  The terms after ``readout`` are fitted on all potentials at once and can
absorb a real departure from transition counting, which is why the report compares with ``readout``.

    .venv/bin/python benchmarks/readout_bias.py FIT_FOLDER/posterior.nc [--experiment 0] [--draws 400]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("posterior")
    ap.add_argument("--experiment", type=int, default=0)
    ap.add_argument("--draws", type=int, default=400)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")

    from bayesgain.model.core import GainModel
    from bayesgain.model.measured_thresholds import _first_zero, compare, gain_delay_points, measured_thresholds
    from bayesgain.model.quantities import CASCADE_PARAMETERS, _cascade_draw_fn, _trap_form, cascade_arguments, \
        posterior_samples
    from bayesgain.physics import optics
    from bayesgain.physics.api import band_edge_absorption

    m = GainModel.load(args.posterior)
    k = args.experiment
    ds = measured_thresholds(m, k, max_samples=args.draws)
    d = m.data
    sel = np.nonzero(d["ta_potential_experiment"].values == k)[0]
    names = [*CASCADE_PARAMETERS, "ta_charge_fractions", "gamma_OD", "window_shift_loss", "window_occupancy_bleach_OD",
             "window_tail_amplitude_rel", "window_tail_time_ps", "ta_mean_excitons"]
    s, take = posterior_samples(m, names, k, args.draws, 0)
    D = take.size
    one = lambda name, default: s[name] if s[name] is not None else np.full(D, default)  # noqa: E731
    g_e, g_h = int(d["experiment_g_e"].values[k]), int(d["experiment_g_h"].values[k])
    gg = g_e * g_h
    A0 = float(d["experiment_film_A0_1S_OD"].values[k])
    a_pre = d["ta_potential_A_pre_OD"].values[sel]
    points, files, _, how = gain_delay_points(m, k)
    delay = float(d["ta_point_delay"].values[points[0]])
    t_ref = float(d["ta_point_delay"].values[d["ta_point_experiment"].values == k].min())
    f = s["ta_charge_fractions"][:, sel]
    P, S = f.shape[1:]
    A_tc0 = f @ band_edge_absorption(np.zeros(S), np.arange(S), g_e, g_h)
    occ0 = f @ (np.minimum(np.arange(S), g_e) / g_e)
    fn = _cascade_draw_fn(g_e, g_h, max(int(m.n_max_film or m.n_max), g_h + 1), occupancy=True,
                          hole_trapping=_trap_form(m))
    upper = s["ta_mean_excitons"][:, files].max(axis=1)
    u = np.linspace(0.0, 1.0, 241)
    gamma, kappa, beta = s["gamma_OD"], one("window_shift_loss", 0.0), one("window_occupancy_bleach_OD", 0.0)
    amp, tau = one("window_tail_amplitude_rel", 0.0), one("window_tail_time_ps", 1.0)
    rows = {name: np.full((D, P), np.inf) for name in ("gamma", "window", "tail")}
    for i in range(D):
        N = upper[i] * u
        out = fn(*cascade_arguments(s, i), np.tile(N, P), np.repeat(f[i], N.size, axis=0), np.array([delay]))[..., 0]
        A, occ = out[:, 0].reshape(P, -1), out[:, 1].reshape(P, -1)
        pre, opre = A_tc0[i][:, None], occ0[i][:, None]
        plain = optics.window_absorption_change(A, occ, pre, opre, gamma[i], 0.0, 0.0, g_e, g_h)
        window = optics.window_absorption_change(A, occ, pre, opre, gamma[i], kappa[i], beta[i], g_e, g_h)
        tail = optics.window_tail_bleach(N[None, :], delay, t_ref, A0 * amp[i], tau[i])
        for name, dA in (("gamma", plain), ("window", window), ("tail", window - tail)):
            rows[name][i] = _first_zero(N, a_pre[:, None] + dA)
    meas = ds["measured"].values
    preds = {"t0": ds["predicted_t0"].values, "readout": ds["predicted"].values, **rows}
    ne = np.median(ds["mean_electrons"].values, axis=0)
    print(f"{args.posterior}: experiment {k}, read-out {how}, {D} draws; measured - prediction, median [94 % HDI]")
    print(f"gamma_OD / (A_0 / g_e g_h) = {np.median(gamma) / (A0 / gg):.4f}; shift loss {np.median(kappa):.3f}; "
          f"occupancy bleach {np.median(beta) / A0:+.4f} A_0; tail {np.median(amp):.4f} A_0 at {t_ref:g} ps, "
          f"tau {np.median(tau):.3g} ps")
    print("| prediction | " + " | ".join(f"<n_e> {x:.2f}" for x in ne) + " |")
    print("|---|" + "---|" * P)
    for name, pred in preds.items():
        cells = [f"{r['difference_median']:+.3f} [{r['difference_hdi_low']:+.3f}, {r['difference_hdi_high']:+.3f}]"
                 for r in compare(meas, pred)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
