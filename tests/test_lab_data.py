"""Data as labs have them: SEC files without a direction or holding a down-and-up sweep, TA files on
different grids (a real glotaran file among them), and the reflection component switched off for
reflection-corrected film TA without transient reflection.  No sampling: models are built and their
log densities evaluated at a point (module-scoped)."""

import pathlib
import re
import shutil

import numpy as np
import pytest
import xarray as xr

from bayesgain import preprocess as pp
from bayesgain.io import ExperimentError, check_experiment, load_experiment
from bayesgain.io.readers import read_matrix
from bayesgain.io.sweeps import read_sweeps, split_at_turning_points

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "tiny_experiment"
BATCH_A = ROOT / "data" / "synthetic-batch-a"

SEC_ABS = ('[[film.sec]]\nfile = "sec_abs_c1_forward.csv"\nkind = "absorption"\ncycle = 1\ndirection = "forward"\n\n'
           '[[film.sec]]\nfile = "sec_abs_c1_backward.csv"\nkind = "absorption"\ncycle = 1\ndirection = "backward"\n\n')


def _manifest(folder, old, new):
    p = folder / "experiment.toml"
    text = p.read_text()
    assert text.count(old) == 1, "fixture changed"
    p.write_text(text.replace(old, new))


def _columns(path):
    """(potentials in file order, values[wavelength, column]) of a Helios SEC file, by plain text parsing."""
    rows = [line.split(",") for line in pathlib.Path(path).read_text().splitlines() if line.strip()]
    return np.array(rows[0][1:], float), np.array([r[1:] for r in rows[1:]], float), [r[0] for r in rows[1:]]


def _down_and_up(folder, turn_twice):
    """One file holding the fixture's forward sweep then its backward sweep (turning point once or twice)."""
    pf, vf, wl = _columns(folder / "sec_abs_c1_forward.csv")
    pb, vb, _ = _columns(folder / "sec_abs_c1_backward.csv")
    keep = slice(None) if turn_twice else slice(1, None)
    pots = np.concatenate([pf, pb[keep]])
    vals = np.concatenate([vf, vb[:, keep]], axis=1)
    lines = ["nm/V," + ",".join(f"{v:g}" for v in pots)]
    lines += [w + "," + ",".join(f"{x:.3f}" for x in row) for w, row in zip(wl, vals)]
    (folder / "sec_abs_c1.csv").write_text("\n".join(lines) + "\n")
    _manifest(folder, SEC_ABS, '[[film.sec]]\nfile = "sec_abs_c1.csv"\nkind = "absorption"\ncycle = 1\n\n')
    return pf, vf, pb, vb


# ----------------------------------------------------------------------------- SEC sweeps
@pytest.mark.parametrize("pots, stretches", [
    ([0, -1, -2, -1, 0], [[0, 1, 2], [2, 3, 4]]),          # turning point measured once: in both
    ([0, -1, -2, -2, -1, 0], [[0, 1, 2], [3, 4, 5]]),      # measured twice: one each
    ([-2, -1, 0, -1, -2], [[0, 1, 2], [2, 3, 4]]),         # up then down
    ([0, -1, -2], [[0, 1, 2]]),
    ([0, -1, 0, -1], [[0, 1], [1, 2], [2, 3]]),
])
def test_split_at_turning_points(pots, stretches):
    assert [list(s) for s in split_at_turning_points(pots)] == stretches


