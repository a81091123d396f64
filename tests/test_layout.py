"""The film TA layout (file and potential of every ta_point) against a plain enumeration of the files."""

import numpy as np
import xarray as xr

from bayesgain.model.layout import film_layout


def _reduced(potentials, fluences, delays, rng):
    """A reduced Dataset with the layout variables only: experiments with their own potentials/fluences, points shuffled."""
    pe, pv, fe, rows = [], [], [], []
    for k, (pots, fls) in enumerate(zip(potentials, fluences)):
        f0 = len(fe)
        pe += [k] * len(pots)
        pv += list(pots)
        fe += [k] * len(fls)
        rows += [(k, V + rng.normal(0, 1e-4), f0 + j, t) for V in pots for j in range(len(fls)) for t in delays]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    e, V, fl, t = map(np.array, zip(*rows))
    return xr.Dataset({"ta_point_experiment": ("ta_point", e), "ta_point_potential": ("ta_point", V),
                       "ta_point_fluence": ("ta_point", fl), "ta_point_delay": ("ta_point", t),
                       "ta_potential_experiment": ("ta_potential", np.array(pe)),
                       "ta_potential_V": ("ta_potential", np.array(pv, float)),
                       "ta_fluence_experiment": ("ta_fluence", np.array(fe))},
                      coords={"experiment": ["a", "b"]})


def test_layout_numbers_files_experiment_by_experiment_potential_major():
    rng = np.random.default_rng(0)
    potentials = [[0.1, -0.2, -0.5], [0.0, -0.3]]
    fluences = [[1e13, 3e13], [1e13, 2e13, 4e13]]
    d = _reduced(potentials, fluences, [1.0, 5.0, 100.0], rng)
    lay = film_layout(d)
    # reference: enumerate the files in order and look each point up by (experiment, potential, fluence)
    files, pots = {}, {}
    p0 = f0 = 0
    for k, (P, F) in enumerate(zip(potentials, fluences)):
        for i, V in enumerate(P):
            pots[(k, V)] = p0 + i
            for j in range(len(F)):
                files[(k, V, f0 + j)] = len(files)
        p0 += len(P)
        f0 += len(F)
    for n in range(d.sizes["ta_point"]):
        k = int(d["ta_point_experiment"][n])
        V = min(potentials[k], key=lambda v: abs(v - float(d["ta_point_potential"][n])))
        assert lay.ta_potential_index[n] == pots[(k, V)]
        assert lay.file_index[n] == files[(k, V, int(d["ta_point_fluence"][n]))]
    by_file = sorted(files.items(), key=lambda kv: kv[1])
    np.testing.assert_array_equal(lay.file_experiment, [k for (k, _, _), _ in by_file])
    np.testing.assert_array_equal(lay.file_fluence, [j for (_, _, j), _ in by_file])
    np.testing.assert_array_equal(lay.file_potential, [pots[(k, V)] for (k, V, _), _ in by_file])
    assert lay.n_files == len(files) == 3 * 2 + 2 * 3


def test_no_film_ta_no_layout():
    assert film_layout(xr.Dataset(coords={"experiment": ["a"]})) is None


def test_layout_of_a_grid_with_holes_numbers_only_the_files_measured():
    # a lab's grid with holes: the reduced data list the files (potential-major) and the points name their cell
    rng = np.random.default_rng(1)
    cells = [(0, 0.1, 0), (0, 0.1, 1), (0, -0.2, 1), (1, 0.0, 2), (1, -0.3, 3), (1, -0.3, 4)]  # (exp, V, fluence)
    pots = {0: [0.1, -0.2], 1: [0.0, -0.3]}
    rows = [(k, V + rng.normal(0, 1e-4), j, t) for k, V, j in cells for t in (1.0, 5.0)]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    e, V, fl, t = map(np.array, zip(*rows))
    d = xr.Dataset({"ta_point_experiment": ("ta_point", e), "ta_point_potential": ("ta_point", V),
                    "ta_point_fluence": ("ta_point", fl), "ta_point_delay": ("ta_point", t),
                    "ta_potential_experiment": ("ta_potential", np.array([0, 0, 1, 1])),
                    "ta_potential_V": ("ta_potential", np.array(pots[0] + pots[1])),
                    "ta_fluence_experiment": ("ta_fluence", np.array([0, 0, 1, 1, 1])),
                    "ta_file_experiment": ("ta_file", np.array([k for k, _, _ in cells])),
                    "ta_file_potential_V": ("ta_file", np.array([v for _, v, _ in cells])),
                    "ta_file_fluence": ("ta_file", np.array([j for _, _, j in cells]))},
                   coords={"experiment": ["a", "b"]})
    lay = film_layout(d)
    assert lay.n_files == 6
    for n in range(d.sizes["ta_point"]):
        k, j = int(e[n]), int(fl[n])
        v = min(pots[k], key=lambda p: abs(p - V[n]))
        assert cells[lay.file_index[n]] == (k, v, j)
        assert lay.ta_potential_index[n] == [0.1, -0.2, 0.0, -0.3].index(v)
    np.testing.assert_array_equal(lay.file_fluence, [0, 1, 1, 2, 3, 4])
    np.testing.assert_array_equal(lay.file_experiment, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(lay.file_potential, [0, 0, 1, 2, 3, 3])
