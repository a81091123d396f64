"""The film TA layout of the reduced data: which file and which potential every ``ta_point`` belongs to.

A film TA file is one (potential, fluence) run of one experiment; files are numbered experiment by experiment,
potential-major then fluence (the ``ta_file`` dim of ``ta_mean_excitons``), and only the runs measured count
(a lab's potential x fluence grid may have holes: the reduced data list the files, ``ta_file_*``).  Computed once from the reduced
data (:mod:`.data`) and read by the model's build, the quantities, the checks, the design and the report.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["FilmLayout", "film_layout", "index_within_experiment"]


@dataclasses.dataclass(frozen=True)
class FilmLayout:
    file_index: np.ndarray          # film TA file of every ta_point
    ta_potential_index: np.ndarray  # ta_potential of every ta_point
    file_experiment: np.ndarray     # experiment of every film TA file
    file_fluence: np.ndarray        # ta_fluence of every film TA file
    file_potential: np.ndarray      # ta_potential of every film TA file

    @property
    def n_files(self):
        return int(self.file_experiment.size)


def index_within_experiment(values, axis, point_exp, axis_exp):
    """For each point, the index in ``axis`` of its value within its own experiment (nearest value)."""
    out = np.empty(len(values), int)
    for i, (v, e) in enumerate(zip(values, point_exp)):
        cand = np.nonzero(axis_exp == e)[0]
        out[i] = cand[np.argmin(np.abs(axis[cand] - v))]
    return out


def film_layout(data):
    """:class:`FilmLayout` of the reduced Dataset ``data``, or None when it holds no film TA points."""
    if "ta_point_experiment" not in data:
        return None
    pot_exp = data["ta_potential_experiment"].values
    e = data["ta_point_experiment"].values
    pot_index = index_within_experiment(data["ta_point_potential"].values, data["ta_potential_V"].values, e, pot_exp)
    fl_index = data["ta_point_fluence"].values
    if "ta_file_fluence" not in data:  # a fit saved before grids could have holes: every cell is a file
        return _full_grid_layout(data, e, pot_index, fl_index)
    fe = data["ta_file_experiment"].values
    f_pot = index_within_experiment(data["ta_file_potential_V"].values, data["ta_potential_V"].values, fe, pot_exp)
    f_fl = data["ta_file_fluence"].values
    # (potential, fluence) indices are global over experiments, so each pair names one file
    lookup = {(int(p), int(f)): k for k, (p, f) in enumerate(zip(f_pot, f_fl))}
    try:
        file_index = np.array([lookup[(int(p), int(f))] for p, f in zip(pot_index, fl_index)], int)
    except KeyError as err:
        raise ValueError(f"a film TA point at (potential, fluence) index {err.args[0]} belongs to no listed "
                         "film TA file") from None
    return FilmLayout(file_index, pot_index, fe, f_fl, f_pot)


def _full_grid_layout(data, e, pot_index, fl_index):
    """The layout of reduced data without a file list: every potential x fluence cell of each experiment a file."""
    n_exp = data["experiment"].size
    pot_exp = data["ta_potential_experiment"].values
    n_pot = np.bincount(pot_exp, minlength=n_exp)
    n_fl = np.bincount(data["ta_fluence_experiment"].values, minlength=n_exp)
    fl_first = np.concatenate([[0], np.cumsum(n_fl)[:-1]])
    pot_first = np.concatenate([[0], np.cumsum(n_pot)[:-1]])
    file_first = np.concatenate([[0], np.cumsum(n_pot * n_fl)[:-1]])
    file_index = file_first[e] + (pot_index - pot_first[e]) * n_fl[e] + (fl_index - fl_first[e])
    file_experiment = np.concatenate([np.full(n_fl[k] * n_pot[k], k) for k in range(n_exp)])
    file_fluence = np.concatenate([np.tile(np.arange(n_fl[k]) + fl_first[k], n_pot[k]) for k in range(n_exp)])
    file_potential = np.concatenate([np.repeat(np.arange(n_pot[k]) + pot_first[k], n_fl[k]) for k in range(n_exp)])
    return FilmLayout(file_index, pot_index, file_experiment, file_fluence, file_potential)
