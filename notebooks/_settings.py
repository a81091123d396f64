"""Settings shared by every notebook in this folder: the ONE place where the sampling effort is set.

Each notebook starts with ``from _settings import *`` (run the notebooks from this folder, which is
what Jupyter does when you open them here and what ``tests/test_notebooks.py`` does).

The defaults are deliberately tiny (CI runs every notebook top to bottom on a 2-core machine):
a fit with them is *never* converged, and the notebooks say so next to every number.  For real
numbers set, before starting Jupyter::

    export BAYESGAIN_NB_DRAWS=1000 BAYESGAIN_NB_TUNE=1000 BAYESGAIN_NB_CHAINS=4

(or ``BAYESGAIN_NB_DRAWS=1000,1000,4`` -- draws, tune, chains in one variable), or run the
command-line fit, ``bayesgain fit FOLDER --model models/joint.toml --out DIR``, whose report is the
reference result.
"""

from __future__ import annotations

import os
import pathlib

__all__ = ["DRAWS", "TUNE", "CHAINS", "SEED", "SAMPLER", "FIT", "REDUCED", "REPO", "DATA", "MODELS",
           "REAL_DATA", "MAX_TREEDEPTH", "EXPERIMENT_A", "EXPERIMENT_B", "LITERATURE", "fit_note"]


def _int_env(name, default):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise ValueError(f"environment variable {name}={raw!r} must be a whole number") from err
    if value < 1:
        raise ValueError(f"environment variable {name}={raw!r} must be >= 1")
    return value


# -- sampling effort: small defaults for CI ---------------------------------------------------------
DRAWS, TUNE, CHAINS = 100, 100, 2
_combined = os.environ.get("BAYESGAIN_NB_DRAWS", "").strip()
if "," in _combined:  # "draws,tune,chains"
    try:
        DRAWS, TUNE, CHAINS = (int(x) for x in _combined.split(","))
    except ValueError as err:
        raise ValueError(f"BAYESGAIN_NB_DRAWS={_combined!r}: expected one number or 'draws,tune,chains'") from err
else:
    DRAWS = _int_env("BAYESGAIN_NB_DRAWS", DRAWS)
TUNE = _int_env("BAYESGAIN_NB_TUNE", TUNE)
CHAINS = _int_env("BAYESGAIN_NB_CHAINS", CHAINS)
SEED = _int_env("BAYESGAIN_NB_SEED", 1)
# the PyMC sampler compiles faster than nutpie (numba) for the tiny fits of these notebooks;
# BAYESGAIN_NB_SAMPLER=nutpie switches (nutpie is the default of GainModel.fit and of `bayesgain fit`)
SAMPLER = os.environ.get("BAYESGAIN_NB_SAMPLER", "pymc").strip() or "pymc"
if SAMPLER not in ("pymc", "nutpie"):
    raise ValueError(f"BAYESGAIN_NB_SAMPLER={SAMPLER!r}: expected 'pymc' or 'nutpie'")

#: True with the CI defaults: results are illustrations, not estimates
REDUCED = DRAWS < 1000 or TUNE < 1000 or CHAINS < 4
#: with reduced settings the NUTS trajectory is capped at 2^6 gradient steps: the first of only 100 tuning
#: steps otherwise take hundreds of gradient evaluations each (minutes for the joint model); a full fit
#: keeps the sampler's default depth (10)
MAX_TREEDEPTH = 6 if REDUCED else None
#: keyword arguments for ``GainModel.fit(**FIT)``
FIT = dict(draws=DRAWS, tune=TUNE, chains=CHAINS, seed=SEED, sampler=SAMPLER, progress=False,
           max_treedepth=MAX_TREEDEPTH)

# -- paths -----------------------------------------------------------------------------------------
REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = REPO / "data"
MODELS = REPO / "models"
EXPERIMENT_A = DATA / "synthetic-batch-a"   # SYNTHETIC (bayesgain.simulate), not a measurement
EXPERIMENT_B = DATA / "synthetic-batch-b"   # SYNTHETIC (bayesgain.simulate), not a measurement
LITERATURE = DATA / "literature" / "paper-values.csv"  # published values of the paper (not simulated)
REAL_DATA = pathlib.Path(os.environ.get("BAYESGAIN_REAL_DATA", REPO.parent / "shared" / "real-data"))


def fit_note():
    """One line that says how much sampling the numbers below rest on."""
    text = f"sampling: {CHAINS} chains x {DRAWS} draws after {TUNE} tuning steps, sampler '{SAMPLER}'"
    if MAX_TREEDEPTH is not None:
        text += f", tree depth capped at {MAX_TREEDEPTH}"
    if REDUCED:
        text += (" -- REDUCED settings for CI: the chains have not converged and the numbers are "
                 "illustrations only (set BAYESGAIN_NB_DRAWS=1000,1000,4 for a real fit)")
    return text


print(fit_note())