@pytest.mark.parametrize("turn_twice", [False, True])
def test_down_and_up_file_is_split_into_forward_and_backward(folder, tiny_tree, turn_twice):
    pf, vf, pb, vb = _down_and_up(folder, turn_twice)
    tree = load_experiment(folder)
    sec = tree["film/sec"]["absorption"]
    assert list(tree["film/sec"]["direction"].values) == ["forward", "backward"]
    np.testing.assert_array_equal(sec["potential"].values, np.sort(pf))
    fwd = sec.sel(cycle=1, direction="forward").transpose("wavelength", "potential").values
    bwd = sec.sel(cycle=1, direction="backward").transpose("wavelength", "potential").values
    np.testing.assert_array_equal(fwd, vf[:, np.argsort(pf)])
    want_b = vb.copy()
    if not turn_twice:  # the turning point, measured once, belongs to both sweeps
        want_b[:, 0] = vf[:, -1]
    np.testing.assert_array_equal(bwd, want_b[:, np.argsort(pb)])
    if turn_twice:  # the same data as the fixture's two files
        np.testing.assert_array_equal(sec.values, tiny_tree["film/sec"]["absorption"].values)
    note = tree["film/sec"].attrs["sweep_notes"]
    assert "sec_abs_c1.csv" in note and "split at its turning point -1.2 V" in note
    assert "cycle 1 forward (0 to -1.2 V) and backward (-1.2 to 0 V)" in note
    report = check_experiment(folder)
    assert report.ok and "holds a down-and-up sweep: split at its turning point -1.2 V" in report.text


def test_direction_from_the_order_of_the_potentials(folder, tiny_tree):
    text = (folder / "experiment.toml").read_text()
    (folder / "experiment.toml").write_text(re.sub(r'direction = "(forward|backward)"\n', "", text))
    tree = load_experiment(folder)
    np.testing.assert_array_equal(tree["film/sec"]["absorption"].values, tiny_tree["film/sec"]["absorption"].values)
    np.testing.assert_array_equal(tree["film/sec"]["photoluminescence"].values,
                                  tiny_tree["film/sec"]["photoluminescence"].values)
    notes = tree["film/sec"].attrs["sweep_notes"]
    assert "sec_abs_c1_forward.csv (film.sec[1]): no direction in the manifest; cycle 1 forward" in notes
    assert "sec_abs_c1_backward.csv (film.sec[2]): no direction in the manifest; cycle 1 backward" in notes
    # a decreasing file named "backward" is still forward: two forward sweeps of cycle 1 collide
    (folder / "sec_abs_c1_backward.csv").write_text((folder / "sec_abs_c1_forward.csv").read_text())
    with pytest.raises(ExperimentError, match=r"duplicate absorption sweep cycle 1 forward"):
        load_experiment(folder)


def test_sweep_files_that_cannot_be_split_are_refused(folder):
    path = folder / "two_turns.csv"
    path.write_text("nm/V,0,-0.4,-0.8,-0.4,0,-0.4\n500,1,2,3,4,5,6\n510,1,2,3,4,5,6\n")
    with pytest.raises(ExperimentError, match=r"the potentials turn 2 times \(at -0\.8 V, 0 V\)"):
        read_sweeps(path)
    path.write_text("nm/V,0,-0.4,-0.8,-0.4,0\n500,1,2,3,4,5\n510,1,2,3,4,5\n")
    with pytest.raises(ExperimentError, match=r"holds two sweeps .* but the manifest says direction = 'forward'"):
        read_sweeps(path, direction="forward")
    one, two = read_sweeps(path)
    assert (one.direction, two.direction) == ("forward", "backward")
    np.testing.assert_array_equal(one.data["potential"].values, [-0.8, -0.4, 0.0])
    np.testing.assert_array_equal(two.data.sel(wavelength=500.0).values, [3.0, 4.0, 5.0])


# ----------------------------------------------------------------------------- different grids
def _regrid_file(path, keep_wavelengths, keep_delays):
    """Rewrite a Helios TA file keeping some wavelength rows and delay columns (a different grid)."""
    text = path.read_text().split("\n\n")[0]  # the matrix ends at the first empty line
    rows = [line.split(",") for line in text.splitlines()]
    head, body = rows[0], rows[1:]
    cols = [0] + [j + 1 for j in keep_delays]
    out = [",".join(head[j] for j in cols)]
    out += [",".join(body[i][j] for j in cols) for i in keep_wavelengths]
    path.write_text("\n".join(out) + "\n")


