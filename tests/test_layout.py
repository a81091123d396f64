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
    assert lay.n_files == len(files) == 3 * 2 + 2 * 3


def test_no_film_ta_no_layout():
    assert film_layout(xr.Dataset(coords={"experiment": ["a"]})) is None
