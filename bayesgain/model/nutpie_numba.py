"""nutpie's numba model with C entry points that numba keeps on disk: a second process does not compile.

Why: nutpie wraps PyTensor's compiled log density (and the function that expands a draw into every variable)
in ``numba.cfunc`` C callbacks.  PyTensor caches its own numba functions on disk, but nutpie's callbacks
read the data through the uuid-named fields of a record and hold the arrays as module globals, so numba
cannot cache them: every new process links the whole compiled model into two new LLVM modules and optimises
them again (~30 s of the joint model's warm start, on 2 cores, out of ~35 s of compiling).

Here the callbacks are generated from source whose only globals are the PyTensor function (itself cached
by PyTensor under the key of its graph) and two helpers; the data arrive at run time through a flat
``uint64`` array of pointers and shapes.  The source is registered with PyTensor's numba cache locator under
a key made of PyTensor's graph key, the shapes' ranks and dtypes and the versions of numba and this layout,
so numba finds the compiled callbacks on disk in the next process.  A graph PyTensor cannot key (an Op
without a cache key) falls back to nutpie's own callbacks.

The first compile of a structure runs in a child process that only fills the cache, and this process then
loads it like every later one: numba's cached object code and the same code compiled in-process can differ in
the last bit of the log density, and a fit's draws must not depend on whether the cache was warm.

The callbacks compute the same function of the same arrays as the PyTensor functions they wrap
(tests/test_nutpie_numba.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import threading

import numpy as np

__all__ = ["compile_pymc_model_cached", "flat_user_data", "STATS"]

_LAYOUT_VERSION = "2"  # change when the generated source or the user-data layout changes
# "1": compile missing callbacks in this process, no child (the test suite: many small structures, each compiled
# once; this process's last bits may then differ from a later process's)
IN_PROCESS_ENV = "BAYESGAIN_CALLBACKS_IN_PROCESS"
# which path this process's compiles took
STATS = {"cached_callbacks": 0, "nutpie_callbacks": 0, "child_compiles": 0, "child_failures": 0}


def _import_nutpie():
    from nutpie import compile_pymc as ncp

    return ncp


def flat_user_data(shared_vars, shared_data, shared_var_keys):
    """``(uint64 array, offsets)``: per shared variable its data pointer then its shape, in ``shared_vars``
    order; ``offsets[i]`` is where variable i starts.  The arrays must stay alive while the array is used."""
    words, offsets = [], []
    for var in shared_vars:
        arr = shared_data[shared_var_keys[var]]
        offsets.append(len(words))
        words.append(arr.ctypes.data)
        words.extend(int(s) for s in arr.shape)
    return np.array(words if words else [0], dtype=np.uint64), tuple(offsets)


def _read_args(names_offsets_dtypes):
    """Source lines that turn the user-data words into the PyTensor function's shared-array arguments."""
    lines = []
    for j, (offset, ndim, dtype) in enumerate(names_offsets_dtypes):
        shape = "(" + "".join(f"int(ud[{offset + 1 + k}]), " for k in range(ndim)) + ")"
        lines.append(f"        s{j} = carray(as_ptr(ud[{offset}]), {shape}, np.{dtype})")
    return lines


