"""Model specifications: which components, which variants, which priors -- as data (TOML files in ``models/``).

A specification is a TOML file::

    name = "joint"
    description = "..."
    [components]            # each true/false
    cross_section = true
    charging = true
    photoluminescence = false
    gain = true
    dynamics = true
    reflection = true
    hole_trapping = false
    charged_emission = false
    [options]               # variant choices and data selection
    disorder = "gaussian"   # gaussian | effective-temperature | none | uniform
    auger = "transition-counting"   # transition-counting | free
    likelihood = "normal"   # normal | student-t
    ...
    [priors]                # one table per parameter: distribution name, its parameters, unit
    V_1S_V = { dist = "Normal", mu = -1.2, sigma = 0.2, unit = "V" }
    [pooling]               # with several experiments: spread of a pooled physical parameter
    V_1S_V = { dist = "HalfNormal", sigma = 0.05 }

Defaults for every option and prior live in :data:`DEFAULT_OPTIONS` / :data:`DEFAULT_PRIORS`; a
file only states what it changes.  Unknown components, options, distributions, distribution
arguments or parameter names are errors that list the valid names.

A specification can build on another one with ``extends = "joint"`` (a shipped model's name, or a
path ending in ``.toml``, relative to the extending file's folder) and state only what it changes:
its ``[components]`` and ``[options]`` entries replace the base's, each of its ``[priors]`` and
``[pooling]`` entries replaces the base's entry of that parameter whole.  Inherited priors and pooling
entries of parameters the derived model does not have are dropped (its own are checked as usual);
``name`` and ``description`` are never inherited.  The chain is resolved when the file is read, so a
:class:`ModelSpec` (and :meth:`ModelSpec.to_toml`, stored in every fit) is always complete.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import pathlib

from ..io.tomlfile import TomlFileError, read_toml

from .._shipped import shipped_folder
from .priors import DISTRIBUTIONS, prior_table

__all__ = ["ModelSpec", "SpecError", "load_spec", "spec_from_dict", "COMPONENTS", "DEFAULT_OPTIONS",
           "DEFAULT_PRIORS", "DISTRIBUTIONS", "MODELS_DIR", "available_models"]

MODELS_DIR = shipped_folder("models")


class SpecError(ValueError):
    """A model specification is invalid; the message names the file, the key and the valid choices."""


# [components] switch -> what it fits.  Each model component declares its own switches, their default and the
# priors of its parameters in its file (model/components/, collected at the end of this module); hole_trapping
# changes the cascade of other components and has no file of its own.
COMPONENTS = {
    "hole_trapping": "a fraction of the QDs with one photo-excited hole trapped (option hole_trapping_form)",
}

DEFAULT_COMPONENTS = {"hole_trapping": False}

# option name -> (default, allowed values or a type)
DEFAULT_OPTIONS = {
    # the charge fractions' law (model/components/charging_laws.py); "uniform": SI Fig. S6b, every QD at floor or
    # ceil of the <n_e> of the Gaussian-disorder law
    "disorder": ("gaussian", ("gaussian", "effective-temperature", "none", "uniform")),
    "auger": ("transition-counting", ("transition-counting", "free")),
    "likelihood": ("normal", ("normal", "student-t")),
    "single_exciton_decay": (True, bool),
    "gain_delays_ps": ([2.0, 8.0], list),
    "dynamics_delays_ps": ([8.0, 3000.0], list),
    "n_dynamics_delays": (14, int),
    "cross_section_delays_ps": ([1000.0, 3000.0], list),
    "subgap_delays_ps": ([0.5, 10.0], list),
    "quadrature_nodes": (0, int),  # 0: sized from a quick Fermi-Dirac fit (see GainModel.quadrature_nodes)
    "sweep_offset_sd_V": (0.01, float),
    # per-file fluence calibrations log c ~ Normal(0, fluence_log_sd): "centered" samples log c itself (right
    # when the data pin each file's <N>, as film TA does), "non-centered" samples z = log c / sd
    "fluence_calibration": ("centered", ("centered", "non-centered")),
    # lower bound of fluence_log_sd (its prior is placed on the excess above it): pump fluence is never reproducible
    # to better than ~1-2 % per run, and without a floor a true spread below the data's precision makes a funnel
    "fluence_log_sd_floor": (0.02, float),
    # the unconstrained coordinate of V_C for the sampler (same prior and posterior): "log" (PyMC's default) or
    # "softplus" (V_C = 1 mV x softplus(y): linear above a few mV, which straightens the V_C - sigma_1S ridge
    # of SEC-only fits; see bayesgain.model.transforms)
    "charging_energy_transform": ("log", ("log", "softplus")),
    "film_thickness_from": ("experiment", ("experiment",)),
    # film TA model discrepancy: "delay-gp" adds a smooth function of log delay per file (bayesgain.model.discrepancy)
    # "window-tail": a bleach of the photo-excited QDs in the 1S window with its own decay time (2S/higher bands,
    # hot carriers), shared by every file; "window-tail-basis": the same tail as amplitudes on the fixed decay times
    # window_tail_times_ps (a lifetime-density basis: linear in its parameters, so no amplitude-time funnel when
    # the data hardly see a tail; half-decade steps, because a tail between decade-spaced times biased tau_XX)
    "discrepancy": ("none", ("none", "delay-gp", "window-tail", "window-tail-basis")),
    "window_tail_times_ps": ([2.0, 6.0, 20.0, 60.0, 200.0, 600.0, 2000.0], list),
    "discrepancy_basis": (14, int),
    # error of a window average: "sem+scatter" = its standard error (known) plus a fitted extra scatter in
    # quadrature; "scatter" = the fitted scatter alone
    "measurement_error": ("scatter", ("scatter", "sem+scatter")),
    # hole trapping: "counting" = transition counting with the trapped hole off the band edge (absorption restored,
    # emission gone, Auger among band-edge carriers only); "emission" = the older A + eta x emission (emission lost)
    "hole_trapping_form": ("counting", ("counting", "emission")),
    # the pump through the film: "none" = one <N> per film TA file, uniform in depth; "beer-lambert" = each file's
    # <N> is its front value, falling as 10^(-A z) through a film of pump absorbance A (film.pump_absorbance, or the
    # absorptance spectrum at the pump wavelength), and every film TA prediction is the depth average
    # (physics.optics.pump_depth_profile)
    "pump_attenuation": ("none", ("none", "beer-lambert")),
}

_p = prior_table


# every parameter a model can have; ``component`` says which switch (or option) brings it in.  Here: the physical
# parameters several components share; the components add their own (end of this module)
DEFAULT_PRIORS = {
    # cross-section and fluence calibration
    "cross_section_cm2": _p("LogNormal", "cm^2", "400 nm absorption cross-section of the QDs (solution)",
                            "cross_section|gain|dynamics", mu=math.log(3.5e-14), sigma=0.7),
    "film_cross_section_ratio": _p("LogNormal", "1", "film / solution cross-section ratio (informative: close to 1)",
                                   "gain|dynamics", mu=0.0, sigma=0.1),
    "fluence_log_sd": _p("HalfNormal", "1", "log-normal spread of the true / nominal pump fluence of each file (the prior is "
                         "placed on its excess above the option fluence_log_sd_floor)",
                         "cross_section|gain|dynamics", sigma=0.1),
    # charging
    "V_1S_V": _p("Normal", "V", "1S(e) level potential vs the reference electrode", "charging|gain|dynamics",
                 mu=-1.2, sigma=0.2),
    "V_C_V": _p("LogNormal", "V", "charging energy per electron pair (weakly identified: informative prior)",
                "charging|gain|dynamics", mu=math.log(0.005), sigma=0.5),
    "sigma_1S_V": _p("HalfNormal", "V", "Gaussian disorder of the 1S(e) level potential",
                     "disorder=gaussian|disorder=uniform", sigma=0.2),
    "T_eff_K": _p("LogNormal", "K", "effective temperature of the Fermi-Dirac curve (no level disorder)",
                  "disorder=effective-temperature", mu=math.log(800.0), sigma=0.5),
    "pl_yield_1": _p("Beta", "1", "PL quantum yield of singly charged QDs relative to neutral", "photoluminescence",
                     alpha=2.0, beta=5.0),
    "pl_yield_2": _p("Beta", "1", "PL quantum yield of doubly charged QDs relative to neutral", "photoluminescence",
                     alpha=1.0, beta=8.0),
    # dynamics
    "tau_xx_ps": _p("LogNormal", "ps", "neutral biexciton Auger lifetime 1/k_xx", "gain|dynamics|cross_section",
                    mu=math.log(300.0), sigma=0.7),
    # a prior on the rate, not on tau_x: a LogNormal tau_x has no mass at tau_x = infinity, the paper's choice
    # and what an experiment without single-exciton decay shows; the posterior then kept a decay the data did
    # not have and tau_XX took the difference (-1.4 %, truth on the interval's edge in 2 of 3 seeds)
    "k_x_per_ns": _p("HalfNormal", "1/ns", "single-exciton decay rate k_x = 1/tau_x (option single_exciton_decay; "
                     "0 = no decay; tau_x_ps is reported beside it)", "gain|dynamics|cross_section", sigma=0.2),
    "trion_rate_factor": _p("LogNormal", "1", "trion Auger rates (N = 1, n >= 1) / transition-counting scaling",
                            "auger=free", mu=0.0, sigma=0.5),
    "triexciton_rate_factor": _p("LogNormal", "1", "triexciton Auger rate (N = 3, n = 0) / scaling law",
                                 "auger=free", mu=0.0, sigma=0.3),
    "hole_trap_fraction": _p("Beta", "1", "fraction of QDs with a trapped photo-excited hole (hole_trapping_form)",
                             "hole_trapping", alpha=1.5, beta=4.0),
    # reflection
    "reflection_scale": _p("LogNormal", "1", "Delta R at this potential / Delta R measured at open circuit",
                           "reflection", mu=0.0, sigma=0.3),
    # likelihood
    "student_nu": _p("Gamma", "1", "degrees of freedom of the Student-t likelihood", "likelihood=student-t",
                     alpha=2.0, beta=0.1),
}

# physical parameters that are pooled across experiments when [pooling] names them
POOLABLE = ("cross_section_cm2", "film_cross_section_ratio", "V_1S_V", "V_C_V", "sigma_1S_V", "T_eff_K",
            "tau_xx_ps", "k_x_per_ns", "trion_rate_factor", "triexciton_rate_factor", "hole_trap_fraction")


def _suggest(name, valid):
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclasses.dataclass
class ModelSpec:
    """A validated model specification. ``priors`` holds only the parameters this model uses."""

    name: str
    description: str
    components: dict
    options: dict
    priors: dict
    pooling: dict
    source: str = "<dict>"
    text: str = ""

    def uses(self, condition):
        """True when a parameter's ``component`` condition ("a|b", "disorder=gaussian", ...) holds."""
        for part in condition.split("|"):
            if "=" in part:
                key, value = part.split("=")
                if str(self.options.get(key)) == value:
                    return True
            elif part in self.components:
                if self.components[part]:
                    return True
            elif part in self.options:
                if self.options[part] is True:
                    return True
        return False

    def to_toml(self):
        """The full specification (defaults filled in) as TOML text."""
        lines = [f"name = {_toml(self.name)}", f"description = {_toml(self.description)}", "", "[components]"]
        lines += [f"{k} = {_toml(v)}" for k, v in self.components.items()]
        lines += ["", "[options]"] + [f"{k} = {_toml(v)}" for k, v in self.options.items()]
        lines += ["", "[priors]"]
        for k, p in self.priors.items():
            args = ", ".join(f"{a} = {_toml(v)}" for a, v in p.items() if a not in ("doc", "component"))
            lines.append(f"{k} = {{ {args} }}")
        if self.pooling:
            lines += ["", "[pooling]"]
            for k, p in self.pooling.items():
                args = ", ".join(f"{a} = {_toml(v)}" for a, v in p.items())
                lines.append(f"{k} = {{ {args} }}")
        return "\n".join(lines) + "\n"


