"""Which components of a model spec the loaded experiments can feed: the effective spec plus notes.

A shipped spec asks for every component; a lab's folder holds what that lab measured.  Where data a
component needs are simply absent and nothing else depends on them, the component is switched off
and a note says so (it is printed in report.md):

* ``reflection`` without transient reflection (TR) when the film TA is declared reflection-corrected
  (``reflection_corrected = true`` in experiment.toml): the correction was made upstream, there is
  no Delta R scale left to fit;
* ``photoluminescence`` without SEC PL sweeps.

Components whose data carry the physics (``cross_section`` without solution TA, ``charging`` without
SEC absorption, ``gain``/``dynamics`` without film TA, and raw film TA without TR to correct it) are
refused with a one-line reason.  With several experiments a switch is per fit: reflection stays on
when any experiment has raw TA with TR (the others then reduce without sub-gap points, and the
Delta R sensitivity of their corrected TA is zero); PL must be measured by all or none.
"""

from __future__ import annotations

import dataclasses

__all__ = ["ComponentResolution", "resolve_components", "data_available"]


@dataclasses.dataclass
class ComponentResolution:
    """``spec``: the spec the model is built from (components switched off, their priors dropped);
    ``per_experiment``: the component switches each experiment is reduced with; ``notes``: what was
    switched off and why, one sentence each."""

    spec: object
    per_experiment: list
    notes: list


def _has(tree, path, var=None):
    try:
        node = tree[path]
    except KeyError:
        return False
    return var is None or var in node


def data_available(tree):
    """What one experiment DataTree holds, as the flags the components need."""
    ta = _has(tree, "film/ta", "dA")
    corrected = bool(tree["film/ta"]["reflection_corrected"].values.all()) if ta else False
    return {
        "solution_ta": _has(tree, "solution", "ta"),
        "sec_absorption": _has(tree, "film/sec", "absorption"),
        "sec_photoluminescence": _has(tree, "film/sec", "photoluminescence"),
        "film_ta": ta,
        "film_ta_corrected": corrected,
        "film_tr": _has(tree, "film/tr", "dR"),
    }


_REQUIRED = {
    "cross_section": ("solution_ta", "solution TA ([[solution.ta]] in experiment.toml)"),
    "charging": ("sec_absorption", "SEC absorption sweeps ([[film.sec]] with kind = \"absorption\")"),
    "gain": ("film_ta", "film TA ([[film.ta]])"),
    "dynamics": ("film_ta", "film TA ([[film.ta]])"),
}


def resolve_components(spec, trees, names):
    """The effective components of ``spec`` for the experiments ``trees`` (named ``names``).

    Returns a :class:`ComponentResolution`; raises ValueError naming the experiment, the component
    and the missing data where a required component has no data.
    """
    comp = dict(spec.components)
    have = [data_available(t) for t in trees]
    per = [dict(comp) for _ in trees]
    notes = []
    for c, (flag, words) in _REQUIRED.items():
        if not comp.get(c):
            continue
        for name, h in zip(names, have):
            if not h[flag]:
                raise ValueError(f"experiment {name}: the {c} component needs {words}; this experiment has none "
                                 f"(switch it off in the model spec: {c} = false)")
    if comp.get("gain") or comp.get("dynamics"):
        for name, h in zip(names, have):
            if not h["film_ta_corrected"] and not h["film_tr"]:
                raise ValueError(f"experiment {name}: film TA with reflection_corrected = false needs transient "
                                 "reflection ([[film.tr]] at open circuit) to be corrected; give the TR files, or "
                                 "declare reflection_corrected = true if the TA is already corrected")
    if comp.get("photoluminescence"):
        pl = [h["sec_photoluminescence"] for h in have]
        if not any(pl):
            comp["photoluminescence"] = False
            notes.append("photoluminescence component switched off: there are no SEC photoluminescence sweeps "
                         "(kind = \"photoluminescence\")")
        elif not all(pl):
            missing = [n for n, p in zip(names, pl) if not p]
            raise ValueError(f"experiment {missing[0]}: the photoluminescence component needs SEC photoluminescence "
                             "sweeps in every experiment of the fit; this one has none (switch it off: "
                             "photoluminescence = false)")
    if comp.get("reflection"):
        usable = [(not h["film_ta_corrected"]) and h["film_tr"] for h in have]
        why = {n: ("there is no TR data" if not h["film_tr"] else "its TR data are not needed")
               for n, h in zip(names, have)}
        if not any(usable):
            comp["reflection"] = False
            reasons = sorted(set(why.values()))
            notes.append("reflection component switched off: the film TA is declared reflection-corrected "
                         f"(reflection_corrected = true) and {' / '.join(reasons)}")
        else:
            for i, (name, u) in enumerate(zip(names, usable)):
                if not u:
                    per[i]["reflection"] = False
                    notes.append(f"experiment {name}: film TA declared reflection-corrected and {why[name]}: "
                                 "no sub-gap points; its reflection scales follow their prior")
    for p in per:
        p["photoluminescence"] = comp["photoluminescence"]
        if not comp["reflection"]:
            p["reflection"] = False
    return ComponentResolution(spec=spec_with_components(spec, comp), per_experiment=per, notes=notes)


def spec_with_components(spec, components):
    """A copy of ``spec`` with ``components``, keeping only the priors a component still uses."""
    if components == spec.components:
        return spec
    out = dataclasses.replace(spec, components=dict(components), priors={}, pooling=dict(spec.pooling))
    out.priors = {k: p for k, p in spec.priors.items() if out.uses(p["component"])}
    out.pooling = {k: p for k, p in spec.pooling.items() if k in out.priors}
    return out
