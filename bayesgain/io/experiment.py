"""Load and check an experiment folder into an :class:`xarray.DataTree`.

One routine, :func:`_build`, reads everything and collects problems; :func:`load_experiment`
raises :class:`ExperimentError` listing all of them, :func:`check_experiment` returns them in a
:class:`CheckReport`.  The tree layout (see ``docs/experiment-format.md``)::

    /                 attrs: name, synthetic, description, g_e, g_h, temperature_K,
                             film_thickness_nm, film_thickness_sd_nm, pump_wavelength_nm, source_folder,
                             band_edge_window_nm / solution_band_edge_window_nm ([lo, hi] nm, only when
                             the manifest's [analysis] table sets them), file_layouts, file_repairs,
                             irf_sigma_ps / irf_sigma_file (widest Gaussian IRF of the chirp-corrected entries)
    /solution         absorbance(wavelength_spectrum)          OD
                      ta(fluence, wavelength, delay)            OD      attrs: pump_absorbance
    /film             absorptance(wavelength_spectrum)          1 (fraction F_A)
                      reflectance(wavelength_spectrum)          1 (fraction F_R)
                      attrs: open_circuit_potential_V, reference_electrode, pump_absorbance (OD, if given)
    /film/sec         absorption(cycle, direction, potential, wavelength)           OD
                      photoluminescence(cycle, direction, potential, wavelength_pl) counts
    /film/ta          dA(potential, fluence, wavelength, delay)  OD      NaN in the cells not measured
                      reflection_corrected(potential, fluence)   bool
                      measured(potential, fluence)               bool    which cells hold a file (holes allowed)
    /film/tr          dR(potential, fluence, wavelength, delay)  OD
    /chirp            dA_uncorrected(wavelength, delay)         as the file   the first chirp-corrected TA
                      entry near time zero; attrs: chirp_coefficients_ps, chirp_source, chirp_file
    /truth            attrs: flattened truth.toml (synthetic experiments only)

Spectra live on their own dim ``wavelength_spectrum`` because their grid (e.g. a UV-vis
spectrometer) generally differs from the TA/SEC probe grid; each matrix group has its own
``wavelength`` grid (groups are siblings, so they never have to align).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import ExperimentError, _where
from ..safety.containment import OutsideFolderError, contained_path, duplicate_files
from .chirp import apply_chirp, chirp_map, fit_chirp, read_chirp_file
from .manifest import DIRECTIONS, MANIFEST_NAME, TRUTH_NAME, Entry, Manifest, parse_manifest, read_truth
from .readers import read_matrix, read_spectrum
from .scans import average_scans, resolve_scan_files
from .sweeps import read_sweeps

__all__ = ["load_experiment", "check_experiment", "CheckReport"]

# Tolerances for "the same grid": files from one instrument repeat the same axis values, but
# printed with finite precision; these absorb rounding, not real differences.
GRID_RTOL = 1e-6
POTENTIAL_ATOL_V = 1e-3  # nominal SEC potentials may be logged to the mV
FLUENCE_RTOL = 1e-6  # uJ/cm^2 -> photons/cm^2 conversions of the same energy agree to ~1e-15
FRACTION_TOL = 1e-9
IRF_CLEARANCE_SIGMAS = 3.0  # a Gaussian step is within 0.15 % of its plateau 3 sigma after its centre


@dataclass
class CheckReport:
    """Result of :func:`check_experiment`.

    ``ok`` is True when no problem was found; ``problems`` lists every problem (each names the
    file and line/field); ``summary`` says what was found (files, grids, potentials, fluences).
    """

    ok: bool
    problems: list[str] = field(default_factory=list)
    summary: str = ""
    folder: str = ""
    warnings: list[str] = field(default_factory=list)
    tree: xr.DataTree | None = field(default=None, repr=False, compare=False)  # what was read (None on problems)

    @property
    def text(self) -> str:
        """A human-readable validation report."""
        out = [f"Experiment folder: {self.folder}", "", "Found:", self.summary or "  (nothing readable)", ""]
        if self.warnings:
            out += ["Warnings:"] + [f"  - {w}" for w in self.warnings] + [""]
        if self.ok:
            out.append("Result: OK - no problems found.")
        else:
            out.append(f"Result: {len(self.problems)} problem(s):")
            out.extend(f"  {k}. {p}" for k, p in enumerate(self.problems, start=1))
        return "\n".join(out)


# ----------------------------------------------------------------------------- helpers
class _Ctx:
    """Build state: the folder, the problem list and the summary lines."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.problems: list[str] = []
        self.summary: list[str] = []
        self.files_read = 0
        self.notes: list[tuple[str, str, str]] = []  # (file, layout, repairs) of every matrix read
        self.a0: dict[str, float] = {}  # group -> largest absorbance A_0 (OD) of its steady-state spectrum
        self.chirp_map: xr.Dataset | None = None  # the first chirp-corrected TA entry before correction
        self.irf: list[tuple[str, float]] = []  # (file, Gaussian IRF sigma in ps) of every chirp-corrected entry
        self.warnings: list[str] = []

    def path(self, rel: str) -> Path:
        return self.folder / rel

    def read(self, fn, rel: str, field_name: str, **kw):
        """Run a reader on ``rel``, turning its error into a problem (None on failure)."""
        p = self.path(rel)
        try:
            contained_path(self.folder, rel, "path")
        except OutsideFolderError as exc:
            self.problems.append(f"{_where(self.folder / MANIFEST_NAME, field=field_name)}: {exc}")
            return None
        if not p.is_file():
            self.problems.append(f"{_where(p, field=field_name)}: file not found; expected the file "
                                 f"named by {field_name} in {self.folder}")
            return None
        try:
            out = fn(p, **kw)
        except ExperimentError as exc:
            self.problems.append(f"{exc} [{field_name}]")
            return None
        self.files_read += 1
        return out

    def problem(self, path, message: str, field_name: str | None = None) -> None:
        self.problems.append(f"{_where(path, field=field_name)}: {message}")