def _toml(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)


# scale, shape and rate arguments: a non-positive value makes the prior improper (the sampler fails late)
_POSITIVE_ARGS = {"sigma", "nu", "alpha", "beta", "lam"}


def _check_dist(where, spec, source):
    if not isinstance(spec, dict) or "dist" not in spec:
        raise SpecError(f"{source}: {where} must be a table with a 'dist' key, e.g. "
                        f"{{ dist = \"Normal\", mu = 0.0, sigma = 1.0 }}; got {spec!r}")
    dist = spec["dist"]
    if dist not in DISTRIBUTIONS:
        raise SpecError(f"{source}: {where}: unknown distribution {dist!r}{_suggest(dist, DISTRIBUTIONS)}; valid: "
                        f"{', '.join(sorted(DISTRIBUTIONS))}")
    allowed = DISTRIBUTIONS[dist][1]
    args = {k: v for k, v in spec.items() if k not in ("dist", "unit", "doc", "component")}
    bad = sorted(set(args) - allowed)
    if bad:
        raise SpecError(f"{source}: {where}: {dist} has no argument(s) {bad}; valid: {sorted(allowed)}")
    missing = sorted(allowed - set(args) - {"lower", "upper"} if dist == "TruncatedNormal" else allowed - set(args))
    if missing:
        raise SpecError(f"{source}: {where}: {dist} needs argument(s) {missing}")
    for k, v in args.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise SpecError(f"{source}: {where}: argument {k} must be a finite number, got {v!r}")
        if k in _POSITIVE_ARGS and v <= 0:
            raise SpecError(f"{source}: {where}: {dist} argument {k} must be > 0, got {v!r}")
    lo, hi = args.get("lower"), args.get("upper")
    if lo is not None and hi is not None and not lo < hi:
        raise SpecError(f"{source}: {where}: {dist} needs lower < upper, got lower = {lo!r}, upper = {hi!r}")


