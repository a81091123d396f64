"""Experiment folders: manifest, validation (malformed-input corpus), DataTree layout, NetCDF."""

import hashlib
import os
import pathlib
import re

import numpy as np
import pytest
import xarray as xr

from bayesgain.io import (CheckReport, ExperimentError, check_experiment, load_experiment,
                          open_experiment, save_experiment)

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "tiny_experiment"


@pytest.fixture(scope="module")
def tree(tiny_tree):  # this file's name for the loaded fixture folder
    return tiny_tree


# ----------------------------------------------------------------------------- the valid fixture
def test_fixture_tree_layout(tree):
    assert {n.path for n in tree.subtree} == {
        "/", "/solution", "/film", "/film/sec", "/film/ta", "/film/tr", "/truth"}
    assert tree.attrs["name"] == "tiny-cdse-film" and tree.attrs["synthetic"] is True
    assert (tree.attrs["g_e"], tree.attrs["g_h"]) == (2, 4)
    assert tree.attrs["pump_wavelength_nm"] == 400.0 and tree.attrs["film_thickness_sd_nm"] == 10.0

    sol = tree["solution"]
    assert sol["ta"].dims == ("fluence", "wavelength", "delay")
    assert sol["ta"].shape == (2, 4, 5)
    assert sol["absorbance"].dims == ("wavelength_spectrum",) and sol["absorbance"].size == 6
    assert sol.attrs["pump_absorbance"] == 0.35
    np.testing.assert_array_equal(sol["delay"], [-0.5, 0, 1, 10, 100])
    # the low-fluence file, 510 nm, 1 ps: line 3, column 4 of solution_ta_low.csv
    assert sol["ta"].sel(fluence=1e14, wavelength=510.0, delay=1.0).item() == -0.0150

    film = tree["film"]
    assert film["absorptance"].sel(wavelength_spectrum=510.0).item() == 0.40
    assert film["reflectance"].sel(wavelength_spectrum=510.0).item() == 0.12
    assert film.attrs["reference_electrode"] == "Ag wire pseudo-reference"

    sec = tree["film/sec"]
    assert sec["absorption"].dims == ("cycle", "direction", "potential", "wavelength")
    assert sec["absorption"].shape == (1, 2, 4, 4)
    assert sec["photoluminescence"].dims == ("cycle", "direction", "potential", "wavelength_pl")
    assert sec["photoluminescence"].shape == (1, 2, 4, 3)
    np.testing.assert_array_equal(sec["potential"], [-1.2, -0.8, -0.4, 0.0])  # stored ascending
    assert list(sec["direction"].values) == ["forward", "backward"]
    # backward sweep file, 510 nm row, column for -1.2 V
    assert sec["absorption"].sel(cycle=1, direction="backward", potential=-1.2, wavelength=510.0).item() == -0.108
    assert sec["photoluminescence"].sel(cycle=1, direction="forward", potential=0.0, wavelength_pl=550.0).item() == 3000

    ta = tree["film/ta"]
    assert ta["dA"].dims == ("potential", "fluence", "wavelength", "delay")
    assert ta["dA"].shape == (2, 2, 4, 5)
    np.testing.assert_array_equal(ta["potential"], [-0.8, -0.4])
    np.testing.assert_array_equal(ta["fluence"], [5e13, 1e14])
    assert ta["reflection_corrected"].dtype == bool
    assert ta["reflection_corrected"].sel(potential=-0.4).values.all()
    assert not ta["reflection_corrected"].sel(potential=-0.8).values.any()
    # film_ta_m0.8V_high.csv: 520 nm, 10 ps
    assert ta["dA"].sel(potential=-0.8, fluence=1e14, wavelength=520.0, delay=10.0).item() == -0.0420
    assert ta["source_file"].sel(potential=-0.8, fluence=1e14).item() == "film_ta_m0.8V_high.csv"

    tr = tree["film/tr"]
    assert tr["dR"].shape == (1, 1, 4, 5)

    truth = tree["truth"].attrs
    assert truth["V_1S"] == -0.75 and truth["auger.k_xx"] == 0.02 and truth["converged"] is True
    assert list(truth["spectrum.peak_nm"]) == [510.0, 560.0]


