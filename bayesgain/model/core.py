"""The joint hierarchical model: one posterior from solution TA, SEC and film TA of one or more films.

``GainModel(spec, experiments)`` owns its priors (the spec, see :mod:`.spec`) and its data (the
reduced observations, see :mod:`.data`); ``build()`` creates the variables several components share
(:mod:`.components.shared`: physical parameters, the Auger cascade) and then lets every component the spec
switches on add its own variables and likelihood (:mod:`.components`: cross-section from solution TA,
charging and photoluminescence from SEC, gain and dynamics from film TA, reflection from sub-gap TR; the
charging laws in :mod:`.components.charging_laws`); ``fit()`` samples it (nutpie by default) and returns an
``xarray.DataTree``; ``save``/``load`` round-trip the fit through one NetCDF file that also holds the spec and
the observations, so a fit can be reopened, checked and reported in a new process without the raw folder.
The static sizes (Poisson truncation, disorder quadrature) and their post-sampling checks are in :mod:`.sizing`,
the convergence report in :mod:`.convergence`.

Physical parameters carry the dim ``experiment``; those named in [pooling] are partially pooled
across experiments (non-centred).  Optical-density scales are in units of each film's measured
A_0 in the 1S window, so the same priors fit thin and thick films.
"""

from __future__ import annotations

import datetime
import pathlib
import time
import warnings

import numpy as np
import xarray as xr

from .. import __version__
from .._atomic import atomic_path
from .._logs import quiet_pymc
from ..physics.api import numpy_mode
from . import sizing
from .components import BuildContext, active
from .components.shared import PHYSICAL_PARAMETERS, add_shared, model_coords
from .convergence import convergence_report
from .data import concat_experiments, reduce_experiment
from .layout import film_layout
from .resolve import resolve_components
from .spec import ModelSpec, load_spec, spec_from_dict

__all__ = ["GainModel", "PHYSICAL_PARAMETERS"]


