"""Priors as data: the distributions a spec may name and the table form of one prior.

Kept apart from :mod:`.spec` so that a model component can declare the priors of its own parameters in its
own file (``Component.priors``) without importing the spec module that collects them.
"""

from __future__ import annotations

__all__ = ["DISTRIBUTIONS", "prior_table"]

# distribution name -> (PyMC class name, allowed keyword arguments)
DISTRIBUTIONS = {
    "Normal": ("Normal", {"mu", "sigma"}),
    "HalfNormal": ("HalfNormal", {"sigma"}),
    "LogNormal": ("LogNormal", {"mu", "sigma"}),
    "TruncatedNormal": ("TruncatedNormal", {"mu", "sigma", "lower", "upper"}),
    "StudentT": ("StudentT", {"nu", "mu", "sigma"}),
    "HalfStudentT": ("HalfStudentT", {"nu", "sigma"}),
    "Beta": ("Beta", {"alpha", "beta"}),
    "Gamma": ("Gamma", {"alpha", "beta"}),
    "InverseGamma": ("InverseGamma", {"alpha", "beta"}),
    "Exponential": ("Exponential", {"lam"}),
    "Uniform": ("Uniform", {"lower", "upper"}),
}


def prior_table(dist, unit, doc, component=None, **kw):
    """One default prior: distribution, unit, a line of doc, the spec condition that brings the parameter in
    (``"a|b"`` switches, ``"option=value"``; None in a component's ``priors``: the component's own switches,
    filled in when it is registered), and the distribution's arguments."""
    return {"dist": dist, "unit": unit, "doc": doc, "component": component, **kw}
