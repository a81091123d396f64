"""Experiment data layer: readers, manifest, validation, in-memory DataTree, NetCDF round trip.

Public API::

    read_spectrum(path, *, nan="error", units="unknown", column=None) -> xarray.DataArray  (dims: wavelength)
    read_matrix(path, format=None, axis="delay", *, nan="error", units=None)
        -> xarray.DataArray  (dims: wavelength, axis)
    load_experiment(folder) -> xarray.DataTree
    check_experiment(folder) -> CheckReport       (.ok, .problems, .summary, .text)
    save_experiment(tree, path)                   (atomic NetCDF write)
    open_experiment(path) -> xarray.DataTree
    ExperimentError(ValueError)

The file formats and the tree layout are described in ``docs/experiment-format.md``.
"""

from .errors import ExperimentError
from .experiment import CheckReport, check_experiment, load_experiment
from .netcdf import open_experiment, save_experiment
from .readers import detect_format, read_matrix, read_spectrum

__all__ = [
    "ExperimentError",
    "CheckReport",
    "check_experiment",
    "load_experiment",
    "open_experiment",
    "save_experiment",
    "detect_format",
    "read_matrix",
    "read_spectrum",
]