class GainModel:
    """A Bayesian model of doped-QD gain experiments, built from a spec and reduced observations.

    Parameters
    ----------
    spec : ModelSpec, path to a TOML file, or the name of a shipped model (``"joint"``).
    experiments : DataTree, folder path, or a list of them (several films / batches in one fit).
    names : optional names of the experiments (default: folder names or ``exp0``, ``exp1``...).
    """

    POISSON_TAIL = sizing.POISSON_TAIL
    QUADRATURE_TOL = sizing.QUADRATURE_TOL

    def __init__(self, spec="joint", experiments=None, names=None, _reduced=None):
        self.spec = spec if isinstance(spec, ModelSpec) else load_spec(spec)
        if _reduced is not None:
            self.data = _reduced
        else:
            if experiments is None:
                raise ValueError("GainModel needs experiments: a folder, a loaded DataTree, or a list of them")
            self.spec, self.data = _reduce(self.spec, experiments, names)
        self.names = list(self.data["experiment"].values)
        # film TA file and potential of every ta_point: the one place that defines this layout (None without film TA)
        self.layout = film_layout(self.data)
        self.model = None
        self.idata = None
        self.start_report = None
        self.n_max, self.n_max_film, self.n_max_solution = sizing.choose_n_max(self.spec, self.data)
        self.quadrature_nodes = sizing.choose_nodes(self.spec, self.data)

    # ------------------------------------------------------------------ data
    @property
    def file_index(self):
        """Film TA file (dim ``ta_file``) of every ``ta_point``; None without film TA data."""
        return None if self.layout is None else self.layout.file_index

    @property
    def ta_potential_index(self):
        """``ta_potential`` of every ``ta_point``; None without film TA data."""
        return None if self.layout is None else self.layout.ta_potential_index

    @property
    def file_experiment(self):
        """Experiment of every film TA file; None without film TA data."""
        return None if self.layout is None else self.layout.file_experiment

    @property
    def component_notes(self):
        """What the data switched off in the requested spec (one sentence per line; see ``model/resolve.py``)."""
        text = str(self.data.attrs.get("component_notes", ""))
        return [line for line in text.split("\n") if line]

    def truncation_check(self, tail=1e-5):
        """Largest posterior <N> (film files, solution fluences) and the Poisson tail P(N > n_max) there."""
        return sizing.truncation_check(self, tail)

    def quadrature_check(self, tol=1e-4):
        """Error of the disorder average at the largest posterior sigma_1S of each experiment (see :mod:`.sizing`)."""
        return sizing.quadrature_check(self, tol)

    @property
    def coords(self):
        """The model's dims and their coordinates."""
        return model_coords(self.spec, self.data, self.names)

    def jitter_rvs(self, max_scale=0.25):
        """Free variables whose start may be jittered (see :func:`.sampling.jitter_rvs`)."""
        from .sampling import jitter_rvs

        return jitter_rvs(self.model or self.build(), max_scale)

    # ------------------------------------------------------------------ build
    def build(self):
        """Create ``self.model`` (a pm.Model) from the spec and the data; returns it.

        The shared variables first, then every active component's ``parameters`` and then its ``add``, in the
        registry's order: the free variables keep one order (nutpie's seeded draws depend on it).
        """
        import pymc as pm

        ctx = BuildContext(self.spec, self.data, self.names, self.layout, self.n_max, self.n_max_film,
                           self.n_max_solution, self.quadrature_nodes)
        components = active(self.spec)
        for c in components:
            c.check_data(self.data)
        with pm.Model(coords=self.coords) as model:
            add_shared(ctx)
            for c in components:
                c.parameters(ctx)
            for c in components:
                c.add(ctx)
        # the film TA prediction and error without discrepancy, for the residual checks (bayesgain.model.checks)
        for name in ("film_mean_physics", "film_sd"):
            if hasattr(ctx, name):
                setattr(self, name, getattr(ctx, name))
        self.model = model
        return model

    # ------------------------------------------------------------------ sampling
    @property
    def observed_names(self):
        """The likelihoods of this model, in build order."""
        return [n for c in active(self.spec) for n in c.observed_names(self.spec)]

    @property
    def parameter_names(self):
        """Physical parameters of the posterior (what summary.csv reports)."""
        if self.model is None:
            self.build()
        names = [n for n in PHYSICAL_PARAMETERS if n in self.model.named_vars]
        extra = ["film_cross_section_cm2", "gamma_OD", "window_occupancy_bleach_OD",
                 "sweep_offset_V", "sec_bleach_scale", "student_nu"]
        return names + [n for n in extra if n in self.model.named_vars]

    def sample_prior_predictive(self, draws=200, seed=0, var_names=None):
        """Prior (and, unless ``var_names`` leaves them out, prior predictive) draws as a DataTree."""
        import pymc as pm

        model = self.model or self.build()
        with model, quiet_pymc():
            return pm.sample_prior_predictive(draws=draws, random_seed=seed, var_names=var_names,
                                              compile_kwargs={"mode": numpy_mode()})

    def fit(self, draws=1000, tune=1000, chains=4, seed=0, sampler="nutpie", progress=True, target_accept=0.95,
            cores=None, min_ess=400, adaptation="low_rank", max_treedepth=None, starts="optimum", backend="numba",
            initvals=None, rerun_stuck=True, resize_truncation=True, whiten=False, start_radius=None):
        """Sample the posterior; returns the DataTree (also kept as ``self.idata``) with log-likelihoods.

        ``sampler``: "nutpie" (default) or "pymc".  ``backend`` (nutpie): the PyTensor backend of the log
        density, "numba" (default: ~105 s to compile cold, cached afterwards; the fastest sampling) or "jax"
        (optional dependency: ~6 s to compile, but sampling takes ~1.5x as long, its Python callbacks barely
        running in parallel: the faster choice for a first or one-off fit; see :data:`.sampling.BACKENDS`).
        ``initvals`` (PyMC's sampler only): one start per chain, dicts of value-variable name -> value
        (unconstrained names such as ``tau_xx_ps_log__`` take unconstrained values), used as they are (no
        jitter); e.g. the climbed starts nutpie gets.  With nutpie the mass matrix is
        adapted with a low-rank correction (``adaptation="low_rank"``): the cross-section, the film ratio
        and the per-file fluence calibrations form long correlated directions that a diagonal mass
        matrix crawls along (measured: bulk ESS 5 of 600 draws with "diag").  ``max_treedepth`` caps the
        NUTS trajectory at 2^depth steps (default: the sampler's 10): for short illustrative fits (the
        notebooks' CI settings), where the first tuning steps otherwise take hundreds of gradient
        evaluations each; a capped converged fit is still valid, a capped short one is only cheaper.
        ``target_accept`` 0.95 (was 0.9): single divergent transitions in a direction the mass matrix does not
        follow (the window shift loss against every file's <N>, under pump attenuation; the rate k_x near 0)
        went away at 0.95 in every fit measured (docs/decisions/target-accept.md).
        ``starts`` (nutpie): "optimum" starts each chain where L-BFGS from its jittered point ends, a chain
        whose climb ends far below the best at the best one's end; "checked" keeps the jittered points
        (replacing only those in a worse basin); "jitter" is PyMC's (see :mod:`.sampling`; the report is
        in ``self.start_report`` and the tree's attrs).  ``rerun_stuck`` (nutpie): run a chain stuck in a minor
        mode again from the best chain's start (a safety net; benchmarks switch it off to see the geometry).
        ``whiten`` (nutpie, climbed starts; off by default): sample z with x = mu + L z, L from the log density's
        curvature at the best chain's start (:mod:`.whitening`), the starts near the optimum (only scale
        hyperparameters jittered) and moved by U(-r, r) in z, r = ``start_radius`` (None: 1): the same posterior,
        40 % fewer warm-up gradients on batch A, not yet as robust on hard mismatch scenarios
        (docs/decisions/whitened-sampling.md).
        ``resize_truncation``: where the posterior reaches <N> beyond what the Poisson truncation (sized before
        sampling from the nominal fluences) holds, raise the truncation to the posterior's largest <N> and fit
        once more (a more accurate model, not a rescue of mixing: measured under a 20 % fluence calibration
        spread, draws reached <N> = 15-22 against a truncation sized for ~9).  The convergence report is in
        ``self.convergence`` and in the tree's attrs; a fit that is not converged says so everywhere.
        """
        import pymc as pm

        from .sampling import sample_nutpie

        model = self.model or self.build()
        t0 = time.time()
        with model, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*BLAS.*")
            if sampler == "nutpie":
                idata, self.start_report = sample_nutpie(
                    model, draws=draws, tune=tune, chains=chains, seed=seed, cores=cores, target_accept=target_accept,
                    adaptation=adaptation, max_treedepth=max_treedepth, progress=progress,
                    jitter_rvs=self.jitter_rvs(), starts=starts, backend=backend, rerun_stuck=rerun_stuck,
                    whiten=whiten, start_radius=start_radius, while_compiling=self._compile_log_likelihood)
            else:
                if backend != "numba":
                    raise ValueError(f"backend={backend!r} applies to the nutpie sampler only")
                kw = dict(draws=draws, tune=tune, chains=chains, random_seed=seed, progressbar=progress,
                          nuts_sampler=sampler, target_accept=target_accept)
                if cores is not None:
                    kw["cores"] = cores
                if max_treedepth is not None:
                    kw["nuts"] = {"max_treedepth": int(max_treedepth)}  # pm.sample moves target_accept into it
                if initvals is not None:
                    kw.update(initvals=initvals, init="adapt_diag")
                idata = pm.sample(**kw)
                idata.attrs["chain_starts"] = ("given per chain (adapt_diag, no jitter)" if initvals is not None else
                                               "PyMC's own (jitter+adapt_diag: U(-1, 1) jitter around the prior centres)")
            t1 = time.time()
            pm.compute_log_likelihood(idata, var_names=self.observed_names, progressbar=False)
        self.idata = idata
        self._finish(idata, sampling_s=t1 - t0, min_ess=min_ess)
        if resize_truncation and self._resize_truncation():
            return self.fit(draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler, progress=progress,
                            target_accept=target_accept, cores=cores, min_ess=min_ess, adaptation=adaptation,
                            max_treedepth=max_treedepth, starts=starts, backend=backend, initvals=initvals,
                            rerun_stuck=rerun_stuck, resize_truncation=False, whiten=whiten,
                            start_radius=start_radius)
        return idata

    def _compile_log_likelihood(self):
        """Compile and call once the function ``pm.compute_log_likelihood`` compiles after sampling (the same graph:
        PyMC's own construction), so that a first run's numba compilation of it is on disk by then: done while the
        sampler's callbacks compile in a child (~16 s of a cold fit on batch A).  The function itself is dropped."""
        from pymc.model.transform.conditioning import remove_value_transforms

        umodel = remove_value_transforms(self.model)
        fn = umodel.compile_fn(inputs=umodel.value_vars, on_unused_input="ignore",
                               outs=umodel.logp(vars=[umodel.named_vars[n] for n in self.observed_names], sum=False))
        fn(umodel.initial_point())  # numba compiles on the first call

    def _resize_truncation(self, margin=1.2):
        """Raise the Poisson truncations the posterior outgrew and rebuild; True if any was raised (see :mod:`.sizing`)."""
        return sizing.resize_truncation(self, margin)

    def _finish(self, idata, sampling_s=None, min_ess=400):
        self.convergence = convergence_report(idata, self.parameter_names, min_ess=min_ess)
        a = idata.attrs
        a["bayesgain_version"] = __version__
        a["model_name"] = self.spec.name
        a["model_spec_toml"] = self.spec.to_toml()
        a["convergence"] = self.convergence.text()
        a["n_max"] = self.n_max
        a["n_max_film"] = self.n_max_film
        a["n_max_solution"] = self.n_max_solution
        a["component_notes"] = "\n".join(self.component_notes)
        trunc = self.truncation_check()
        if not trunc["ok"]:
            self.convergence["ok"] = False
            self.convergence["note"] = f"Poisson truncation too short for the posterior: {trunc}"
        quad = self.quadrature_check()
        a["disorder_quadrature"] = str(quad)
        if not quad["ok"]:
            self.convergence["ok"] = False
            note = f"disorder quadrature too coarse for the posterior sigma_1S (set quadrature_nodes higher): {quad}"
            self.convergence["note"] = "; ".join(x for x in (self.convergence.get("note"), note) if x)
        a["converged"] = int(self.convergence.ok)
        a["experiments"] = ", ".join(self.names)
        a["synthetic"] = int(bool(np.any(self.data["experiment_synthetic"].values > 0)))
        if sampling_s is not None:
            a["sampling_seconds"] = float(sampling_s)
        a.setdefault("created", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))

    def sample_posterior_predictive(self, seed=0, var_names=None, max_draws=500):
        """Posterior predictive draws of every observed component (added to ``self.idata``).

        The posterior is thinned evenly to at most ``max_draws`` draws (chains kept): a predictive check's
        bands need hundreds of draws, not thousands, and each costs a forward pass of the whole model.
        """
        import math

        import pymc as pm

        if self.idata is None:
            raise RuntimeError("fit() or load() first")
        model = self.model or self.build()
        post = self.idata["posterior"].to_dataset()
        n = post.sizes["chain"] * post.sizes["draw"]
        step = max(1, math.ceil(n / max_draws)) if max_draws else 1
        with model, quiet_pymc():
            # Python-VM mode: a numba compile of the forward graph costs minutes, the draws seconds
            pp = pm.sample_posterior_predictive(post.isel(draw=slice(None, None, step)),
                                                var_names=var_names or self.observed_names, random_seed=seed,
                                                progressbar=False, compile_kwargs={"mode": numpy_mode()})
        self.idata["posterior_predictive"] = pp["posterior_predictive"]
        return self.idata["posterior_predictive"]

    # ------------------------------------------------------------------ results
    def summary(self, var_names=None):
        """ArviZ summary (mean, sd, 94 % HDI, ESS, R-hat) of the physical parameters, with a unit column."""
        import arviz as az

        names = var_names or self.parameter_names
        s = az.summary(self.idata, var_names=[n for n in names if n in self.idata["posterior"]], ci_prob=0.94,
                       ci_kind="hdi", round_to="none")
        units = {k: p["unit"] for k, p in self.spec.priors.items()}
        units.update(film_cross_section_cm2="cm^2", gamma_OD="OD", window_occupancy_bleach_OD="OD",
                     sweep_offset_V="V", k_xx_per_ps="1/ps")
        s.insert(0, "unit", [units.get(str(i).split("[")[0], "") for i in s.index])
        return s

    def save(self, path, overwrite=False):
        """Write the fit (posterior, log-likelihoods, observations, spec, version) to one NetCDF file atomically."""
        path = pathlib.Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        if self.idata is None:
            raise RuntimeError("nothing to save: fit() first")
        tree = self.idata.copy()
        # h5netcdf cannot write numpy strings inside list attributes: store them as plain str
        tree.attrs = {k: [str(x) if isinstance(x, str) else x for x in v] if isinstance(v, (list, tuple)) else v
                      for k, v in tree.attrs.items()}
        tree["reduced_data"] = xr.DataTree(_netcdf_safe(self.data))
        with atomic_path(path) as tmp:
            tree.to_netcdf(tmp, engine="h5netcdf")
        return path

    @classmethod
    def load(cls, path):
        """Reopen a saved fit: the model is rebuilt from the stored spec and observations."""
        path = pathlib.Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no saved fit at {path}")
        tree = xr.open_datatree(path, engine="h5netcdf").load()
        if "reduced_data" not in tree or "model_spec_toml" not in tree.attrs:
            raise ValueError(f"{path}: not a bayesgain fit (no reduced_data group or model_spec_toml attribute)")
        import tomllib

        spec = spec_from_dict(tomllib.loads(tree.attrs["model_spec_toml"]), source=f"{path}:model_spec_toml",
                              text=tree.attrs["model_spec_toml"])
        data = _netcdf_restore(tree["reduced_data"].to_dataset())
        obj = cls(spec, _reduced=data)
        obj.n_max = int(tree.attrs.get("n_max", obj.n_max))
        obj.n_max_film = int(tree.attrs.get("n_max_film", obj.n_max_film))
        obj.n_max_solution = int(tree.attrs.get("n_max_solution", obj.n_max_solution))
        del tree["reduced_data"]
        obj.idata = tree
        obj.build()
        obj.convergence = convergence_report(tree, obj.parameter_names) if "posterior" in tree else None
        return obj