def _same_grid(a: np.ndarray, b: np.ndarray, atol: float = 0.0) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=GRID_RTOL, atol=atol))


def _grid_text(values: np.ndarray, unit: str) -> str:
    if values.size == 0:
        return "none"
    if values.size <= 6:
        return "[" + ", ".join(f"{v:g}" for v in values) + f"] {unit}"
    return f"{values.size} values, {values.min():g} to {values.max():g} {unit}"


def _to_od(ctx: _Ctx, entry: Entry, da: xr.DataArray) -> xr.DataArray:
    """Matrix values in OD.  The manifest's ``units`` (default OD) must agree with what the file
    header itself states; mOD is divided by 1000 explicitly, never guessed."""
    file_units = da.attrs.get("units", "unknown")
    declared = entry.units
    if declared and file_units in ("OD", "mOD") and file_units != declared and da.attrs.get("format") != "helios":
        ctx.problem(ctx.path(entry.file), f"the file header says the values are in {file_units} but the "
                    f"manifest says units = {declared!r}; expected them to agree", entry.field)
    if declared is None and file_units not in ("OD", "mOD"):
        # glotaran/KiMoPack files rarely say their unit and mOD is common: refuse to guess
        ctx.problem(ctx.path(entry.file), f"the units of the values are not stated in this "
                    f"{da.attrs.get('format')} file; expected units = \"OD\" or \"mOD\" in its manifest entry",
                    f"{entry.field}.units")
    units = declared or (file_units if file_units in ("OD", "mOD") else "OD")
    out = da / 1000.0 if units == "mOD" else da.copy()
    out.attrs = {**da.attrs, "units": "OD", "source_units": units}
    if "_scan_sem" in out.attrs and units == "mOD":
        out.attrs["_scan_sem"] = out.attrs["_scan_sem"] / 1000.0
    _check_plausible(ctx, entry, out, mod_hint=declared is None and file_units != "mOD")
    return out


# a change of absorbance cannot exceed a few times the sample's own absorbance A_0; nor, for any film or
# solution measured here, 1 OD: beyond that the values are in the wrong unit or a cell is corrupt
MAX_DA_PER_A0 = 4.0
MIN_DA_LIMIT_OD = 1.0
MAX_DELAY_PS = 5e4  # 50 ns: TA delays beyond are fs typed as ps (the axis unit is ps)
MIN_DELAY_PS = -5e3