def _callback_source(kind, n_dim, n_expanded, args, n_words):
    """Source of the C callback ``kind`` ("logp" or "expand") with nutpie's signature and return codes.

    Its ``except Exception`` is nutpie's own contract: numba's nopython mode catches no narrower class, and an
    error must become a return code for the sampler, never cross the C boundary."""
    # CPython builds calls and tuples of more than 30 items through a list, which numba cannot type: chunks
    names = ["x"] + [f"s{j}" for j in range(len(args))]
    chunks = [names[i:i + 20] for i in range(0, len(names), 20)]
    read = _read_args(args) + ["        args = " + " + ".join("(" + ", ".join(c) + ",)" for c in chunks)]
    call = "*args"
    if kind == "logp":
        return "\n".join([
            "def logp_c(dim, x_, out_, logp_, user_data_):",
            f"    if dim != {n_dim}:",
            "        return -1",
            "    try:",
            f"        x = carray(x_, ({n_dim},))",
            f"        out = carray(out_, ({n_dim},))",
            "        logp = carray(logp_, ())",
            f"        ud = carray(user_data_, ({n_words},), np.uint64)",
            *read,
            f"        logp_val, grad = inner({call})",
            "        logp[()] = logp_val",
            "        out[...] = grad",
            "        if not np.all(np.isfinite(out)):",
            "            return 3",
            "        if not np.isfinite(logp_val):",
            "            return 4",
            "    except Exception:",
            "        return 1",
            "    return 0",
        ]) + "\n"
    return "\n".join([
        "def expand_c(dim, expanded, x_, out_, user_data_):",
        f"    if dim != {n_dim}:",
        "        return -1",
        f"    if expanded != {n_expanded}:",
        "        return -1",
        "    try:",
        f"        x = carray(x_, ({n_dim},))",
        f"        out = carray(out_, ({n_expanded},))",
        f"        ud = carray(user_data_, ({n_words},), np.uint64)",
        *read,
        f"        (values,) = inner({call})",
        "        out[...] = values",
        "    except Exception:",
        "        return -2",
        "    return 0",
    ]) + "\n"


def _graph_key(fn_pt):
    """PyTensor's on-disk cache key of the compiled function ``fn_pt`` (None: not cacheable)."""
    from pytensor.configdefaults import config
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    if not config.numba__cache:
        return None
    jit_fn = fn_pt.vm.jit_fn
    return CACHED_SRC_FUNCTIONS.get(getattr(jit_fn, "py_func", None))


_LOGP_SIGNATURE = "int64(uint64, CPointer(double), CPointer(double), CPointer(double), voidptr)"
_EXPAND_SIGNATURE = "int64(uint64, uint64, CPointer(double), CPointer(double), voidptr)"
# by kind: the model's own callbacks, and callbacks that wrap another through its address (model/whitening.py)
_SIGNATURES = {"logp": _LOGP_SIGNATURE, "expand": _EXPAND_SIGNATURE,
               "wrap-logp": _LOGP_SIGNATURE, "wrap-expand": _EXPAND_SIGNATURE}


def _callback_function(kind, inner, src, key):
    """The Python function of callback ``kind`` registered under ``key`` with PyTensor's numba cache locator:
    "logp"/"expand" call the compiled PyTensor function ``inner``; "wrap-*" (``inner`` None) call other callbacks
    by address (``call_logp_at``, ``call_expand_at``)."""
    import numba
    from pytensor.link.numba.cache import compile_numba_function_src

    ncp = _import_nutpie()
    # __name__: numba rebuilds a cached function's environment from its module on loading
    env = {"__name__": __name__, "np": np, "carray": numba.carray, "as_ptr": ncp.address_as_void_pointer}
    if inner is not None:
        env["inner"] = _graph_body(inner)
    else:
        env["call_logp_at"], env["call_expand_at"] = _calls_by_address()
    name = "expand_c" if kind.endswith("expand") else "logp_c"
    return compile_numba_function_src(src, name, global_env=env, cache_key=key)


@functools.cache
def _calls_by_address():
    """numba intrinsics ``call_logp_at(address, dim, x, grad, logp, user_data)`` and ``call_expand_at(address,
    dim, expanded, x, out, user_data)``: call the C callback with nutpie's signature at ``address``; a pointer
    argument may be given as an integer address (``array.ctypes.data``).

    Why by address: the address is data, so a wrapping callback's compiled code does not depend on the wrapped
    one and numba caches it once for every model of its size; calling the wrapped dispatcher would link the
    whole model into the wrapper and compile it again."""
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    i64 = ir.IntType(64)
    dbl = ir.DoubleType().as_pointer()
    byte = ir.IntType(8).as_pointer()

    def cast(builder, value, to):
        return builder.inttoptr(value, to) if isinstance(value.type, ir.IntType) else builder.bitcast(value, to)

    def caller(arg_types):
        def codegen(context, builder, signature, args):
            fnty = ir.FunctionType(i64, arg_types)
            fn = builder.inttoptr(args[0], fnty.as_pointer())
            values = [v if t == i64 else cast(builder, v, t) for v, t in zip(args[1:], arg_types)]
            return builder.call(fn, values)
        return codegen

    @intrinsic
    def call_logp_at(typingctx, address, dim, x, grad, logp, user_data):
        return types.int64(address, dim, x, grad, logp, user_data), caller([i64, dbl, dbl, dbl, byte])

    @intrinsic
    def call_expand_at(typingctx, address, dim, expanded, x, out, user_data):
        return types.int64(address, dim, expanded, x, out, user_data), caller([i64, i64, dbl, dbl, byte])

    return call_logp_at, call_expand_at


