"""Posterior quantities: what the paper derives from point estimates, here as distributions over draws.

Every function takes a fitted :class:`~bayesgain.model.core.GainModel` (or one reopened with
``GainModel.load``) and returns xarray objects with a ``sample`` dim (chain x draw stacked, thinned
where a quantity is expensive) so that :func:`hdi_table` gives the median and 94 % HDI.

* :func:`threshold_curve` -- <N_gain> (excitons/QD, t = 0, transition counting) versus <n_e>
  from 0 to g_e: per draw, the fractions are tabulated on a potential grid around V_1S and
  interpolated at the doping levels (<n_e>(V) is monotone), and the threshold is the root of
  A_ens(<N>) = sum_n f_n a_n(<N>) with a_n tabulated once on a fine <N> grid from the PyTensor
  physics (vectorised bisection on the grid, then linear interpolation: error < 1e-4 excitons/QD).
* :func:`thresholds_at_potentials` -- the same at every measured film TA potential.
* :func:`mean_electrons_band` -- <n_e>(V) per draw.
* :func:`gain_lifetime_curves` -- gain lifetime (ps) versus <N> at several doping levels, from the
  Auger cascade with each draw's rates (first delay at which A_ens(t) >= 0).
* :func:`effective_temperature` -- T_eff equivalent of sigma_1S (variance matching).
* :func:`gain_coefficient` -- window gain coefficient g = -A* ln10 / d at each film TA file and
  delay with the thickness drawn from its stated uncertainty.
* :func:`single_wavelength_thresholds` -- per wavelength and potential, the <N> at which A*(lambda)
  reaches 0 and g >= 50 cm^-1, from per-draw saturation fits with the draws' <N> of every file; the
  lowest such fluence in photons/cm^2 and nJ/cm^2.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import xarray as xr

from .. import physics as ph
from ..physics.charging import MODEL_QUADRATURE_HALF_WIDTH
from ..physics.constants import BOLTZMANN_EV_PER_K, LN10
from ..physics.api import ensemble_table
from ..physics.api import threshold_on_table as _solve_on_table
from .components.charging_laws import law_for

__all__ = ["threshold_curve", "thresholds_at_potentials", "mean_electrons_band", "gain_lifetime_curves",
           "effective_temperature", "gain_coefficient", "single_wavelength_thresholds", "hdi_table",
           "posterior_samples", "ensemble_table"]


def posterior_samples(model, names, experiment=0, max_samples=None, seed=0):
    """Flat (sample,) arrays of the named posterior variables for one experiment, optionally thinned."""
    post = model.idata["posterior"]
    out = {}
    n = post.sizes["chain"] * post.sizes["draw"]
    take = np.arange(n)
    if max_samples is not None and n > max_samples:
        take = np.sort(np.random.default_rng(seed).choice(n, max_samples, replace=False))
    for name in names:
        if name not in post:
            out[name] = None
            continue
        da = post[name]
        if "experiment" in da.dims:
            da = da.isel(experiment=experiment)
        v = np.asarray(da.values)
        out[name] = v.reshape((n,) + v.shape[2:])[take]
    return out, take


def _charging_draws(s, T):
    """(V_C, sigma_1S, T_eff) draws from ``posterior_samples`` output; sigma 0 and T_eff = T where a variant lacks them."""
    n = s["V_C_V"].size
    sigma = s["sigma_1S_V"] if s.get("sigma_1S_V") is not None else np.zeros(n)
    T_eff = s["T_eff_K"] if s.get("T_eff_K") is not None else np.full(n, T)
    return s["V_C_V"], sigma, T_eff


def _constants(model, experiment=0):
    d = model.data
    return (int(d["experiment_g_e"].values[experiment]), int(d["experiment_g_h"].values[experiment]),
            float(d["experiment_temperature_K"].values[experiment]))


def _fractions_relative(model, x_V, V_C, sigma, T_eff, g_e, T, chunk=256):
    """Fractions at V = V_1S + x for every draw under the model's charging law: (sample, grid, S); V_1S drops
    out.  Chunked over draws.  ``x_V`` is (G,) shared or (D, G) per draw."""
    from ..physics.charging import disorder_nodes

    law = law_for(model.spec)
    V_C, sigma, T_eff = (np.asarray(v, float) for v in (V_C, sigma, T_eff))
    # 1e-6 in the fractions: far inside the 1e-4 excitons/QD the threshold curve is tested to
    nodes = (disorder_nodes(float(np.max(sigma)), T, tol=1e-6, minimum=24, half_width=MODEL_QUADRATURE_HALF_WIDTH)
             if law.uses_quadrature else 0)
    x = np.broadcast_to(np.asarray(x_V, float), (V_C.size, np.shape(x_V)[-1]))
    out = []
    for i in range(0, V_C.size, chunk):
        k = slice(i, i + chunk)
        p = {"V_1S_V": np.zeros((x[k].shape[0], 1)), "V_C_V": V_C[k, None], "sigma_1S_V": sigma[k, None],
             "T_eff_K": T_eff[k, None]}
        out.append(law.numpy_fractions(x[k], p, float(T), g_e, n_nodes=nodes))
    return np.concatenate(out)


def _fractions_at_mean_electrons(model, targets, V_C, sigma, T_eff, g_e, T, n_grid=None):
    """Fractions (D, K, S) at doping levels ``targets`` (K,), per draw, by cubic-spline inversion of <n_e>(V).

    <n_e>(V_1S + x) is tabulated at x = u w_d on a shared grid u in [-1, 1] with a per-draw half-width
    w_d = 6.5 sigma_d + 2 V_C,d + 30 kT_d, fitted with cubic splines in u (all draws at once),
    inverted by Newton steps on the splines, and the fractions are read from their splines at the
    roots (error < 1e-4 excitons/QD in the threshold, tested against direct bisection).
    """
    from scipy.interpolate import CubicSpline

    targets = np.asarray(targets, float)
    law = law_for(model.spec)
    f = law.fractions_at_mean_electrons(targets, g_e)
    if f is not None:  # a law whose fractions are a function of <n_e> alone: the same for every draw
        return np.broadcast_to(f, (np.size(V_C),) + f.shape).copy()
    sigma = np.asarray(sigma, float)
    V_C = np.asarray(V_C, float)
    w = 6.5 * sigma + 2.0 * np.abs(V_C) + 30 * BOLTZMANN_EV_PER_K * np.asarray(T_eff, float)
    # without disorder the step is only ~kT wide: a finer (and, with no quadrature, cheap) grid
    n_grid = n_grid or (81 if law.uses_quadrature else 321)
    x = np.linspace(-1.0, 1.0, n_grid)  # u
    f = _fractions_relative(model, x[None, :] * w[:, None], V_C, sigma, T_eff, g_e, T)  # (D, G, S)
    D, G, S = f.shape
    ne = f @ np.arange(S, dtype=float)  # (D, G), decreasing in u
    spl_ne = CubicSpline(x, ne.T)  # columns = draws
    c = spl_ne.c  # (4, G - 1, D)
    # start: linear interpolation on the grid cell where ne (decreasing in u) crosses each target, all draws
    # at once (np.interp row by row cost ~0.3 s of the 4000-draw curve)
    above = (ne[:, :, None] > targets[None, None, :]).sum(axis=1)  # grid points before the crossing (ne decreasing)
    j = np.clip(above, 1, G - 1)
    cols = np.arange(D)[:, None]
    n0, n1 = ne[cols, j - 1], ne[cols, j]
    frac = np.clip(np.where(n0 != n1, (n0 - targets[None, :]) / np.where(n0 != n1, n0 - n1, 1.0), 0.0), 0.0, 1.0)
    xq = x[j - 1] + frac * (x[j] - x[j - 1])
    for _ in range(4):  # Newton on the spline
        i = np.clip(np.searchsorted(x, xq) - 1, 0, G - 2)
        h = xq - x[i]
        val = ((c[0, i, cols] * h + c[1, i, cols]) * h + c[2, i, cols]) * h + c[3, i, cols]
        der = (3 * c[0, i, cols] * h + 2 * c[1, i, cols]) * h + c[2, i, cols]
        step = np.where(der < 0, (val - targets[None, :]) / np.where(der < 0, der, -1.0), 0.0)
        xq = np.clip(xq - step, x[0], x[-1])
    spl_f = CubicSpline(x, f.transpose(1, 0, 2).reshape(G, D * S))
    i = np.clip(np.searchsorted(x, xq) - 1, 0, G - 2)
    h = (xq - x[i])[..., None]
    cf = spl_f.c.reshape(4, G - 1, D, S)
    out = ((cf[0, i, cols] * h + cf[1, i, cols]) * h + cf[2, i, cols]) * h + cf[3, i, cols]  # (D, K, S)
    out = np.clip(out, 0.0, 1.0)
    out /= out.sum(axis=-1, keepdims=True)
    eye = np.eye(S)
    out[:, targets <= 0] = eye[0]
    out[:, targets >= g_e] = eye[g_e]
    return out


def threshold_curve(model, n_e=None, experiment=0):
    """<N_gain> (excitons/QD) versus <n_e> (default 101 levels from 0 to g_e) for every posterior draw.

    Fractions at each doping level from :func:`_fractions_at_mean_electrons` (spline inversion of
    <n_e>(V) per draw), thresholds from the tabulated ensemble absorption.  Returns a DataArray
    (sample, n_e).
    """
    g_e, g_h, T = _constants(model, experiment)
    n_e = np.linspace(0.0, g_e, 101) if n_e is None else np.asarray(n_e, float)
    s, _ = posterior_samples(model, ["V_C_V", "sigma_1S_V", "T_eff_K", *EMISSION_PARAMETERS], experiment)
    V_C, sigma, T_eff = _charging_draws(s, T)
    ft = _fractions_at_mean_electrons(model, n_e, V_C, sigma, T_eff, g_e, T)
    thr = _solve_on_table(ft, g_e, g_h, **_emission_terms(model, s))
    return xr.DataArray(thr, dims=("sample", "n_e"), coords={"n_e": n_e}, name="threshold_mean_excitons",
                        attrs={"units": "excitons/QD", "long_name": "<N_gain> at t = 0 versus doping <n_e>"})


def thresholds_at_potentials(model, experiment=0):
    """<N_gain> at every film TA potential of one experiment: DataArray (sample, potential)."""
    g_e, g_h, _ = _constants(model, experiment)
    d = model.data
    sel = np.nonzero(d["ta_potential_experiment"].values == experiment)[0]
    s, _ = posterior_samples(model, ["ta_charge_fractions", *EMISSION_PARAMETERS], experiment)
    f = s["ta_charge_fractions"][:, sel]
    thr = _solve_on_table(f, g_e, g_h, **_emission_terms(model, s))
    ne = f @ np.arange(g_e + 1.0)
    V = d["ta_potential_V"].values[sel]
    return xr.Dataset({
        "threshold_mean_excitons": (("sample", "potential"), thr, {"units": "excitons/QD"}),
        "mean_electrons": (("sample", "potential"), ne, {"units": "electrons/QD"}),
    }, coords={"potential": V})


def mean_electrons_band(model, potential_V=None, experiment=0, max_samples=1000):
    """<n_e>(V) per draw on a potential grid (default: the SEC range): DataArray (sample, potential)."""
    g_e, _, T = _constants(model, experiment)
    d = model.data
    if potential_V is None:
        V = d["sec_point_potential"].values if "sec_point_potential" in d else d["ta_potential_V"].values
        potential_V = np.linspace(V.min(), V.max(), 131)
    s, _ = posterior_samples(model, ["V_1S_V", "V_C_V", "sigma_1S_V", "T_eff_K"], experiment, max_samples)
    per_draw = {k: v[:, None] for k, v in s.items() if v is not None}
    f = law_for(model.spec).numpy_fractions(np.asarray(potential_V)[None, :], per_draw, T, g_e)
    return xr.DataArray(f @ np.arange(g_e + 1.0), dims=("sample", "potential"), coords={"potential": potential_V},
                        name="mean_electrons", attrs={"units": "electrons/QD"})


def effective_temperature(model, experiment=0):
    """T_eff (K) equivalent to each draw's sigma_1S (variance matching; see physics.charging)."""
    _, _, T = _constants(model, experiment)
    s, _ = posterior_samples(model, ["sigma_1S_V", "T_eff_K"], experiment)
    if s["T_eff_K"] is not None:
        v = s["T_eff_K"]
    elif s["sigma_1S_V"] is not None:
        v = ph.effective_temperature_K(s["sigma_1S_V"], T)
    else:
        return None
    return xr.DataArray(v, dims=("sample",), name="T_eff_K", attrs={"units": "K"})