def _reduce(spec, experiments, names):
    """(effective spec, reduced data) of experiment folders or DataTrees: the components the data cannot feed
    are switched off (a note in the data's attrs) or refused."""
    from ..io import ExperimentError, load_experiment
    from ..safety.containment import repeated_folders

    items = experiments if isinstance(experiments, (list, tuple)) else [experiments]
    for item, earlier, how in repeated_folders([x for x in items if isinstance(x, (str, pathlib.Path))]):
        raise ExperimentError(f"experiment folder {item} {how} {earlier}; expected each experiment once")
    trees, labels = [], []
    for i, item in enumerate(items):
        if isinstance(item, (str, pathlib.Path)):
            label = pathlib.Path(item).name
            tree = load_experiment(item)
        else:
            tree = item
            label = str(tree.attrs.get("name", f"exp{i}"))
        if names is not None:
            label = names[i]
        trees.append(tree)
        labels.append(label)
    # components the data cannot feed are switched off here (with a note) or refused
    res = resolve_components(spec, trees, labels)
    reduced = [reduce_experiment(t, res.spec.options, lab, comp)
               for t, lab, comp in zip(trees, labels, res.per_experiment)]
    data = concat_experiments(reduced)
    data.attrs["component_notes"] = "\n".join(res.notes)
    return res.spec, data


def _netcdf_safe(ds):
    ds = ds.copy()
    ds.attrs = {k.replace(":", "__"): v for k, v in ds.attrs.items()}
    for k in list(ds.variables):
        if ds[k].dtype.kind == "U":
            ds[k] = ds[k].astype(object)
    return ds


def _netcdf_restore(ds):
    ds = ds.copy()
    ds.attrs = {k.replace("__", ":"): v for k, v in ds.attrs.items()}
    for k in list(ds.variables):
        if ds[k].dtype.kind == "O":
            ds[k] = ds[k].astype(str)
    return ds