def _graph_body(jit_fn):
    """The function the callback calls: the graph's own body where PyTensor's caching wrapper exposes it.

    Why: numba links every callee into its caller and optimises the whole module again, so callback -> caching
    wrapper -> graph body optimised the whole model three times on a cold compile; the callback is cached itself.
    """
    body = getattr(getattr(jit_fn, "py_func", None), "__globals__", {}).get("jitable_func")
    return body if body is not None and hasattr(body, "py_func") else jit_fn


def _on_disk(py_fn):
    """Whether numba's cache holds an index for ``py_fn`` (then ``cfunc(cache=True)`` loads it)."""
    from numba.core.caching import FunctionCache

    return os.path.exists(FunctionCache(py_fn)._cache_file._index_path)


@contextlib.contextmanager
def _compile_lock(key):
    """An exclusive lock per callback key in numba's cache directory (POSIX; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:  # no flock: two processes may both compile, and one cache entry wins
        yield
        return
    from pytensor.link.numba.cache import NUMBA_CACHE_PATH

    with open(NUMBA_CACHE_PATH / f"bayesgain-callbacks-{key[:24]}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _compile_in_child(jobs, beside=None):
    """Compile callbacks ``[(kind, fn_pt, src, key), ...]`` into numba's disk cache in a child process.

    Why a child: numba's object code loaded from its cache can differ in the last bit from the same code
    compiled in this process, so a first run that compiled here would not give the same draws as every later
    run that loads; compiled in a child, every process (this one included) runs the cached code.
    ``beside``: a callable run in a thread of this process while the child compiles (this process only waits
    meanwhile): other first-run compilations, overlapped with the child's on a second core.
    """
    import pickle
    import subprocess
    import sys
    import tempfile

    import cloudpickle
    from pytensor.configdefaults import config

    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",") if f and not f.startswith("base_compiledir=")]
    flags.append(f"base_compiledir={config.base_compiledir}")
    # the child imports this package from where this process did (a checkout on sys.path, not only an install)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**os.environ, "PYTENSOR_FLAGS": ",".join(flags), "PYTHONPATH": os.pathsep.join(path)}
    with tempfile.TemporaryDirectory(prefix="bayesgain-compile-") as tmp:
        job_file = os.path.join(tmp, "jobs.pkl")
        try:  # cloudpickle (a PyMC dependency): PyTensor graphs can hold local functions (OpFromGraph gradients)
            payload = cloudpickle.dumps(jobs)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as err:  # compiled here instead
            return False, [f"cannot send the graph to a child: {type(err).__name__}: {err}"[:200]]
        with open(job_file, "wb") as fh:
            fh.write(payload)
        with _running_beside(beside):
            run = subprocess.run([sys.executable, "-m", __name__, job_file], env=env, capture_output=True, text=True)
    return run.returncode == 0, (run.stderr or "").strip().splitlines()[-1:]


@contextlib.contextmanager
def _running_beside(fn):
    """Run ``fn()`` in a thread for the duration of the block and wait for it; its errors are logged, not raised
    (what it does is a warm-up of caches: the work is done again, slower, where it failed)."""
    if fn is None:
        yield
        return

    def run():
        try:
            fn()
        # noqa below: a best-effort cache warm-up (PyTensor, numba, PyMC raise errors of any class) must never fail
        # the fit; the work is redone where it is needed
        except Exception as err:  # noqa: BLE001
            first = (str(err).splitlines() or [""])[0][:200]
            logging.getLogger(__name__).info("compiling beside the sampler's callbacks failed (%s: %s); that work is "
                                             "done again where it is needed", type(err).__name__, first)

    thread = threading.Thread(target=run, name="bayesgain-compile-beside", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def _callbacks(fns, shared_vars, shared_data, shared_var_keys, offsets, n_words, n_dim, n_expanded, beside=None):
    """``{kind: numba C callback}`` of the PyTensor functions ``fns`` (kind -> function), cached on disk;
    None when PyTensor cannot key a graph (then nutpie compiles its own).  ``beside``: see :func:`_compile_in_child`."""
    made = {}
    for kind, fn_pt in fns.items():
        graph_key = _graph_key(fn_pt)
        if graph_key is None:
            return None
        args = []  # (offset in the user data, rank, dtype) of each shared argument, in the function's order
        for v in fn_pt.get_shared():
            arr = shared_data[shared_var_keys[v]]
            args.append((offsets[shared_vars.index(v)], arr.ndim, np.dtype(arr.dtype).name))
        src = _callback_source(kind, n_dim, n_expanded, args, n_words)
        key = _callback_key(kind, graph_key, src)
        made[kind] = (kind, fn_pt, src, key, _callback_function(kind, fn_pt.vm.jit_fn, src, key))

    return _load_or_compile(made, beside)


def _callback_key(kind, *parts):
    """The disk-cache key of a callback: its kind, what it is made of (graph key, source), numba's version and the
    fast-math setting."""
    import numba
    from pytensor.configdefaults import config

    return hashlib.sha256("|".join([
        "bayesgain-nutpie-callback", _LAYOUT_VERSION, kind, *parts, numba.__version__,
        f"fastmath{int(config.numba__fastmath)}"]).encode()).hexdigest()


def _load_or_compile(made, beside=None):
    """``{name: numba C callback}`` of ``made`` (name -> (kind, PyTensor function or None, source, key, Python
    function)): loaded from numba's disk cache, the missing ones compiled into it first in a child process
    (``beside`` run meanwhile, see :func:`_compile_in_child`)."""
    import numba

    _compile_missing(made, beside)
    return {name: numba.cfunc(_SIGNATURES[kind], cache=True)(py_fn) for name, (kind, *_, py_fn) in made.items()}


def _compile_missing(made, beside=None):
    """Compile the callbacks of ``made`` that numba's disk cache lacks, in a child process (not loaded here)."""
    def missing():
        return [(kind, fn_pt, src, key) for kind, fn_pt, src, key, py_fn in made.values() if not _on_disk(py_fn)]

    if missing() and os.environ.get(IN_PROCESS_ENV) != "1":
        # processes that start together (Dask workers of a study) compile a structure once: the others wait
        with _compile_lock(next(iter(made.values()))[3]):
            jobs = missing()
            if jobs:
                ok, why = _compile_in_child(jobs, beside)
                STATS["child_compiles"] += 1
                if not ok:  # compiled here instead: this run's last bits may differ from later runs'
                    STATS["child_failures"] += 1
                    logging.getLogger(__name__).warning(
                        "compiling the sampler's callbacks in a child process failed (%s); compiled here: this run's "
                        "draws may differ from a later run's in the last digits", " ".join(why) or "no message")