# the parameters beside the charge fractions that move the threshold (see :func:`_emission_terms`)
EMISSION_PARAMETERS = ("hole_trap_fraction", "charged_exciton_emission")


def _emission_terms(model, s):
    """Keyword arguments of the threshold solver for the draws ``s``: the hole-trap fraction and the charged QDs'
    extra emission (each (sample, 1), or None where the model has none) and the trapping form."""
    col = lambda name: None if s.get(name) is None else np.asarray(s[name])[:, None]  # noqa: E731
    return dict(eta=col("hole_trap_fraction"), charged_emission=col("charged_exciton_emission"),
                hole_trapping=_trap_form(model))


def _trap_form(model):
    """The model's hole-trapping form: "counting" or "emission" (spec option ``hole_trapping_form``)."""
    return model.spec.options["hole_trapping_form"]


# the per-draw scalars of :func:`_cascade_draw_fn`, in its argument order (see :func:`cascade_arguments`)
CASCADE_PARAMETERS = ("tau_xx_ps", "tau_x_ps", "trion_rate_factor", "triexciton_rate_factor", "hole_trap_fraction",
                      "charged_exciton_emission")


def cascade_arguments(s, i):
    """(k_xx, k_x, trion, triexciton, eta, c) of draw ``i`` from posterior samples ``s`` of CASCADE_PARAMETERS; a
    parameter the model does not have takes its no-effect value (no single-exciton decay, the scaling laws, no
    trapping, transition counting's emission)."""
    one = lambda name, default: default if s.get(name) is None else float(np.asarray(s[name])[i])  # noqa: E731
    return (1.0 / one("tau_xx_ps", np.nan), 1.0 / one("tau_x_ps", np.inf), one("trion_rate_factor", 1.0),
            one("triexciton_rate_factor", 1.0), one("hole_trap_fraction", 0.0), one("charged_exciton_emission", 0.0))