def _direct_window(path, lo, hi, units=1.0):
    """Window mean and SEM of every delay of one file, straight from its own grid (NumPy)."""
    da = read_matrix(path)
    lam = da["wavelength"].values
    sub = da.values[(lam >= lo) & (lam <= hi)] / units
    return da["delay"].values, sub.mean(axis=0), sub.std(axis=0, ddof=1) / np.sqrt(sub.shape[0])


def test_ta_files_on_different_grids_are_accepted_with_per_file_windows(folder):
    _regrid_file(folder / "solution_ta_high.csv", [0, 1, 2], [0, 2, 3, 4])      # no 530 nm, no 0 ps
    _regrid_file(folder / "film_ta_m0.4V_high.csv", [1, 2, 3], [0, 1, 2, 3])    # no 500 nm, no 100 ps
    report = check_experiment(folder)
    assert report.ok, report.text
    assert "solution TA: 2 different wavelength/delay grids among 2 files" in report.text
    assert "film TA: 2 different wavelength/delay grids among 4 files" in report.text
    tree = load_experiment(folder)
    ta = tree["solution"]["ta"]
    assert dict(ta.sizes) == {"fluence": 2, "wavelength": 4, "delay": 5}
    assert np.isnan(ta.sel(fluence=ta.fluence[1], delay=0.0)).all()
    for window in ((500.0, 520.0), (505.0, 530.0)):
        mean, sem = pp.window_average(ta, window)
        for k, name in enumerate(ta["source_file"].values):
            d, m, s = _direct_window(folder / str(name), *window)
            got = mean.isel(fluence=k).sel(delay=d)
            np.testing.assert_allclose(got.values, m, rtol=1e-12)
            np.testing.assert_allclose(sem.isel(fluence=k).sel(delay=d).values, s, rtol=1e-12)
            others = np.setdiff1d(ta["delay"].values, d)
            assert np.isnan(mean.isel(fluence=k).sel(delay=others)).all()
    film = tree["film/ta"]["dA"]
    mean, sem = pp.window_average(film, (500.0, 530.0))
    for (p, f), name in np.ndenumerate(tree["film/ta"]["source_file"].values):
        d, m, s = _direct_window(folder / str(name), 500.0, 530.0)
        np.testing.assert_allclose(mean.isel(potential=p, fluence=f).sel(delay=d).values, m, rtol=1e-12)
        np.testing.assert_allclose(sem.isel(potential=p, fluence=f).sel(delay=d).values, s, rtol=1e-12)
    # a measured spectrum with a single point in the window is refused, not averaged
    with pytest.raises(ValueError, match="fewer than 2 measured points"):
        pp.window_average(film, (500.0, 510.0))


@pytest.fixture(scope="module")
def real_glotaran(real_data_dir):
    path = real_data_dir / "pyglotaran-examples" / "2016co_tol.ascii"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def test_real_glotaran_file_as_one_solution_ta_entry(tmp_path, real_glotaran):
    from bayesgain.model.data import reduce_experiment
    from bayesgain.model.spec import load_spec

    folder = tmp_path / "exp"
    shutil.copytree(FIXTURE, folder)
    shutil.copy(real_glotaran, folder / "glotaran.ascii")
    low = '[[solution.ta]]\nfile = "solution_ta_low.csv"\n'
    _manifest(folder, low, '[[solution.ta]]\nfile = "glotaran.ascii"\nunits = "mOD"\n'
              'fluence_photons_cm2 = 3.0e14\n\n' + low)
    _manifest(folder, "[film]\n", "[analysis]\nsolution_band_edge_window_nm = [505.0, 525.0]\n\n[film]\n")
    tree = load_experiment(folder)
    ta = tree["solution"]["ta"]
    own = read_matrix(real_glotaran)
    assert ta.sizes["wavelength"] == own.sizes["wavelength"] + 4 and ta.sizes["delay"] >= own.sizes["delay"]
    k = list(ta["source_file"].values).index("glotaran.ascii")
    np.testing.assert_array_equal(ta.isel(fluence=k).sel(wavelength=own.wavelength, delay=own.delay).values,
                                  own.values / 1000.0)
    # the cross-section reduction: each file's window averages on its own grid, at its own delays
    options = dict(load_spec("joint").options, cross_section_delays_ps=[1.0, 100.0])
    red = reduce_experiment(tree, options, "tiny", {c: c == "cross_section" for c in
                                                    ("cross_section", "charging", "photoluminescence", "gain",
                                                     "dynamics", "reflection")})
    for i, name in enumerate(ta["source_file"].values):
        d, m, s = _direct_window(folder / str(name), 505.0, 525.0, 1000.0 if name == "glotaran.ascii" else 1.0)
        sel = (d >= 1.0) & (d <= 100.0)
        pts = red["sol_point_fluence"].values == i
        np.testing.assert_array_equal(red["sol_point_delay"].values[pts], d[sel])
        np.testing.assert_allclose(red["sol_dA"].values[pts], m[sel], rtol=1e-12)
        np.testing.assert_allclose(red["sol_dA_sem"].values[pts], s[sel], rtol=1e-12)


