"""Tests of the SYNTHETIC-data simulator (bayesgain.simulate) and of the shipped data/ folders."""

import pathlib
import tomllib

import numpy as np
import pytest

from bayesgain import physics as ph
from bayesgain import simulate as S

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SHIPPED = {"synthetic-batch-a": ("batch-a", 1), "synthetic-batch-b": ("batch-b", 2)}

# a small, fast design (coarse grids, few files)
SMALL = dict(n_wavelengths=40, n_log_delays=12, sec_step_V=0.1, n_pl_wavelengths=15, steady_step_nm=5.0,
             solution_mean_excitons="0.5,2.0", film_mean_excitons="0.5,3.0", film_mean_electrons="0,1.9")


def _files(folder):
    folder = pathlib.Path(folder)
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _matrix(path):
    rows = [r for r in pathlib.Path(path).read_text().splitlines() if r and not r.startswith("#")]
    head = rows[0].split(",")
    assert head[0] == ""
    cols = np.array([float(x) for x in head[1:]])
    body = np.array([[float(x) for x in r.split(",")] for r in rows[1:]])
    return body[:, 0], cols, body[:, 1:]


def _spectrum(path):
    a = np.loadtxt(path, delimiter=",", skiprows=1)
    return a[:, 0], a[:, 1]


def _toml(path):
    return tomllib.loads(pathlib.Path(path).read_text())


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory):
    a = S.simulate_experiment(tmp_path_factory.mktemp("a") / "exp", "batch-a", seed=7, **SMALL)
    b = S.simulate_experiment(tmp_path_factory.mktemp("b") / "exp", "batch-a", seed=7, **SMALL)
    c = S.simulate_experiment(tmp_path_factory.mktemp("c") / "exp", "batch-a", seed=8, **SMALL)
    return a, b, c


def test_same_seed_gives_byte_identical_files(small_pair):
    a, b, _ = small_pair
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys() and len(fa) > 10
    assert all(fa[k] == fb[k] for k in fa)


def test_different_seeds_differ(small_pair):
    a, _, c = small_pair
    fa, fc = _files(a), _files(c)
    assert fa.keys() == fc.keys()
    differing = [k for k in fa if fa[k] != fc[k]]
    assert any(k.startswith("film/ta/") for k in differing)
    assert "truth.toml" in differing
    # the noise-free steady-state spectra do not depend on the seed
    assert fa["film/absorptance.csv"] == fc["film/absorptance.csv"]


def test_refuses_non_empty_folder_and_overwrites_only_when_asked(tmp_path):
    out = tmp_path / "exp"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        S.simulate_experiment(out, "batch-a", seed=0, **SMALL)
    assert (out / "notes.txt").read_text() == "mine"
    S.simulate_experiment(out, "batch-a", seed=0, overwrite=True, **SMALL)
    assert (out / "experiment.toml").is_file()


def test_unknown_preset_or_override_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        S.simulate_experiment(tmp_path / "x", "batch-z")
    with pytest.raises(ValueError, match="unknown parameter"):
        S.simulate_experiment(tmp_path / "y", "batch-a", not_a_parameter=1.0)