_TABLES = ("components", "options", "priors", "pooling")


def _read_toml(path):
    """(data, text) of a model TOML file; a file that is not TOML (binary, UTF-16, a folder) is a SpecError."""
    try:
        data = read_toml(path)
    except TomlFileError as exc:
        raise SpecError(f"{exc} (--model takes a model TOML file or a shipped name)") from None
    return data, path.read_text(encoding="utf-8-sig")


def _base_path(value, source, base_dir):
    """The file an ``extends`` value names: a path ending in .toml, or the name of a shipped model."""
    shipped = ", ".join(available_models())
    if not isinstance(value, str) or not value:
        raise SpecError(f"{source}: extends must be a shipped model name ({shipped}) or a path ending in .toml, "
                        f"got {value!r}")
    if value.endswith(".toml"):
        path = pathlib.Path(value)
        path = path if path.is_absolute() or base_dir is None else pathlib.Path(base_dir) / path
        if not path.is_file():
            raise SpecError(f"{source}: extends = {value!r}: no such file {path}")
        return path
    path = MODELS_DIR / f"{value}.toml"
    if not path.is_file():
        raise SpecError(f"{source}: extends = {value!r}: no shipped model of that name"
                        f"{_suggest(value, available_models())}; shipped: {shipped} (or give a path ending in .toml)")
    return path