# ----------------------------------------------------------------------------- components the data can feed
def _without(tree, *groups):
    d = tree.to_dict()
    for g in groups:
        d.pop(g)
    return xr.DataTree.from_dict(d)


@pytest.fixture(scope="module")
def corrected_no_tr():
    """Batch A as a lab that corrects reflection upstream sends it: corrected film TA, no TR files."""
    tree = load_experiment(BATCH_A)
    corr = pp.reflection_correct_film(tree)
    d = tree.to_dict()
    ta = d["/film/ta"].copy()
    ta["dA"] = corr["dA"].transpose(*ta["dA"].dims).drop_attrs().assign_attrs(ta["dA"].attrs)
    ta["reflection_corrected"] = xr.ones_like(ta["reflection_corrected"])
    d["/film/ta"] = ta
    d.pop("/film/tr")
    return xr.DataTree.from_dict(d)


@pytest.fixture(scope="module")
def joint_no_tr(corrected_no_tr):
    from bayesgain.model.core import GainModel

    m = GainModel("joint", corrected_no_tr, names=["lab"])
    m.build()
    return m


def test_joint_spec_without_tr_fits_without_the_reflection_component(joint_no_tr):
    m = joint_no_tr
    assert m.spec.name == "joint" and m.spec.components["reflection"] is False
    assert m.spec.components["gain"] and m.spec.components["dynamics"] and m.spec.components["cross_section"]
    names = set(m.model.named_vars)
    assert not {"reflection_scale", "subgap_noise_rel", "reflection"} & names
    assert {"gain", "dynamics", "charging", "cross_section"} <= names
    assert "reflection_scale" not in m.spec.priors and "subgap_point" not in m.data.dims
    assert "reflection = false" in m.spec.to_toml()  # what posterior.nc stores: the model that was fitted
    assert m.component_notes == ["reflection component switched off: the film TA is declared reflection-corrected "
                                 "(reflection_corrected = true) and there is no TR data"]
    assert np.isfinite(m.model.compile_logp(mode=_mode())(m.model.initial_point()))


def _mode():
    from bayesgain.physics.api import numpy_mode

    return numpy_mode()


