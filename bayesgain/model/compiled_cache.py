"""One compiled log density per model structure in a process: the data lifted out of the graph.

Why: compiling the joint model with nutpie/numba costs 30-70 s (graph rewrites, then LLVM), about as long
as its sampling, and experiments of one design -- the seeds of a benchmark, the films of a study, the refits
of an experimental design, SBC replicates -- differ only in their numbers.  :func:`lift_data` turns every
float array constant of the model graph (observations, SEMs, measured spectra, nominal fluences, ...) into a
shared variable of the same static shape, so the compiled function depends on the structure alone, and
:func:`compiled_for` hands a later model of the same structure the compiled one with its arrays swapped in
(nutpie's ``with_data``) instead of compiling again.  The arrays also leave the numba cache's keys, so a
second process compiling the same structure finds more of it on disk.

Every numba fit goes through the lifting, first or not, so the same seed gives the same posterior whether
or not a compile was reused.  Scalars and integer arrays (indices, truncations) stay constants and are part
of the structure key: a model that differs in them is compiled afresh.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import threading

import numpy as np

__all__ = ["lift_data", "compiled_for", "no_reuse", "clear", "STATS"]

_MAX_ENTRIES = 4  # compiled models kept per process (a compiled joint model holds ~100 MB of LLVM code)
_CACHE: collections.OrderedDict = collections.OrderedDict()
_LOCK = threading.RLock()
_REUSE = threading.local()  # .on: False inside no_reuse() (per thread; absent means True)
STATS = {"compiled": 0, "reused": 0}  # this process's compiles and reuses (Dask results report them)


@contextlib.contextmanager
def no_reuse():
    """Compile afresh inside this block (this thread), still with the data lifted (same posterior)."""
    before = getattr(_REUSE, "on", True)
    _REUSE.on = False
    try:
        yield
    finally:
        _REUSE.on = before


def _lifted_constants(fg):
    """Float array constants of ``fg`` in a deterministic order (first use in topological order)."""
    from pytensor.tensor import TensorConstant

    seen, out = set(), []
    for node in fg.toposort():
        for v in node.inputs:
            if (isinstance(v, TensorConstant) and v.ndim >= 1 and v.dtype.startswith("float")
                    and np.asarray(v.data).size >= 2 and id(v) not in seen):
                seen.add(id(v))
                out.append(v)
    return out


def _structure_key(fg, lifted_names, extra):
    """sha256 of the graph's operations and wiring, the remaining constants' values and ``extra``.

    Operations are compared by ``hash(op)`` (PyTensor ops hash their properties; an op without properties
    hashes by identity and so never matches: a missed reuse, never a wrong one).
    """
    from pytensor.graph.basic import Constant

    ids = {}
    h = hashlib.sha256(repr(extra).encode())
    for k, node in enumerate(fg.toposort()):
        tokens = []
        for v in node.inputs:
            if v in ids:
                tokens.append(ids[v])
            elif v.name in lifted_names and not isinstance(v, Constant):
                tokens.append(("data", v.name, str(v.type)))
            elif isinstance(v, Constant):
                d = np.asarray(v.data)
                tokens.append(("const", str(v.type), hashlib.sha256(np.ascontiguousarray(d).tobytes()).hexdigest()
                               if d.dtype.kind not in "OU" else repr(d.tolist())))
            else:
                tokens.append(("root", v.name, str(v.type)))
        h.update(repr((type(node.op).__module__, type(node.op).__qualname__, hash(node.op), str(node.op),
                       tokens)).encode())
        for j, out in enumerate(node.outputs):
            ids[out] = ("node", k, j, str(out.type))
    return h.hexdigest()


def lift_data(model, extra=()):
    """``(lifted_model, key, values)``: a copy of ``model`` whose float array constants are shared variables
    named ``data__<i>`` (static shapes kept), the structure key and the arrays by name."""
    import pytensor
    from pymc.model.fgraph import fgraph_from_model, model_from_fgraph

    fg, _ = fgraph_from_model(model)
    consts = _lifted_constants(fg)
    values = {f"data__{i}": np.asarray(c.data) for i, c in enumerate(consts)}
    shared = [pytensor.shared(values[f"data__{i}"].copy(), name=f"data__{i}", shape=c.type.shape)
              for i, c in enumerate(consts)]
    fg.replace_all(list(zip(consts, shared)), import_missing=True, reason="lift_data")
    key = _structure_key(fg, set(values), extra)
    lifted = model_from_fgraph(fg, mutate_fgraph=True)
    order = [v.name for v in model.free_RVs]
    if sorted(v.name for v in lifted.free_RVs) != sorted(order):
        raise RuntimeError("internal: lifting the data changed the model's free variables")
    # the model's own order: nutpie's flat vector (starts, layouts, jitter) follows free_RVs
    lifted.free_RVs.sort(key=lambda v: order.index(v.name))
    return lifted, key, values


def compiled_for(model, compile_fn, jitter_names=None):
    """nutpie's compiled model of ``model`` with its data, compiled once per structure in this process.

    ``compile_fn(lifted_model, jitter_rvs)`` compiles (data kept as shared variables); ``jitter_names``: the
    free variables whose starts are jittered (None: nutpie's default, all).  Returns ``(compiled, reused)``.
    One model of a structure is sampled at a time per process (the shared values of the kept model are set
    to the new data for its initial-point function).  Inside :func:`no_reuse` every call compiles.
    """
    extra = ("jitter-all",) if jitter_names is None else tuple(sorted(jitter_names))
    lifted, key, values = lift_data(model, extra=extra)
    with _LOCK:
        entry = _CACHE.get(key) if getattr(_REUSE, "on", True) else None
        if entry is not None:
            _CACHE.move_to_end(key)
            compiled, shared = entry
            for name, value in values.items():
                shared[name].set_value(value.copy())
            STATS["reused"] += 1
            return compiled.with_data(**values), True
        jitter = None if jitter_names is None else {rv for rv in lifted.free_RVs if rv.name in set(jitter_names)}
        compiled = compile_fn(lifted, jitter)
        STATS["compiled"] += 1
        _CACHE[key] = (compiled, _shared_by_name(lifted, set(values)))
        while len(_CACHE) > _MAX_ENTRIES:
            _CACHE.popitem(last=False)
        return compiled, False


def _shared_by_name(model, names):
    """The lifted shared variables of ``model`` by name (their values feed its initial-point function)."""
    from pytensor.compile import SharedVariable
    from pytensor.graph.traversal import ancestors

    outs = [*model.free_RVs, *model.observed_RVs, *model.potentials, *model.deterministics]
    outs += [model.rvs_to_values[rv] for rv in model.observed_RVs]
    found = {v.name: v for v in ancestors(outs) if isinstance(v, SharedVariable) and v.name in names}
    if set(found) != set(names):
        raise RuntimeError(f"internal: the lifted model lost shared variables {sorted(set(names) - set(found))}")
    return found


def clear():
    """Forget every kept compiled model of this process."""
    with _LOCK:
        _CACHE.clear()
