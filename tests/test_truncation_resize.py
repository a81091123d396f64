"""The Poisson truncation raised after a fit whose posterior outgrew it (GainModel._resize_truncation).

No sampling: the posterior is a stand-in holding the film <N> of every file; what is checked is the check,
the new truncation (it holds the posterior's largest <N> with the model's own tail) and the rebuild."""

import numpy as np
import xarray as xr

from bayesgain.model.core import GainModel
from bayesgain.physics.poisson import truncated_tail


def _with_film_posterior(gm, largest):
    n = gm.data.sizes["ta_file"]
    N = np.full((2, 10, n), 3.0)
    N[1, 5, 0] = largest  # one draw of one file far out, as a file's calibration in the saturated regime
    gm.idata = xr.DataTree.from_dict({"posterior": xr.Dataset({"ta_mean_excitons": (("chain", "draw", "ta_file"), N)})})
    return gm


def test_a_posterior_beyond_the_truncation_raises_it_and_rebuilds(batch_a):
    spec = {"name": "gain-only", "components": {c: c == "gain" for c in
                                                 ("cross_section", "charging", "gain", "dynamics", "reflection")}}
    from bayesgain.model.spec import spec_from_dict

    gm = GainModel(spec_from_dict(spec), batch_a)
    gm.build()
    before = gm.n_max_film
    assert truncated_tail(5.0, before) < 1e-5  # the sizing holds the nominal design
    _with_film_posterior(gm, largest=before * 0.8)  # a draw near the truncation: its tail is far above 1e-5
    assert not gm.truncation_check()["ok"]
    assert gm._resize_truncation()
    assert gm.n_max_film > before and gm.n_max_film % 4 == 0
    assert truncated_tail(before * 0.8 * 1.2, gm.n_max_film) < gm.POISSON_TAIL
    assert gm.model is not None and gm.n_max == max(gm.n_max_film, gm.n_max_solution, 8)
    assert any("Poisson truncation raised" in note for note in gm.component_notes)
    _with_film_posterior(gm, largest=5.0)
    assert not gm._resize_truncation()  # nothing outgrown: nothing changes


def test_a_run_away_posterior_is_not_followed(batch_a):
    """A chain that ran away to <N> ~ 1e15 (seen in an SBC replicate: scipy's Poisson quantile is NaN there)
    leaves the truncation as it is and the check failed, instead of a traceback or an unaffordable rebuild."""
    from bayesgain.model.sizing import MAX_N_MAX
    from bayesgain.model.spec import spec_from_dict

    spec = {"name": "gain-only", "components": {c: c == "gain" for c in
                                                 ("cross_section", "charging", "gain", "dynamics", "reflection")}}
    gm = GainModel(spec_from_dict(spec), batch_a)
    gm.build()
    before = gm.n_max_film
    for largest in (1e15, MAX_N_MAX * 2.0, np.inf):
        _with_film_posterior(gm, largest=largest)
        assert not gm.truncation_check()["ok"]
        assert not gm._resize_truncation()
        assert gm.n_max_film == before