def _resolve_extends(data, source, base_dir, chain):
    """``data`` merged over the chain of specifications its ``extends`` names.

    Returns the merged dict (without ``extends``) and the set of ("priors" | "pooling", parameter)
    entries that came from a base.  ``chain`` holds the resolved paths already on the way (cycles).
    """
    if "extends" not in data:
        return data, frozenset()
    data = dict(data)
    path = _base_path(data.pop("extends"), source, base_dir)
    key = path.resolve()
    if key in chain:
        raise SpecError(f"{source}: extends cycle: {' -> '.join(str(p) for p in (*chain, key))}")
    base, _ = _read_toml(path)
    base, inherited = _resolve_extends(base, str(path), path.parent, (*chain, key))
    _validated(base, str(path), "", inherited)  # a broken base is reported against its own file
    merged = dict(data)
    for table in _TABLES:
        own = data.get(table, {})
        if not isinstance(own, dict):
            raise SpecError(f"{source}: [{table}] must be a table, got {own!r}")
        merged[table] = {**base.get(table, {}), **own}
        inherited = {e for e in inherited if not (e[0] == table and e[1] in own)}
        if table in ("priors", "pooling"):
            inherited |= {(table, k) for k in base.get(table, {}) if k not in own}
    return merged, frozenset(inherited)