def test_every_variable_and_coordinate_has_units(tree):
    for node in tree.subtree:
        for name, var in node.to_dataset(inherit=False).variables.items():
            assert "units" in var.attrs, f"{node.path}/{name} has no units attr"
    assert tree["film/ta"]["fluence"].attrs["units"] == "photons/cm^2"
    assert tree["film/sec"]["potential"].attrs["units"] == "V"
    assert tree["film/sec"]["photoluminescence"].attrs["units"] == "counts"
    assert tree["film/ta"]["dA"].attrs["units"] == "OD"
    assert tree["solution"]["delay"].attrs["units"] == "ps"


def test_energy_density_is_converted_with_the_physics(tree):
    from bayesgain.physics import energy_density_nJ_cm2_to_fluence

    expected = float(energy_density_nJ_cm2_to_fluence(1000 * 100.0, 400.0))
    assert tree["solution"]["fluence"].values[1] == pytest.approx(expected, rel=1e-12)
    assert 1e14 < expected < 1e15  # 100 uJ/cm^2 at 400 nm is ~2e14 photons/cm^2


def test_check_reports_what_was_found():
    report = check_experiment(FIXTURE)
    assert isinstance(report, CheckReport)
    assert report.ok and report.problems == []
    text = report.text
    assert "Result: OK" in text
    assert "data files read: 14" in text
    assert re.search(r"film TA: 4 file\(s\), potentials \[-0.8, -0.4\] V x fluences \[5e\+13, 1e\+14\]", text)
    assert "cycles [1], directions ['forward', 'backward'], potentials [-1.2, -0.8, -0.4, 0] V" in text


def test_load_leaves_input_files_untouched():
    files = sorted(FIXTURE.iterdir())

    def snap():
        return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), os.stat(p).st_mtime_ns) for p in files}

    before = snap()
    load_experiment(FIXTURE)
    check_experiment(FIXTURE)
    assert snap() == before
    assert sorted(FIXTURE.iterdir()) == files  # nothing written beside them


def test_crlf_and_cr_copies_load_identically(folder, tree):
    for k, p in enumerate(sorted(folder.glob("*.csv"))):
        text = p.read_bytes().replace(b"\n", b"\r\n" if k % 2 else b"\r")
        p.write_bytes(text)
    again = load_experiment(folder)
    for node in tree.subtree:
        other = again[node.path].to_dataset(inherit=False)
        xr.testing.assert_equal(node.to_dataset(inherit=False), other)


# ----------------------------------------------------------------------------- NetCDF round trip
def test_netcdf_round_trip(tree, tmp_path):
    path = tmp_path / "exp.nc"
    save_experiment(tree, path)
    assert [p.name for p in tmp_path.iterdir()] == ["exp.nc"]  # no temp file left behind
    back = open_experiment(path)
    assert back.identical(tree)
    for node in tree.subtree:
        assert back[node.path].attrs == node.attrs
        for name, var in node.to_dataset(inherit=False).variables.items():
            got = back[node.path][name]
            assert got.dtype == var.dtype or (var.dtype.kind == "U" and got.dtype.kind in "UO"), name
            assert got.attrs == var.attrs, name
    assert back.attrs["synthetic"] is True  # bool attrs restored, not 1
    assert back["truth"].attrs["converged"] is True
    assert back["film/ta"]["reflection_corrected"].dtype == bool
    os.remove(path)  # the file was closed by open_experiment


def test_save_replaces_existing_file_atomically(tree, tmp_path):
    path = tmp_path / "exp.nc"
    path.write_bytes(b"old content")
    save_experiment(tree, path)
    assert open_experiment(path).attrs["name"] == "tiny-cdse-film"
    with pytest.raises(Exception):
        save_experiment(tree, tmp_path / "missing-dir" / "x.nc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.nc"]


# ----------------------------------------------------------------------------- malformed corpus
def edit(name, old, new, count=1):
    """Mutation: replace ``old`` by ``new`` in file ``name`` (``count`` occurrences expected)."""

    def apply(folder):
        p = folder / name
        text = p.read_text()
        assert text.count(old) == count, f"fixture changed: {old!r} x{text.count(old)} in {name}"
        p.write_text(text.replace(old, new))

    return apply


def put(name, text):
    def apply(folder):
        (folder / name).write_text(text)

    return apply


def remove(name):
    def apply(folder):
        (folder / name).unlink()

    return apply


