"""From an experiment DataTree to the observations the Bayesian model sees (one flat Dataset).

Every observation is a window average over the 1S band edge (SI "Error calculations") with its
standard error.  Each component's observations lie along their own point dimension
(``sol_point``, ``sec_point``, ``ta_point``, ``subgap_point``) with the labels as coordinates
(potential, fluence, delay ...), so the log-likelihood of a component is one vector for PSIS-LOO
and several experiments concatenate along the same dimensions.

* solution (cross-section): Delta A at every delay in ``cross_section_delays_ps`` (1-3 ns) and every
  fluence, with the depth-averaged nominal fluence (SI after eq. S34).
* SEC (charging, PL): <n_e> = g_e (-Delta A_1S) / A_0,1S per sweep (cycle x direction kept apart)
  and potential; the normalised integrated PL.
* film TA (gain, dynamics): A* = A_0 + Delta A_SEC(V) + Delta A_TA after the eq. S33 reflection
  correction with the open-circuit Delta R, at the delays in ``gain_delays_ps`` (component "gain")
  and ``n_dynamics_delays`` log-spaced delays in ``dynamics_delays_ps`` ("dynamics"), plus the
  first-order sensitivity of the corrected Delta A to the Delta R scale, d(Delta A)/ds at s = 1
  (``ta_reflection_sensitivity``): a Delta R that is s times the open-circuit one changes the
  corrected value by (s - 1) times it.
* sub-gap (reflection): the corrected Delta A averaged over the sub-gap window (red of the 1S line
  by two HWHM) at ``subgap_delays_ps``, and its sensitivity, per potential and fluence.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import physics as ph
from .. import preprocess as pp
from ..io.chirp import CHIRP_MAP_KEYS, chirp_map_attrs
from ..physics.optics import reflection_scale_sensitivity

__all__ = ["reduce_experiment", "concat_experiments", "film_pump_absorbance"]


def _delay_indices(delays, lo, hi, n=None):
    d = np.asarray(delays, float)
    idx = np.nonzero((d >= lo) & (d <= hi))[0]
    if n is None or idx.size <= n:
        return idx
    targets = np.geomspace(d[idx].min(), d[idx].max(), n)
    pick = sorted({int(idx[np.argmin(np.abs(d[idx] - t))]) for t in targets})
    return np.asarray(pick, int)


def _file_delays(measured, delays, lo, hi, n=None):
    """(potential, fluence, delay) mask of the delays each film TA file contributes: :func:`_delay_indices`
    applied to the delays that file measured (files on different grids pick their own log-spaced delays;
    on one shared grid every file picks the same)."""
    out = np.zeros(measured.shape, bool)
    for p, f in np.ndindex(measured.shape[:2]):
        own = np.nonzero(measured[p, f])[0]
        out[p, f, own[_delay_indices(delays[own], lo, hi, n)]] = True
    return out


def _keep_points(block, keep, point_dim):
    """``block`` (from :func:`_flatten`) without the points where ``keep`` is False (not measured)."""
    if keep.all():
        return block
    return {k: (point_dim, v[1][keep]) for k, v in block.items()}


def _flatten(arrays, dims, point_dim, coords):
    """Stack arrays of shape ``dims`` into 1-D along ``point_dim``; ``coords``: dim -> values."""
    grids = np.meshgrid(*[np.arange(len(coords[d])) for d in dims], indexing="ij")
    out = {}
    for name, a in arrays.items():
        out[name] = (point_dim, np.asarray(a, float).reshape(-1))
    for d, g in zip(dims, grids):
        out[f"{point_dim}_{d}"] = (point_dim, np.asarray(coords[d])[g.reshape(-1)])
    return out


def _open_circuit_dR(tree, dA_raw):
    """Delta R at open circuit matched to the TA fluences and grid (potential-independent), or None."""
    try:
        tr = tree["film/tr"]["dR"]
    except KeyError:
        return None
    V_oc = float(tree["film"].attrs["open_circuit_potential_V"])
    iv = int(np.argmin(np.abs(tr["potential"].values - V_oc)))
    dR = tr.isel(potential=iv, drop=True)
    F_tr = dR["fluence"].values
    idx = [int(np.argmin(np.abs(F_tr - F))) for F in dA_raw["fluence"].values]
    dR = dR.isel(fluence=idx).assign_coords(fluence=dA_raw["fluence"].values)
    return dR.interp(wavelength=dA_raw["wavelength"].values, delay=dA_raw["delay"].values)


def _first_file(ta, mask, has_file):
    """ ' (first: FILE)' for the first film TA file (``has_file``: the cells measured) without any delay in ``mask``."""
    p, f = (int(x[0]) for x in np.nonzero(~mask.any(axis=2) & has_file))
    return f" (first: {str(ta['source_file'].values[p, f])})"


def film_pump_absorbance(tree, name="experiment"):
    """The film's absorbance (OD) at the pump wavelength: the manifest's ``film.pump_absorbance``, else
    -log10(1 - F_A) of the absorptance spectrum interpolated at ``pump_wavelength_nm``; a one-line ValueError
    saying what is missing when neither is there."""
    film = tree["film"]
    if film.attrs.get("pump_absorbance") is not None:
        return float(film.attrs["pump_absorbance"])
    lam_pump = tree.attrs.get("pump_wavelength_nm")
    FA = film["absorptance"] if "absorptance" in film.data_vars else None
    if lam_pump is not None and FA is not None:
        lam = FA["wavelength_spectrum"].values
        if lam.min() <= float(lam_pump) <= lam.max():
            return float(pp.film_absorbance(tree, [float(lam_pump)]).values[0])
    have = (f"its absorptance spectrum covers {FA['wavelength_spectrum'].values.min():g}..."
            f"{FA['wavelength_spectrum'].values.max():g} nm" if FA is not None else "it has no absorptance spectrum")
    raise ValueError(f"{name}: pump_attenuation = \"beer-lambert\" needs the film's absorbance at the pump wavelength "
                     f"{lam_pump} nm; expected film.pump_absorbance (OD) in experiment.toml or an absorptance spectrum "
                     f"covering the pump wavelength ({have})")


def reduce_experiment(tree, options, name="experiment", components=None):
    """Observations of one experiment for the model; ``options`` as in ``ModelSpec.options``.

    ``components`` (dict of switches) skips the reductions a model does not need.  Returns an
    ``xarray.Dataset`` whose attrs carry the sample constants (g_e, g_h, temperature, thickness) and
    the 1S window averages of A_0 used to scale the optical-density priors.
    """
    comp = components or {}
    want = lambda k: comp.get(k, True)  # noqa: E731
    attrs = {k: tree.attrs[k] for k in ("g_e", "g_h", "temperature_K", "film_thickness_nm") if k in tree.attrs}
    attrs.setdefault("g_e", 2)
    attrs.setdefault("g_h", 4)
    attrs.setdefault("temperature_K", 293.0)
    attrs["film_thickness_sd_nm"] = float(tree.attrs.get("film_thickness_sd_nm", 0.0))
    attrs["pump_wavelength_nm"] = float(tree.attrs.get("pump_wavelength_nm", 400.0))
    attrs["synthetic"] = int(bool(tree.attrs.get("synthetic", False)))
    attrs["experiment"] = name
    if "chirp" in tree.children:  # the chirp map travels with the fit, for the report's chirp.png
        attrs.update(chirp_map_attrs(tree["chirp"].to_dataset()))
    data = {}
    coords = {}
    if want("cross_section"):
        _reduce_solution(tree, options, name, data, coords, attrs)
    film_A0 = pp.film_absorbance(tree)
    if want("charging"):
        _reduce_sec(tree, name, want, data, coords)
    if want("gain") or want("dynamics") or want("reflection"):
        _reduce_film_ta(tree, options, name, want, film_A0, data, coords, attrs)
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    return ds


def _reduce_solution(tree, options, name, data, coords, attrs):
    """Solution TA window averages at the cross-section delays (``sol_point``), into ``data``/``coords``/``attrs``."""
    sol = tree["solution"]
    ta = sol["ta"]
    bw = pp.band_edge_window(sol["absorbance"], probe_wavelengths=ta["wavelength"].values)
    A0 = sol["absorbance"].rename(wavelength_spectrum="wavelength").interp(wavelength=ta["wavelength"].values)
    a0, _ = pp.window_average(A0.assign_attrs(units="OD"), bw)
    di = _delay_indices(ta["delay"].values, *options["cross_section_delays_ps"])
    if di.size == 0:
        raise ValueError(f"{name}: no solution TA delays within cross_section_delays_ps "
                         f"{options['cross_section_delays_ps']} ps")
    scan_sem = sol["ta_scan_sem"].isel(delay=di) if "ta_scan_sem" in sol.data_vars else None
    mean, sem = pp.window_average(ta.isel(delay=di).assign_attrs(units="OD"), bw, pixel_sem=scan_sem)
    mean = mean.transpose("fluence", "delay")
    sem = sem.transpose("fluence", "delay")
    J = np.asarray(ph.depth_averaged_fluence(ta["fluence"].values, float(sol.attrs["pump_absorbance"])))
    c = {"fluence": np.arange(ta.sizes["fluence"]), "delay": ta["delay"].values[di]}
    measured = np.isfinite(mean.values)  # files on different delay grids: each contributes its own delays
    lost = np.nonzero(~measured.any(axis=1))[0]
    if lost.size:
        raise ValueError(f"{name}: solution TA file {str(ta['source_file'].values[lost[0]])} has no delays within "
                         f"cross_section_delays_ps {options['cross_section_delays_ps']} ps")
    data.update(_keep_points(_flatten({"sol_dA": mean.values, "sol_dA_sem": sem.values,
                                       "sol_fluence_eff_photons_cm2": np.repeat(J, di.size)},
                                      ("fluence", "delay"), "sol_point", c), measured.reshape(-1), "sol_point"))
    coords["sol_fluence_nominal_photons_cm2"] = ("sol_fluence", ta["fluence"].values)
    attrs["solution_A0_1S_OD"] = float(a0)


def _reduce_sec(tree, name, want, data, coords):
    """SEC <n_e> (and normalised PL) of every sweep and potential (``sec_point``), into ``data``/``coords``."""
    sec = pp.sec_electrons(tree)
    n_e = sec["n_e"].stack(sweep=("cycle", "direction")).transpose("sweep", "potential")
    sem = sec["n_e_sem"].stack(sweep=("cycle", "direction")).transpose("sweep", "potential")
    labels = [f"cycle{c}-{d}" for c, d in n_e["sweep"].values]
    c = {"sweep": np.arange(len(labels)), "potential": n_e["potential"].values}
    arrays = {"sec_n_e": n_e.values, "sec_n_e_sem": np.maximum(sem.values, 1e-6)}
    if want("photoluminescence"):
        if "pl_norm" not in sec:
            raise ValueError(f"{name}: the photoluminescence component needs SEC PL sweeps (kind = "
                             "\"photoluminescence\" in experiment.toml); none were loaded")
        arrays["sec_pl"] = sec["pl_norm"].stack(sweep=("cycle", "direction")).transpose("sweep", "potential").values
    data.update(_flatten(arrays, ("sweep", "potential"), "sec_point", c))
    coords["sweep_label"] = ("sweep", labels)


def _reduce_film_ta(tree, options, name, want, film_A0, data, coords, attrs):
    """Film TA window averages of A* at the gain and dynamics delays (``ta_point``), the spectra of the single-
    wavelength thresholds, A_pre per potential and the sub-gap points, into ``data``/``coords``/``attrs``."""
    ta = tree["film/ta"]
    dA_raw = ta["dA"]
    lam = dA_raw["wavelength"].values
    bw = pp.band_edge_window(film_A0, probe_wavelengths=lam)
    corrected = pp.reflection_correct_film(tree, window=bw)
    esa = pp.excited_state_absorption(tree, corrected)
    a0, _ = pp.window_average(film_A0.interp(wavelength=lam).assign_attrs(units="OD"), bw)
    attrs["film_A0_1S_OD"] = float(a0)
    attrs["band_edge_window_nm"] = list(bw.bounds)
    dR = _open_circuit_dR(tree, dA_raw) if not bool(ta["reflection_corrected"].all()) else None
    if dR is not None:
        FA, FR = pp._film_fractions(tree, lam)
        sens = reflection_scale_sensitivity(dA_raw, dR, FA, FR).transpose(*dA_raw.dims).assign_attrs(units="OD")
    else:
        sens = xr.zeros_like(dA_raw).assign_attrs(units="OD")
    pots = dA_raw["potential"].values
    flu = dA_raw["fluence"].values
    delays = dA_raw["delay"].values
    # (potential, fluence, delay): which delays each file measured (all of them unless the files' grids differ)
    measured = esa["A_star"].notnull().any("wavelength").transpose("potential", "fluence", "delay").values
    gain_mask = _file_delays(measured, delays, *options["gain_delays_ps"])
    gi = np.nonzero(gain_mask.any(axis=(0, 1)))[0]
    lo_dyn = max(options["dynamics_delays_ps"][0], options["gain_delays_ps"][1] + 1e-9) if want("gain") else \
        options["dynamics_delays_ps"][0]
    dyn_mask = _file_delays(measured, delays, lo_dyn, options["dynamics_delays_ps"][1],
                            options["n_dynamics_delays"])
    yi = np.nonzero(dyn_mask.any(axis=(0, 1)))[0]
    has_file = _film_files(ta, pp.film_ta_measured(tree), data)
    parts = []
    if want("gain"):
        if not gain_mask.any(axis=2)[has_file].all():
            raise ValueError(f"{name}: no film TA delays within gain_delays_ps {options['gain_delays_ps']} ps"
                             + _first_file(ta, gain_mask, has_file))
        parts.append(("gain", gi, gain_mask))
    if want("dynamics"):
        if not dyn_mask.any(axis=2)[has_file].all():
            raise ValueError(f"{name}: no film TA delays within dynamics_delays_ps {options['dynamics_delays_ps']}"
                             + _first_file(ta, dyn_mask, has_file))
        parts.append(("dynamics", yi, dyn_mask))
    if not parts:  # reflection alone still needs the film TA grid: use the gain delays
        parts.append(("gain", gi, gain_mask))
    blocks = []
    for label, di, mask in parts:
        # scan scatter of the raw dA; the eq. S33 reflection correction is taken as slope 1 here
        scan_sem = ta["dA_scan_sem"].isel(delay=di) if "dA_scan_sem" in ta.data_vars else None
        A, A_sem = pp.window_average(esa["A_star"].isel(delay=di), bw, pixel_sem=scan_sem)
        S, _ = pp.window_average(sens.isel(delay=di), bw)
        order = ("potential", "fluence", "delay")
        c = {"potential": pots, "fluence": np.arange(flu.size), "delay": delays[di]}
        blk = _flatten({"ta_A": A.transpose(*order).values, "ta_A_sem": A_sem.transpose(*order).values,
                        "ta_reflection_sensitivity": S.transpose(*order).values},
                       order, "ta_point", c)
        blk = _keep_points(blk, mask[:, :, di].reshape(-1), "ta_point")
        n = blk["ta_A"][1].size
        blk["ta_point_component"] = ("ta_point", np.array([label] * n))
        blocks.append(blk)
    for key in blocks[0]:
        data[key] = ("ta_point", np.concatenate([b[key][1] for b in blocks]))
    if want("gain"):
        data.update(_gain_spectra(esa, gi, lam, has_file))
    if options.get("pump_attenuation", "none") == "beer-lambert":
        attrs["film_pump_OD"] = film_pump_absorbance(tree, name)
    coords["ta_fluence_nominal_photons_cm2"] = ("ta_fluence", flu)
    coords["ta_potential_V"] = ("ta_potential", pots)
    # the pre-pump absorbance A_pre = A_0 + Delta A_SEC that preprocessing added to every Delta A_TA: the
    # model predicts Delta A_TA and adds this measured value back (see GainModel.build)
    a_pre, _ = pp.window_average(esa["A_pre"], bw)
    coords["ta_potential_A_pre_OD"] = ("ta_potential", np.asarray(a_pre.transpose("potential").values, float))
    if want("reflection"):
        if dR is None:
            raise ValueError(f"{name}: the reflection component needs raw film TA and transient reflection "
                             "(/film/tr); this experiment's TA is already reflection corrected")
        _reduce_subgap(corrected, sens, measured, bw, (lam, delays, pots, flu), options, data, attrs)


def _film_files(ta, measured, data):
    """The film TA files there are (a lab's grid may have holes), potential-major: the model's ``ta_file``
    (potential, fluence index, source file) into ``data``; returns the (potential, fluence) mask of them."""
    has_file = measured.transpose("potential", "fluence").values
    fp, ff = np.nonzero(has_file)
    data["ta_file_potential_V"] = ("ta_file", ta["potential"].values[fp])
    data["ta_file_fluence"] = ("ta_file", ff)
    data["ta_file_source"] = ("ta_file", np.asarray(ta["source_file"].values[fp, ff], str))
    return has_file


def _gain_spectra(esa, gi, lam, has_file):
    """Spectra for the single-wavelength thresholds: A* averaged over the gain delays ``gi`` per film TA file
    (``has_file``: the (potential, fluence) cells measured), A_pre = A_0 + dA_SEC."""
    out = {}
    spec = esa["A_star"].isel(delay=gi).mean("delay").transpose("potential", "fluence", "wavelength").values
    spec = spec[has_file]  # the files, potential-major (the ``ta_file`` order)
    # files on different grids: only the wavelengths every file measured
    lk = np.isfinite(spec).all(axis=0)
    out["spectrum_A_star"] = (("ta_file", "spectrum_wavelength"), spec[:, lk])
    out["spectrum_A_pre"] = (("ta_potential", "spectrum_wavelength"),
                              esa["A_pre"].transpose("potential", "wavelength").values[:, lk])
    out["spectrum_A0"] = (("spectrum_wavelength",), esa["A0"].values[lk])
    out["spectrum_wavelength_nm"] = (("spectrum_wavelength",), lam[lk])
    return out


def _reduce_subgap(corrected, sens, measured, bw, grid, options, data, attrs):
    """Corrected sub-gap Delta A and its Delta R sensitivity (``subgap_point``), into ``data``/``attrs``;
    ``grid``: the film TA's (wavelengths, delays, potentials, fluences)."""
    lam, delays, pots, flu = grid
    sub_lo = bw.center + 2.0 * bw.hwhm
    sb = (sub_lo, float(lam.max()))
    si = _delay_indices(delays, *options["subgap_delays_ps"])
    D, D_sem = pp.window_average(corrected["dA"].isel(delay=si), sb)
    S, _ = pp.window_average(sens.isel(delay=si), sb)
    order = ("potential", "fluence", "delay")
    c = {"potential": pots, "fluence": np.arange(flu.size), "delay": delays[si]}
    data.update(_keep_points(_flatten({"subgap_dA": D.transpose(*order).values,
                                       "subgap_dA_sem": D_sem.transpose(*order).values,
                                       "subgap_reflection_sensitivity": S.transpose(*order).values},
                                      order, "subgap_point", c),
                             measured[:, :, si].reshape(-1), "subgap_point"))
    attrs["subgap_window_nm"] = list(sb)

def concat_experiments(datasets):
    """Concatenate reduced experiments along their point dimensions, adding ``*_experiment`` indices.

    Per-experiment axes (sweeps, fluences, potentials) get offsets so indices stay unique, and the
    per-experiment constants become 1-D variables along ``experiment``.
    """
    names = [ds.attrs["experiment"] for ds in datasets]
    if len(set(names)) != len(names):
        raise ValueError(f"experiment names must be unique, got {names}")
    point_dims = ("sol_point", "sec_point", "ta_point", "subgap_point", "ta_file")
    axis_dims = {"sol_fluence": ("sol_point_fluence",), "sweep": ("sec_point_sweep",),
                 "ta_fluence": ("ta_point_fluence", "subgap_point_fluence", "ta_file_fluence"),
                 "ta_potential": ()}
    out = {}
    coords = {}
    offsets = {d: 0 for d in axis_dims}
    for e, ds in enumerate(datasets):
        ds = ds.copy()
        for axis, cols in axis_dims.items():
            for col in cols:
                if col in ds:
                    ds[col] = ds[col] + offsets[axis]
        for pd in point_dims:
            if pd in ds.dims:
                ds[f"{pd}_experiment"] = (pd, np.full(ds.sizes[pd], e))
        for axis in axis_dims:
            if axis in ds.dims:
                ds[f"{axis}_experiment"] = (axis, np.full(ds.sizes[axis], e))
                offsets[axis] += ds.sizes[axis]
        for k, v in ds.variables.items():
            if k in ds.dims and k not in ds.coords:
                continue
            out.setdefault(k, []).append(v)
    width = max((ds.sizes.get("spectrum_wavelength", 0) for ds in datasets), default=0)
    for k, parts in out.items():
        dims = parts[0].dims
        if not dims:
            continue
        if dims[-1] == "spectrum_wavelength":  # spectra: pad the wavelength axis (grids differ between films)
            vals = [np.asarray(p.values, float) for p in parts]
            vals = [np.concatenate([v, np.full(v.shape[:-1] + (width - v.shape[-1],), np.nan)], axis=-1) for v in vals]
            if len(dims) == 1:
                coords[k] = (("experiment", "spectrum_wavelength"), np.stack(vals))
            else:
                coords[k] = (dims, np.concatenate(vals))
            continue
        values = np.concatenate([np.asarray(p.values) for p in parts])
        coords[k] = (dims[0], values)
    result = xr.Dataset({k: v for k, v in coords.items()})
    result = result.assign_coords(experiment=names)
    const = ("g_e", "g_h", "temperature_K", "film_thickness_nm", "film_thickness_sd_nm", "pump_wavelength_nm",
             "film_A0_1S_OD", "solution_A0_1S_OD", "synthetic")
    if any("film_pump_OD" in ds.attrs for ds in datasets):  # only with pump_attenuation = "beer-lambert"
        const = const + ("film_pump_OD",)
    for k in const:
        vals = [ds.attrs.get(k, np.nan) for ds in datasets]
        result[f"experiment_{k}"] = ("experiment", np.asarray(vals, float))
    result.attrs["experiments"] = names
    for k in ("band_edge_window_nm", "subgap_window_nm") + CHIRP_MAP_KEYS:
        for ds in datasets:
            if k in ds.attrs:
                result.attrs[f"{ds.attrs['experiment']}:{k}"] = ds.attrs[k]
    return result