def spec_from_dict(data, source="<dict>", text="", base_dir=None):
    """Validate a parsed specification (dict as from TOML), resolve its ``extends`` and fill in defaults.

    ``base_dir``: the folder an ``extends = "….toml"`` path is relative to (the file's folder).
    """
    chain = (pathlib.Path(source).resolve(),) if base_dir is not None else ()
    data, inherited = _resolve_extends(copy.deepcopy(data), source, base_dir, chain)
    return _validated(data, source, text, inherited)


def _validated(data, source, text, inherited):
    """The :class:`ModelSpec` of a resolved specification; unused ``inherited`` priors/pooling entries are dropped."""
    data = copy.deepcopy(data)
    allowed_top = {"name", "description", "extends", *_TABLES}
    bad = sorted(set(data) - allowed_top)
    if bad:
        raise SpecError(f"{source}: unknown top-level key(s) {bad}; valid: {sorted(allowed_top)}")
    for table in _TABLES:
        if not isinstance(data.get(table, {}), dict):
            raise SpecError(f"{source}: [{table}] must be a table, got {data[table]!r}")
    components = _validated_components(data.get("components", {}), source)
    options = _validated_options(data.get("options", {}), source)
    spec = ModelSpec(name=str(data.get("name", "unnamed")), description=str(data.get("description", "")),
                     components=components, options=options, priors={}, pooling={}, source=source, text=text)
    spec.priors = _validated_priors(data.get("priors", {}), source, spec, inherited)
    spec.pooling = _validated_pooling(data.get("pooling", {}), source, spec.priors, inherited)
    return spec


def _validated_components(table, source):
    """The [components] table over the defaults, with the components each one needs checked."""
    components = dict(DEFAULT_COMPONENTS)
    for k, v in table.items():
        if k not in COMPONENTS:
            raise SpecError(f"{source}: [components] unknown component {k!r}{_suggest(k, COMPONENTS)}; valid: "
                            f"{', '.join(COMPONENTS)}")
        if not isinstance(v, bool):
            raise SpecError(f"{source}: [components] {k} must be true or false, got {v!r}")
        components[k] = v
    if not any(components.values()):
        raise SpecError(f"{source}: [components] every component is switched off")
    if components["hole_trapping"] and not (components["gain"] or components["dynamics"]):
        raise SpecError(f"{source}: [components] hole_trapping needs gain or dynamics")
    from .components import registered

    for c in registered():
        for switch in (s for s in c.switches if components[s]):
            if c.requires and not any(components[r] for r in c.requires):
                why = f" ({c.requires_why})" if c.requires_why else ""
                raise SpecError(f"{source}: [components] {switch} needs {' or '.join(c.requires)}{why}")
            clash = [x for x in c.excludes if components[x]]
            if clash:
                raise SpecError(f"{source}: [components] {switch} and {clash[0]} cannot be on together; fit each and "
                                "compare them (bayesgain compare)")
    return components


def _validated_options(table, source):
    """The [options] table over the defaults, each value checked against its kind (choice, number, flag, range)."""
    options = {k: v[0] for k, v in DEFAULT_OPTIONS.items()}
    for k, v in table.items():
        if k not in DEFAULT_OPTIONS:
            raise SpecError(f"{source}: [options] unknown option {k!r}{_suggest(k, DEFAULT_OPTIONS)}; valid: "
                            f"{', '.join(DEFAULT_OPTIONS)}")
        options[k] = _validated_option(k, v, source)
    return options