@functools.lru_cache(maxsize=8)
def _cascade_draw_fn(g_e, g_h, n_max, occupancy=False, hole_trapping="emission"):
    """Compiled A_ens(t) with per-call rates: (k_xx, k_x, trion, triexciton, eta, c, mean (B,), f (B, S), t (T,)),
    the scalars as :func:`cascade_arguments` gives them (c: the charged QDs' extra emission, 0 = counting).

    ``occupancy``: also the 1S(e) occupancy <min(N + n, g_e)>/g_e of the same populations, (B, 2, T).
    ``hole_trapping``: "emission" (A + eta x emission) or "counting" (a fraction eta of the QDs in trapped-hole
    chains, as ``GainModel.build``)."""
    import pytensor
    import pytensor.tensor as pt

    from ..physics import auger, transitions

    kxx, kx, tr, tri, eta, ch = (pt.dscalar(n) for n in ("kxx", "kx", "tr", "tri", "eta", "ch"))
    mean, f, t = pt.dvector("mean"), pt.dmatrix("f"), pt.dvector("t")
    rates = auger.free_auger_rates(auger.rate_table(n_max, g_e, kxx, kx), n_max, g_e, kx, tr, tri)
    counting = hole_trapping == "counting"
    table = transitions.effective_table(transitions.transition_table(n_max, g_e, g_h),
                                        transitions.emission_table(n_max, g_e, g_h), None if counting else eta,
                                        transitions.charged_exciton_table(n_max, g_e, g_h), ch)
    trapped = transitions.trapped_hole_transition_table(n_max, g_e, g_h)
    if occupancy:
        occ = pt.as_tensor_variable(transitions.occupancy_table(n_max, g_e))
        table, trapped = pt.stack([table, occ]), pt.stack([trapped, occ])
    fc = f
    if counting:
        fc, rates, table = auger.hole_trap_chains(f, eta, rates, auger.trapped_hole_rate_table(n_max, g_e, kxx, kx),
                                                  table, trapped)
    out = auger.cascade_absorption(mean, fc, t, rates, table, max(g_e, g_h + int(counting)))
    return pytensor.function([kxx, kx, tr, tri, eta, ch, mean, f, t], out, mode=ph.api.numpy_mode())


