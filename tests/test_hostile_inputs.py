"""Hostile and careless inputs against every command: each must end in a clear one-line refusal (or be
accepted when it is harmless), with no traceback, the input bytes unchanged and no new or half-written
files.  The CLI runs in-process (``bayesgain.cli.main``); only Ctrl-C and concurrent writers need a
subprocess.
"""

import hashlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest

from bayesgain.cli import main
from bayesgain.model.spec import DEFAULT_PRIORS

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "fixtures" / "tiny_experiment"
BATCH_A = ROOT / "data" / "synthetic-batch-a"
M = "experiment.toml"
TA = "film_ta_m0.4V_low.csv"


# ----------------------------------------------------------------------------- helpers
def snapshot(root: pathlib.Path) -> dict:
    """Every path under ``root`` -> sha256 of its bytes (folders and links marked), links not followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = pathlib.Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run(argv, capsys):
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def edit(folder, old, new, name=M, count=1):
    p = folder / name
    text = p.read_text()
    assert text.count(old) >= count, (old, name)
    p.write_text(text.replace(old, new, count))


def scale_matrix(path, factor=1.0, axis_factor=1.0, cell=None):
    """Multiply a header-matrix CSV's values (and/or its axis row); ``cell`` = (row, col, text) replaces one."""
    lines = path.read_text().splitlines()
    head = lines[0].split(",")
    lines[0] = ",".join([head[0]] + [f"{float(v) * axis_factor:g}" for v in head[1:]])
    for k in range(1, len(lines)):
        cells = lines[k].split(",")
        lines[k] = ",".join([cells[0]] + [f"{float(v) * factor:.6g}" for v in cells[1:]])
    if cell is not None:
        r, c, text = cell
        cells = lines[r].split(",")
        cells[c] = text
        lines[r] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


SPEC_HEAD = 'name = "hostile"\n[components]\ncross_section = false\ncharging = true\ngain = false\n' \
            'dynamics = false\nreflection = false\n'


def fit_args(folder, out, *extra):
    return ["fit", folder, "--out", out, "--model", "sec-only", "--draws", "10", "--tune", "10", "--chains", "1",
            "--no-figures", "--no-classic", *extra]


def fake_fit_file(path, kind):
    """A posterior.nc that is damaged in one way (made without sampling)."""
    import numpy as np
    import xarray as xr

    if kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind in ("no-group", "truncated", "bad-spec"):
        attrs = {"model_spec_toml": 'name = "x"\n[components]\nbogus = true\n'} if kind == "bad-spec" else \
            {"model_spec_toml": 'name = "x"\n'}
        nodes = {"/": xr.Dataset(attrs=attrs),
                 "/posterior": xr.Dataset({"V_1S_V": (("chain", "draw"), np.zeros((2, 50)))})}
        if kind == "bad-spec":
            nodes["/reduced_data"] = xr.Dataset({"x": ("i", np.zeros(3))})
        xr.DataTree.from_dict(nodes).to_netcdf(path, engine="h5netcdf")
        if kind == "truncated":
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
    else:
        raise AssertionError(kind)


# ----------------------------------------------------------------------------- the corpus
# Each case: id, setup(tmp) -> argv (tmp holds the experiment copy "exp" and anything else), expected exit
# status, words the output must hold (lower case), and words it must not hold.
def _exp(tmp):
    return tmp / "exp"


def check(mutate):
    def setup(tmp):
        mutate(_exp(tmp))
        return ["check", _exp(tmp)]
    return setup


def classic(mutate, *extra):
    def setup(tmp):
        mutate(_exp(tmp))
        return ["classic", _exp(tmp), "--out", tmp / "out", "--no-figures", *extra]
    return setup


def fit(mutate, *extra, out="out"):
    def setup(tmp):
        mutate(_exp(tmp))
        return fit_args(_exp(tmp), tmp / out, *extra)
    return setup


def nothing(folder):
    pass


def symlink_outside(folder):
    outside = folder.parent / "outside"
    outside.mkdir()
    shutil.copy(folder / TA, outside / "secret.csv")
    (folder / TA).unlink()
    (folder / TA).symlink_to(outside / "secret.csv")