def _validated_option(k, v, source):
    """One option's value, checked against what :data:`DEFAULT_OPTIONS` allows (floats and ranges as floats)."""
    _, allowed = DEFAULT_OPTIONS[k]
    if isinstance(allowed, tuple):
        if v not in allowed:
            raise SpecError(f"{source}: [options] {k} = {v!r} is not one of {list(allowed)}")
    elif allowed is float:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
            raise SpecError(f"{source}: [options] {k} must be a positive number, got {v!r}")
        v = float(v)
    elif allowed is int:
        if not isinstance(v, int) or isinstance(v, bool) or v < (0 if k == "quadrature_nodes" else 1):
            raise SpecError(f"{source}: [options] {k} must be a positive integer, got {v!r}")
    elif allowed is bool:
        if not isinstance(v, bool):
            raise SpecError(f"{source}: [options] {k} must be true or false, got {v!r}")
    elif k == "window_tail_times_ps":  # decay times of the tail basis: distinct, positive, increasing
        numbers = isinstance(v, list) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        if not (numbers and v[0] > 0 and all(a < b for a, b in zip(v, v[1:]))):
            raise SpecError(f"{source}: [options] {k} must be a list of increasing decay times > 0 ps, got {v!r}")
        v = [float(x) for x in v]
    elif allowed is list:
        if (not isinstance(v, list) or len(v) != 2 or not all(isinstance(x, (int, float)) for x in v)
                or not 0 <= v[0] < v[1]):
            raise SpecError(f"{source}: [options] {k} must be [low, high] in ps with 0 <= low < high, got {v!r}")
        v = [float(x) for x in v]
    return v


def _validated_priors(table, source, spec, inherited):
    """The priors of every parameter ``spec`` uses: the defaults with the [priors] table's overrides checked."""
    used = {k: copy.deepcopy(p) for k, p in DEFAULT_PRIORS.items() if spec.uses(p["component"])}
    if not spec.options["single_exciton_decay"]:
        used.pop("k_x_per_ns", None)
    table = _renamed_priors(table, source)
    for k, p in table.items():
        if k not in DEFAULT_PRIORS:
            raise SpecError(f"{source}: [priors] unknown parameter {k!r}{_suggest(k, DEFAULT_PRIORS)}; valid: "
                            f"{', '.join(DEFAULT_PRIORS)}")
        if k not in used and (("priors", k) in inherited
                              or (k == "k_x_per_ns" and ("priors", "tau_x_ps") in inherited)):
            continue
        if k not in used:
            raise SpecError(f"{source}: [priors] {k} is not used by this model (it belongs to "
                            f"{DEFAULT_PRIORS[k]['component']!r}); parameters of this model: {', '.join(used)}")
        _check_dist(f"[priors] {k}", p, source)
        unit = DEFAULT_PRIORS[k]["unit"]
        if "unit" in p and p["unit"] != unit:
            raise SpecError(f"{source}: [priors] {k} is in {unit!r}, not {p['unit']!r}")
        used[k] = {**p, "unit": unit, "doc": DEFAULT_PRIORS[k]["doc"], "component": DEFAULT_PRIORS[k]["component"]}
    for k, p in used.items():
        _check_dist(f"default prior of {k}", p, "bayesgain")
    return used


