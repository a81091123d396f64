"""NetCDF round trip of an experiment DataTree (one file, h5netcdf engine).

NetCDF has no boolean type: bool attrs are written as int8 and their names listed in the attr
``bayesgain_bool_attrs`` of the same node/variable so that :func:`open_experiment` restores them.
Boolean variables are handled by xarray itself (stored as int8 with ``dtype: bool`` encoding).
Writing is atomic: a temporary file in the target directory, then :func:`os.replace`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .._atomic import atomic_path

__all__ = ["save_experiment", "open_experiment"]

BOOL_MARK = "bayesgain_bool_attrs"
ENGINE = "h5netcdf"


def _encode_attrs(attrs: dict) -> dict:
    out, bools = {}, []
    for k, v in attrs.items():
        if isinstance(v, (bool, np.bool_)):
            out[k] = np.int8(v)
            bools.append(k)
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, (bool, np.bool_)) for x in v):
            out[k] = np.asarray(v, dtype=np.int8)
            bools.append(k)
        elif v is None:
            continue  # NetCDF cannot store None; absence means the same
        else:
            out[k] = v
    if bools:
        out[BOOL_MARK] = " ".join(bools)
    return out


def _decode_attrs(attrs: dict) -> dict:
    out = dict(attrs)
    names = out.pop(BOOL_MARK, "")
    for k in str(names).split():
        if k in out:
            v = np.asarray(out[k])
            out[k] = bool(v) if v.ndim == 0 else [bool(x) for x in v]
    for k, v in list(out.items()):
        if isinstance(v, np.generic):  # NetCDF scalars come back as numpy scalars
            out[k] = v.item()
        elif isinstance(v, np.ndarray):  # list attrs come back as arrays
            out[k] = v.tolist()
    return out


def _map_attrs(tree: xr.DataTree, fn) -> xr.DataTree:
    nodes = {}
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False).copy()
        ds.attrs = fn(ds.attrs)
        for name in ds.variables:
            ds[name].attrs = fn(ds[name].attrs)
        nodes[node.path] = ds
    return xr.DataTree.from_dict(nodes)


def _require_h5py() -> None:
    try:
        import h5py  # noqa: F401
    except ImportError:  # h5netcdf >= 1.8 no longer pulls in h5py by itself
        raise ImportError("NetCDF files need the 'h5py' package (the h5netcdf engine's HDF5 "
                          "backend): pip install h5py") from None


def save_experiment(tree: xr.DataTree, path) -> Path:
    """Write ``tree`` to one NetCDF4 file at ``path`` atomically; returns the path.

    A reader of ``path`` sees either the old file or the complete new one, never a partial write.
    """
    _require_h5py()
    path = Path(path)
    encoded = _map_attrs(tree, _encode_attrs)
    with atomic_path(path, create_parent=False) as tmp:
        encoded.to_netcdf(tmp, engine=ENGINE, mode="w")
    return path


def open_experiment(path) -> xr.DataTree:
    """Read an experiment written by :func:`save_experiment` fully into memory (file closed)."""
    _require_h5py()
    with xr.open_datatree(path, engine=ENGINE) as tree:
        tree = tree.load()
        decoded = _map_attrs(tree, _decode_attrs)
    return decoded