def gain_lifetime_curves(model, n_e_levels=(0.0, 0.5, 1.0, 1.5, 1.9), mean_excitons=None, experiment=0,
                         max_samples=200, max_delay_ps=1e5, seed=0):
    """Gain lifetime (ps) versus <N> at doping levels ``n_e_levels``: DataArray (sample, n_e, mean_excitons).

    0 where there is no gain at t = 0; inf where A_ens is still negative at ``max_delay_ps``.  The
    crossing is located on a log delay grid (256 points) and refined by linear interpolation.
    Draws are thinned to ``max_samples`` (the cascade is evaluated per draw).
    """
    g_e, g_h, _ = _constants(model, experiment)
    levels = np.asarray(n_e_levels, float)
    Nm = np.linspace(0.5, 8.0, 31) if mean_excitons is None else np.asarray(mean_excitons, float)
    s, take = posterior_samples(model, list(CASCADE_PARAMETERS), experiment, max_samples, seed)
    f_levels = _fractions_at_levels(model, levels, experiment, take)  # (ns, L, S)
    n_max = ph.poisson.required_n_max(Nm.max())
    fn = _cascade_draw_fn(g_e, g_h, max(n_max, g_e, g_h + 1), hole_trapping=_trap_form(model))
    t = np.concatenate([[0.0], np.geomspace(1e-2, max_delay_ps, 256)])
    ns = take.size
    out = np.empty((ns, levels.size, Nm.size))
    mean_b = np.tile(Nm, levels.size)
    for i in range(ns):
        f_b = np.repeat(f_levels[i], Nm.size, axis=0)
        A = fn(*cascade_arguments(s, i), mean_b, f_b, t)  # (B, T)
        out[i] = _first_crossing(t, A).reshape(levels.size, Nm.size)
    return xr.DataArray(out, dims=("sample", "n_e", "mean_excitons"), coords={"n_e": levels, "mean_excitons": Nm},
                        name="gain_lifetime_ps", attrs={"units": "ps"})