def test_the_note_reaches_the_fit_attrs_and_report_md(joint_no_tr, monkeypatch):
    from bayesgain.report import markdown as report  # the sections are looked up where report.md is joined

    m = joint_no_tr
    prior = m.sample_prior_predictive(draws=4, seed=1, var_names=list(m.model.named_vars))["prior"].to_dataset()
    # four prior draws stand in for a posterior of 2 chains x 2 draws: only the bookkeeping is under test
    post = xr.concat([prior.isel(draw=slice(0, 2)), prior.isel(draw=slice(2, 4)).assign_coords(draw=[0, 1])],
                     dim="chain").assign_coords(chain=[0, 1])
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((2, 2), bool))})
    m.idata = xr.DataTree.from_dict({"/posterior": post, "/sample_stats": stats})
    m._finish(m.idata)
    assert "switched off" in m.idata.attrs["component_notes"]
    for name in [n for n in dir(report) if n.startswith("_section_")]:  # only the header is under test
        monkeypatch.setattr(report, name, lambda *a, **k: [])
    text = report._report_text(m, None, None, [], {}, "ok", [])
    header = text.split("## Convergence")[0] if "## Convergence" in text else text.split("## Figures")[0]
    assert "- reflection component switched off: the film TA is declared reflection-corrected" in header
    assert "components: cross_section, charging, gain, dynamics;" in header


def test_required_data_are_refused_and_safe_switches_are_noted(tiny_tree, corrected_no_tr):
    from bayesgain.model.resolve import resolve_components
    from bayesgain.model.spec import load_spec, spec_from_dict

    joint = load_spec("joint")
    # raw film TA (some files reflection_corrected = false) without TR: nothing can correct it
    with pytest.raises(ValueError, match=r"experiment tiny: film TA with reflection_corrected = false needs "
                                         r"transient reflection"):
        resolve_components(joint, [_without(tiny_tree, "/film/tr")], ["tiny"])
    with pytest.raises(ValueError, match=r"experiment tiny: the gain component needs film TA"):
        resolve_components(joint, [_without(tiny_tree, "/film/ta", "/film/tr")], ["tiny"])
    with pytest.raises(ValueError, match=r"experiment tiny: the cross_section component needs solution TA"):
        resolve_components(joint, [_without(tiny_tree, "/solution")], ["tiny"])
    # raw TA with TR: nothing to switch off
    res = resolve_components(joint, [tiny_tree], ["tiny"])
    assert res.spec is joint and res.notes == []
    # PL asked for but not measured: off, with a note; measured by one experiment only: refused
    d = corrected_no_tr.to_dict()
    d["/film/sec"] = d["/film/sec"].drop_vars(["photoluminescence", "photoluminescence_source_file"])
    no_pl = xr.DataTree.from_dict(d)
    pl = spec_from_dict({"components": {"photoluminescence": True}})
    res = resolve_components(pl, [corrected_no_tr], ["a"])
    assert res.spec.components["photoluminescence"] and not res.spec.components["reflection"]
    res = resolve_components(pl, [no_pl], ["a"])
    assert not res.spec.components["photoluminescence"] and not res.spec.components["reflection"]
    assert "pl_yield_1" not in res.spec.priors and "pl_yield_1" in pl.priors
    assert res.notes[0].startswith("photoluminescence component switched off")
    with pytest.raises(ValueError, match=r"experiment b: the photoluminescence component needs"):
        resolve_components(pl, [corrected_no_tr, no_pl], ["a", "b"])
    # two experiments, one with usable TR: reflection stays on, the other reduces without sub-gap points
    res = resolve_components(joint, [corrected_no_tr, tiny_tree], ["a", "tiny"])
    assert res.spec.components["reflection"]
    assert [c["reflection"] for c in res.per_experiment] == [False, True]
    assert res.notes == ["experiment a: film TA declared reflection-corrected and there is no TR data: no sub-gap "
                         "points; its reflection scales follow their prior"]


# ----------------------------------------------------------------------------- film TA files on their own delays
FILM_ONLY = {"name": "film-only", "components": {"cross_section": False, "charging": False, "reflection": False}}


def _own_delays(tree):
    """Film TA files on different delay grids: file (0, 0) lost its odd delays, file (1, 1) its even ones."""
    d = tree.to_dict()
    ta = d["/film/ta"].copy()
    dA = ta["dA"].copy()
    n = dA.sizes["delay"]
    dA[0, 0, :, 1::2] = np.nan
    dA[1, 1, :, 0::2] = np.nan
    ta["dA"] = dA
    d["/film/ta"] = ta
    return xr.DataTree.from_dict(d), n