def symlinked_subfolder(folder):
    outside = folder.parent / "outside"
    outside.mkdir()
    shutil.copy(folder / TA, outside / "x.csv")
    (folder / "sub").symlink_to(outside, target_is_directory=True)
    edit(folder, f'file = "{TA}"', 'file = "sub/x.csv"')


def outside_secret(folder):
    (folder.parent / "secret.csv").write_text("s3cr3t_password_value_1234,1,2\n1,2,3\n")
    edit(folder, f'file = "{TA}"', 'file = "../secret.csv"')


def inside_secret_cell(folder):
    (folder / TA).write_text("wl/ps,s3cr3t_password_value_1234,1\n500,1,2\n510,1,2\n")


def deep_nesting(folder):
    # deeper than any recursion limit a library sets in-process (PyMC's sampling module: 10000 frames, enough
    # for 3000 levels), so the refusal does not depend on which tests imported what before
    (folder / M).write_text("x = " + "[" * 30000 + "]" * 30000 + "\n" + (folder / M).read_text())


def utf16(name):
    def mutate(folder):
        p = folder / name
        p.write_bytes(p.read_text().encode("utf-16"))
    return mutate


def bom(folder):
    p = folder / M
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())


def garbage(name, data=bytes(range(256)) * 4):
    def mutate(folder):
        (folder / name).write_bytes(data)
    return mutate


def in_mod(folder):  # the file holds mOD, the manifest says nothing
    for f in ("film_ta_m0.4V_low.csv", "film_ta_m0.4V_high.csv", "film_ta_m0.8V_low.csv", "film_ta_m0.8V_high.csv"):
        scale_matrix(folder / f, factor=1000.0)


def solution_in_mod(folder):
    for f in ("solution_ta_low.csv", "solution_ta_high.csv"):
        scale_matrix(folder / f, factor=1000.0)


def one_huge_cell(folder):
    scale_matrix(folder / TA, cell=(2, 3, "1e308"))


def delays_in_fs(folder):
    for f in ("film_ta_m0.4V_low.csv", "film_ta_m0.4V_high.csv", "film_ta_m0.8V_low.csv", "film_ta_m0.8V_high.csv"):
        scale_matrix(folder / f, axis_factor=1000.0)


def same_file_twice(folder):
    edit(folder, 'file = "film_ta_m0.4V_high.csv"', f'file = "{TA}"')


def identical_copy(folder):
    shutil.copy(folder / TA, folder / "film_ta_m0.4V_high.csv")


def same_file_via_dotdot(folder):
    edit(folder, 'file = "film_ta_m0.4V_high.csv"', f'file = "./sub/../{TA}"')
    (folder / "sub").mkdir()


def remove_manifest(folder):
    (folder / M).unlink()


def manifest_is_folder(folder):
    (folder / M).unlink()
    (folder / M).mkdir()


def write_spec(text):
    def setup(tmp):
        (tmp / "spec.toml").write_text(SPEC_HEAD + text)
        return fit_args(_exp(tmp), tmp / "out")[:-4] + ["--model", tmp / "spec.toml", "--no-figures", "--no-classic"]
    return setup


def model_arg(make):
    def setup(tmp):
        model = make(tmp)
        argv = fit_args(_exp(tmp), tmp / "out")
        argv[argv.index("--model") + 1] = model
        return argv
    return setup


def _binary_model(tmp):
    (tmp / "model.toml").write_bytes(bytes(range(256)) * 8)
    return tmp / "model.toml"


def _utf16_model(tmp):
    (tmp / "model.toml").write_bytes((SPEC_HEAD).encode("utf-16"))
    return tmp / "model.toml"


def _folder_model(tmp):
    (tmp / "models").mkdir()
    return tmp / "models"


def out_file(command, force):
    def setup(tmp):
        (tmp / "out").write_text("my notes")
        extra = ["--force"] if force else []
        if command == "classic":
            return ["classic", _exp(tmp), "--out", tmp / "out", "--no-figures", *extra]
        if command == "simulate":
            return ["simulate", "--out", tmp / "out", *extra]
        return fit_args(_exp(tmp), tmp / "out", *extra)
    return setup


