"""The film TA layout of the reduced data: which file and which potential every ``ta_point`` belongs to.

A film TA file is one (potential, fluence) run of one experiment; files are numbered experiment by experiment,
potential-major then fluence (the ``ta_file`` dim of ``ta_mean_excitons``).  Computed once from the reduced
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
    n_exp = data["experiment"].size
    pot_exp = data["ta_potential_experiment"].values
    e = data["ta_point_experiment"].values
    pot_index = index_within_experiment(data["ta_point_potential"].values, data["ta_potential_V"].values, e, pot_exp)
    fl_index = data["ta_point_fluence"].values
    n_pot = np.bincount(pot_exp, minlength=n_exp)
    n_fl = np.bincount(data["ta_fluence_experiment"].values, minlength=n_exp)
    fl_first = np.concatenate([[0], np.cumsum(n_fl)[:-1]])
    pot_first = np.concatenate([[0], np.cumsum(n_pot)[:-1]])
    file_first = np.concatenate([[0], np.cumsum(n_pot * n_fl)[:-1]])
    file_index = file_first[e] + (pot_index - pot_first[e]) * n_fl[e] + (fl_index - fl_first[e])
    file_experiment = np.concatenate([np.full(n_fl[k] * n_pot[k], k) for k in range(n_exp)])
    file_fluence = np.concatenate([np.tile(np.arange(n_fl[k]) + fl_first[k], n_pot[k]) for k in range(n_exp)])
    return FilmLayout(file_index, pot_index, file_experiment, file_fluence)
