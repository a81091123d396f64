"""The experiment manifest ``experiment.toml``: schema, parsing and validation.

The manifest is checked against an explicit schema so that a misspelt key is reported (with the
closest valid key, via :mod:`difflib`) instead of being silently ignored.  Parsing collects every
problem it can find into a list rather than stopping at the first; each problem names the
manifest file and the field.  Units: wavelengths nm, potentials V, fluences photons/cm^2 (pulse
energy densities uJ/cm^2 are converted), temperatures K, thicknesses nm.
"""

from __future__ import annotations

import datetime
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import _where
from .layout import WAVELENGTH_RANGE_NM
from .readers import NAN_POLICIES, registry as reader_registry
from .scans import SCAN_OUTLIERS
from .tomlfile import TomlFileError, read_toml

MANIFEST_NAME = "experiment.toml"
TRUTH_NAME = "truth.toml"

SEC_KINDS = ("absorption", "photoluminescence")
DIRECTIONS = ("forward", "backward")  # forward = sweeping towards negative potential
VALUE_UNITS = ("OD", "mOD")


# ----------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class Key:
    """One manifest key: its type ("str", "int", "float", "bool", "table", "tables"),
    whether it is required, its default, and an optional check ``(predicate, expectation)``."""

    type: str
    required: bool = False
    default: object = None
    check: tuple | None = None
    choices: tuple | None = None  # or a callable that returns them (the reader registry)


_POS = (lambda v: v > 0, "a number > 0")
_NONNEG = (lambda v: v >= 0, "a number >= 0")
_INT1 = (lambda v: v >= 1, "an integer >= 1")


def _between(lo, hi, unit, hint=""):
    """Range check of a manifest number: values outside are typos or wrong units (``hint`` says which)."""
    return (lambda v: lo <= v <= hi, f"{lo:g} <= value <= {hi:g} {unit}{hint}".rstrip())


_DEGENERACY = _between(1, 32, "(states of the band-edge level)")
_POTENTIAL = _between(-10.0, 10.0, "V")
_FLUENCE_RANGE = _between(1e8, 1e19, "photons/cm^2")

TOP = {
    "name": Key("str", required=True),
    "synthetic": Key("bool", default=False),
    "description": Key("str", default=""),
    "sample": Key("table", required=True),
    "pump": Key("table", required=True),
    "solution": Key("table"),
    "film": Key("table"),
    "analysis": Key("table"),
}
SAMPLE = {
    "g_e": Key("int", default=2, check=_DEGENERACY),
    "g_h": Key("int", default=4, check=_DEGENERACY),
    "temperature_K": Key("float", required=True, check=_between(1.0, 1000.0, "K")),
    "film_thickness_nm": Key("float", required=True, check=_between(1.0, 1e5, "nm")),
    "film_thickness_sd_nm": Key("float", default=0.0, check=_between(0.0, 1e5, "nm")),
}
PUMP = {"wavelength_nm": Key("float", required=True, check=_between(*WAVELENGTH_RANGE_NM, "nm", " (eV or um typed?)"))}
SOLUTION = {
    "absorbance_file": Key("str", required=True),
    "absorbance_column": Key("column"),
    "pump_absorbance": Key("float", required=True, check=_between(0.0, 10.0, "OD")),
    "ta": Key("tables", default=[]),
}
FILM = {
    "absorptance_file": Key("str", required=True),
    "reflectance_file": Key("str", required=True),
    "absorptance_column": Key("column"),
    "reflectance_column": Key("column"),
    "open_circuit_potential_V": Key("float", required=True, check=_POTENTIAL),
    "reference_electrode": Key("str", required=True),
    # optional: the film's absorbance at the pump wavelength (else read off the absorptance spectrum when it
    # covers the pump); used by the model option pump_attenuation = "beer-lambert"
    "pump_absorbance": Key("float", check=_between(0.0, 5.0, "OD (the film's absorbance at the pump wavelength)")),
    "sec": Key("tables", default=[]),
    "ta": Key("tables", default=[]),
    "tr": Key("tables", default=[]),
}
_RANGE = (lambda v: v[0] < v[1], "[lo, hi] with lo < hi (nm)")
# [analysis]: optional choices of the classic analysis (call argument > manifest > automatic)
ANALYSIS = {
    "band_edge_window_nm": Key("range", check=_RANGE),
    "solution_band_edge_window_nm": Key("range", check=_RANGE),
}
# keys every matrix entry may carry
_MATRIX_COMMON = {
    "file": Key("str", required=True),
    "format": Key("str", choices=reader_registry.registered),  # a format registered later is accepted too
    "nan": Key("str", default="error", choices=NAN_POLICIES),
    "units": Key("str", choices=VALUE_UNITS),
}
_FLUENCE = {
    "fluence_photons_cm2": Key("float", check=_FLUENCE_RANGE),
    "pump_energy_density_uJ_cm2": Key("float", check=_between(1e-6, 1e6, "uJ/cm^2")),
}
# TA/TR entries: one file, or several scans of one measurement averaged per pixel; chirp correction
_DELAY_COMMON = {
    **_MATRIX_COMMON,
    "file": Key("str"),
    "files": Key("files"),
    "scan_outliers": Key("str", default="none", choices=SCAN_OUTLIERS),
    "chirp_file": Key("str"),
    "chirp": Key("str", choices=("fit",)),
}
SOLUTION_TA = {**_DELAY_COMMON, **_FLUENCE}
FILM_SEC = {
    **_MATRIX_COMMON,
    "kind": Key("str", required=True, choices=SEC_KINDS),
    "cycle": Key("int", required=True, check=_INT1),
    # optional: without it the order of the potentials in the file decides (io/sweeps.py)
    "direction": Key("str", choices=DIRECTIONS),
}
FILM_TR = {**_DELAY_COMMON, **_FLUENCE, "potential_V": Key("float", required=True, check=_POTENTIAL)}
FILM_TA = {**FILM_TR, "reflection_corrected": Key("bool", required=True)}


