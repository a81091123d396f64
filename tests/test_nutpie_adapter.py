"""The parts of nutpie's compiled models that bayesgain.model.sampling and compiled_cache read.

They are not all public API, so pyproject pins nutpie (>=0.16.11,<0.17); this test names what moved when a
new nutpie changes them, instead of a fit failing somewhere deep."""

import numpy as np
import pymc as pm
import pytest

nutpie = pytest.importorskip("nutpie")

NUMBA_FIELDS = ("compiled_logp_func", "user_data", "initial_point_func", "shape_info", "n_dim", "with_data",
                "shared_data", "shared_var_keys")
JAX_FIELDS = ("_make_logp_func", "_shared_data", "_variables", "_make_initial_points", "n_dim")


def _tiny():
    with pm.Model() as m:
        mu = pm.Normal("mu", 0.0, 1.0, shape=2)
        pm.Normal("y", mu.sum(), 1.0, observed=np.array([0.3, -0.2, 0.5]))
    return m


def _missing(obj, fields):
    return [f for f in fields if not hasattr(obj, f)]


def test_the_numba_model_has_what_sampling_reads():
    from bayesgain.model import sampling

    compiled = sampling.compile_nutpie(_tiny())
    gone = _missing(compiled, NUMBA_FIELDS)
    assert not gone, f"nutpie {nutpie.__version__}: CompiledPyMCModel lost {gone} (read by bayesgain.model.sampling)"
    assert hasattr(compiled.compiled_logp_func, "ctypes"), "the numba logp is no longer a C callback"
    names, slices = compiled.shape_info[0], compiled.shape_info[1]
    assert "mu" in names and slices[list(names).index("mu")] == slice(0, 2)
    lp, grad = sampling.logp_and_gradient(compiled)(np.zeros(compiled.n_dim))
    assert np.isfinite(lp) and grad.shape == (2,)


def test_the_jax_model_has_what_sampling_reads():
    pytest.importorskip("jax")
    from bayesgain.model import sampling

    compiled = sampling.compile_nutpie(_tiny(), backend="jax")
    gone = _missing(compiled, JAX_FIELDS)
    assert not gone, f"nutpie {nutpie.__version__}: the jax model lost {gone} (read by bayesgain.model.sampling)"
    lp, _ = sampling.logp_and_gradient(compiled)(np.zeros(compiled.n_dim))
    assert np.isfinite(lp)