def copy(name, to):
    def apply(folder):
        (folder / to).write_bytes((folder / name).read_bytes())
    return apply


def chain(*mutations):
    def apply(folder):
        for m in mutations:
            m(folder)
    return apply


M = "experiment.toml"
TA_M04_LOW = 'file = "film_ta_m0.4V_low.csv"\npotential_V = -0.4\nfluence_photons_cm2 = 5.0e13\n'
SEC_FWD = 'file = "sec_abs_c1_forward.csv"\nkind = "absorption"\ncycle = 1\ndirection = "forward"\n'

GLOTARAN_TR = ("exported by glotaran\n\nTime explicit\nintervalnr 5\n -0.5 0 1 10 100\n"
               "500 1 2 3 4 5\n510 1 2 3 4 5\n520 1 2 3 4 5\n530 1 2 3 4 5\n")

# (id, mutation, regex the error must match).  Every message must also name a file in the folder.
MALFORMED = [
    ("misspelt-table", edit(M, "[sample]", "[sampel]"), r"unknown key 'sampel' in the top level.*did you mean 'sample'\?"),
    ("misspelt-key", edit(M, "temperature_K", "temprature_K"),
     r"\[sample\.temprature_K\]: unknown key .*did you mean 'temperature_K'\?"),
    ("missing-name", edit(M, 'name = "tiny-cdse-film"\n', ""), r"experiment\.toml \[name\]: missing required key 'name'"),
    ("missing-file", remove("solution_ta_low.csv"), r"solution_ta_low\.csv \[solution\.ta\[1\]\]: file not found"),
    ("non-numeric-cell", edit("solution_ta_low.csv", "-0.0150", "abc"),
     r"solution_ta_low\.csv, line 3, column 4: non-numeric cell 'abc'; expected a number"),
    ("nan-cell", edit("film_ta_m0.4V_low.csv", "0.0001,-0.0010", "NaN,-0.0010"),
     r"film_ta_m0\.4V_low\.csv, line 2, column 2: value nan .*set nan = \"zero\" or \"drop-wavelengths\""),
    ("inf-cell", edit("sec_abs_c1_forward.csv", "-0.110", "inf"), r"sec_abs_c1_forward\.csv, line 3, column 5: value inf"),
    ("duplicate-delay", edit("solution_ta_high.csv", ",-0.5,0,1,10,100", ",-0.5,0,1,1,100"),
     r"solution_ta_high\.csv, line 1, column 5: duplicate delay 1 ps"),
    ("non-monotonic-wavelength", edit("film_ta_m0.8V_low.csv", "\n520,", "\n505,"),
     r"film_ta_m0\.8V_low\.csv, line 4, column 1: wavelength axis is not strictly monotonic: 510 then 505"),
    # a transposed TA file is read by its axes (KiMoPack layout), which states no units
    ("transposed-ta", put("film_tr_m0.8V_high.csv", ",500,510,520,530\n-0.5,0,0,0,0\n0,1,1,1,1\n1,2,2,2,2\n10,3,3,3,3\n100,4,4,4,4\n"),
     r"film_tr_m0\.8V_high\.csv \[film\.tr\[1\]\.units\]: the units of the values are not stated in this kimopack file"),
    ("fluence-negative", edit(M, "fluence_photons_cm2 = 1.0e14\n\n[[solution.ta]]", "fluence_photons_cm2 = -1.0e14\n\n[[solution.ta]]"),
     r"\[solution\.ta\[1\]\.fluence_photons_cm2\]: got -1e\+14; expected 1e\+08 <= value <= 1e\+19 photons/cm\^2"),
    ("energy-density-zero", edit(M, "pump_energy_density_uJ_cm2 = 100.0", "pump_energy_density_uJ_cm2 = 0.0"),
     r"\[solution\.ta\[2\]\.pump_energy_density_uJ_cm2\]: got 0; expected 1e-06 <= value <= 1e\+06 uJ/cm\^2"),
    ("mixed-units", edit(M, "pump_energy_density_uJ_cm2 = 100.0", "pump_energy_density_uJ_cm2 = 100.0\nfluence_photons_cm2 = 2e14"),
     r"\[solution\.ta\[2\]\]: mixed units: both fluence_photons_cm2 and pump_energy_density_uJ_cm2"),
    ("no-fluence", edit(M, 'file = "film_tr_m0.8V_high.csv"\npotential_V = -0.8\nfluence_photons_cm2 = 1.0e14\n',
                        'file = "film_tr_m0.8V_high.csv"\npotential_V = -0.8\n'),
     r"\[film\.tr\[1\]\]: missing pump fluence: expected exactly one of"),
    ("ta-potential-outside-sec", edit(M, "potential_V = -0.4", "potential_V = -1.5", count=2),
     r"film_ta_m0\.4V_low\.csv \[film\.ta\[1\]\.potential_V\]: potential_V = -1\.5 V is outside the SEC potential range \[-1\.2, 0\] V"),
    # a film TA grid may have holes (test_film_ta_grid_with_a_hole_loads); the TR grid that corrects it may not
    ("tr-grid-incomplete", chain(copy("film_tr_m0.8V_high.csv", "film_tr_m0.4V_low.csv"),
                                 edit(M, "[[film.tr]]", "[[film.tr]]\nfile = \"film_tr_m0.4V_low.csv\"\n"
                                      "potential_V = -0.4\nfluence_photons_cm2 = 5.0e13\n\n[[film.tr]]")),
     r"\[film\.tr\]: film TR grid is incomplete: no file for \(-0\.8 V, 5e\+13 photons/cm\^2\)"),
    ("ta-duplicate", edit(M, 'file = "film_ta_m0.8V_high.csv"\npotential_V = -0.8', 'file = "film_ta_m0.8V_high.csv"\npotential_V = -0.4'),
     r"film_ta_m0\.8V_high\.csv \[film\.ta\[4\]\]: duplicate film TA measurement at -0\.4 V and 1e\+14 photons/cm\^2 \(also film_ta_m0\.4V_high\.csv\)"),
    # film TA files on different grids are accepted (tests/test_lab_data.py); TR files must share one grid
    ("sec-potential-grid", edit("sec_pl_c1_backward.csv", "nm/V,-1.2,", "nm/V,-1.3,"),
     r"sec_pl_c1_backward\.csv \[film\.sec\[4\]\]: potential grid .* expected every SEC sweep on the same nominal potential grid"),
    ("bad-direction", edit(M, 'direction = "backward"', 'direction = "reverse"', count=2),
     r"\[film\.sec\[2\]\.direction\]: got 'reverse'; expected one of 'forward', 'backward'"),
    ("misspelt-kind", edit(M, 'kind = "absorption"', 'kind = "absorbtion"', count=2),
     r"\[film\.sec\[1\]\.kind\]: got 'absorbtion'; .*did you mean 'absorption'\?"),
    ("cycle-zero", edit(M, SEC_FWD, SEC_FWD.replace("cycle = 1", "cycle = 0")),
     r"\[film\.sec\[1\]\.cycle\]: got 0; expected an integer >= 1"),
    ("cycle-not-int", edit(M, SEC_FWD, SEC_FWD.replace("cycle = 1", 'cycle = "1"')),
     r"\[film\.sec\[1\]\.cycle\]: expected an integer, got '1'"),
    ("sec-cycle-incomplete", edit(M, "[[film.tr]]", "[[film.sec]]\n" + SEC_FWD.replace("cycle = 1", "cycle = 2") + "\n[[film.tr]]"),
     r"\[film\.sec\]: no absorption SEC sweep for cycle 2 backward"),
    ("absorptance-above-one", edit("film_FA.txt", "510\t0.40", "510\t1.20"),
     r"film_FA\.txt \[film\.absorptance_file\]: F_A = 1\.2 at 510 nm .*expected 0 <= F_A <= 1"),
    ("absorptance-plus-reflectance", edit("film_FR.txt", "510\t0.12", "510\t0.65"),
     r"film_FR\.txt \[film\.reflectance_file\]: F_A \+ F_R = 1\.05 at 510 nm .*expected F_A \+ F_R <= 1"),
    ("synthetic-without-truth", remove("truth.toml"), r"\[synthetic\]: synthetic = true but .*truth\.toml does not exist"),
    ("toml-syntax", edit(M, "[pump]", "[pump"), r"experiment\.toml: not valid TOML"),
    ("spectrum-non-numeric", edit("film_FA.txt", "490\t0.31", "490\t0,31"), r"film_FA\.txt, line 3, column 2: non-numeric cell '0,31'; expected a number"),
    ("spectrum-text-cell", edit("solution_absorbance.csv", "500,0.300", "500,n/a"),
     r"solution_absorbance\.csv, line 4, column 2: non-numeric cell 'n/a'"),
    ("spectrum-micrometres", put("film_FR.txt", "0.48\t0.1\n0.49\t0.1\n"), r"film_FR\.txt: wavelength column holds 0\.48 to 0\.49; expected wavelengths in nm"),
    ("unknown-format", edit(M, 'file = "film_tr_m0.8V_high.csv"', 'file = "film_tr_m0.8V_high.csv"\nformat = "helio"'),
     r"\[film\.tr\[1\]\.format\]: got 'helio'; expected one of 'helios', 'kimopack', 'glotaran'; did you mean 'helios'\?"),
    ("unknown-nan-policy", edit(M, 'file = "film_tr_m0.8V_high.csv"', 'file = "film_tr_m0.8V_high.csv"\nnan = "ignore"'),
     r"\[film\.tr\[1\]\.nan\]: got 'ignore'; expected one of 'error', 'zero', 'drop-wavelengths'"),
    ("ragged-row", edit("solution_ta_high.csv", "510,0.0001,-0.0060,", "510,-0.0060,"),
     r"solution_ta_high\.csv, line 3: row has 4 value\(s\) after the axis cell; expected 5"),
    ("data-after-gap", edit("solution_ta_high.csv", "\n520,", "\n\n520,"),
     r"solution_ta_high\.csv, line 4: the matrix stops at an empty line, but numeric data rows follow at line 5"),
    ("pump-absorbance-negative", edit(M, "pump_absorbance = 0.35", "pump_absorbance = -0.1"),
     r"\[solution\.pump_absorbance\]: got -0\.1; expected 0 <= value <= 10 OD"),
    ("reflection-corrected-text", edit(M, "reflection_corrected = true", 'reflection_corrected = "yes"', count=2),
     r"\[film\.ta\[1\]\.reflection_corrected\]: expected true or false, got 'yes'"),
    ("sec-in-millivolts", put("sec_abs_c1_forward.csv", "nm/mV,0,-400,-800,-1200\n500,0,0,0,0\n510,0,0,0,0\n520,0,0,0,0\n530,0,0,0,0\n"),
     r"sec_abs_c1_forward\.csv: potential axis \(line 1\) holds -1200 to 0; expected potentials in V within"),
    ("sec-single-table", edit(M, "[[film.tr]]", "[film.tr]"), r"\[film\.tr\]: expected an array of tables \[\[\.\.\]\], got"),
    ("missing-manifest", remove(M), r"experiment\.toml: manifest not found"),
    ("glotaran-declared-but-helios", edit(M, 'file = "film_tr_m0.8V_high.csv"', 'file = "film_tr_m0.8V_high.csv"\nformat = "glotaran"'),
     r"film_tr_m0\.8V_high\.csv: not a glotaran ascii file: expected a line 'Time explicit'"),
    ("glotaran-units-unstated", put("film_tr_m0.8V_high.csv", GLOTARAN_TR),
     r"film_tr_m0\.8V_high\.csv \[film\.tr\[1\]\.units\]: the units of the values are not stated in this glotaran file"),
]