def test_folder_format(small_pair):
    a, _, _ = small_pair
    exp = _toml(a / "experiment.toml")
    assert exp["synthetic"] is True and "SYNTHETIC" in exp["description"] and "seed 7" in exp["description"]
    assert {"g_e", "g_h", "temperature_K", "film_thickness_nm", "film_thickness_sd_nm"} <= exp["sample"].keys()
    assert exp["pump"]["wavelength_nm"] == 400.0
    assert exp["film"]["open_circuit_potential_V"] == -0.30
    assert exp["film"]["reference_electrode"] == "Ag pseudo-reference"
    sec = exp["film"]["sec"]
    assert {(e["kind"], e["cycle"], e["direction"]) for e in sec} == {
        (k, c, d) for k in ("absorption", "photoluminescence") for c in (1, 2, 3) for d in ("forward", "backward")}
    assert len(exp["film"]["ta"]) == 4 and len(exp["film"]["tr"]) == 2 and len(exp["solution"]["ta"]) == 2
    assert all(e["reflection_corrected"] is False for e in exp["film"]["ta"])
    grids = []
    for e in exp["solution"]["ta"] + exp["film"]["ta"] + exp["film"]["tr"] + sec:
        lam, cols, M = _matrix(a / e["file"])
        assert np.all(np.isfinite(M)) and M.shape == (lam.size, cols.size)
        for axis in (lam, cols):
            d = np.diff(axis)
            assert np.all(d > 0) or np.all(d < 0)
        if e in sec and e["kind"] == "absorption":
            grids.append(np.sort(cols))
    assert all(np.array_equal(g, grids[0]) for g in grids)  # the same nominal potential grid
    for key in ("absorptance_file", "reflectance_file"):
        lam, v = _spectrum(a / exp["film"][key])
        assert np.all(np.diff(lam) > 0) and np.all((v >= 0) & (v < 1))
    truth = _toml(a / "truth.toml")
    for v in truth.values():  # flat or one level of tables, numbers and strings only
        inner = v.values() if isinstance(v, dict) else [v]
        assert all(isinstance(x, (int, float, str)) and not isinstance(x, bool) for x in inner)
    assert set(truth["film_ta_fluence_log_error"]) == {e["file"] for e in exp["film"]["ta"]}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_folders_are_reproducible_from_their_seeds(name, tmp_path):
    preset, seed = SHIPPED[name]
    shipped = DATA / name
    assert shipped.is_dir(), f"{shipped} is missing"
    fresh = S.simulate_experiment(tmp_path / name, preset, seed=seed)
    fs, ff = _files(shipped), _files(fresh)
    assert fs.keys() == ff.keys()
    assert [k for k in fs if fs[k] != ff[k]] == []


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_truth_matches_preset_and_design(name):
    preset, seed = SHIPPED[name]
    truth = _toml(DATA / name / "truth.toml")
    exp = _toml(DATA / name / "experiment.toml")
    assert truth["preset"] == preset and truth["seed"] == seed
    for key, value in S.PRESETS[preset].items():
        assert truth[key] == value, key
    n_pot = len(S._floats(truth["film_mean_electrons"]))
    n_flu = len(S._floats(truth["film_mean_excitons"]))
    assert len(exp["film"]["ta"]) == n_pot * n_flu == (54 if preset == "batch-a" else 24)
    assert len(exp["solution"]["ta"]) == 9
    # the stored <N> follows from the nominal fluence, the calibration error and the cross-section
    sigma_film = truth["cross_section_400nm_cm2"] * truth["film_cross_section_ratio"]
    for e in exp["film"]["ta"]:
        N = sigma_film * e["fluence_photons_cm2"] * np.exp(truth["film_ta_fluence_log_error"][e["file"]])
        assert N == pytest.approx(truth["film_ta_true_mean_excitons"][e["file"]], rel=1e-9)
    errs = np.array(list(truth["film_ta_fluence_log_error"].values()))
    assert 0.02 < errs.std() < 0.09
    # the film TA potentials give the design doping levels
    ne = np.array(list(truth["film_ta_mean_electrons"].values()))
    assert ne == pytest.approx(S._floats(truth["film_mean_electrons"]), abs=0.01)


def test_excited_state_matches_cascade_absorption():
    p = S.preset_parameters("batch-a")
    f = ph.charge_fractions(np.array([-0.3, -1.25, -1.5]), p["V_1S_V"], p["V_C_V"], p["sigma_1S_V"])
    t = np.array([0.0, 5.0, 300.0, 3000.0])
    ex = S.excited_state(np.array([0.4, 2.0, 6.0]), f, t, p)
    # the simulator's own cascade (matrix exponential) against the model's closed form
    want = ph.cascade_absorption(np.array([0.4, 2.0, 6.0]), f, t, 1 / p["tau_xx_ps"], 1 / p["tau_x_ps"])
    np.testing.assert_allclose(ex["A_ens"], want, atol=1e-8)
    np.testing.assert_allclose(ex["A_eff"], ex["A_ens"])  # no hole trapping in batch A
    pb = S.preset_parameters("batch-b")
    exb = S.excited_state(np.array([0.4, 2.0, 6.0]), f, np.array([0.0, 5.0]), pb)
    assert np.all(exb["A_eff"] >= exb["A_ens"] - 1e-12)  # trapping removes stimulated emission


def test_extinction_inverts_eq_s33():
    rng = np.random.default_rng(3)
    dA = rng.normal(0, 0.05, 50)
    dR = rng.normal(0, 0.03, 50)
    F_A = rng.uniform(0.0, 0.6, 50)
    F_R = rng.uniform(0.02, 0.15, 50) * (1 - F_A)
    dA_star = S._extinction(dA, dR, F_A, F_R)
    np.testing.assert_allclose(ph.reflection_correct(dA_star, dR, F_A, F_R), dA, atol=1e-12)


@pytest.mark.parametrize("preset,expected", [("batch-a", 1.54), ("batch-b", 1.8)])
def test_solution_5ps_band_edge_threshold(tmp_path, preset, expected):
    """The 5 ps band-edge window average of the neutral solution series crosses A0 near the paper value."""
    design = ",".join(f"{x:g}" for x in np.arange(1.2, 2.31, 0.1))
    out = S.simulate_experiment(tmp_path / preset, preset, seed=11, **dict(
        SMALL, n_wavelengths=109, solution_mean_excitons=design))
    exp, truth = _toml(out / "experiment.toml"), _toml(out / "truth.toml")
    lam_ss, A0_ss = _spectrum(out / exp["solution"]["absorbance_file"])
    l1 = S.HC_EV_NM / truth["solution_1S_peak_eV"]
    N, dA = [], []
    for e in exp["solution"]["ta"]:
        lam, t, M = _matrix(out / e["file"])
        w = np.abs(lam - l1) < 12.0
        dA.append(M[w, np.argmin(np.abs(t - 5.0))].mean())
        N.append(truth["solution_ta_true_mean_excitons"][e["file"]])
    A0 = np.interp(lam[w], lam_ss, A0_ss).mean()
    threshold = S.band_edge_window_threshold(N, dA, A0)
    assert threshold == pytest.approx(expected, abs=0.1)