@pytest.fixture(scope="module")
def film_models(corrected_no_tr):
    from bayesgain.model.core import GainModel
    from bayesgain.model.spec import spec_from_dict

    spec = spec_from_dict(FILM_ONLY)
    own, _ = _own_delays(corrected_no_tr)
    out = {}
    for key, tree in (("shared", corrected_no_tr), ("own", own)):
        m = GainModel(spec, tree, names=["lab"])
        m.build()
        out[key] = m
    return out


def _pointwise(m, point):
    model = m.model
    obs = [model[n] for n in ("gain", "dynamics")]
    f = model.compile_fn(model.logp(vars=obs, sum=False), inputs=model.value_vars, mode=_mode(),
                         on_unused_input="ignore")
    d = m.data
    out = {}
    for label, lp in zip(("gain", "dynamics"), f(point)):
        idx = np.nonzero(d["ta_point_component"].values == label)[0]
        for i, v in zip(idx, lp):
            key = (label, float(d["ta_point_potential"].values[i]), int(d["ta_point_fluence"].values[i]),
                   float(d["ta_point_delay"].values[i]))
            out[key] = float(v)
    return out


def test_files_on_their_own_delays_are_gathered_per_point(film_models, corrected_no_tr):
    shared, own = film_models["shared"], film_models["own"]
    d = own.data
    delays = corrected_no_tr["film/ta"]["delay"].values
    pots = corrected_no_tr["film/ta"]["potential"].values
    # each file contributes only delays it measured; the dynamics delays are picked per file
    for (p, f), parity in (((0, 0), 0), ((1, 1), 1)):
        pts = (d["ta_point_potential"].values == pots[p]) & (d["ta_point_fluence"].values == f)
        own_idx = np.searchsorted(delays, d["ta_point_delay"].values[pts])
        assert pts.sum() > 5 and np.all(own_idx % 2 == parity)
    assert own.data.sizes["ta_point"] < shared.data.sizes["ta_point"]
    point = shared.model.initial_point()
    point = {k: v + 0.05 * np.random.default_rng(0).standard_normal(np.shape(v)) for k, v in point.items()}
    a, b = _pointwise(shared, point), _pointwise(own, point)
    common = sorted(set(a) & set(b))
    assert len(common) > 0.8 * len(b)
    np.testing.assert_allclose([b[k] for k in common], [a[k] for k in common], rtol=1e-10, atol=1e-10)
    # the dynamics picks of the two files differ from the shared grid's: points only the own-delay model has
    assert set(b) - set(a)
    # and the whole log density is finite with every file on its own delays
    assert np.isfinite(own.model.compile_logp(mode=_mode())(point))


def test_classic_analysis_on_files_with_their_own_delays():
    from bayesgain.classic import classic_analysis

    tree = load_experiment(BATCH_A)
    d = tree.to_dict()
    ta, sol = d["/film/ta"].copy(), d["/solution"].copy()
    ta["dA"] = ta["dA"].copy()
    ta["dA"][0, 0, :, 1::2] = np.nan  # raw film TA: reflection-corrected where measured
    sol["ta"] = sol["ta"].copy()
    sol["ta"][0, :, 1::2] = np.nan
    d["/film/ta"], d["/solution"] = ta, sol
    full = {r["name"]: r for r in classic_analysis(tree)}
    own = {r["name"]: r for r in classic_analysis(xr.DataTree.from_dict(d))}
    V, F = tree["film/ta"]["potential"].values[0], tree["film/ta"]["fluence"].values[0]
    name = f"gain_lifetime_ps[V={V:+.3f},J={F:.3g}]"
    assert np.isfinite(own[name]["value"]) and abs(own[name]["value"] / full[name]["value"] - 1) < 0.05
    assert abs(own["cross_section_cm2"]["value"] / full["cross_section_cm2"]["value"] - 1) < 0.01
    assert not [r for r in own.values() if "NaN or inf" in str(r.get("note", ""))]