# ----------------------------------------------------------------------------- parsed manifest
@dataclass
class Entry:
    """One matrix file named by the manifest (``field`` is e.g. ``film.ta[2]``, 1-based)."""

    field: str
    file: str
    format: str | None = None
    nan: str = "error"
    units: str | None = None
    fluence_photons_cm2: float | None = None
    fluence_given: str = ""  # the manifest's own words, for messages and attrs
    potential_V: float | None = None
    reflection_corrected: bool | None = None
    kind: str | None = None
    cycle: int | None = None
    direction: str | None = None
    files: str | list | None = None  # scan files: a list, or a glob inside the experiment folder
    scan_outliers: str = "none"
    chirp_file: str | None = None
    chirp: str | None = None


@dataclass
class Manifest:
    """The validated content of ``experiment.toml`` (fields missing after errors stay None)."""

    path: Path
    name: str | None = None
    synthetic: bool = False
    description: str = ""
    sample: dict = field(default_factory=dict)
    pump_wavelength_nm: float | None = None
    solution: dict | None = None  # absorbance_file, pump_absorbance, ta: list[Entry]
    film: dict | None = None  # absorptance_file, reflectance_file, open_circuit_potential_V, ...
    analysis: dict = field(default_factory=dict)  # band_edge_window_nm, solution_band_edge_window_nm

    @property
    def folder(self) -> Path:
        return self.path.parent


class _Problems:
    """Collects problems, each prefixed by the manifest path and field."""

    def __init__(self, path: Path, sink: list[str]):
        self.path, self.sink = path, sink

    def add(self, field_name: str, message: str) -> None:
        self.sink.append(f"{_where(self.path, field=field_name)}: {message}")


def _show(value) -> str:
    """A manifest value as the user would write it (1e+14, not 100000000000000.0)."""
    if isinstance(value, float):
        return f"{value:.12g}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)


