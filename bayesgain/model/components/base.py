"""What every model component shares: the :class:`Component` base, the registry, the :class:`BuildContext`.

A component is one kind of observation with its likelihood (solution TA, SEC, film TA, sub-gap TR).  It says
which spec switches turn it on, which reduced-data variables it reads, whether it needs the shared Auger
cascade, and adds its variables to the ``pm.Model`` under construction in two steps: ``parameters(ctx)``
(variables other components read, created before any likelihood: the free-variable order, which nutpie's
seeded draws depend on, is shared parameters, then every component's ``parameters``, then every ``add``)
and ``add(ctx)`` (its own variables and likelihood).  A new component is one file in this package: a
subclass decorated with :func:`register`, its ``order`` placing it among the others, with its spec switches and
the default priors of its own parameters as class attributes (``switch_docs``, ``default_on``, ``priors``).
"""

from __future__ import annotations

import numpy as np

from ..priors import DISTRIBUTIONS

__all__ = ["Component", "BuildContext", "register", "get", "registered", "active", "prior_variable"]

_REGISTRY = {}


def register(cls):
    """Class decorator: one instance of ``cls`` in the registry under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"model component {cls.name!r} is registered twice")
    for p in cls.priors.values():  # a prior without a condition comes with the component's own switches
        if p["component"] is None:
            p["component"] = "|".join(cls.switches)
    _REGISTRY[cls.name] = cls()
    return cls


def registered():
    """Every registered component, in build order."""
    return sorted(_REGISTRY.values(), key=lambda c: c.order)


def get(name):
    """The registered component ``name``; a KeyError lists the names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no model component {name!r}; registered: {', '.join(c.name for c in registered())}") from None


def active(spec):
    """The components the spec switches on, in build order."""
    return [c for c in registered() if c.is_on(spec)]


class Component:
    """One kind of observation and its likelihood; subclasses set the class attributes and ``add``."""

    name = ""
    switches = ()  # spec [components] flags: the component is on when any of them is
    observed = ()  # likelihood names it can add (each only when its own switch is on)
    data = ()  # reduced-data variables it reads (bayesgain.model.data)
    needs_cascade = False  # reads the shared Auger cascade (BuildContext.cascade)
    order = 0.0  # build order among the components
    switch_docs = {}  # every switch of ``switches`` -> one line on what it fits (the spec's [components] table)
    default_on = True  # the switches' value in a spec that does not set them
    requires = ()  # switches of which one must be on beside this component's
    requires_why = ""  # said with the refusal when none is
    excludes = ()  # switches that cannot be on with this component's
    priors = {}  # parameter -> default prior (``priors.prior_table``) of the parameters this component owns

    def is_on(self, spec):
        return any(spec.components.get(s) for s in self.switches)

    def observed_names(self, spec):
        return [n for n in self.observed if spec.components.get(n)]

    def check_data(self, data):
        missing = [v for v in self.data if v not in data]
        if missing:
            raise ValueError(f"the {self.name} component needs the reduced data {missing}; switch it off in the "
                             f"model spec ({' = false, '.join(self.switches)} = false)")

    def parameters(self, ctx):
        """Variables other components read (created before any component's ``add``)."""

    def add(self, ctx):
        raise NotImplementedError


def prior_variable(name, p, **kw):
    """The prior ``p`` (a spec table) as a model variable ``name``, or unnamed (``.dist``) when name is None."""
    import pymc as pm

    cls = getattr(pm, DISTRIBUTIONS[p["dist"]][0])
    args = {k: v for k, v in p.items() if k not in ("dist", "unit", "doc", "component")}
    return cls.dist(**args, **kw) if name is None else cls(name, **args, **kw)


class BuildContext:
    """What the components of one build share: the spec, the reduced data and sizing, the experiment constants,
    the physical parameters ``P`` and (when a component needs it) the Auger ``cascade``; components leave what
    others read as attributes (``sec_fractions``, ``reflection_scale``, ``film``...)."""

    def __init__(self, spec, data, names, layout, n_max, n_max_film, n_max_solution, quadrature_nodes):
        import pytensor.tensor as pt

        self.spec, self.data, self.names, self.layout = spec, data, names, layout
        self.components, self.options = spec.components, spec.options
        self.n_max, self.n_max_film, self.n_max_solution = n_max, n_max_film, n_max_solution
        self.nodes = quadrature_nodes
        self.n_exp = len(names)
        self.g_e = int(data["experiment_g_e"].values[0])
        self.g_h = int(data["experiment_g_h"].values[0])
        if not (np.all(data["experiment_g_e"].values == self.g_e)
                and np.all(data["experiment_g_h"].values == self.g_h)):
            raise ValueError("all experiments of one fit must share g_e and g_h")
        self.T = pt.as_tensor_variable(data["experiment_temperature_K"].values)
        self.A0 = data["experiment_film_A0_1S_OD"].values
        self.gg = self.g_e * self.g_h
        self.S = self.g_e + 1
        self.P = {}
        self.nu = None  # Student-t degrees of freedom (likelihood = "student-t")
        self.cascade = None
        self.eta = None  # hole-trap fraction per experiment (hole_trapping)
        self.charged_emission = None  # extra emission per exciton of a charged QD, per experiment (charged_emission)
        self.law = None  # the charging law (components.charging_laws)

    def prior(self, name, dims="experiment"):
        """A variable with the spec's prior of ``name``."""
        return prior_variable(name, self.spec.priors[name], dims=dims)

    def observe(self, label, mu, sigma, obs, dims):
        """The likelihood ``label`` of observations ``obs``: Normal, or Student-t under likelihood = "student-t"."""
        import pymc as pm

        if self.nu is not None:
            return pm.StudentT(label, nu=self.nu, mu=mu, sigma=sigma, observed=obs, dims=dims)
        return pm.Normal(label, mu=mu, sigma=sigma, observed=obs, dims=dims)

    def error_sd(self, scatter, sem_name):
        """Standard deviation of each observation: the fitted scatter, with the window SEM in quadrature
        under ``measurement_error = "sem+scatter"``."""
        import pytensor.tensor as pt

        if self.options["measurement_error"] == "sem+scatter" and sem_name in self.data:
            return pt.sqrt(scatter**2 + self.data[sem_name].values ** 2)
        return scatter

    def fractions(self, V, e_idx):
        """Charge fractions (point, g_e + 1) at potentials ``V`` of experiments ``e_idx`` under the spec's law."""
        return self.law.fractions(self, V, e_idx)

    def log_calibration(self, label, dims, sd):
        """Log fluence calibration factors log c ~ Normal(0, sd) per file, in the spec's parametrisation.

        Film TA pins every file's <N>, so log c is identified file by file and the non-centred form
        (z = log c / sd) turns that into a thin curved sheet in (sd, z): measured, the gain SBC ranks of
        fluence_log_sd and of the z's were far from uniform and a 4-chain joint fit had a chain trapped at
        sd = 0.18 (true 0.05).  Both forms expose ``label`` (log c) in the posterior.
        """
        import pymc as pm

        if self.options["fluence_calibration"] == "centered":
            return pm.Normal(label, 0.0, sd, dims=dims)
        z = pm.Normal(label.replace("log_cal", "z"), 0.0, 1.0, dims=dims)
        return pm.Deterministic(label, sd * z, dims=dims)
