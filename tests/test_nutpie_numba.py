"""The numba C callbacks that numba keeps on disk (bayesgain.model.nutpie_numba) against the functions they wrap.

Each test fails if the generated callbacks read the wrong array, the wrong shape or the wrong argument order
(another log density, gradient or expanded draw than the PyTensor functions they wrap), if swapping
data in does not reach them, or if two processes compile a structure twice or compute other bits.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest

nutpie = pytest.importorskip("nutpie")

from bayesgain.model import nutpie_numba, sampling  # noqa: E402


def _model(n_arrays=3):
    """Shared data of ranks 0, 1 and 2, an integer index array, a deterministic, and ``n_arrays`` more data
    arrays (more than 30 arguments exercise the chunked call)."""
    rng = np.random.default_rng(0)
    with pm.Model() as m:
        scale = pytensor.shared(np.float64(1.5), name="scale")
        grid = pytensor.shared(rng.normal(size=(3, 4)), name="grid")
        idx = pytensor.shared(np.array([0, 2, 1, 2]), name="idx")
        mu = pm.Normal("mu", 0.0, 1.0, shape=3)
        s = pm.HalfNormal("s", 1.0)
        pm.Deterministic("row", (grid * mu[:, None]).sum(0))
        pm.Normal("obs", mu[idx] * scale, s, observed=rng.normal(size=4))
        extra = [pytensor.shared(rng.normal(size=2 + i % 3), name=f"y{i}") for i in range(n_arrays)]
        # one cheap reduction per array (a large fused expression would cost most of this module's compile)
        pm.Potential("extra", -0.5 * (pt.add(*[y.sum() for y in extra]) * 0.1 - mu[0]) ** 2)
    return m


def _logp_grad(compiled, x):
    lp, g = sampling.logp_and_gradient(compiled)(np.asarray(x, float))
    return float(lp), np.asarray(g)


def _expand(compiled, x):
    import ctypes

    out = np.zeros(compiled.n_expanded)
    fn = compiled.compiled_expand_func.ctypes
    x = np.ascontiguousarray(x, dtype=float)
    rc = fn(compiled.n_dim, compiled.n_expanded, x.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), compiled.user_data.ctypes.data)
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def compiled():
    return nutpie_numba.compile_pymc_model_cached(_model(n_arrays=31))


def _reference(compiled, x, data=None):
    """Log density, gradient and expanded draw from the PyTensor functions the callbacks wrap (their shared
    variables set to ``data`` by name): the arrays reach them without the callbacks' pointer table."""
    shared = {v.name: v for v in [*compiled.logp_func.get_shared(), *compiled.expand_func.get_shared()]}
    before = {name: v.get_value() for name, v in shared.items()}
    try:
        for name, value in (data or {}).items():
            shared[name].set_value(np.asarray(value, dtype=before[name].dtype))
        lp, g = compiled.logp_func(x)
        (values,) = compiled.expand_func(x)
    finally:
        for name, value in before.items():
            shared[name].set_value(value)
    return float(lp), np.asarray(g), np.asarray(values)


def test_callbacks_compute_what_the_pytensor_functions_compute(compiled):
    assert type(compiled).__name__ == "CachedNumbaModel"
    assert len(compiled.shared_order) > 30  # the chunked argument tuple
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.normal(size=compiled.n_dim)
        lp_ref, g_ref, v_ref = _reference(compiled, x)
        lp, g = _logp_grad(compiled, x)
        assert lp == pytest.approx(lp_ref, rel=1e-12)
        np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(_expand(compiled, x), v_ref, rtol=1e-12)


def test_with_data_reaches_the_callbacks(compiled):
    x = np.full(compiled.n_dim, 0.2)
    new = {"grid": np.arange(12.0).reshape(3, 4), "y0": np.array([5.0, -1.0]), "scale": 0.25,
           "idx": np.array([2, 2, 0, 1])}
    swapped = compiled.with_data(**new)
    lp_ref, g_ref, v_ref = _reference(compiled, x, new)
    lp, g = _logp_grad(swapped, x)
    assert lp == pytest.approx(lp_ref, rel=1e-12) and lp != pytest.approx(_logp_grad(compiled, x)[0], rel=1e-6)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_expand(swapped, x), v_ref, rtol=1e-12)
    with pytest.raises(ValueError, match="rank"):
        compiled.with_data(grid=np.zeros(12))


_PROBE = textwrap.dedent("""
    import sys
    sys.path.insert(0, {test_dir!r})
    import numpy as np
    from test_nutpie_numba import _model, _logp_grad
    from bayesgain.model import nutpie_numba
    c = nutpie_numba.compile_pymc_model_cached(_model(4))
    lp, g = _logp_grad(c, np.linspace(-0.5, 0.5, c.n_dim))
    print(repr(lp), nutpie_numba.STATS["child_compiles"], c.compiled_logp_func._cache_hits)
""")


def test_processes_compile_a_structure_once_and_compute_the_same_bits(tmp_path):
    """Two processes started together on an empty cache (Dask workers of a study): one compiles the callbacks
    in a child, the other waits and loads them; both compute the same log density, bit for bit."""
    env = {k: v for k, v in os.environ.items() if k != nutpie_numba.IN_PROCESS_ENV}  # the default path: a child
    env["PYTENSOR_FLAGS"] = f"base_compiledir={tmp_path / 'compiledir'}"
    code = _PROBE.format(test_dir=os.path.dirname(__file__))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    runs = [out.strip().splitlines()[-1].split() for out, _ in outs]
    assert sorted(r[1] for r in runs) == ["0", "1"], f"exactly one process should compile (in a child): {runs}"
    assert all(r[2] == "1" for r in runs), f"both should run the callbacks loaded from the cache: {runs}"
    assert runs[0][0] == runs[1][0], "the compiling and the loading process must compute the same bits"


def test_compilations_beside_the_child_run_in_a_thread_and_never_raise(caplog):
    import threading

    ran = []
    with nutpie_numba._running_beside(lambda: ran.append(threading.current_thread().name)):
        pass
    assert ran == ["bayesgain-compile-beside"]  # joined before the block is left
    with caplog.at_level("INFO", logger=nutpie_numba.__name__):
        with nutpie_numba._running_beside(lambda: 1 / 0):  # a failed warm-up is logged, the fit goes on
            pass
    assert "ZeroDivisionError" in caplog.text
    with nutpie_numba._running_beside(None):
        pass


def test_what_a_first_run_compiles_beside_the_model(monkeypatch):
    from bayesgain.model import whitening

    seen = []
    monkeypatch.setattr(whitening, "precompile", lambda n, ne: seen.append(("whitening", n, ne)))
    sampling._compiling_beside(True, lambda: seen.append("log-likelihood"))(94, 400)
    sampling._compiling_beside(False, None)(94, 400)
    assert seen == [("whitening", 94, 400), "log-likelihood"]
