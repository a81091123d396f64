"""Sampling in whitened coordinates: nutpie samples z, the model sees x = mu + L z (opt-in: ``whiten=True``).

Why: nutpie's warm-up learns the posterior's scales and correlations over hundreds of draws, with long
trajectories meanwhile, and its first mass matrix is 1/|gradient| at the start.  L is the Cholesky factor of the
inverse curvature (Laplace's covariance) at the chains' best start, so that the sampler starts near unit scales;
the starts are moved about a posterior sd from the climbed points (``sampling.START_RADIUS``), where the gradient in
z is ~1 and that first mass matrix about right.  On the joint model of batch A the warm-up needs ~30 % fewer
gradients than in the model's own coordinates (docs/decisions/whitened-sampling.md).

The map is affine, so the posterior of x is exactly the model's (constant Jacobian); the draws nutpie stores come
from the model's own expansion of x.  Curvature is taken from central differences of the gradient (2 n
evaluations); eigenvalues are used by magnitude and floored at ``MIN_CURVATURE`` (a saddle or a flat direction at
the start gets a finite, wide scale) -- a poor factor costs warm-up time, never correctness, since nutpie adapts
its mass matrix on z as before.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

__all__ = ["MIN_CURVATURE", "laplace_factor", "whitened", "to_whitened", "precompile"]

# smallest curvature used (1 / variance on the unconstrained scale): a direction the start does not curve in gets a
# scale of 10, wider than any prior the shipped models put on an unconstrained coordinate
MIN_CURVATURE = 1e-2


def laplace_factor(logp_and_grad, point, rel_step=1e-5, min_curvature=MIN_CURVATURE):
    """``(mu, L)``: ``point`` and the lower Cholesky factor of the inverse curvature of the log density there.

    The curvature comes from central differences of ``logp_and_grad(x) -> (logp, grad)`` (step ``rel_step`` x
    max(1, |x_i|)), symmetrised; its eigenvalues are taken by magnitude and floored at ``min_curvature``.  None
    where a gradient is not finite (no factor: the caller samples x as it is).
    """
    mu = np.array(point, dtype="float64")
    n = mu.size
    hess = np.empty((n, n))
    for i in range(n):
        h = rel_step * max(1.0, abs(mu[i]))
        step = np.zeros(n)
        step[i] = h
        lp_up, g_up = logp_and_grad(mu + step)
        lp_down, g_down = logp_and_grad(mu - step)
        if not (np.isfinite(lp_up) and np.isfinite(lp_down) and np.all(np.isfinite(g_up))
                and np.all(np.isfinite(g_down))):
            return None
        hess[i] = -(g_up - g_down) / (2.0 * h)
    hess = 0.5 * (hess + hess.T)
    curvature, vectors = np.linalg.eigh(hess)
    curvature = np.maximum(np.abs(curvature), float(min_curvature))
    cov = (vectors / curvature) @ vectors.T
    return mu, np.linalg.cholesky(0.5 * (cov + cov.T))


def to_whitened(points, mu, L):
    """The z of each x in ``points``: ``L^-1 (x - mu)``."""
    from scipy.linalg import solve_triangular

    return [solve_triangular(L, np.asarray(x, dtype="float64") - mu, lower=True) for x in points]


def _x_of_z(n):
    """Source lines that read mu and L from the user data and compute x = mu + L z (L lower triangular)."""
    return [
        f"        mu = carray(as_ptr(ud[3]), ({n},), np.float64)",
        f"        L = carray(as_ptr(ud[4]), ({n}, {n}), np.float64)",
        f"        x = np.empty({n})",
        f"        for i in range({n}):",
        "            s = mu[i]",
        "            for j in range(i + 1):",
        "                s += L[i, j] * z[j]",
        "            x[i] = s",
    ]


# The sources' ``except Exception`` is nutpie's callback contract, as in the model's own callbacks: numba's nopython
# mode catches no narrower class, and an error (an allocation failing) must become the return code nutpie reports
# (1 for the log density, -2 for the expansion, as the model's), never cross the C boundary.  The wrapped callback's
# own non-zero status is passed on as it is.
def _logp_source(n):
    return "\n".join([
        "def logp_c(dim, z_, out_, logp_, user_data_):",
        f"    if dim != {n}:",
        "        return -1",
        "    try:",
        "        ud = carray(user_data_, (5,), np.uint64)",
        f"        z = carray(z_, ({n},))",
        f"        out = carray(out_, ({n},))",
        *_x_of_z(n),
        f"        grad = np.empty({n})",
        "        status = call_logp_at(ud[0], dim, x.ctypes.data, grad.ctypes.data, logp_, ud[2])",
        "        if status != 0:",
        "            return status",
        f"        for j in range({n}):",  # the gradient in z: L^T grad
        "            s = 0.0",
        f"            for i in range(j, {n}):",
        "                s += L[i, j] * grad[i]",
        "            out[j] = s",
        "        if not np.all(np.isfinite(out)):",
        "            return 3",
        "    except Exception:",
        "        return 1",
        "    return 0",
    ]) + "\n"


def _expand_source(n, n_expanded):
    return "\n".join([
        "def expand_c(dim, expanded, z_, out_, user_data_):",
        f"    if dim != {n}:",
        "        return -1",
        f"    if expanded != {n_expanded}:",
        "        return -1",
        "    try:",
        "        ud = carray(user_data_, (5,), np.uint64)",
        f"        z = carray(z_, ({n},))",
        *_x_of_z(n),
        "        return call_expand_at(ud[1], dim, expanded, x.ctypes.data, out_, ud[2])",
        "    except Exception:",
        "        return -2",
    ]) + "\n"


def whitened(compiled, mu, L):
    """``compiled`` (nutpie's numba model from :mod:`~bayesgain.model.nutpie_numba`) sampling z, with
    x = ``mu`` + ``L`` z: its callbacks wrap the model's (cached on disk per size, like the model's own).

    The result is of a subclass of ``compiled``'s class whose field ``whitening`` holds the wrapped model, ``mu``
    and ``L`` (the callbacks read them through addresses, so they live as long as any copy of it); its
    ``with_data`` swaps the wrapped model's data.  Its initial points are still x: give it z starts with
    :func:`~bayesgain.model.sampling.with_starts` and :func:`to_whitened`."""
    from . import nutpie_numba
    from .sampling import _is_numba

    n = int(compiled.n_dim)
    mu = np.ascontiguousarray(mu, dtype="float64")
    L = np.ascontiguousarray(L, dtype="float64")
    if mu.shape != (n,) or L.shape != (n, n):
        raise ValueError(f"whitening of a {n}-dimensional model: mu {mu.shape}, L {L.shape}")
    if not _is_numba(compiled):  # nutpie's jax models: Python callbacks
        return _python_whitened(compiled, mu, L)
    n_expanded = int(compiled.n_expanded)
    made = nutpie_numba.cached_callbacks(_sources(n, n_expanded))
    words = np.array([compiled.compiled_logp_func.address, compiled.compiled_expand_func.address,
                      compiled.user_data.ctypes.data, mu.ctypes.data, L.ctypes.data], dtype=np.uint64)
    base = type(compiled)
    while getattr(base, "_whitened_base", None) is not None:  # whitened again: the same class, wrapping the whitened
        base = base._whitened_base
    fields = {f.name: getattr(compiled, f.name) for f in dataclasses.fields(compiled) if f.init}
    fields.update(compiled_logp_func=made["logp"], compiled_expand_func=made["expand"], user_data=words,
                  whitening=(compiled, mu, L))
    return _whitened_class(base)(**fields)


def _sources(n, n_expanded):
    return {"logp": ("wrap-logp", _logp_source(n)), "expand": ("wrap-expand", _expand_source(n, n_expanded))}


def precompile(n, n_expanded):
    """Compile the numba callbacks that whiten an ``n``-dimensional model into the disk cache, if missing (a first
    run does it while the model's own compile, so that :func:`whitened` only loads them)."""
    from . import nutpie_numba

    nutpie_numba.precompile_callbacks(_sources(int(n), int(n_expanded)))


def _python_whitened(compiled, mu, L):
    """:func:`whitened` for a model of Python callbacks (nutpie's ``PyFuncModel``: the jax backend)."""
    make_logp, make_expand = compiled._make_logp_func, compiled._make_expand_func

    def make_logp_func():
        inner = make_logp()

        def logp(z, **data):
            lp, grad = inner(mu + L @ z, **data)
            return lp, L.T @ np.asarray(grad, dtype="float64")

        return logp

    def make_expand_func(*args):
        inner = make_expand(*args)
        return lambda z, **data: inner(mu + L @ z, **data)

    return dataclasses.replace(compiled, _make_logp_func=make_logp_func, _make_expand_func=make_expand_func)


@functools.cache
def _whitened_class(base):
    @dataclasses.dataclass(frozen=True)
    class Whitened(base):
        """nutpie's numba model sampling whitened coordinates (:func:`whitened`)."""

        whitening: tuple = ()  # (the wrapped model, mu, L)
        _whitened_base = base

        def with_data(self, **updates):
            wrapped, mu, L = self.whitening
            again = whitened(wrapped.with_data(**updates), mu, L)
            return dataclasses.replace(again, initial_point_func=self.initial_point_func)

    Whitened.__name__ = Whitened.__qualname__ = f"Whitened{base.__name__}"
    return Whitened