def _check_plausible(ctx: _Ctx, entry: Entry, da: xr.DataArray, mod_hint: bool) -> None:
    """Flag values far beyond the sample's absorbance (mOD without units, corrupt cells) and delays in fs."""
    group = entry.field.split(".")[0]
    a0 = ctx.a0.get(group)
    limit = max(MAX_DA_PER_A0 * a0, MIN_DA_LIMIT_OD) if a0 else 5.0
    v = np.abs(da.values)
    bad = np.isfinite(v) & (v > limit)
    where = ctx.path(entry.file)
    if bad.any():
        k = np.unravel_index(int(np.argmax(np.where(bad, v, -np.inf))), v.shape)
        at = ", ".join(f"{da[d].values[i]:g} {da[d].attrs.get('units', '')}".rstrip() for d, i in zip(da.dims, k))
        ref = f"the {group}'s absorbance A_0 = {a0:.3g} OD" if a0 else "any plausible absorbance change"
        n = int(bad.sum())
        if n <= max(3, bad.size // 1000):
            ctx.problem(where, f"outlier: cell value {da.values[k]:.3g} OD at {at} ({n} cell(s) beyond +-{limit:.3g} "
                        f"OD, far above {ref}); expected a corrupt or mistyped cell to be fixed", entry.field)
        else:
            hint = ("values in mOD? set units = \"mOD\" in this entry" if mod_hint
                    else "expected values in the stated units")
            ctx.problem(where, f"|dA| reaches {v[bad].max():.3g} OD in {n} cell(s), far above {ref}: {hint}",
                        f"{entry.field}.units" if mod_hint else entry.field)
    if "delay" in da.dims and da.sizes["delay"]:
        d = da["delay"].values
        if d.max() > MAX_DELAY_PS or d.min() < MIN_DELAY_PS:
            ctx.problem(where, f"delays run from {d.min():g} to {d.max():g} ps (beyond {MIN_DELAY_PS:g}..{MAX_DELAY_PS:g} "
                        "ps): delays in fs? expected the delay axis in ps", entry.field)


def _check_against(ctx: _Ctx, ref, ref_entry: Entry, da: xr.DataArray, entry: Entry, dims, atol=None) -> bool:
    """Is ``da`` on the same grid as the group's first file ``ref``?  Reports the difference."""
    ok = True
    for dim in dims:
        a, b = ref[dim].values, da[dim].values
        if not _same_grid(a, b, (atol or {}).get(dim, 0.0)):
            unit = da[dim].attrs.get("units", "")
            ctx.problem(ctx.path(entry.file),
                        f"{dim} grid {_grid_text(b, unit)} differs from {_grid_text(a, unit)} in "
                        f"{ref_entry.file}; expected every file of {entry.field.split('[')[0]} on the same "
                        f"{dim} grid", entry.field)
            ok = False
    return ok


def _on_common_grid(read: list, what: str) -> tuple[list, str]:
    """Files of one group on one (wavelength, delay) grid: as they are when their grids agree, else each
    placed on the union of the grids with NaN where the file has no point (NaN = not measured; every
    window average is then taken per file over its own wavelengths).  Returns (read, summary note)."""
    ref = read[0][1]
    dims = ("wavelength", "delay")
    if all(_same_grid(ref[d].values, da[d].values) for _, da in read for d in dims):
        return read, ""
    grids = {d: _group_values([v for _, da in read for v in da[d].values], rtol=GRID_RTOL) for d in dims}
    out = []
    for e, da in read:
        where = [np.array([_index(grids[d], v, rtol=GRID_RTOL) for v in da[d].values]) for d in dims]
        full = np.full((grids["wavelength"].size, grids["delay"].size), np.nan)
        full[np.ix_(*where)] = da.transpose(*dims).values
        coords = {d: (d, grids[d], ref[d].attrs) for d in dims}
        out.append((e, xr.DataArray(full, dims=dims, coords=coords, attrs=da.attrs)))
    n = len({(tuple(da["wavelength"].values), tuple(da["delay"].values)) for _, da in read})
    note = (f"  {what}: {n} different wavelength/delay grids among {len(read)} files: stored on their union "
            f"({grids['wavelength'].size} wavelengths x {grids['delay'].size} delays, NaN where a file has no "
            "point); window averages are per file")
    return out, note


def _group_values(values: list[float], rtol: float = 0.0, atol: float = 0.0) -> np.ndarray:
    """Sorted distinct values, merging those equal within tolerance (nominal settings)."""
    out: list[float] = []
    for v in sorted(values):
        if not out or not np.isclose(v, out[-1], rtol=rtol, atol=atol):
            out.append(v)
    return np.asarray(out, float)


def _index(grid: np.ndarray, v: float, rtol=0.0, atol=0.0) -> int:
    return int(np.nonzero(np.isclose(grid, v, rtol=rtol, atol=atol))[0][0])


_COORD_ATTRS = {
    "fluence": {"units": "photons/cm^2", "long_name": "pump photon fluence"},
    "potential": {"units": "V", "long_name": "electrode potential"},
    "cycle": {"units": "1", "long_name": "SEC cycle number (1-based)"},
    "direction": {"units": "1", "long_name": "sweep direction (forward = towards negative potential)"},
}


# ----------------------------------------------------------------------------- groups
def _solution(ctx: _Ctx, m: Manifest, nodes: dict) -> None:
    sol = m.solution
    ds = xr.Dataset(attrs={})
    if sol.get("pump_absorbance") is not None:
        ds.attrs["pump_absorbance"] = sol["pump_absorbance"]
        ds.attrs["pump_absorbance_units"] = "OD"
    if sol.get("absorbance_file"):
        spec = ctx.read(read_spectrum, sol["absorbance_file"], "solution.absorbance_file", units="OD",
                        column=sol.get("absorbance_column"))
        if spec is not None:
            ctx.a0["solution"] = float(np.nanmax(np.abs(spec.values))) if spec.size else 0.0
            ds["absorbance"] = _spectrum_var(spec, "solution absorbance", "OD")
            ctx.summary.append(f"  solution absorbance: {sol['absorbance_file']}, "
                               f"{spec.sizes['wavelength']} wavelengths{_columns_text(spec)}")
    entries = sol.get("ta") or []
    stack = _stack_fluences(ctx, entries, "solution TA")
    if stack is not None:
        sem = stack.attrs.pop("_scan_sem", None)
        ds["ta"] = stack
        if sem is not None:
            ds["ta_scan_sem"] = stack.copy(data=sem).assign_attrs(
                units="OD", long_name="standard error of the per-pixel mean over scans (NaN: one file)")
        ctx.summary.append(f"  solution TA: {stack.sizes['fluence']} file(s), fluences "
                           f"{_grid_text(stack.fluence.values, 'photons/cm^2')}, "
                           f"{stack.sizes['wavelength']} wavelengths x {stack.sizes['delay']} delays")
    nodes["/solution"] = ds


def _columns_text(spec: xr.DataArray) -> str:
    """The header names of a spectrum file and the column read, for ``check``."""
    if "columns" not in spec.attrs:
        return ""
    chosen = f", read column {spec.attrs['column']!r}" if "column" in spec.attrs else ""
    return f" (header: {spec.attrs['columns']}{chosen})"


def _spectrum_var(spec: xr.DataArray, long_name: str, units: str) -> xr.DataArray:
    da = spec.rename(wavelength="wavelength_spectrum")
    da.attrs.update(units=units, long_name=long_name)
    da["wavelength_spectrum"].attrs.update(units="nm", long_name="wavelength of the steady-state spectra")
    return da


def _read_matrices(ctx: _Ctx, entries: list[Entry], axis: str) -> list[tuple[Entry, xr.DataArray]]:
    out = []
    for e in entries:
        if e.files:
            da = _read_scans(ctx, e, axis)
        else:
            da = ctx.read(read_matrix, e.file, e.field, format=e.format, axis=axis, nan=e.nan)
            if da is not None:
                ctx.notes.append((e.file, da.attrs.get("layout", ""), da.attrs.get("repairs", "none")))
        if da is not None and (e.chirp_file or e.chirp):
            da = _chirp(ctx, e, da)
        if da is not None:
            out.append((e, da))
    return out


def _read_scans(ctx: _Ctx, e: Entry, axis: str):
    """Several scans of one entry -> their per-pixel mean, the scan standard error kept in the
    private attr ``_scan_sem`` (turned into a ``*_scan_sem`` variable of the group)."""
    try:
        names = resolve_scan_files(ctx.folder, e.files, e.field)
    except ExperimentError as exc:
        ctx.problems.append(str(exc))
        return None
    scans = []
    for name in names:
        da = ctx.read(read_matrix, name, f"{e.field}.files", format=e.format, axis=axis, nan=e.nan)
        if da is not None:
            ctx.notes.append((name, da.attrs.get("layout", ""), da.attrs.get("repairs", "none")))
            scans.append((name, da))
    if len(scans) != len(names):
        return None
    try:
        mean, sem, note = average_scans(scans, e.scan_outliers)
    except ExperimentError as exc:
        ctx.problems.append(f"{exc} [{e.field}.files]")
        return None
    label = e.files if isinstance(e.files, str) else ", ".join(names)
    ctx.notes.append((f"{e.field} ({label})", note, "none"))
    mean.attrs["_scan_sem"] = sem.values
    mean.attrs["scans"] = note
    return mean


def _chirp(ctx: _Ctx, e: Entry, da: xr.DataArray):
    """Chirp-correct one entry's matrix (KiMoPack chirp file or a fit to the rise)."""
    try:
        if e.chirp_file:
            if os.path.isabs(e.chirp_file) or ".." in Path(e.chirp_file).parts:
                ctx.problem(ctx.folder / "experiment.toml", f"chirp_file {e.chirp_file!r} points outside the "
                            "experiment folder; expected a path relative to it", f"{e.field}.chirp_file")
                return None
            chirp = read_chirp_file(ctx.path(e.chirp_file))
        else:
            chirp = fit_chirp(da)
        sem = da.attrs.pop("_scan_sem", None)
        out = apply_chirp(da, chirp)
        if sem is not None:
            out.attrs["_scan_sem"] = apply_chirp(da.copy(data=sem), chirp).values
        if chirp.irf_sigma_ps is None:  # a chirp file gives no IRF: fit the rise of the corrected matrix
            try:
                chirp.irf_sigma_ps = fit_chirp(out, degree=0).irf_sigma_ps
            except ValueError:
                pass
    except ExperimentError as exc:
        ctx.problems.append(f"{exc} [{e.field}.chirp_file]")
        return None
    except ValueError as exc:
        ctx.problem(ctx.path(e.file), f"chirp correction failed: {exc}", f"{e.field}.chirp")
        return None
    ctx.notes.append((e.file, chirp.describe(da["wavelength"].values) + f"; {out.attrs['chirp_delays_dropped']} "
                      "delay(s) not covered at every wavelength dropped", "none"))
    if chirp.irf_sigma_ps is not None:
        ctx.irf.append((e.file, float(chirp.irf_sigma_ps)))
    if ctx.chirp_map is None and ".ta[" in e.field:
        ctx.chirp_map = chirp_map(da, chirp, e.file, e.field, e.units or da.attrs.get("units", "unknown"))
    return out


def _irf_check(ctx: _Ctx, nodes: dict) -> None:
    """Root attrs ``irf_sigma_ps``/``irf_sigma_file`` (the widest IRF fitted) and a warning when the
    model's earliest gain delay lies within 3 IRF sigma of time zero (the model holds no IRF)."""
    if not ctx.irf:
        return
    from ..model.spec import DEFAULT_OPTIONS

    file, sigma = max(ctx.irf, key=lambda fs: fs[1])
    nodes["/"].attrs["irf_sigma_ps"] = sigma
    nodes["/"].attrs["irf_sigma_file"] = file
    earliest = float(min(DEFAULT_OPTIONS["gain_delays_ps"][0][0], DEFAULT_OPTIONS["dynamics_delays_ps"][0][0]))
    ctx.summary.append(f"  instrument response: Gaussian sigma {sigma:.3g} ps (widest, {file}); the model's "
                       f"earliest delay {earliest:g} ps is {earliest / sigma:.1f} sigma after time zero")
    if earliest < IRF_CLEARANCE_SIGMAS * sigma:
        ctx.warnings.append(f"{file}: the instrument response (Gaussian sigma {sigma:.3g} ps) reaches the model's "
                            f"earliest delay {earliest:g} ps (within {IRF_CLEARANCE_SIGMAS:g} sigma of time zero); "
                            "the model holds no IRF, so start gain_delays_ps/dynamics_delays_ps in the model spec "
                            f"at {IRF_CLEARANCE_SIGMAS * sigma:.3g} ps or later")


def _stack_fluences(ctx: _Ctx, entries: list[Entry], what: str):
    """Solution TA: one file per fluence -> ta(fluence, wavelength, delay)."""
    read = [(e, _to_od(ctx, e, da)) for e, da in _read_matrices(ctx, entries, "delay")]
    read = [(e, da) for e, da in read if e.fluence_photons_cm2 is not None]
    if not read:
        return None
    good, note = _on_common_grid(read, what)
    if note:
        ctx.summary.append(note)
    seen: dict = {}
    for e, da in good:
        key = _index_or_none(list(seen), e.fluence_photons_cm2)
        if key is not None:
            ctx.problem(ctx.path(e.file), f"duplicate fluence {e.fluence_photons_cm2:.6g} photons/cm^2 "
                        f"(also {seen[key].file}); expected one file per fluence", e.field)
        else:
            seen[e.fluence_photons_cm2] = e
    fl = sorted(seen)
    arrs = [next(da for e, da in good if e is seen[f]) for f in fl]
    out = xr.concat(arrs, dim="fluence", combine_attrs="drop").assign_coords(
        fluence=("fluence", np.asarray(fl), _COORD_ATTRS["fluence"]))
    out = out.transpose("fluence", "wavelength", "delay")
    out.attrs = {"units": "OD", "long_name": f"{what} dA"}
    out = out.assign_coords(source_file=("fluence", [seen[f].file for f in fl], {"units": "1"}))
    sems = [a.attrs.get("_scan_sem") for a in arrs]
    if any(x is not None for x in sems):  # NaN where an entry is a single file (or was moved onto the union grid)
        out.attrs["_scan_sem"] = np.stack([x if x is not None and np.shape(x) == a.shape else np.full(a.shape, np.nan)
                                           for a, x in zip(arrs, sems)])
    if note:
        out.attrs["grid_note"] = note.strip()
    return out


def _index_or_none(grid: list, v: float):
    for g in grid:
        if np.isclose(g, v, rtol=FLUENCE_RTOL):
            return g
    return None


def _film(ctx: _Ctx, m: Manifest, nodes: dict) -> None:
    film = m.film
    ds = xr.Dataset()
    for key in ("open_circuit_potential_V", "reference_electrode", "pump_absorbance"):
        if film.get(key) is not None:
            ds.attrs[key] = film[key]
    if film.get("pump_absorbance") is not None:
        ds.attrs["pump_absorbance_units"] = "OD"
    fa = fr = None
    if film.get("absorptance_file"):
        fa = ctx.read(read_spectrum, film["absorptance_file"], "film.absorptance_file", units="1",
                      column=film.get("absorptance_column"))
    if film.get("reflectance_file"):
        fr = ctx.read(read_spectrum, film["reflectance_file"], "film.reflectance_file", units="1",
                      column=film.get("reflectance_column"))
    if fa is not None and fa.size:
        from ..physics import optics  # here, not at the top: reading a folder should not import PyTensor

        ctx.a0["film"] = float(optics.absorbance_from_absorptance(np.clip(np.nanmax(fa.values), 0.0, 1.0 - 1e-6)))
    for spec, key, sym in ((fa, "absorptance_file", "F_A"), (fr, "reflectance_file", "F_R")):
        if spec is None:
            continue
        bad = (spec.values < -FRACTION_TOL) | (spec.values > 1 + FRACTION_TOL)
        if bad.any():
            k = int(np.nonzero(bad)[0][0])
            ctx.problem(ctx.path(film[key]), f"{sym} = {spec.values[k]:g} at {spec.wavelength.values[k]:g} nm "
                        f"({int(bad.sum())} value(s) outside [0, 1]); expected 0 <= {sym} <= 1", f"film.{key}")
    if fa is not None and fr is not None:
        if not _same_grid(fa.wavelength.values, fr.wavelength.values):
            ctx.problem(ctx.path(film["reflectance_file"]), "wavelength grid differs from "
                        f"{film['absorptance_file']}; expected F_A and F_R on the same wavelengths",
                        "film.reflectance_file")
        else:
            total = fa.values + fr.values
            bad = total > 1 + FRACTION_TOL
            if bad.any():
                k = int(np.nonzero(bad)[0][0])
                ctx.problem(ctx.path(film["reflectance_file"]),
                            f"F_A + F_R = {total[k]:g} at {fa.wavelength.values[k]:g} nm (with "
                            f"{film['absorptance_file']}); expected F_A + F_R <= 1", "film.reflectance_file")
            ds["absorptance"] = _spectrum_var(fa, "film absorptance F_A", "1")
            ds["reflectance"] = _spectrum_var(fr, "film reflectance F_R", "1")
            ctx.summary.append(f"  film F_A/F_R: {film['absorptance_file']}, {film['reflectance_file']}, "
                               f"{fa.sizes['wavelength']} wavelengths{_columns_text(fa)}{_columns_text(fr)}")
    nodes["/film"] = ds
    sec_range = _sec(ctx, film.get("sec") or [], nodes)
    _film_matrix(ctx, film.get("ta") or [], nodes, "ta", sec_range)
    _film_matrix(ctx, film.get("tr") or [], nodes, "tr", sec_range)


def _sec(ctx: _Ctx, entries: list[Entry], nodes: dict):
    """SEC sweeps -> /film/sec; returns the (min, max) potential range, or None."""
    read, notes = _read_sec_sweeps(ctx, [e for e in entries if e.kind and e.cycle])
    if not read:
        return None
    pot, ok = _sweeps_on_one_grid(ctx, read)
    made = {}  # kind -> (cycles, directions, variables)
    for kind, wl_dim, units in (("absorption", "wavelength", "OD"), ("photoluminescence", "wavelength_pl", "counts")):
        grid = _sec_kind(ctx, [(e, d, da) for e, d, da in ok if e.kind == kind], kind, wl_dim, units, pot)
        if grid is not None:
            made[kind] = grid
    ctx.summary.extend(f"  film SEC note: {n}" for n in notes)
    grids = {kind: (c, d) for kind, (c, d, _) in made.items()}
    if len(set(map(repr, grids.values()))) > 1:
        ctx.problem(ctx.folder / "experiment.toml",
                    f"absorption sweeps cover (cycles, directions) {grids['absorption']} but photoluminescence "
                    f"sweeps cover {grids['photoluminescence']}; expected both kinds on the same cycles and "
                    "directions", "film.sec")
    elif made:
        nodes["/film/sec"] = _sec_dataset(made, pot, notes)
    return (float(pot.min()), float(pot.max()))


def _read_sec_sweeps(ctx: _Ctx, entries: list[Entry]):
    """Every sweep of the SEC entries as (entry, direction, data; absorption in OD), and the notes on them."""
    read, notes = [], []
    for e in entries:
        sweeps = ctx.read(read_sweeps, e.file, e.field, format=e.format, nan=e.nan, direction=e.direction)
        if e.kind != "absorption" and e.units is not None and sweeps is not None:
            ctx.problem(ctx.path(e.file), f"units = {e.units!r} given for a photoluminescence sweep; "
                        "expected no units key (PL values are detector counts)", f"{e.field}.units")
        for s in sweeps or []:
            da = _to_od(ctx, e, s.data) if e.kind == "absorption" else s.data
            read.append((e, s.direction, da))
        notes += _sweep_notes(e, sweeps or [])
    return read, notes


def _sweeps_on_one_grid(ctx: _Ctx, read: list):
    """The first sweep's potential grid and the sweeps on it (the others are problems)."""
    ref_e, _, ref = read[0]
    pot = ref.potential.values
    ok = []
    for e, direction, da in read:
        if not _same_grid(pot, da.potential.values, POTENTIAL_ATOL_V):
            ctx.problem(ctx.path(e.file), f"potential grid {_grid_text(da.potential.values, 'V')} differs "
                        f"from {_grid_text(pot, 'V')} in {ref_e.file}; expected every SEC sweep on the "
                        "same nominal potential grid", e.field)
            continue
        ok.append((e, direction, da))
    return pot, ok


def _sec_kind(ctx: _Ctx, mine: list, kind: str, wl_dim: str, units: str, pot):
    """One kind's sweeps (absorption or PL) as a cycle x direction grid: (cycles, directions, variables), or None
    when there are none or the grid has holes (each hole a problem)."""
    if not mine:
        return None
    k_ref_e, _, k_ref = mine[0]
    mine = [(e, d, da) for e, d, da in mine if _check_against(ctx, k_ref, k_ref_e, da, e, ("wavelength",))]
    cells: dict = {}
    for e, direction, da in mine:
        key = (e.cycle, direction)
        if key in cells:
            ctx.problem(ctx.path(e.file), f"duplicate {kind} sweep cycle {e.cycle} {direction} (also "
                        f"{cells[key][0].file}); expected one sweep per cycle and direction", e.field)
            continue
        cells[key] = (e, da)
    cycles = sorted({c for c, _ in cells})
    dirs = [d for d in DIRECTIONS if any(dd == d for _, dd in cells)]
    missing = [(c, d) for c in cycles for d in dirs if (c, d) not in cells]
    for c, d in missing:
        ctx.problem(ctx.folder / "experiment.toml", f"no {kind} SEC sweep for cycle {c} {d} in the "
                    f"manifest; expected a complete cycle x direction grid (cycles {cycles}, directions "
                    f"{dirs})", "film.sec")
    if missing:
        return None
    data = np.stack([np.stack([cells[(c, d)][1].values.T for d in dirs]) for c in cycles])
    wl = k_ref.wavelength.values
    note = "OD relative to open circuit" if units == "OD" else "counts"
    variables = {
        kind: xr.DataArray(
            data, dims=("cycle", "direction", "potential", wl_dim),
            coords={wl_dim: (wl_dim, wl, {"units": "nm", "long_name": f"{kind} wavelength"})},
            attrs={"units": units, "long_name": f"SEC {kind} ({note})"}),
        f"{kind}_source_file": xr.DataArray(
            np.array([[cells[(c, d)][0].file for d in dirs] for c in cycles]), dims=("cycle", "direction"),
            attrs={"units": "1"}),
    }
    ctx.summary.append(f"  film SEC {kind}: {len(cells)} sweep(s), cycles {cycles}, directions {dirs}, "
                       f"potentials {_grid_text(pot, 'V')}, {wl.size} wavelengths")
    return cycles, dirs, variables


def _sec_dataset(made: dict, pot, notes: list[str]) -> xr.Dataset:
    """The /film/sec node: every kind's variables on the shared cycle x direction x potential grid."""
    cycles, dirs, _ = next(iter(made.values()))
    ds = xr.Dataset(coords={"cycle": ("cycle", np.asarray(cycles, dtype=np.int64), _COORD_ATTRS["cycle"]),
                            "direction": ("direction", np.asarray(dirs), _COORD_ATTRS["direction"]),
                            "potential": ("potential", pot, _COORD_ATTRS["potential"])})
    for _, _, variables in made.values():
        for name, var in variables.items():
            ds[name] = var
    if notes:
        ds.attrs["sweep_notes"] = "; ".join(notes)
    return ds


def _sweep_notes(e: Entry, sweeps: list) -> list[str]:
    """What was inferred about the sweeps of one SEC file (for the check report and the tree)."""
    if len(sweeps) == 2:
        (a, b) = sweeps
        p, q = a.potentials_in_file_order, b.potentials_in_file_order
        return [f"{e.file} ({e.field}) holds a down-and-up sweep: split at its turning point {p[-1]:g} V into "
                f"cycle {e.cycle} {a.direction} ({p[0]:g} to {p[-1]:g} V) and {b.direction} ({q[0]:g} to {q[-1]:g} V)"]
    if len(sweeps) == 1 and sweeps[0].how == "order":
        p = sweeps[0].potentials_in_file_order
        return [f"{e.file} ({e.field}): no direction in the manifest; cycle {e.cycle} {sweeps[0].direction} from "
                f"the order of its potentials ({p[0]:g} to {p[-1]:g} V; forward = towards negative potential)"]
    return []


def _film_cells(ctx: _Ctx, good: list, label: str):
    """(potentials, fluences, {(i, j): (entry, matrix)}): the files placed on the potential x fluence grid, a
    second file for a cell being a problem."""
    pots = _group_values([e.potential_V for e, _ in good], atol=1e-9)
    fls = _group_values([e.fluence_photons_cm2 for e, _ in good], rtol=FLUENCE_RTOL)
    cells: dict = {}
    for e, da in good:
        key = (_index(pots, e.potential_V, atol=1e-9), _index(fls, e.fluence_photons_cm2, rtol=FLUENCE_RTOL))
        if key in cells:
            ctx.problem(ctx.path(e.file), f"duplicate {label} measurement at {e.potential_V:g} V and "
                        f"{e.fluence_photons_cm2:.6g} photons/cm^2 (also {cells[key][0].file}); expected one "
                        "file per potential and fluence", e.field)
            continue
        cells[key] = (e, da)
    return pots, fls, cells


def _film_matrix(ctx: _Ctx, entries: list[Entry], nodes: dict, which: str, sec_range) -> None:
    """Film TA or TR files -> a potential x fluence grid of matrices (film TA: holes allowed, NaN there)."""
    label = {"ta": "film TA", "tr": "film TR"}[which]
    read = [(e, _to_od(ctx, e, da)) for e, da in _read_matrices(ctx, entries, "delay")]
    read = [(e, da) for e, da in read if e.fluence_photons_cm2 is not None and e.potential_V is not None]
    if which == "ta" and sec_range is not None:
        lo, hi = sec_range
        for e, _ in read:
            if not (lo - POTENTIAL_ATOL_V <= e.potential_V <= hi + POTENTIAL_ATOL_V):
                ctx.problem(ctx.path(e.file), f"potential_V = {e.potential_V:g} V is outside the SEC "
                            f"potential range [{lo:g}, {hi:g}] V; expected film TA potentials within the "
                            "range of the SEC sweeps", f"{e.field}.potential_V")
    if not read:
        return
    ref_e, ref = read[0]
    note = ""
    if which == "ta":  # TA files may differ in grid (window averages are per file); TR is interpolated: one grid
        good, note = _on_common_grid(read, label)
        ref = good[0][1]
    else:
        good = [(e, da) for e, da in read if _check_against(ctx, ref, ref_e, da, e, ("wavelength", "delay"))]
    if not good:
        return
    pots, fls, cells = _film_cells(ctx, good, label)
    missing = [(i, j) for i in range(pots.size) for j in range(fls.size) if (i, j) not in cells]
    listed = ", ".join(f"({pots[i]:g} V, {fls[j]:.4g} photons/cm^2)" for i, j in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    if missing and which == "tr":  # TR corrects every TA file of its fluence: its grid must be whole
        ctx.problem(ctx.folder / "experiment.toml", f"{label} grid is incomplete: no file for {listed}{more}; "
                    f"expected one file for every potential x fluence ({pots.size} x {fls.size})",
                    f"film.{which}")
        return
    # film TA: a lab measures the runs it chose (a design's batch, a film that died): the grid may have holes,
    # stored as NaN cells that every reduction skips (``measured`` says which cells hold a file)
    shape = (ref.sizes["wavelength"], ref.sizes["delay"])
    hole = np.full(shape, np.nan)

    def on_grid(value, hole_value):
        """value(entry, matrix) of every cell as a (potential, fluence) nested list, ``hole_value`` where no file."""
        return [[value(*cells[(i, j)]) if (i, j) in cells else hole_value for j in range(fls.size)]
                for i in range(pots.size)]

    data = np.array(on_grid(lambda e, da: da.transpose("wavelength", "delay").values, hole))
    var = "dA" if which == "ta" else "dR"
    ds = xr.Dataset(coords={
        "potential": ("potential", pots, _COORD_ATTRS["potential"]),
        "fluence": ("fluence", fls, _COORD_ATTRS["fluence"]),
        "wavelength": ("wavelength", ref.wavelength.values, {"units": "nm", "long_name": "probe wavelength"}),
        "delay": ("delay", ref.delay.values, {"units": "ps", "long_name": "pump-probe delay"}),
    })
    long = "film TA dA" if which == "ta" else "film transient reflection dR"
    ds[var] = xr.DataArray(data, dims=("potential", "fluence", "wavelength", "delay"),
                           attrs={"units": "OD", "long_name": long})
    sems = on_grid(lambda e, da: da.attrs.get("_scan_sem"), None)
    if any(x is not None for row in sems for x in row):  # NaN where an entry is a single file
        ds[f"{var}_scan_sem"] = xr.DataArray(
            np.stack([np.stack([np.full(data.shape[2:], np.nan) if x is None else x for x in row]) for row in sems]),
            dims=("potential", "fluence", "wavelength", "delay"),
            attrs={"units": "OD", "long_name": "standard error of the per-pixel mean over scans (NaN: one file)"})
    if which == "ta":
        ds["reflection_corrected"] = xr.DataArray(
            np.array(on_grid(lambda e, da: bool(e.reflection_corrected), True)), dims=("potential", "fluence"),
            attrs={"units": "1", "long_name": "dA already corrected for transient reflection (True where not measured)"})
        ds["measured"] = xr.DataArray(
            np.array(on_grid(lambda e, da: True, False)),
            dims=("potential", "fluence"), attrs={"units": "1", "long_name": "a film TA file was measured here"})
    ds["source_file"] = xr.DataArray(np.array(on_grid(lambda e, da: e.file, "")), dims=("potential", "fluence"),
                                     attrs={"units": "1"})
    if note:
        ds[var].attrs["grid_note"] = note.strip()
        ctx.summary.append(note)
    nodes[f"/film/{which}"] = ds
    ctx.summary.append(f"  {label}: {len(cells)} file(s), potentials {_grid_text(pots, 'V')} x fluences "
                       f"{_grid_text(fls, 'photons/cm^2')}, {ref.sizes['wavelength']} wavelengths x "
                       f"{ref.sizes['delay']} delays")
    if missing:
        ctx.summary.append(f"  {label}: {len(missing)} of {pots.size * fls.size} potential x fluence cells "
                           f"not measured ({listed}{more}); each reduction uses the files there are")


# ----------------------------------------------------------------------------- [analysis]
def _analysis(ctx: _Ctx, m: Manifest, nodes: dict) -> None:
    """[analysis] band-edge windows -> root attrs ``band_edge_window_nm`` (film) and
    ``solution_band_edge_window_nm`` (also an attr of the solution absorbance), after checking that
    each window lies inside, and holds at least 2 wavelengths of, every probe grid it is used on."""
    film_grids = [("/film/ta", "dA", "film TA"), ("/film/sec", "absorption", "film SEC absorption"),
                  ("/film/tr", "dR", "film TR")]
    for key, grids in (("band_edge_window_nm", film_grids),
                       ("solution_band_edge_window_nm", [("/solution", "ta", "solution TA")])):
        win = m.analysis.get(key)
        if win is None:
            continue
        lo, hi = win
        ok = True
        for node, var, what in grids:
            ds = nodes.get(node)
            if ds is None or var not in ds:
                continue
            lam = ds[var]["wavelength"].values
            n_in = int(((lam >= lo) & (lam <= hi)).sum())
            if lo < lam.min() or hi > lam.max():
                ctx.problem(m.path, f"window [{lo:g}, {hi:g}] nm lies outside the {what} probe range "
                            f"{lam.min():g}..{lam.max():g} nm; expected lo >= {lam.min():g} and hi <= "
                            f"{lam.max():g}", f"analysis.{key}")
                ok = False
            elif n_in < 2:
                ctx.problem(m.path, f"window [{lo:g}, {hi:g}] nm holds {n_in} {what} wavelength(s); expected "
                            "at least 2 (widen the window)", f"analysis.{key}")
                ok = False
        if not ok:
            continue
        nodes["/"].attrs[key] = [float(lo), float(hi)]
        ctx.summary.append(f"  analysis: {key} = [{lo:g}, {hi:g}] nm (overrides the Gaussian fit)")
        if key == "solution_band_edge_window_nm" and "/solution" in nodes and "absorbance" in nodes["/solution"]:
            nodes["/solution"]["absorbance"].attrs["band_edge_window_nm"] = [float(lo), float(hi)]


# ----------------------------------------------------------------------------- build
def _named_files(m: Manifest) -> list[tuple[str, str]]:
    """(field, relative path) of every file the manifest names."""
    out = []
    for group, keys in (("solution", ("absorbance_file",)), ("film", ("absorptance_file", "reflectance_file"))):
        table = getattr(m, group) or {}
        out += [(f"{group}.{k}", table[k]) for k in keys if table.get(k)]
        out += [(e.field, e.file) for kind in ("sec", "ta", "tr") for e in (table.get(kind) or [])]
    return out


def _check_duplicates(ctx: _Ctx, m: Manifest) -> None:
    """One file (by resolved path or identical bytes) must not stand for two measurements."""
    named = []
    for field_name, rel in _named_files(m):
        try:
            named.append((field_name, contained_path(ctx.folder, rel)))
        except OutsideFolderError:
            continue  # reported when read
    for field_name, earlier, how in duplicate_files(named):
        ctx.problem(m.path, f"{how} {earlier}; expected a different file for each measurement", field_name)


def _build(folder) -> tuple[xr.DataTree | None, _Ctx]:
    folder = Path(folder)
    if folder.name == "experiment.toml" and folder.is_file():
        folder = folder.parent  # accept the manifest path too
    ctx = _Ctx(folder)
    for name in (MANIFEST_NAME, TRUTH_NAME):  # a symlink to a file elsewhere is refused, never read
        try:
            contained_path(folder, name, name)
        except OutsideFolderError as exc:
            ctx.problems.append(f"{folder / name}: {exc}")
    if ctx.problems:
        return None, ctx
    m = parse_manifest(folder, ctx.problems)
    if m is None:
        return None, ctx
    _check_duplicates(ctx, m)
    attrs = {"name": m.name or "", "synthetic": bool(m.synthetic), "description": m.description,
             "source_folder": os.fspath(folder.resolve())}
    for key in ("g_e", "g_h", "temperature_K", "film_thickness_nm", "film_thickness_sd_nm"):
        if m.sample.get(key) is not None:
            attrs[key] = m.sample[key]
    if m.pump_wavelength_nm is not None:
        attrs["pump_wavelength_nm"] = m.pump_wavelength_nm
    ctx.summary.append(f"  manifest: {m.path.name}, name {m.name!r}, synthetic {m.synthetic}")
    nodes: dict = {"/": xr.Dataset(attrs=attrs)}
    if m.solution is not None:
        _solution(ctx, m, nodes)
    if m.film is not None:
        _film(ctx, m, nodes)
    _analysis(ctx, m, nodes)
    _irf_check(ctx, nodes)
    if ctx.chirp_map is not None:
        nodes["/chirp"] = ctx.chirp_map
        ctx.summary.append(f"  chirp map: {ctx.chirp_map.attrs['chirp_file']} before the correction, t0(lambda) "
                           "drawn on it by check --figures")
    if m.synthetic:
        truth = read_truth(folder, ctx.problems)
        if truth:
            nodes["/truth"] = xr.Dataset(attrs=truth)
            ctx.summary.append(f"  truth: truth.toml, {len(truth)} value(s)")
    ctx.summary.insert(1, f"  data files read: {ctx.files_read}")
    if ctx.notes:
        ctx.summary.append("  matrix files (layout; repairs):")
        for name, layout, repairs in ctx.notes:
            ctx.summary.append(f"    {name}: {layout}" + ("" if repairs == "none" else f"; repairs: {repairs}"))
        nodes["/"].attrs["file_layouts"] = "\n".join(f"{n}: {lay}" for n, lay, _ in ctx.notes)
        nodes["/"].attrs["file_repairs"] = "\n".join(f"{n}: {rep}" for n, _, rep in ctx.notes)
    try:
        tree = xr.DataTree.from_dict(nodes)
    except Exception as exc:  # alignment errors would be a bug here, but report instead of crash
        ctx.problems.append(f"{folder}: could not assemble the data tree ({exc})")
        return None, ctx
    return tree, ctx


def load_experiment(folder) -> xr.DataTree:
    """Load the experiment in ``folder`` (with ``experiment.toml``) into an ``xarray.DataTree``.

    Raises :class:`ExperimentError` listing every problem found (each naming the file and line or
    manifest field).  Input files are only read.
    """
    tree, ctx = _build(folder)
    if ctx.problems or tree is None:
        n = len(ctx.problems)
        raise ExperimentError(f"{folder}: {n} problem(s) in the experiment:\n  - " + "\n  - ".join(ctx.problems),
                              problems=ctx.problems)
    return tree


def check_experiment(folder) -> CheckReport:
    """Validate ``folder`` without raising: a :class:`CheckReport` with every problem found."""
    try:
        tree, ctx = _build(folder)
    except Exception as exc:  # a checker must report, not crash; this is a bug in bayesgain
        return CheckReport(folder=os.fspath(folder), ok=False,
                           problems=[f"{folder}: internal error while checking ({type(exc).__name__}: {exc}); "
                                     "please report it with this folder"])
    return CheckReport(folder=os.fspath(folder), ok=not ctx.problems and tree is not None,
                       problems=list(ctx.problems), summary="\n".join(ctx.summary), warnings=list(ctx.warnings),
                       tree=tree if not ctx.problems else None)