@pytest.mark.parametrize("mutate, pattern", [(m, p) for _, m, p in MALFORMED], ids=[i for i, _, _ in MALFORMED])
def test_malformed_input_is_refused_with_a_clear_error(folder, mutate, pattern):
    mutate(folder)
    with pytest.raises(ExperimentError, match=pattern) as info:
        load_experiment(folder)
    report = check_experiment(folder)
    assert not report.ok
    assert any(re.search(pattern, p) for p in report.problems), report.text
    for problem in info.value.problems:  # every problem names a file or field of this folder
        assert str(folder) in problem, problem
    assert "problem(s):" in report.text and pattern not in ("",)


def test_corpus_is_large_enough():
    assert len(MALFORMED) >= 25
    assert len({i for i, _, _ in MALFORMED}) == len(MALFORMED)


def test_film_ta_grid_with_a_hole_loads(folder):
    # a lab measures the runs it chose: a potential x fluence cell without a file is NaN, ``measured`` False
    edit(M, "[[film.ta]]\n" + TA_M04_LOW + "reflection_corrected = true\n\n", "")(folder)
    tree = load_experiment(folder)
    ta = tree["film/ta"]
    hole = dict(potential=-0.4, fluence=5e13)
    assert not bool(ta["measured"].sel(**hole)) and int(ta["measured"].sum()) == 3
    assert bool(np.isnan(ta["dA"].sel(**hole)).all()) and str(ta["source_file"].sel(**hole).values) == ""
    assert np.isfinite(ta["dA"].sel(potential=-0.4, fluence=1e14)).all()
    report = check_experiment(folder)
    assert report.ok, report.text
    assert "1 of 4 potential x fluence cells not measured ((-0.4 V, 5e+13 photons/cm^2))" in report.text