def fit_dir_with(kind, command="report", classic_bytes=None):
    def setup(tmp):
        d = tmp / "fitdir"
        d.mkdir()
        fake_fit_file(d / "posterior.nc", kind)
        if classic_bytes is not None:
            (d / "classic.csv").write_bytes(classic_bytes)
        if command == "report":
            return ["report", d, "--no-figures"]
        other = tmp / "fit2"
        other.mkdir()
        fake_fit_file(other / "posterior.nc", "no-group")
        return ["compare", d, other]
    return setup


def report_stale_temp(tmp):
    d = tmp / "fitdir"
    d.mkdir()
    (d / ".posterior.nc.k2x9a7qz.tmp").write_bytes(b"")
    return ["report", d]


def report_nc_is_folder(tmp):
    (tmp / "fitdir" / "posterior.nc").mkdir(parents=True)
    return ["report", tmp / "fitdir"]


def compare_out_dir(tmp):
    (tmp / "table").mkdir()
    for d in ("a", "b"):
        (tmp / d).mkdir()
        fake_fit_file(tmp / d / "posterior.nc", "no-group")
    return ["compare", tmp / "a", tmp / "b", "--out", tmp / "table", "--force"]


def compare_one(tmp):
    (tmp / "a").mkdir()
    fake_fit_file(tmp / "a" / "posterior.nc", "no-group")
    return ["compare", tmp / "a"]


def fit_twice_link(tmp):
    (tmp / "link").symlink_to(_exp(tmp), target_is_directory=True)
    return fit_args(_exp(tmp), tmp / "out")[:2] + [tmp / "link"] + fit_args(_exp(tmp), tmp / "out")[2:]


def fit_twice_copy(tmp):
    shutil.copytree(_exp(tmp), tmp / "copy")
    return fit_args(_exp(tmp), tmp / "out")[:2] + [tmp / "copy"] + fit_args(_exp(tmp), tmp / "out")[2:]


def simulate_real(tmp):
    edit(_exp(tmp), "synthetic = true", "synthetic = false")
    (_exp(tmp) / "truth.toml").unlink()
    return ["simulate", "--out", _exp(tmp), "--force"]


def simulate_locked(tmp):
    (tmp / "out").mkdir()
    (tmp / "out" / ".bayesgain.lock").write_text(f"pid = {os.getpid()}\nhost = {os.uname().nodename}\n")
    return ["simulate", "--out", tmp / "out"]


def fit_locked(tmp):
    (tmp / "out").mkdir()
    (tmp / "out" / ".bayesgain.lock").write_text(f"pid = {os.getpid()}\nhost = {os.uname().nodename}\n")
    (tmp / "out" / "report.md").write_text("an earlier fit")
    return fit_args(_exp(tmp), tmp / "out")