def _wrapping(sources):
    made = {}
    for name, (kind, src) in sources.items():
        key = _callback_key(kind, src)
        made[name] = (kind, None, src, key, _callback_function(kind, None, src, key))
    return made


def cached_callbacks(sources):
    """``{name: numba C callback}`` of wrapping callbacks given as ``{name: (kind, source)}`` ("wrap-logp" or
    "wrap-expand"), cached on disk under a key of their source like the model's own."""
    return _load_or_compile(_wrapping(sources))


def precompile_callbacks(sources):
    """Compile the wrapping callbacks ``sources`` (as :func:`cached_callbacks`) into numba's disk cache where it
    lacks them, without loading them: a later :func:`cached_callbacks` of the same sources only loads."""
    _compile_missing(_wrapping(sources))


def compile_pymc_model_cached(model, jitter_rvs=None, beside=None):
    """nutpie's compiled numba model of ``model`` (as ``nutpie.compile_pymc_model(model, jitter_rvs=...)``),
    with C callbacks numba caches on disk; nutpie's own callbacks where the graph cannot be keyed.
    ``beside(n_dim, n_expanded)``: run while a first run's callbacks compile in a child
    (see :func:`_compile_in_child`)."""
    import nutpie
    from pymc.initial_point import make_initial_point_fn

    ncp = _import_nutpie()
    if jitter_rvs is None:
        jitter_rvs = set(model.free_RVs)
    initial_point_fn = ncp._wrap_with_lock(make_initial_point_fn(
        model=model, overrides=None, default_strategy="support_point", jitter_rvs=jitter_rvs,
        return_transformed=True))
    n_dim, n_expanded, logp_pt, expand_pt, init_fn, shape_info, reparam = ncp._make_functions(
        model, mode="NUMBA", compute_grad=True, join_expanded=True, pymc_initial_point_fn=initial_point_fn,
        var_names=None)
    shared_vars = []
    for v in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
        if v not in shared_vars:
            shared_vars.append(v)
    # deterministic keys: the callbacks do not depend on them, but a model's with_data looks them up
    shared_var_keys = {v: f"shared{i}" for i, v in enumerate(shared_vars)}
    shared_data = {}
    for v in shared_vars:
        arr = np.array(v.get_value(), order="C", copy=True)
        arr.flags.writeable = False
        shared_data[shared_var_keys[v]] = arr
    user_data, offsets = flat_user_data(shared_vars, shared_data, shared_var_keys)
    n_words = user_data.size
    made = _callbacks({"logp": logp_pt, "expand": expand_pt}, shared_vars, shared_data, shared_var_keys, offsets,
                      n_words, n_dim, n_expanded, None if beside is None else lambda: beside(n_dim, n_expanded))
    if made is None:
        STATS["nutpie_callbacks"] += 1
        return nutpie.compile_pymc_model(model, jitter_rvs=jitter_rvs)
    STATS["cached_callbacks"] += 1
    dims, coords = ncp._prepare_dims_and_coords(model, shape_info, reparam)
    return _model_class()(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info)},
        compiled_logp_func=made["logp"], compiled_expand_func=made["expand"], initial_point_func=init_fn,
        shared_data=shared_data, shared_var_keys=shared_var_keys, user_data=user_data, n_expanded=n_expanded,
        shape_info=shape_info, logp_func=logp_pt, expand_func=expand_pt, shared_order=tuple(shared_vars))