def _first_crossing(t, A):
    ok = A >= 0
    out = np.full(A.shape[0], np.inf)
    out[ok[:, 0]] = 0.0
    todo = ~ok[:, 0] & ok.any(axis=1)
    j = np.argmax(ok[todo], axis=1)
    a0, a1 = A[todo, j - 1], A[todo, j]
    t0, t1 = t[j - 1], t[j]
    # interpolate in log time (the cascade is close to exponential on that grid)
    lt0, lt1 = np.log(np.maximum(t0, 1e-3)), np.log(t1)
    out[todo] = np.exp(lt0 + (0 - a0) / (a1 - a0) * (lt1 - lt0))
    return out


def _fractions_at_levels(model, levels, experiment, take):
    g_e, _, T = _constants(model, experiment)
    s, _ = posterior_samples(model, ["V_C_V", "sigma_1S_V", "T_eff_K"], experiment)
    V_C, sig, Te = _charging_draws(s, T)
    return _fractions_at_mean_electrons(model, levels, V_C[take], sig[take], Te[take], g_e, T)


def gain_coefficient(model, experiment=0, seed=0):
    """Window gain coefficient g = -A* ln10 / d (cm^-1) per film TA point, thickness d ~ Normal(d, sd).

    Returns a Dataset with ``gain_per_cm`` (sample, point) for the experiment's points (``point`` is
    the index into ``ta_point``), the drawn ``thickness_nm`` and the posterior ``mean_excitons`` of
    each point's file (sample, point).
    """
    d = model.data
    sel = np.nonzero(d["ta_point_experiment"].values == experiment)[0]
    s, take = posterior_samples(model, ["ta_mean_excitons"], experiment)
    ns = take.size
    th = float(d["experiment_film_thickness_nm"].values[experiment])
    sd = float(d["experiment_film_thickness_sd_nm"].values[experiment])
    rng = np.random.default_rng(seed)
    thick = np.clip(th + sd * rng.standard_normal(ns), 0.2 * th, None)
    A = d["ta_A"].values[sel]
    g = -A[None, :] * LN10 / (thick[:, None] * 1e-7)
    N = s["ta_mean_excitons"][:, model.file_index[sel]]
    return xr.Dataset({"gain_per_cm": (("sample", "point"), g, {"units": "1/cm"}),
                       "thickness_nm": (("sample",), thick, {"units": "nm"}),
                       "mean_excitons": (("sample", "point"), N, {"units": "excitons/QD"})},
                      coords={"point": sel})