E = "outside the experiment folder"
CASES = [
    # --- security: nothing outside the experiment folder is read
    ("traversal-check", check(lambda f: edit(f, f'file = "{TA}"', 'file = "../../../../etc/passwd"')), 1, [E], []),
    ("absolute-path-check", check(lambda f: edit(f, f'file = "{TA}"', 'file = "/etc/passwd"')), 1,
     [E, "absolute path"], []),
    ("symlink-outside-check", check(symlink_outside), 1, [E, "symbolic link"], []),
    ("symlinked-subfolder-check", check(symlinked_subfolder), 1, [E], []),
    ("outside-secret-not-echoed", check(outside_secret), 1, [E], ["s3cr3t_password"]),
    ("inside-cell-excerpt-short", check(inside_secret_cell), 1, ["non-numeric", "s3cr3t_passw"],
     ["password_value"]),
    ("manifest-symlink-outside", check(lambda f: (shutil.move(f / M, f.parent / "elsewhere.toml"),
                                                  (f / M).symlink_to(f.parent / "elsewhere.toml"))), 1, [E], []),
    ("truth-symlink-outside", check(lambda f: (shutil.move(f / "truth.toml", f.parent / "truth.toml"),
                                               (f / "truth.toml").symlink_to(f.parent / "truth.toml"))), 1, [E], []),
    ("outside-spectrum", check(lambda f: edit(f, 'absorbance_file = "solution_absorbance.csv"',
                                             'absorbance_file = "../../x/solution_absorbance.csv"')), 1, [E], []),
    ("nul-in-path", check(lambda f: edit(f, f'file = "{TA}"', 'file = "a\\u0000b.csv"')), 1, ["nul"], []),
    ("traversal-classic", classic(lambda f: edit(f, f'file = "{TA}"', 'file = "../../../../etc/passwd"')), 1,
     [E], []),
    ("traversal-fit", fit(lambda f: edit(f, f'file = "{TA}"', 'file = "../../../../etc/passwd"')), 1, [E], []),
    ("symlink-outside-fit", fit(symlink_outside), 1, [E], []),
    # --- formerly tracebacks
    ("classic-tiny-subgap", classic(nothing), 1, ["classic analysis cannot run", "sub-gap", "experiment.toml"], []),
    ("g_e-huge-check", check(lambda f: edit(f, "g_e = 2", "g_e = 1000000")), 1, ["sample.g_e", "<= 32"], []),
    ("g_e-huge-classic", classic(lambda f: edit(f, "g_e = 2", "g_e = 1000000")), 1, ["sample.g_e"], []),
    ("g_h-zero", check(lambda f: edit(f, "g_h = 4", "g_h = 0")), 1, ["sample.g_h"], []),
    ("classic-out-is-file", out_file("classic", False), 1, ["is a file, not a folder"], []),
    ("classic-out-is-file-force", out_file("classic", True), 1, ["is a file, not a folder"],
     ["use --force to write"]),
    ("fit-out-is-file-force", out_file("fit", True), 1, ["is a file, not a folder"], ["use --force to write"]),
    ("simulate-out-is-file", out_file("simulate", True), 1, ["is a file, not a folder"], []),
    ("fit-out-under-dev-null", fit(nothing, out="/dev/null/x"), 1, ["/dev/null is not a folder"], []),
    ("compare-out-is-dir-force", compare_out_dir, 1, ["is a folder", "expected the path of a file"], []),
    ("deep-nesting-toml", check(deep_nesting), 1, ["not valid toml", "nested too deeply"], []),
    ("fit-chains-0", fit(nothing, "--chains", "0"), 2, ["--chains", "from 1 to 64"], []),
    ("fit-draws-negative", fit(nothing, "--draws", "-5"), 2, ["--draws", ">= 1"], []),
    ("fit-tune-text", fit(nothing, "--tune", "abc"), 2, ["--tune", "integer"], []),
    ("fit-seed-negative", fit(nothing, "--seed", "-1"), 2, ["--seed"], []),
    ("fit-treedepth-0", fit(nothing, "--max-treedepth", "0"), 2, ["--max-treedepth"], []),
    ("simulate-seed-negative", lambda tmp: ["simulate", "--out", tmp / "sim", "--seed", "-1"], 2, ["--seed"], []),
    ("demo-chains-0", lambda tmp: ["demo", "--out", tmp / "demo", "--chains", "0"], 2, ["--chains"], []),
    ("model-is-folder", model_arg(_folder_model), 1, ["--model", "is a folder"], []),
    ("model-is-binary", model_arg(_binary_model), 1, ["--model", "not utf-8"], []),
    ("model-is-utf16", model_arg(_utf16_model), 1, ["--model", "utf-16"], []),
    ("model-missing", model_arg(lambda tmp: tmp / "nope.toml"), 1, ["--model", "not found"], []),
    ("prior-negative-sigma", write_spec('[priors]\nV_1S_V = { dist = "Normal", mu = -1.2, sigma = -0.7 }\n'), 1,
     ["v_1s_v", "sigma must be > 0"], []),
    ("prior-uniform-reversed", write_spec('[priors]\nV_1S_V = { dist = "Uniform", lower = 0.0, upper = -2.0 }\n'),
     1, ["lower < upper"], []),
    ("prior-zero-beta", write_spec('[options]\ndisorder = "gaussian"\n[priors]\nsigma_1S_V = { dist = "HalfNormal", '
                                   'sigma = 0.0 }\n'), 1, ["sigma must be > 0"], []),
    ("report-group-deleted", fit_dir_with("no-group"), 1, ["corrupt or incomplete fit file", "posterior.nc"],
     ["bayesgain report: bayesgain report"]),
    ("report-truncated", fit_dir_with("truncated"), 1, ["corrupt or incomplete fit file"], []),
    ("report-random-bytes", fit_dir_with("random"), 1, ["corrupt or incomplete fit file"], []),
    ("report-empty-file", fit_dir_with("empty"), 1, ["corrupt or incomplete fit file"], []),
    ("report-bad-stored-spec", fit_dir_with("bad-spec"), 1, ["corrupt or incomplete fit file"], []),
    ("report-classic-random", fit_dir_with("no-group", classic_bytes=bytes(range(256)) * 4), 1,
     ["corrupt or incomplete fit file", "classic.csv"], []),
    ("report-classic-wrong-columns", fit_dir_with("no-group", classic_bytes=b"a,b\n1,2\n"), 1,
     ["corrupt or incomplete fit file", "classic.csv"], []),
    ("report-no-fit", lambda tmp: (tmp / "empty").mkdir() or ["report", tmp / "empty"], 1, ["no saved fit"],
     ["bayesgain report: bayesgain report"]),
    ("report-stale-temporary", report_stale_temp, 1, ["temporary file left by an interrupted run"], []),
    ("report-posterior-is-folder", report_nc_is_folder, 1, ["is not a file"], []),
    ("compare-corrupt", fit_dir_with("random", command="compare"), 1, ["corrupt or incomplete fit file"], []),
    ("compare-one-fit", compare_one, 1, ["two"], []),
    # --- wrong data formerly accepted
    ("pump-in-eV", check(lambda f: edit(f, "wavelength_nm = 400.0", "wavelength_nm = 3.1")), 1,
     ["pump.wavelength_nm", "150 <= value <= 3000 nm"], []),
    ("pump-too-long", check(lambda f: edit(f, "wavelength_nm = 400.0", "wavelength_nm = 1e5")), 1,
     ["pump.wavelength_nm"], []),
    ("ocp-5000-V", check(lambda f: edit(f, "open_circuit_potential_V = 0.0", "open_circuit_potential_V = 5000.0")),
     1, ["open_circuit_potential_v", "-10 <= value <= 10 v"], []),
    ("tr-potential-mV", check(lambda f: edit(f, 'file = "film_tr_m0.8V_high.csv"\npotential_V = -0.8',
                                              'file = "film_tr_m0.8V_high.csv"\npotential_V = -800.0')), 1,
     ["potential_v"], []),
    ("ta-potential-50V", check(lambda f: edit(f, "potential_V = -0.4", "potential_V = 50.0")), 1, ["potential_v"], []),
    ("temperature-tiny", check(lambda f: edit(f, "temperature_K = 293.0", "temperature_K = 1e-300")), 1,
     ["temperature_k", "1 <= value <= 1000 k"], []),
    ("temperature-huge", check(lambda f: edit(f, "temperature_K = 293.0", "temperature_K = 1e6")), 1,
     ["temperature_k"], []),
    ("temperature-classic", classic(lambda f: edit(f, "temperature_K = 293.0", "temperature_K = 1e-300")), 1,
     ["temperature_k"], []),
    ("thickness-in-m", check(lambda f: edit(f, "film_thickness_nm = 120.0", "film_thickness_nm = 1.2e9")), 1,
     ["film_thickness_nm"], []),
    ("fluence-huge", check(lambda f: edit(f, "fluence_photons_cm2 = 5.0e13", "fluence_photons_cm2 = 5.0e30")), 1,
     ["fluence_photons_cm2"], []),
    ("energy-density-huge", check(lambda f: edit(f, "pump_energy_density_uJ_cm2 = 100.0",
                                                 "pump_energy_density_uJ_cm2 = 1e12")), 1,
     ["pump_energy_density_uj_cm2"], []),
    ("pump-absorbance-50", check(lambda f: edit(f, "pump_absorbance = 0.35", "pump_absorbance = 50.0")), 1,
     ["pump_absorbance"], []),
    ("film-ta-in-mOD", check(in_mod), 1, ["mod? set units"], []),
    ("solution-ta-in-mOD", check(solution_in_mod), 1, ["mod? set units"], []),
    ("one-cell-1e308", check(one_huge_cell), 1, ["outlier", "1e+308"], []),
    ("delays-in-fs", check(delays_in_fs), 1, ["delays in fs?"], []),
    ("same-file-twice", check(same_file_twice), 1, ["the same file as film.ta[1]"], []),
    ("same-file-via-dotdot", check(same_file_via_dotdot), 1, ["the same file as film.ta[1]"], []),
    ("identical-content", check(identical_copy), 1, ["the same content as film.ta[1]"], []),
    ("fit-same-folder-via-link", fit_twice_link, 1, ["the same folder"], []),
    ("fit-same-experiment-copied", fit_twice_copy, 1, ["has the same experiment.toml as"], []),
    # --- data loss and partial outputs
    ("simulate-force-real-experiment", simulate_real, 1, ["real experiment", "never"], []),
    ("simulate-not-empty", lambda tmp: ["simulate", "--out", _exp(tmp)], 1, ["not empty", "--force"], []),
    ("simulate-locked-out", simulate_locked, 1, ["in use by another bayesgain run"], []),
    ("fit-locked-out", fit_locked, 1, ["not empty"], []),
    ("fit-locked-out-force", lambda tmp: fit_locked(tmp) + ["--force"], 1, ["in use by another bayesgain run"], []),
    # --- unclear messages
    ("utf16-manifest", check(utf16(M)), 1, ["utf-16", "save the file as utf-8"], []),
    ("utf16-matrix", check(utf16(TA)), 1, ["utf-16", TA.lower()], ["\\x00"]),
    ("binary-manifest", check(garbage(M)), 1, ["not utf-8"], []),
    ("nul-manifest", check(garbage(M, b"name = 1\x00\n")), 1, ["nul"], []),
    ("manifest-is-folder", check(manifest_is_folder), 1, ["manifest not found"], []),
    ("no-manifest", check(remove_manifest), 1, ["manifest not found"], []),
    ("missing-folder", lambda tmp: ["check", tmp / "nope"], 1, ["not found"], []),
    ("fit-missing-folder", lambda tmp: fit_args(tmp / "nope", tmp / "out"), 1, ["does not exist"], []),
    ("bom-manifest-accepted", check(bom), 0, ["result: ok"], []),
    ("backend-with-pymc", fit(nothing, "--sampler", "pymc", "--backend", "jax"), 1, ["--backend jax"], []),
]