def test_check_collects_every_problem(folder):
    edit(M, "temperature_K", "temprature_K")(folder)
    edit("solution_ta_low.csv", "-0.0150", "abc")(folder)
    remove("film_tr_m0.8V_high.csv")(folder)
    edit("film_FA.txt", "510\t0.40", "510\t1.20")(folder)
    report = check_experiment(folder)
    assert not report.ok
    joined = "\n".join(report.problems)
    for pattern in ("did you mean 'temperature_K'", "missing required key 'temperature_K'",
                    "solution_ta_low.csv, line 3, column 4", "film_tr_m0.8V_high.csv", "F_A = 1.2",
                    "F_A + F_R = 1.32"):
        assert pattern in joined
    assert len(report.problems) == 6
    assert "Result: 6 problem(s):" in report.text and "  6. " in report.text
    with pytest.raises(ExperimentError) as info:
        load_experiment(folder)
    assert len(info.value.problems) == 6


def test_missing_folder_is_a_problem_not_a_crash(tmp_path):
    report = check_experiment(tmp_path / "nope")
    assert not report.ok and "experiment folder not found" in report.problems[0]
    with pytest.raises(ExperimentError, match="experiment folder not found"):
        load_experiment(tmp_path / "nope")


def test_manifest_path_is_accepted(tree):
    again = load_experiment(FIXTURE / "experiment.toml")
    assert again.identical(tree)