def hdi_table(da, dim="sample", prob=0.94):
    """Median and HDI along ``dim`` of a DataArray: a Dataset with ``median``, ``hdi_low``, ``hdi_high``.

    Infinite values (no threshold reachable) are kept out of the HDI and counted in ``fraction_inf``.
    """
    x = np.moveaxis(np.asarray(da.values, float), da.get_axis_num(dim), -1)
    shape = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    med = np.full(flat.shape[0], np.nan)
    lo = np.full(flat.shape[0], np.nan)
    hi = np.full(flat.shape[0], np.nan)
    finf = np.mean(~np.isfinite(flat), axis=1)
    for i, row in enumerate(flat):
        r = np.sort(row[np.isfinite(row)])
        if r.size == 0:
            continue
        med[i] = np.median(r)
        n = r.size
        k = max(1, int(np.floor(prob * n)))
        if k >= n:
            lo[i], hi[i] = r[0], r[-1]
            continue
        widths = r[k:] - r[: n - k]
        j = int(np.argmin(widths))
        lo[i], hi[i] = r[j], r[j + k]
    dims = [dd for dd in da.dims if dd != dim]
    coords = {k: v for k, v in da.coords.items() if dim not in v.dims}
    mk = lambda v: xr.DataArray(v.reshape(shape), dims=dims, coords=coords)  # noqa: E731
    return xr.Dataset({"median": mk(med), "hdi_low": mk(lo), "hdi_high": mk(hi), "fraction_inf": mk(finf)},
                      attrs={"hdi_prob": prob, **da.attrs})