@pytest.fixture(scope="module")
def warm():
    """Import the heavy modules once so that the per-case runs stay fast."""
    import bayesgain.model.core  # noqa: F401


@pytest.mark.parametrize("setup, rc, words, absent", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_is_refused_cleanly(setup, rc, words, absent, tmp_path, capsys, warm):
    shutil.copytree(TINY, tmp_path / "exp")
    argv = setup(tmp_path)
    before = snapshot(tmp_path)
    got, out, err = run(argv, capsys)
    text = (out + err).lower()
    assert got == rc, out + err
    assert "traceback" not in text and "internal error" not in text, out + err
    for w in words:
        assert w.lower() in text, (w, out + err)
    for w in absent:
        assert w.lower() not in text, (w, out + err)
    assert snapshot(tmp_path) == before  # input bytes unchanged, nothing new, nothing half-written
    if rc == 1:
        refusal = [ln for ln in err.splitlines() if ln.startswith("bayesgain ")]
        assert len(refusal) <= 1 and (refusal or argv[0] == "check"), err  # one line
        assert not refusal or not refusal[0].startswith(f"bayesgain {argv[0]}: bayesgain")


def test_corpus_is_large_enough():
    assert len(CASES) >= 60


def test_list_priors_prints_every_default_prior_with_unit_and_meaning(capsys):
    rc, out, err = run(["fit", "--list-priors"], capsys)
    assert rc == 0 and not err
    for name, p in DEFAULT_PRIORS.items():
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        assert p["dist"] in line and f"[{p['unit']}]" in line
        assert p["doc"] in out


def test_simulate_force_removes_only_what_the_simulator_wrote(tmp_path, capsys):
    """A synthetic folder also holding the user's notes and a fit: --force replaces the simulation only."""
    out = tmp_path / "sim"
    shutil.copytree(TINY, out)
    (out / "notes.txt").write_text("week 3: the -0.8 V film cracked")
    (out / "fit").mkdir()
    (out / "fit" / "posterior.nc").write_bytes(b"my fit")
    previous = {p.name for p in TINY.iterdir()} - {"experiment.toml", "truth.toml"}
    rc, stdout, err = run(["simulate", "--out", out, "--force"], capsys)
    assert rc == 0, err
    assert (out / "notes.txt").read_text() == "week 3: the -0.8 V film cracked"
    assert (out / "fit" / "posterior.nc").read_bytes() == b"my fit"
    assert not any((out / name).exists() for name in previous)  # the previous simulation's files: removed
    assert f"removed {len(previous) + 2} file(s)" in stdout
    assert "SYNTHETIC" in (out / "experiment.toml").read_text() and (out / "truth.toml").is_file()
    assert not list(out.glob(".*"))  # no lock, no temporaries


def test_stale_lock_and_temporary_of_a_killed_run_are_removed_and_said(tmp_path, capsys):
    """A run killed with SIGKILL leaves its lock and a 0-byte temporary: the next run cleans both, says so."""
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    victim.kill()
    victim.wait()
    out = tmp_path / "sim"
    out.mkdir()
    (out / ".bayesgain.lock").write_text(f"pid = {victim.pid}\nhost = {os.uname().nodename}\n")
    (out / ".experiment.toml.x8k2p0qa.tmp").write_bytes(b"")
    rc, stdout, err = run(["simulate", "--out", out], capsys)
    assert rc == 0, err
    assert "temporary file left" in err and "no longer exists" in err
    assert not list(out.glob(".*")) and (out / "experiment.toml").is_file()


def test_ctrl_c_and_a_second_writer(tmp_path, capsys):
    """A fit holding --out refuses a second fit to the same folder; Ctrl-C ends it with 130, no traceback,
    and removes its lock and the folder it created."""
    exp = tmp_path / "exp"
    shutil.copytree(TINY, exp)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "bayesgain.cli", *map(str, fit_args(exp, out))], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        t0 = time.time()
        while not (out / ".bayesgain.lock").exists() and proc.poll() is None and time.time() - t0 < 120:
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        rc, stdout, err = run(fit_args(exp, out, "--force"), capsys)
        assert rc == 1 and "in use by another bayesgain run" in err, err
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr + stdout and "Error" not in stderr, stderr
    assert not out.exists()  # nothing was written: the folder it created is gone, lock included