def test_nan_policy_from_manifest(folder):
    edit("film_ta_m0.4V_low.csv", "0.0001,-0.0010", "NaN,-0.0010")(folder)
    edit(M, 'file = "film_ta_m0.4V_low.csv"', 'file = "film_ta_m0.4V_low.csv"\nnan = "zero"')(folder)
    tree = load_experiment(folder)
    assert tree["film/ta"]["dA"].sel(potential=-0.4, fluence=5e13, wavelength=500.0, delay=-0.5).item() == 0.0


def test_mod_units_are_converted_only_when_declared(folder):
    edit(M, 'file = "film_tr_m0.8V_high.csv"', 'file = "film_tr_m0.8V_high.csv"\nunits = "mOD"')(folder)
    tree = load_experiment(folder)
    base = load_experiment(FIXTURE)
    np.testing.assert_allclose(tree["film/tr"]["dR"].values, base["film/tr"]["dR"].values / 1000)


def test_glotaran_file_in_experiment_with_declared_mod(folder):
    put("film_tr_m0.8V_high.csv", GLOTARAN_TR)(folder)
    edit(M, 'file = "film_tr_m0.8V_high.csv"', 'file = "film_tr_m0.8V_high.csv"\nunits = "mOD"')(folder)
    dR = load_experiment(folder)["film/tr"]["dR"]
    assert dR.attrs["units"] == "OD"
    np.testing.assert_allclose(dR.sel(wavelength=520.0).values.ravel(), [0.001, 0.002, 0.003, 0.004, 0.005])


# ----------------------------------------------------------------------------- the shipped data folders
DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
SHIPPED = sorted(p.parent.name for p in DATA.glob("*/experiment.toml"))


@pytest.mark.parametrize("name", SHIPPED or [pytest.param("none", marks=pytest.mark.skip(
    reason="no experiment folders under data/ (the simulator has not written any)"))])
def test_shipped_experiment_folders_pass_the_check(name):
    """The simulator's folders and this loader agree on the format (the contract between them)."""
    report = check_experiment(DATA / name)
    assert report.ok, report.text
    assert "film TA:" in report.text and "film SEC absorption:" in report.text