def single_wavelength_thresholds(model, experiment=0, g_min_per_cm=50.0, max_samples=100, seed=0,
                                 min_significance=3.0):
    """Single-wavelength thresholds (paper Fig. 5d-f) with the posterior <N> of every film TA file.

    For each draw (thinned to ``max_samples``), potential and wavelength, A*(lambda) averaged over the
    gain delays is fitted versus that draw's <N> of the files with A* = A_pre - a (1 - exp(-b <N>))
    (the heuristic of SI Fig. S26, vectorised: ``bayesgain.fitting.fit_saturation_many``), and solved for
    A* = 0 (transparency) and for g = -A* ln10 / d >= ``g_min_per_cm`` (d drawn from its stated
    uncertainty).  Wavelengths whose neutral absorbance A_0 is below ``min_significance`` x the
    spread of the fit residuals are masked (NaN): there is no band-edge absorption to invert.
    Returns a Dataset (sample, potential, wavelength) with ``transparency_mean_excitons`` and
    ``gain_mean_excitons`` (inf where never reached), plus per (sample, potential) the lowest
    g >= g_min threshold in excitons/QD, photons/cm^2 and nJ/cm^2 and its wavelength.
    """
    from ..fitting import fit_saturation_many, saturation_curve

    d = model.data
    if "spectrum_A_star" not in d:
        raise ValueError("single-wavelength thresholds need the gain component (its spectra are stored with it)")
    pots = np.nonzero(d["ta_potential_experiment"].values == experiment)[0]
    lam_all = d["spectrum_wavelength_nm"].values[experiment]
    keep = np.isfinite(lam_all)
    lam = lam_all[keep]
    # the files at each potential of this experiment (a grid with holes has fewer at some)
    at = [np.nonzero(model.layout.file_potential == q)[0] for q in pots]
    spec = d["spectrum_A_star"].values[:, keep]  # (files, L)
    pre = d["spectrum_A_pre"].values[pots][:, keep]  # (P, L)
    A0 = d["spectrum_A0"].values[experiment][keep]
    s, take = posterior_samples(model, ["ta_mean_excitons", "film_cross_section_cm2"], experiment, max_samples, seed)
    N = s["ta_mean_excitons"]
    th = float(d["experiment_film_thickness_nm"].values[experiment])
    sd = float(d["experiment_film_thickness_sd_nm"].values[experiment])
    thick = np.clip(th + sd * np.random.default_rng(seed).standard_normal(take.size), 0.2 * th, None)
    ns, P, L = take.size, pots.size, lam.size
    transp = np.full((ns, P, L), np.nan)
    gain = np.full((ns, P, L), np.nan)
    for i in range(ns):
        for p in range(P):
            bleach = (pre[p][:, None] - spec[at[p]].T)  # (L, F): A_pre - A*, grows with <N>
            popt, _, msg = fit_saturation_many(N[i, at[p]], bleach)
            a, b = popt[:, 0], popt[:, 1]
            resid = bleach - saturation_curve(N[i, at[p]][None, :], a[:, None], b[:, None])
            with warnings.catch_warnings():  # wavelengths without any finite point stay NaN (not usable)
                warnings.simplefilter("ignore", RuntimeWarning)
                noise = np.sqrt(np.nanmean(resid**2, axis=1))
            usable = (msg == "") & (A0 > min_significance * noise) & (b > 0)
            for level, out in ((0.0, transp), (-g_min_per_cm * thick[i] * 1e-7 / LN10, gain)):
                need = pre[p] - level  # bleach needed to bring A* down to the level
                with np.errstate(divide="ignore", invalid="ignore"):
                    val = np.where(need <= 0, 0.0, np.where(a > need, -np.log1p(-need / a) / b, np.inf))
                out[i, p] = np.where(usable, val, np.nan)
    sigma = s["film_cross_section_cm2"][:, None]
    best = np.where(np.isfinite(gain), gain, np.inf)
    j = np.argmin(np.where(np.isnan(best), np.inf, best), axis=-1)  # (ns, P)
    lowest = np.take_along_axis(best, j[..., None], axis=-1)[..., 0]
    fluence = lowest / sigma
    pump = float(d["experiment_pump_wavelength_nm"].values[experiment])
    energy = ph.fluence_to_energy_density_nJ_cm2(np.where(np.isfinite(fluence), fluence, 0.0), pump)
    energy = np.where(np.isfinite(fluence), energy, np.inf)
    V = d["ta_potential_V"].values[pots]
    return xr.Dataset({
        "transparency_mean_excitons": (("sample", "potential", "wavelength"), transp, {"units": "excitons/QD"}),
        "gain_mean_excitons": (("sample", "potential", "wavelength"), gain,
                               {"units": "excitons/QD", "g_min_per_cm": g_min_per_cm}),
        "lowest_gain_mean_excitons": (("sample", "potential"), lowest, {"units": "excitons/QD"}),
        "lowest_gain_fluence_photons_cm2": (("sample", "potential"), fluence, {"units": "photons/cm^2"}),
        "lowest_gain_energy_nJ_cm2": (("sample", "potential"), energy, {"units": "nJ/cm^2"}),
        "lowest_gain_wavelength_nm": (("sample", "potential"), lam[j], {"units": "nm"}),
    }, coords={"potential": V, "wavelength": lam}, attrs={"g_min_per_cm": g_min_per_cm})