@functools.cache
def _model_class():
    ncp = _import_nutpie()

    @dataclasses.dataclass(frozen=True)
    class CachedNumbaModel(ncp.CompiledPyMCModel):
        """nutpie's compiled model whose ``user_data`` is the flat pointer/shape array of
        :func:`flat_user_data` (what the cached callbacks read)."""

        shared_order: tuple = ()

        def with_data(self, **updates):
            shared_data = dict(self.shared_data)
            for name, new_val in updates.items():
                keys = [k for v, k in self.shared_var_keys.items() if v.name == name]
                if len(keys) != 1:
                    raise KeyError(f"shared variable {name!r}: {len(keys)} matches, expected 1")
                old = shared_data[keys[0]]
                new = np.array(new_val, dtype=old.dtype, order="C", copy=True)
                if new.ndim != old.ndim:
                    raise ValueError(f"shared variable {name!r} must have rank {old.ndim}, got {new.ndim}")
                new.flags.writeable = False
                shared_data[keys[0]] = new
            user_data, _ = flat_user_data(list(self.shared_order), shared_data, self.shared_var_keys)
            return dataclasses.replace(self, shared_data=shared_data, user_data=user_data)

    return CachedNumbaModel


def __getattr__(name):
    # the class derives from nutpie's, imported only when a model is compiled
    if name == "CachedNumbaModel":
        return _model_class()
    raise AttributeError(name)


def _child_main(job_file):
    """Compile the callbacks of ``job_file`` into numba's disk cache (run by :func:`_compile_in_child`)."""
    import pickle

    import numba

    with open(job_file, "rb") as fh:
        jobs = pickle.load(fh)
    for kind, fn_pt, src, key in jobs:
        inner = fn_pt.vm.jit_fn if fn_pt is not None else None
        numba.cfunc(_SIGNATURES[kind], cache=True)(_callback_function(kind, inner, src, key))


if __name__ == "__main__":
    import sys

    _child_main(sys.argv[1])