def _film(name):
    d = DATA / name
    exp, truth = _toml(d / "experiment.toml"), _toml(d / "truth.toml")
    lam_ss, F_A = _spectrum(d / exp["film"]["absorptance_file"])
    _, F_R = _spectrum(d / exp["film"]["reflectance_file"])
    return d, exp, truth, lam_ss, F_A, F_R


def test_sec_band_edge_is_transparent_at_the_most_negative_potential():
    d, exp, truth, lam_ss, F_A, _ = _film("synthetic-batch-a")
    A0 = -np.log10(1 - F_A)
    l1 = S.HC_EV_NM / truth["film_1S_peak_eV"]
    for e in exp["film"]["sec"]:
        if e["kind"] != "absorption":
            continue
        lam, V, M = _matrix(d / e["file"])
        i = np.argmin(np.abs(lam - l1))
        most_negative = M[i, np.argmin(V)]
        open_circuit = M[i, np.argmax(V)]
        assert most_negative == pytest.approx(-np.interp(lam[i], lam_ss, A0), rel=0.05)
        assert abs(open_circuit) < 1e-3
        # photoluminescence is quenched by charging
    for e in exp["film"]["sec"]:
        if e["kind"] == "photoluminescence":
            _, V, M = _matrix(d / e["file"])
            assert M[:, np.argmin(V)].sum() < 0.15 * M[:, np.argmax(V)].sum()


def test_reflection_artefact_is_removed_by_eq_s33():
    d, exp, truth, lam_ss, F_A, F_R = _film("synthetic-batch-a")
    ta = [e for e in exp["film"]["ta"] if e["potential_V"] == exp["film"]["open_circuit_potential_V"]]
    ta = max(ta, key=lambda e: e["fluence_photons_cm2"])
    tr = max(exp["film"]["tr"], key=lambda e: e["fluence_photons_cm2"])
    lam, t, raw = _matrix(d / ta["file"])
    _, _, dR = _matrix(d / tr["file"])
    F_A, F_R = np.interp(lam, lam_ss, F_A)[:, None], np.interp(lam, lam_ss, F_R)[:, None]
    corrected = ph.reflection_correct(raw, dR, F_A, F_R)
    sub = lam > 690.0
    late = (t > 2.0) & (t < 100.0)
    before = np.abs(raw[sub][:, late].mean())
    after = np.abs(corrected[sub][:, late].mean())
    assert raw[sub][:, late].mean() < -5e-4  # an apparent sub-gap bleach before correction
    assert after < 0.2 * before


def test_noise_is_larger_at_the_probe_edges():
    d, exp, *_ = _film("synthetic-batch-a")
    stds_edge, stds_mid = [], []
    for e in exp["film"]["ta"][:9]:
        lam, t, M = _matrix(d / e["file"])
        pre = t < -0.5  # before time zero: pure noise
        stds_edge.append(M[lam < 465][:, pre].std())
        stds_mid.append(M[np.abs(lam - 590) < 10][:, pre].std())
    assert np.mean(stds_edge) > 1.5 * np.mean(stds_mid)
    assert 1e-4 < np.mean(stds_mid) < 5e-4


def test_data_folder_is_small_and_labelled():
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert total < 20e6
    readme = (DATA / "README.md").read_text()
    assert "SYNTHETIC" in readme and "truth.toml" in readme
    import csv

    with open(DATA / "literature" / "paper-values.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and set(rows[0]) == {"quantity", "value", "uncertainty", "unit", "condition", "source"}
    assert any(r["quantity"] == "absorption_cross_section_400nm" and float(r["value"]) == 3.6e-14 for r in rows)


def test_sec_sweeps_are_shifted_by_the_stored_drift_and_hysteresis():
    d, exp, truth, *_ = _film("synthetic-batch-a")
    l1 = S.HC_EV_NM / truth["film_1S_peak_eV"]
    corrected = []
    for e in exp["film"]["sec"]:
        if e["kind"] != "absorption":
            continue
        lam, V, M = _matrix(d / e["file"])
        order = np.argsort(V)
        bleach = -M[np.abs(lam - l1) < 6.0].mean(axis=0)[order]
        Vs = V[order]
        half = 0.5 * bleach[0]  # the most negative potential is fully bleached
        k = np.nonzero(bleach < half)[0][0]  # first potential (from negative) below half bleach
        V_half = Vs[k - 1] + (half - bleach[k - 1]) * (Vs[k] - Vs[k - 1]) / (bleach[k] - bleach[k - 1])
        sign = 0.5 if e["direction"] == "forward" else -0.5
        corrected.append(V_half + truth["sec_drift_V"][f"cycle{e['cycle']}"] + sign * truth["sec_hysteresis_V"])
    assert np.ptp(corrected) < 0.004
    assert np.mean(corrected) == pytest.approx(truth["V_1S_V"], abs=0.03)