def _type_ok(value, type_: str) -> bool:
    if type_ == "str":
        return isinstance(value, str)
    if type_ == "bool":
        return isinstance(value, bool)
    if type_ == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_ == "table":
        return isinstance(value, dict)
    if type_ == "tables":
        return isinstance(value, list) and all(isinstance(v, dict) for v in value)
    if type_ == "column":
        return isinstance(value, (str, int)) and not isinstance(value, bool)
    if type_ == "files":
        return isinstance(value, str) or (isinstance(value, list) and bool(value)
                                          and all(isinstance(v, str) for v in value))
    if type_ == "range":
        return (isinstance(value, list) and len(value) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
    raise AssertionError(type_)


_TYPE_WORDS = {"str": "a string", "bool": "true or false", "int": "an integer", "float": "a number",
               "table": "a table [..]", "tables": "an array of tables [[..]]",
               "range": "an array of two numbers [lo, hi]",
               "column": "a column name (string) or 1-based column number",
               "files": "a non-empty array of file names or one glob pattern (string)"}


def _check_table(table: dict, schema: dict, prefix: str, problems: _Problems) -> dict:
    """Validate one TOML table against ``schema``; returns the clean values (defaults filled).

    Invalid values are reported and left out of the result (so callers see ``None``).
    """
    out = {}
    for key in table:
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            where = f"[{prefix}]" if prefix else "the top level"
            problems.add(f"{prefix + '.' if prefix else ''}{key}",
                         f"unknown key '{key}' in {where}; valid keys: {', '.join(schema)}{hint}")
    for key, spec in schema.items():
        name = f"{prefix}.{key}" if prefix else key
        if key not in table:
            if spec.required:
                problems.add(name, f"missing required key '{key}' ({_TYPE_WORDS[spec.type]})")
            out[key] = spec.default
            continue
        value = table[key]
        if not _type_ok(value, spec.type):
            problems.add(name, f"expected {_TYPE_WORDS[spec.type]}, got {value!r}")
            out[key] = None
            continue
        if spec.type == "range":
            value = [float(v) for v in value]
            if not all(math.isfinite(v) for v in value):
                problems.add(name, f"expected two finite numbers, got {table[key]!r}")
                out[key] = None
                continue
        if spec.type == "float":
            value = float(value)
            if not math.isfinite(value):
                problems.add(name, f"expected a finite number, got {value!r}")
                out[key] = None
                continue
        choices = spec.choices() if callable(spec.choices) else spec.choices  # a registry answers at parse time
        if choices is not None and value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.add(name, f"got {_show(value)}; expected one of {', '.join(map(repr, choices))}{hint}")
            out[key] = None
            continue
        if spec.check is not None and not spec.check[0](value):
            problems.add(name, f"got {_show(value)}; expected {spec.check[1]}")
            out[key] = None
            continue
        if spec.type == "str" and spec.required and not value.strip():
            problems.add(name, "expected a non-empty string")
            out[key] = None
            continue
        out[key] = value
    return out


def energy_density_uJ_cm2_to_fluence(uJ_cm2: float, wavelength_nm: float) -> float:
    """Pulse energy density (uJ/cm^2) at ``wavelength_nm`` (nm) -> photon fluence (photons/cm^2)."""
    from bayesgain.physics import energy_density_nJ_cm2_to_fluence  # lazy: pulls in PyTensor

    return float(energy_density_nJ_cm2_to_fluence(1000.0 * uJ_cm2, wavelength_nm))


def _entries(raw: list, schema: dict, prefix: str, problems: _Problems, pump_nm) -> list[Entry]:
    out = []
    for k, table in enumerate(raw, start=1):
        name = f"{prefix}[{k}]"
        vals = _check_table(table, schema, name, problems)
        if "files" in schema:
            if ("file" in table) == ("files" in table):
                problems.add(name, "expected exactly one of file = \"...\" (one measurement) or files = "
                                   "[...] / \"glob\" (several scans averaged per pixel)"
                             + ("; both given" if "file" in table else ""))
                continue
            if vals.get("files") is not None:
                files = vals["files"]
                vals["file"] = files if isinstance(files, str) else files[0]
            if "chirp" in table and "chirp_file" in table:
                problems.add(name, "both chirp and chirp_file given; expected one chirp correction")
        if vals.get("file") is None:
            continue
        entry = Entry(field=name, file=vals["file"], files=vals.get("files"),
                      scan_outliers=vals.get("scan_outliers") or "none", chirp_file=vals.get("chirp_file"),
                      chirp=vals.get("chirp"), format=vals.get("format"), nan=vals.get("nan") or "error",
                      units=vals.get("units"), potential_V=vals.get("potential_V"),
                      reflection_corrected=vals.get("reflection_corrected"), kind=vals.get("kind"),
                      cycle=vals.get("cycle"), direction=vals.get("direction"))
        if "fluence_photons_cm2" in schema:
            has_f, has_e = "fluence_photons_cm2" in table, "pump_energy_density_uJ_cm2" in table
            if has_f and has_e:
                problems.add(name, "mixed units: both fluence_photons_cm2 and pump_energy_density_uJ_cm2 "
                                   "given; expected exactly one of them")
            elif not has_f and not has_e:
                problems.add(name, "missing pump fluence: expected exactly one of fluence_photons_cm2 "
                                   "(photons/cm^2) or pump_energy_density_uJ_cm2 (uJ/cm^2)")
            elif has_f and vals.get("fluence_photons_cm2") is not None:
                entry.fluence_photons_cm2 = vals["fluence_photons_cm2"]
                entry.fluence_given = f"fluence_photons_cm2 = {vals['fluence_photons_cm2']:g}"
            elif has_e and vals.get("pump_energy_density_uJ_cm2") is not None and pump_nm:
                uj = vals["pump_energy_density_uJ_cm2"]
                entry.fluence_photons_cm2 = energy_density_uJ_cm2_to_fluence(uj, pump_nm)
                entry.fluence_given = f"pump_energy_density_uJ_cm2 = {uj:g}"
        out.append(entry)
    return out


def parse_manifest(folder, problems: list[str]) -> Manifest | None:
    """Read and validate ``folder/experiment.toml``; problems are appended to ``problems``.

    Returns None only when the manifest cannot be read at all (missing file, TOML syntax error).
    """
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        problems.append(f"{folder}: experiment folder not found; expected a folder holding {MANIFEST_NAME}")
        return None
    if not path.is_file():
        problems.append(f"{path}: manifest not found; expected {MANIFEST_NAME} in the experiment folder")
        return None
    try:
        raw = read_toml(path)
    except TomlFileError as exc:
        problems.append(str(exc))
        return None
    p = _Problems(path, problems)
    top = _check_table(raw, TOP, "", p)
    m = Manifest(path=path, name=top["name"], synthetic=bool(top["synthetic"]),
                 description=top["description"] or "")
    # a missing/mistyped [sample] or [pump] is already reported once; don't list its keys too
    m.sample = _check_table(top["sample"], SAMPLE, "sample", p) if top["sample"] is not None else {}
    pump = _check_table(top["pump"], PUMP, "pump", p) if top["pump"] is not None else {}
    m.pump_wavelength_nm = pump.get("wavelength_nm")
    if top["solution"] is not None:
        sol = _check_table(top["solution"], SOLUTION, "solution", p)
        sol["ta"] = _entries(sol["ta"] or [], SOLUTION_TA, "solution.ta", p, m.pump_wavelength_nm)
        m.solution = sol
    if top["film"] is not None:
        film = _check_table(top["film"], FILM, "film", p)
        film["sec"] = _entries(film["sec"] or [], FILM_SEC, "film.sec", p, m.pump_wavelength_nm)
        film["ta"] = _entries(film["ta"] or [], FILM_TA, "film.ta", p, m.pump_wavelength_nm)
        film["tr"] = _entries(film["tr"] or [], FILM_TR, "film.tr", p, m.pump_wavelength_nm)
        m.film = film
    if top["analysis"] is not None:
        m.analysis = {k: v for k, v in _check_table(top["analysis"], ANALYSIS, "analysis", p).items()
                      if v is not None}
    if "solution" not in raw and "film" not in raw:
        p.add("solution", "expected at least one of the tables [solution] or [film]")
    if m.synthetic and not (folder / TRUTH_NAME).is_file():
        p.add("synthetic", f"synthetic = true but {folder / TRUTH_NAME} does not exist; expected the "
                           "true parameters beside the manifest")
    return m


# ----------------------------------------------------------------------------- truth.toml
def _flatten(prefix: str, value, out: dict) -> None:
    """Flatten nested TOML into ``dotted.key -> value`` attrs that NetCDF can store."""
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for k, v in enumerate(value):
            _flatten(f"{prefix}.{k}", v, out)
    elif isinstance(value, list):
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) and value:
            out[prefix] = [float(v) for v in value] if any(isinstance(v, float) for v in value) else list(value)
        elif all(isinstance(v, str) for v in value) and value:
            out[prefix] = list(value)
        else:  # empty or mixed lists: keep every element under an indexed key
            for k, v in enumerate(value):
                _flatten(f"{prefix}.{k}", v, out)
    elif isinstance(value, (datetime.date, datetime.time)):
        out[prefix] = value.isoformat()
    else:
        out[prefix] = value


def read_truth(folder, problems: list[str]) -> dict:
    """The flattened content of ``folder/truth.toml`` (``{}`` with a problem if unreadable)."""
    path = Path(folder) / TRUTH_NAME
    if not path.exists():
        return {}
    try:
        raw = read_toml(path)
    except TomlFileError as exc:
        problems.append(str(exc))
        return {}
    out: dict = {}
    _flatten("", raw, out)
    return out