def test_python_api_refuses_outside_paths_and_repeated_folders(tmp_path):
    from bayesgain.io import ExperimentError, load_experiment
    from bayesgain.model.core import GainModel

    exp = tmp_path / "exp"
    shutil.copytree(TINY, exp)
    (tmp_path / "link").symlink_to(exp, target_is_directory=True)
    before = snapshot(tmp_path)
    with pytest.raises(ExperimentError, match="the same folder"):
        GainModel("sec-only", [exp, tmp_path / "link"])
    edit(exp, f'file = "{TA}"', 'file = "../../../../etc/passwd"')
    with pytest.raises(ExperimentError, match=E):
        load_experiment(exp)
    assert {k: v for k, v in snapshot(tmp_path).items() if k != "exp/experiment.toml"} == \
        {k: v for k, v in before.items() if k != "exp/experiment.toml"}


def test_compare_of_short_fits_says_how_many_draws_are_needed(tmp_path, capsys, monkeypatch):
    """PSIS-LOO's "n_draws_tail must be at least 5" becomes the number of draws to ask for."""
    import types

    import numpy as np
    import xarray as xr

    import bayesgain.cli as cli
    import bayesgain.model.comparison as comparison

    def short_fit(path):
        post = xr.Dataset({"a": (("chain", "draw"), np.zeros((2, 8)))})
        return types.SimpleNamespace(spec=types.SimpleNamespace(name=path.parent.name), convergence=None,
                                     idata={"posterior": post})

    def loo_fails(fits, components=None):
        raise ValueError("n_draws_tail must be at least 5")

    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "posterior.nc").write_bytes(b"x")
    monkeypatch.setattr(cli, "_open_fit", short_fit)
    monkeypatch.setattr(comparison, "compare", loo_fails)
    rc, out, err = run(["compare", tmp_path / "a", tmp_path / "b"], capsys)
    assert rc == 1 and "at least 25 posterior draws" in err and "'a' 16" in err and "--draws" in err, err