def _renamed_priors(table, source):
    """``table`` with a prior on the retired ``tau_x_ps`` (ps) restated on ``k_x_per_ns`` (1/ns): a LogNormal
    lifetime is a LogNormal rate (mu -> ln 1000 - mu, same sigma), so older specs and saved fits build the same
    model; other distributions cannot be restated and are refused."""
    if "tau_x_ps" not in table:
        return table
    p = table["tau_x_ps"]
    if "k_x_per_ns" in table or not isinstance(p, dict) or p.get("dist") != "LogNormal" or "mu" not in p:
        raise SpecError(f"{source}: [priors] tau_x_ps is now set as the rate k_x_per_ns (1/ns, 0 = no single-exciton "
                        "decay), e.g. k_x_per_ns = { dist = \"HalfNormal\", sigma = 0.2 }")
    out = {k: v for k, v in table.items() if k != "tau_x_ps"}
    out["k_x_per_ns"] = {**{k: v for k, v in p.items() if k != "unit"}, "mu": math.log(1000.0) - float(p["mu"]),
                         "unit": "1/ns"}
    return out


def _validated_pooling(table, source, priors, inherited):
    """The [pooling] table: a positive spread distribution per pooled parameter of the model (Normal/LogNormal
    prior)."""
    pooling = {}
    if "tau_x_ps" in table and "k_x_per_ns" not in table:  # retired name: a log-scale spread is the same for 1/tau
        table = {("k_x_per_ns" if k == "tau_x_ps" else k): v for k, v in table.items()}
        inherited = inherited | {("pooling", "k_x_per_ns")} if ("pooling", "tau_x_ps") in inherited else inherited
    for k, p in table.items():
        if k not in POOLABLE:
            raise SpecError(f"{source}: [pooling] {k!r} cannot be pooled{_suggest(k, POOLABLE)}; poolable: "
                            f"{', '.join(POOLABLE)}")
        if k not in priors and ("pooling", k) in inherited:
            continue
        if k not in priors:
            raise SpecError(f"{source}: [pooling] {k} is not a parameter of this model")
        if priors[k]["dist"] not in ("Normal", "LogNormal"):
            how = " (inherited through extends)" if ("pooling", k) in inherited else ""
            raise SpecError(f"{source}: [pooling] {k}{how}: pooling needs a Normal or LogNormal prior, not "
                            f"{priors[k]['dist']}")
        _check_dist(f"[pooling] {k}", p, source)
        if p["dist"] not in ("HalfNormal", "HalfStudentT", "Exponential", "Gamma", "LogNormal"):
            raise SpecError(f"{source}: [pooling] {k}: the spread needs a positive distribution "
                            f"(HalfNormal, HalfStudentT, Exponential, Gamma, LogNormal), not {p['dist']}")
        pooling[k] = dict(p)
    return pooling


def available_models():
    """Names of the specifications shipped in ``models/``."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.toml"))


def load_spec(path_or_name):
    """Read a specification from a TOML file path, or by name from the shipped ``models/`` folder."""
    if isinstance(path_or_name, ModelSpec):
        return path_or_name
    path = pathlib.Path(path_or_name)
    if not path.exists() and path.suffix != ".toml" and (MODELS_DIR / f"{path_or_name}.toml").exists():
        path = MODELS_DIR / f"{path_or_name}.toml"
    if not path.exists():
        raise SpecError(f"model specification {str(path_or_name)!r} not found; shipped models: "
                        f"{', '.join(available_models())} (in {MODELS_DIR})")
    data, text = _read_toml(path)
    return spec_from_dict(data, source=str(path), text=text, base_dir=path.parent)


def _declared_by_components():
    """Add every registered component's switches (with their defaults) and parameter priors to the tables."""
    from .components import registered

    own = {k: (COMPONENTS.pop(k), DEFAULT_COMPONENTS.pop(k)) for k in list(COMPONENTS)}
    for c in registered():
        for switch in c.switches:
            COMPONENTS[switch] = c.switch_docs[switch]
            DEFAULT_COMPONENTS[switch] = c.default_on
        for name, p in c.priors.items():
            if name in DEFAULT_PRIORS:
                raise ValueError(f"model component {c.name!r} declares the prior of {name!r} a second time")
            DEFAULT_PRIORS[name] = p
    for k, (doc, on) in own.items():  # the spec's own switches after the components' (the order of to_toml)
        COMPONENTS[k], DEFAULT_COMPONENTS[k] = doc, on

_declared_by_components()
