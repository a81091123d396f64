"""Instrument files as labs export them: orientation from the axes, raw KiMoPack scans (sentinels,
repeated final delays, CR-only lines, no header), multi-column spectra, several scans per entry,
chirp correction.  Every quirk is reproduced by a small file written here; the real files of
shared/real-data are only used at test time (they are GPL-3 / MIT and not shipped)."""

import pathlib
import shutil

import numpy as np
import pytest
import xarray as xr
from scipy.special import ndtr

from bayesgain import preprocess as pp
from bayesgain.io import ExperimentError, check_experiment, load_experiment, read_matrix, read_spectrum
from bayesgain.io.chirp import Chirp, apply_chirp, fit_chirp, read_chirp_file
from bayesgain.io.layout import SENTINELS
from bayesgain.io.scans import average_scans, resolve_scan_files

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "tiny_experiment"
SENT = "-21.47483647"  # how a KiMoPack/Pascher raw scan writes an invalid pixel


def write(path, text):
    path.write_bytes(text.encode())
    return path


def raw_scan_text(wl, delays, values, repeats=(), sentinel_cells=(), eol="\r"):
    """A raw scan: corner "0.000", wavelengths along the first row, one row per delay (``repeats``:
    extra rows of the final delay, each a list of values), ``sentinel_cells`` (row, col) written as
    the invalid-pixel marker, CR-only line ends."""
    lines = ["0.000\t" + "\t".join(f"{w:.2f}" for w in wl)]
    rows = [list(map(float, r)) for r in values.T] + [list(map(float, r)) for r in repeats]
    dl = list(delays) + [delays[-1]] * len(repeats)
    for i, (d, row) in enumerate(zip(dl, rows)):
        cells = [SENT if (i, j) in sentinel_cells else f"{v:.8f}" for j, v in enumerate(row)]
        lines.append(f"{d:.4f}\t" + "\t".join(cells))
    return eol.join(lines) + eol


WL = np.array([500.0, 510.0, 520.0, 530.0])
DELAYS = np.array([-1.0, 0.0, 1.0, 10.0, 100.0])
VALUES = np.array([[0.0, -1.0, -2.0, -1.5, -1.0],
                   [0.1, -0.5, -1.0, -0.8, -0.5],
                   [0.0, 0.5, 1.0, 0.9, 0.7],
                   [0.0, 0.2, 0.3, 0.2, 0.1]]) * 1e-3


# ----------------------------------------------------------------------------- raw KiMoPack scan
def test_raw_scan_sentinels_repeats_cr_no_header(tmp_path):
    rep = [VALUES[:, -1] + 2e-5, VALUES[:, -1] - 4e-5]
    # row 1 col 1 is a sentinel; column 3 (530 nm) is dead in every row (a dead pixel)
    dead = {(i, 3) for i in range(len(DELAYS) + len(rep))}
    path = write(tmp_path / "scan_001.SIA", raw_scan_text(WL, DELAYS, VALUES, rep, {(1, 1)} | dead))
    da = read_matrix(path)
    assert da.attrs["format"] == "kimopack"
    assert "wavelengths (nm) along the first row" in da.attrs["layout"]
    assert "no header text (corner cell '0.000')" in da.attrs["layout"]
    np.testing.assert_array_equal(da.wavelength, WL[:3])  # the dead pixel is dropped
    np.testing.assert_array_equal(da.delay, DELAYS)  # the final delay once
    final = np.mean([VALUES[:3, -1], rep[0][:3], rep[1][:3]], axis=0)
    np.testing.assert_allclose(da.sel(delay=100.0).values, final, rtol=1e-6)
    assert np.isnan(da.sel(wavelength=510.0, delay=0.0).item())
    np.testing.assert_allclose(da.sel(wavelength=500.0).values[:-1], VALUES[0, :-1], rtol=1e-6)
    assert da.attrs["sentinel_cells"] == 1 + len(dead) and da.attrs["missing_cells"] == 1
    assert da.attrs["merged_final_rows"] == 3 and da.attrs["dead_wavelengths_dropped"] == 1
    assert "final delay 100 ps written 3 times: merged into their mean" in da.attrs["repairs"]


def test_sentinel_values():
    assert SENTINELS[0] == pytest.approx(-21.47483648) and SENTINELS[1] == pytest.approx(-21.47483647)


def test_a_repeated_delay_that_is_not_final_is_still_an_error(tmp_path):
    d = np.array([-1.0, 0.0, 0.0, 10.0, 100.0])
    with pytest.raises(ExperimentError, match=r"line 4, column 1: duplicate delay 0 ps"):
        read_matrix(write(tmp_path / "s.SIA", raw_scan_text(WL, d, VALUES)))


@pytest.mark.parametrize("corner, expect", [("Time in ps", "kimopack"), ("", None)])
def test_axes_that_both_look_like_wavelengths(tmp_path, corner, expect):
    text = f"{corner},400,500,600\n450,1,2,3\n550,1,2,3\n650,1,2,3\n"
    path = write(tmp_path / "m.csv", text)
    if expect is None:
        with pytest.raises(ExperimentError, match=r"both axes could be wavelengths .*expected format = \"helios\""):
            read_matrix(path)
        assert read_matrix(path, format="helios").attrs["layout"].endswith('format = "helios" in the manifest')
    else:
        assert read_matrix(path).attrs["format"] == expect


def test_delay_signature_breaks_a_tie(tmp_path):
    # delays 200..2000 ps and wavelengths 400..600 nm both fit the wavelength range; decades do not
    text = "\t".join(["", "160", "1600", "2900"]) + "\n" + "\n".join(
        f"{w}\t1\t2\t3" for w in (400, 500, 600)) + "\n"
    path = write(tmp_path / "m.txt", text)
    with pytest.raises(ExperimentError, match="both axes could be wavelengths"):
        read_matrix(path)  # 160..2900 spans < 50x: no signature, refuse rather than guess
    text2 = text.replace("\t160\t", "\t-1\t").replace("2900", "2000")
    # -1 ps is outside the wavelength range: decided without a tie
    assert read_matrix(write(tmp_path / "m2.txt", text2)).attrs["format"] == "helios"


# ----------------------------------------------------------------------------- multi-column spectra
SEC_SPECTRUM = "wavelength\tocp\tred\tdiff\n500\t0.10\t0.08\t-0.02\n510\t0.20\t0.15\t-0.05\n520\t0.15\t0.14\t-0.01\n"


def test_multicolumn_spectrum_by_name_or_number(tmp_path):
    path = write(tmp_path / "sec.txt", SEC_SPECTRUM)
    red = read_spectrum(path, column="red")
    np.testing.assert_array_equal(red.values, [0.08, 0.15, 0.14])
    xr.testing.assert_identical(red, read_spectrum(path, column=3).assign_attrs(column="red"))
    assert red.attrs["columns"] == "wavelength, ocp, red, diff"
    with pytest.raises(ExperimentError, match=r"sec\.txt, line 1: 3 value columns \(2 = 'ocp', 3 = 'red', 4 = 'diff'\); "
                                              r"expected column = \"name\""):
        read_spectrum(path)
    with pytest.raises(ExperimentError, match=r"column 'oxidised' not in the header; expected one of: 2 = 'ocp'"):
        read_spectrum(path, column="oxidised")
    with pytest.raises(ExperimentError, match=r"column 5 outside the value columns; expected 2\.\.4"):
        read_spectrum(path, column=5)


# ----------------------------------------------------------------------------- scans
def _scans(rng, n=4, noise=1e-4):
    truth = xr.DataArray(VALUES, dims=("wavelength", "delay"), coords={"wavelength": WL, "delay": DELAYS},
                         attrs={"units": "OD"})
    return truth, [(f"s{k}", truth + rng.normal(0, noise, truth.shape)) for k in range(n)]


def test_average_scans_mean_and_standard_error(rng):
    _, scans = _scans(rng)
    stack = np.stack([da.values for _, da in scans])
    mean, sem, note = average_scans(scans)
    np.testing.assert_allclose(mean.values, stack.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sem.values, stack.std(0, ddof=1) / 2.0, rtol=1e-12)
    assert note == '4 scans averaged per pixel (scan_outliers = "none")'


def test_sigma_clip_rejects_a_spike():
    rng = np.random.default_rng(7)
    t = np.linspace(-1, 100, 60)
    truth = xr.DataArray(-1e-3 * np.exp(-t / 30)[None, :] * np.array([1, 2, 1.5, 0.5])[:, None],
                         dims=("wavelength", "delay"), coords={"wavelength": WL, "delay": t})
    scans = [(f"s{k}", truth + rng.normal(0, 1e-4, truth.shape)) for k in range(6)]
    spiked = scans[2][1].copy()
    spiked[1, 2] += 0.05  # a cosmic ray / pump flicker in one scan at one pixel (500 x the noise)
    scans[2] = ("s2", spiked)
    plain, _, _ = average_scans(scans)
    clipped, sem, note = average_scans(scans, "sigma-clip-3")
    others = np.array([scans[k][1].values[1, 2] for k in range(6) if k != 2])
    assert abs(plain.values[1, 2] - others.mean()) > 5e-3
    # the spike is out; a rare noise cell beyond 3 sigma may go too (moves the mean by ~sigma / n)
    assert abs(clipped.values[1, 2] - others.mean()) < 2e-4 / np.sqrt(5)
    n_rejected = int(note.split(", ")[1].split()[0])
    assert 1 <= n_rejected <= 1 + 0.01 * 6 * truth.size and np.isfinite(sem.values[1, 2])  # ~0.3% false


def test_scan_files_stay_inside_the_folder(tmp_path):
    for k in (1, 2):
        write(tmp_path / f"scan_{k:03d}.SIA", "x")
    assert resolve_scan_files(tmp_path, "scan_*.SIA", "film.ta[1]") == ["scan_001.SIA", "scan_002.SIA"]
    with pytest.raises(ExperimentError, match=r"\[film\.ta\[1\]\.files\]: scan file '\.\./x\*\.SIA' points outside"):
        resolve_scan_files(tmp_path, "../x*.SIA", "film.ta[1]")
    with pytest.raises(ExperimentError, match="matches 0 file"):
        resolve_scan_files(tmp_path, "nothing*.SIA", "film.ta[1]")


def test_window_sem_from_scan_errors(rng):
    truth, scans = _scans(rng)
    mean, sem, _ = average_scans(scans)
    m, s = pp.window_average(mean, (500.0, 520.0), pixel_sem=sem)
    expect = np.sqrt((sem.values[:3] ** 2).sum(0)) / 3.0
    np.testing.assert_allclose(s.values, expect, rtol=1e-12)
    _, s_spread = pp.window_average(mean, (500.0, 520.0))
    assert not np.allclose(s_spread.values, expect)  # the spread over wavelengths is another number


# ----------------------------------------------------------------------------- experiment with scans
def _tiny_with_scans(tmp_path, rng, outliers="none"):
    """tiny_experiment with film.ta[1] recorded as 3 raw scans (CR lines, sentinels, repeats, mOD)."""
    dst = tmp_path / "exp"
    shutil.copytree(FIXTURE, dst)
    ref = read_matrix(dst / "film_ta_m0.4V_low.csv")
    scans = []
    for k in range(3):
        v = ref.values + rng.normal(0, 2e-5, ref.shape)
        scans.append(v)
        rep = [v[:, -1]]  # the final delay once more
        write(dst / f"ta_m0.4V_low_{k + 1:03d}.SIA",
              raw_scan_text(ref.wavelength.values, ref.delay.values, v * 1e3, [r * 1e3 for r in rep],
                            {(0, 0)} if k == 0 else set()))
    m = (dst / "experiment.toml").read_text()
    old = 'file = "film_ta_m0.4V_low.csv"'
    assert m.count(old) == 1
    m = m.replace(old, f'files = "ta_m0.4V_low_*.SIA"\nunits = "mOD"\nscan_outliers = "{outliers}"')
    (dst / "experiment.toml").write_text(m)
    return dst, ref, np.stack(scans)


def test_experiment_with_scans(tmp_path, rng):
    dst, ref, scans = _tiny_with_scans(tmp_path, rng)
    report = check_experiment(dst)
    assert report.ok, report.text
    text = report.text
    assert "ta_m0.4V_low_001.SIA: matrix, wavelengths (nm) along the first row, delays (ps) down the first column, " \
           "no header text (corner cell '0.000')" in text
    assert "1 invalid-pixel sentinel cell(s)" in text and "written 2 times: merged into their mean" in text
    assert 'film.ta[1] (ta_m0.4V_low_*.SIA): 3 scans averaged per pixel (scan_outliers = "none")' in text
    tree = load_experiment(dst)
    ta = tree["film/ta"]
    cell = ta["dA"].sel(potential=-0.4, fluence=ta.fluence.values[0])
    # each scan's final delay is the mean of its two rows; the first scan misses one pixel
    last = (scans[:, :, -1] + scans[:, :, -1]) / 2
    expect = scans.copy()
    expect[:, :, -1] = last
    mean = expect.mean(0)
    mean[0, 0] = expect[1:, 0, 0].mean()
    np.testing.assert_allclose(cell.values, mean, rtol=1e-6, atol=1e-11)
    sem = ta["dA_scan_sem"].sel(potential=-0.4, fluence=ta.fluence.values[0]).values
    np.testing.assert_allclose(sem[1:, :-1], expect[:, 1:, :-1].std(0, ddof=1) / np.sqrt(3), rtol=1e-5)
    assert np.isnan(ta["dA_scan_sem"].sel(potential=-0.8).values).all()  # single files: no scan error
    assert "ta_m0.4V_low_002.SIA" in tree.attrs["file_layouts"]
    from bayesgain.io import open_experiment, save_experiment

    save_experiment(tree, tmp_path / "exp.nc")
    back = open_experiment(tmp_path / "exp.nc")
    assert back.attrs["file_repairs"] == tree.attrs["file_repairs"]
    np.testing.assert_array_equal(back["film/ta"]["dA_scan_sem"].values, ta["dA_scan_sem"].values)


def test_manifest_scan_and_chirp_keys_are_checked(tmp_path):
    dst = tmp_path / "exp"
    shutil.copytree(FIXTURE, dst)
    m = (dst / "experiment.toml").read_text()
    old = 'file = "film_ta_m0.4V_low.csv"'
    (dst / "experiment.toml").write_text(m.replace(old, old + '\nfiles = ["a.SIA", "b.SIA"]\nchirpfile = "c.dat"'
                                                   '\nscan_outliers = "clip"'))
    text = check_experiment(dst).text
    assert "[film.ta[1]]: expected exactly one of file" in text and "both given" in text
    assert "unknown key 'chirpfile'" in text and "did you mean 'chirp_file'?" in text
    assert "[film.ta[1].scan_outliers]: got 'clip'; expected one of 'none', 'sigma-clip-3'" in text


# ----------------------------------------------------------------------------- chirp
def _chirped(coeffs, sigma=0.08):
    wl = np.linspace(450.0, 650.0, 41)
    t = np.concatenate([np.linspace(-3, 3, 121), np.linspace(3.5, 50, 20)])
    t0 = np.polyval(coeffs, wl)
    amp = -1e-3 * (1 + 0.5 * np.sin(wl / 30))
    vals = amp[:, None] * ndtr((t[None, :] - t0[:, None]) / sigma) * np.exp(-np.clip(t[None, :] - t0[:, None], 0, None) / 200)
    return xr.DataArray(vals, dims=("wavelength", "delay"), coords={"wavelength": wl, "delay": t}), t0


def test_apply_chirp_moves_every_rise_to_zero():
    coeffs = np.array([1e-5, -0.012, 3.8])  # t0 from ~ +0.5 ps at 450 nm to ~ -0.3 ps at 650 nm
    da, t0 = _chirped(coeffs)
    out = apply_chirp(da, Chirp(coeffs, "test"))
    assert out.delay.min() >= da.delay.min() - t0.min() - 1e-12
    assert out.delay.max() <= da.delay.max() - t0.max() + 1e-12
    half = out.sel(delay=0.0, method="nearest")  # the rise is centred at 0 everywhere after the shift
    late = out.isel(delay=-1)
    np.testing.assert_allclose(half.values / late.values * np.exp(-late.delay.item() / 200), 0.5, atol=0.01)
    assert out.attrs["chirp_delays_dropped"] >= 1 and "t0 +" in out.attrs["chirp"]


def test_fit_chirp_recovers_the_polynomial_and_irf():
    coeffs = np.array([1e-5, -0.012, 3.8])
    da, t0 = _chirped(coeffs, sigma=0.08)
    ch = fit_chirp(da, degree=2)
    np.testing.assert_allclose(ch.t0(da.wavelength.values), t0, atol=0.01)
    assert ch.irf_sigma_ps == pytest.approx(0.08, rel=0.1)
    assert "Gaussian IRF sigma 0.07" in ch.describe(da.wavelength.values) or "sigma 0.08" in ch.describe(da.wavelength.values)


def test_chirp_file_convention(tmp_path):
    c = read_chirp_file(write(tmp_path / "x_chirp.dat", "1e-10,2e-7,-3e-4,0.1,-20\n"))
    np.testing.assert_array_equal(c.coefficients, [1e-10, 2e-7, -3e-4, 0.1, -20])
    old = read_chirp_file(write(tmp_path / "old_chirp.dat", "1e-10,2e-7,-3e-4,0.1,-20,5\n"))
    np.testing.assert_array_equal(old.coefficients, [1e-10, 2e-7, -3e-4, 0.1, -25])
    with pytest.raises(ExperimentError, match="not comma-separated numbers"):
        read_chirp_file(write(tmp_path / "bad_chirp.dat", "a,b\n"))


# ----------------------------------------------------------------------------- real files
ABS = "wavelength\tocp\tred\tdiff\n" + "".join(f"{w}\t{0.5 - 0.0005 * (w - 330):.4f}\t0.1\t0.0\n" for w in range(330, 790, 5))


def _real_folder(tmp_path, real):
    """An experiment folder of the real KiMoPack files (copied at test time, never into the project)."""
    dst = tmp_path / "real"
    dst.mkdir()
    kimo = real / "kimopack"
    shutil.copy(kimo / "TA_Ru-dppz_400nm_ACN.SIA", dst / "TA_Ru-dppz_400nm_ACN.SIA")
    shutil.copy(kimo / "TA_Ru-dppz_400nm_ACN_chirp.dat", dst / "TA_Ru-dppz_400nm_ACN_chirp.dat")
    for k in (1, 2):  # two "scans": the processed file twice
        shutil.copy(kimo / "TA_Ru-dppz_400nm_ACN.SIA", dst / f"scan_{k:03d}.SIA")
    write(dst / "absorbance.txt", ABS)
    write(dst / "experiment.toml", """name = "real KiMoPack files (not QD data)"
[sample]
temperature_K = 295
film_thickness_nm = 100
[pump]
wavelength_nm = 400
[solution]
absorbance_file = "absorbance.txt"
absorbance_column = "ocp"
pump_absorbance = 0.3
[[solution.ta]]
file = "TA_Ru-dppz_400nm_ACN.SIA"
units = "OD"
fluence_photons_cm2 = 1e14
chirp_file = "TA_Ru-dppz_400nm_ACN_chirp.dat"
[[solution.ta]]
files = "scan_*.SIA"
units = "OD"
fluence_photons_cm2 = 2e14
chirp_file = "TA_Ru-dppz_400nm_ACN_chirp.dat"
""")
    return dst


def test_real_kimopack_folder_with_chirp(tmp_path, real_data_dir):
    dst = _real_folder(tmp_path, real_data_dir)
    report = check_experiment(dst)
    assert report.ok, report.text
    text = report.text
    assert "solution absorbance: absorbance.txt, 92 wavelengths (header: wavelength, ocp, red, diff, read column 'ocp')" in text
    assert ("TA_Ru-dppz_400nm_ACN.SIA: matrix, wavelengths (nm) along the first row, delays (ps) down the first "
            "column, header cell 'Time in ps'") in text
    assert "chirp (KiMoPack polynomial from TA_Ru-dppz_400nm_ACN_chirp.dat): t0 " in text
    tree = load_experiment(dst)
    ta = tree["solution"]["ta"]
    raw = read_matrix(dst / "TA_Ru-dppz_400nm_ACN.SIA")
    c = read_chirp_file(dst / "TA_Ru-dppz_400nm_ACN_chirp.dat").coefficients
    # KiMoPack's convention, written out: corrected(lambda, t) = raw(lambda, t + polyval(c, lambda))
    t = ta.delay.values
    for w in (335.0, 500.0, 780.0):
        expect = np.interp(t + np.polyval(c, w), raw.delay.values, raw.sel(wavelength=w).values)
        np.testing.assert_allclose(ta.sel(fluence=1e14, wavelength=w).values, expect, rtol=1e-12)
    t0 = np.polyval(c, raw.wavelength.values)  # the file's t0: -2.3 ps at 335 nm to +0.65 ps at 780 nm
    assert -3.0 < t0.min() < -2.0 and 0.5 < t0.max() < 1.0
    assert t.min() >= raw.delay.values.min() - t0.min() and t.max() <= raw.delay.values.max() - t0.max()
    # identical scans: mean = the file, scan standard error 0
    np.testing.assert_allclose(ta.sel(fluence=2e14).values, ta.sel(fluence=1e14).values, rtol=1e-12)
    np.testing.assert_allclose(tree["solution"]["ta_scan_sem"].sel(fluence=2e14).values, 0.0, atol=1e-15)



# ----------------------------------------------------------------------------- scan errors in the reduction
BATCH_A = pathlib.Path(__file__).resolve().parents[1] / "data" / "synthetic-batch-a"


def _matrix_csv(da, values):
    """``values(wavelength, delay)`` in the layout of the shipped synthetic files (delays along the first
    row), axes at full precision so that the scans keep the grid of the file they replace."""
    rows = ["," + ",".join(repr(float(t)) for t in da.delay.values)]
    rows += [repr(float(w)) + "," + ",".join(f"{v:.10e}" for v in row) for w, row in zip(da.wavelength.values, values)]
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def scanned_batch(tmp_path_factory):
    """Batch A (SYNTHETIC) with one solution and one film TA entry recorded as 3 noisy scans each
    (per-pixel noise of different size at every pixel); the film entry also gets a zero chirp file."""
    rng = np.random.default_rng(7)
    dst = tmp_path_factory.mktemp("scanned") / "exp"
    shutil.copytree(BATCH_A, dst)
    m = (dst / "experiment.toml").read_text()
    scans = {}
    for rel, extra in (("solution/ta/ta_F01.csv", ""), ("film/ta/ta_V-0.300_F01.csv", '\nchirp_file = "zero_chirp.dat"')):
        ref = read_matrix(dst / rel)
        base = ref.transpose("wavelength", "delay").values
        sd = 3e-4 * (1.0 + 3.0 * rng.uniform(size=base.shape))
        stack = base[None] + sd[None] * rng.standard_normal((3,) + base.shape)
        stem = rel[:-4]
        for k in range(3):
            write(dst / f"{stem}_scan{k + 1}.csv", _matrix_csv(ref.transpose("wavelength", "delay"), stack[k]))
        old = f'file = "{rel}"'
        assert m.count(old) == 1
        m = m.replace(old, f'files = "{stem}_scan*.csv"' + extra)
        scans[rel] = stack
    write(dst / "zero_chirp.dat", "0,0,0,0,0\n")
    (dst / "experiment.toml").write_text(m)
    return dst, scans


def _direct_sem(stack, lam, bounds):
    """sqrt(sum s_i^2) / n over the window pixels, s_i the scans' standard error of the mean."""
    s = stack.std(0, ddof=1) / np.sqrt(stack.shape[0])
    sel = (lam >= bounds[0]) & (lam <= bounds[1])
    return np.sqrt((s[sel] ** 2).sum(0)) / sel.sum()


def test_scan_errors_reach_the_reduced_sems(scanned_batch):
    from bayesgain.model.data import reduce_experiment
    from bayesgain.model.spec import DEFAULT_OPTIONS

    dst, scans = scanned_batch
    tree = load_experiment(dst)
    options = {k: v[0] for k, v in DEFAULT_OPTIONS.items()}
    red = reduce_experiment(tree, options, "scanned")
    # solution: the first fluence is the scanned entry, its window from the same Gaussian fit as the reduction
    ta = tree["solution"]["ta"]
    assert str(ta["source_file"].values[0]) == "solution/ta/ta_F01_scan*.csv"
    bw = pp.band_edge_window(tree["solution"]["absorbance"], probe_wavelengths=ta.wavelength.values).bounds
    expect = _direct_sem(scans["solution/ta/ta_F01.csv"], ta.wavelength.values, bw)
    pts = np.nonzero(red["sol_point_fluence"].values == 0)[0]
    assert pts.size >= 1
    di = [int(np.argmin(np.abs(ta.delay.values - t))) for t in red["sol_point_delay"].values[pts]]
    np.testing.assert_allclose(red["sol_dA_sem"].values[pts], expect[di], rtol=1e-6)
    sel = (ta.wavelength.values >= bw[0]) & (ta.wavelength.values <= bw[1])
    spread = ta.isel(fluence=0).values[sel].std(0, ddof=1) / np.sqrt(sel.sum())  # what a single file gets
    assert not np.allclose(spread[di], expect[di], rtol=0.05)
    # film: the scanned cell (-0.3 V, first fluence), window from the reduction's attrs
    fta = tree["film/ta"]
    lam = fta.wavelength.values
    expect = _direct_sem(scans["film/ta/ta_V-0.300_F01.csv"], lam, red.attrs["band_edge_window_nm"])
    on = (np.isclose(red["ta_point_potential"].values, -0.3)) & (red["ta_point_fluence"].values == 0)
    pts = np.nonzero(on)[0]
    assert pts.size >= 2
    di = [int(np.argmin(np.abs(fta.delay.values - t))) for t in red["ta_point_delay"].values[pts]]
    np.testing.assert_allclose(red["ta_A_sem"].values[pts], expect[di], rtol=1e-6)
    # the zero chirp leaves the grid alone and its map travels with the reduced data
    assert red.attrs["chirp_file"] == "film/ta/ta_V-0.300_F01_scan*.csv"
    np.testing.assert_array_equal(red.attrs["chirp_coefficients_ps"], [0, 0, 0, 0, 0])
    # ... through concat_experiments and a saved fit's NetCDF (the report reads it back from there)
    from bayesgain.io.chirp import chirp_map_from_attrs
    from bayesgain.model.core import _netcdf_restore, _netcdf_safe
    from bayesgain.model.data import concat_experiments

    both = concat_experiments([red])
    xr.DataTree(_netcdf_safe(both)).to_netcdf(dst.parent / "fit.nc", engine="h5netcdf")
    back = _netcdf_restore(xr.open_datatree(dst.parent / "fit.nc", engine="h5netcdf").load().to_dataset())
    cm = chirp_map_from_attrs(back.attrs, "scanned:")
    np.testing.assert_array_equal(cm["dA_uncorrected"].values, tree["chirp"]["dA_uncorrected"].values)
    assert cm.attrs["chirp_file"] == "film/ta/ta_V-0.300_F01_scan*.csv"


# ----------------------------------------------------------------------------- chirp map, IRF, figures
def test_real_chirp_map_irf_and_figures(tmp_path, real_data_dir, monkeypatch, capsys):
    from types import SimpleNamespace

    from bayesgain.cli import main
    from bayesgain.io import open_experiment, save_experiment
    from bayesgain.io.chirp import chirp_map_attrs, chirp_map_from_attrs
    from bayesgain.model.spec import DEFAULT_OPTIONS
    from bayesgain.report import Skip, fig_chirp

    dst = _real_folder(tmp_path, real_data_dir)
    tree = load_experiment(dst)
    cm = tree["chirp"]
    raw = read_matrix(dst / "TA_Ru-dppz_400nm_ACN.SIA")
    # the map is the file before the correction, near the time zeros of the chirp file
    np.testing.assert_array_equal(cm["dA_uncorrected"].values,
                                  raw.sel(wavelength=cm.wavelength, delay=cm.delay).transpose("wavelength", "delay").values)
    t0 = np.polyval(read_chirp_file(dst / "TA_Ru-dppz_400nm_ACN_chirp.dat").coefficients, raw.wavelength.values)
    assert cm.delay.min() >= t0.min() - 2.0 and cm.delay.max() <= t0.max() + 5.0
    assert cm.attrs["chirp_file"] == "TA_Ru-dppz_400nm_ACN.SIA"
    # the IRF width: fitted to the rise after the file's chirp, a few tens of fs (FWHM ~ 0.15 ps)
    assert 0.02 < tree.attrs["irf_sigma_ps"] < 0.3 and tree.attrs["irf_sigma_file"]
    save_experiment(tree, tmp_path / "exp.nc")
    back = open_experiment(tmp_path / "exp.nc")
    np.testing.assert_array_equal(back["chirp"]["dA_uncorrected"].values, cm["dA_uncorrected"].values)
    # flat attrs (how a fit carries the map) and back
    again = chirp_map_from_attrs({f"x:{k}": v for k, v in chirp_map_attrs(cm.to_dataset()).items()}, "x:")
    np.testing.assert_array_equal(again["dA_uncorrected"].values, cm["dA_uncorrected"].values)
    np.testing.assert_array_equal(again.attrs["chirp_coefficients_ps"], cm.attrs["chirp_coefficients_ps"])

    # check: no warning at the default earliest delay (2 ps = many IRF sigma) ...
    report = check_experiment(dst)
    assert report.ok and not report.warnings
    assert "the model's earliest delay 2 ps is" in report.text
    # ... a warning when the earliest delay lies within 3 sigma of time zero
    sigma = tree.attrs["irf_sigma_ps"]
    monkeypatch.setitem(DEFAULT_OPTIONS, "gain_delays_ps", ([2.0 * sigma, 8.0], list))
    report = check_experiment(dst)
    assert report.ok and len(report.warnings) == 1
    assert "within 3 sigma of time zero" in report.warnings[0] and "Warnings:" in report.text
    monkeypatch.undo()

    # check --figures writes chirp.png; a folder without a chirp says so and writes nothing
    figs = tmp_path / "figs"
    assert main(["check", str(dst), "--figures", str(figs)]) == 0
    assert (figs / "chirp.png").stat().st_size > 10_000
    assert f"wrote {figs / 'chirp.png'}" in capsys.readouterr().out
    assert main(["check", str(FIXTURE), "--figures", str(tmp_path / "none")]) == 0
    assert "no chirp correction" in capsys.readouterr().out and not (tmp_path / "none" / "chirp.png").exists()
    assert main(["check", str(dst), "--figures", str(dst / "TA_Ru-dppz_400nm_ACN.SIA")]) == 1
    assert "--figures" in capsys.readouterr().err

    # the report's chirp.png reads the map from the fit's data attrs (one experiment named 'real')
    data = xr.Dataset({"experiment_synthetic": ("experiment", [0.0])},
                      attrs={f"real:{k}": v for k, v in chirp_map_attrs(cm.to_dataset()).items()})
    model = SimpleNamespace(data=data, names=["real"], spec=SimpleNamespace(name="joint"), convergence=None)
    assert fig_chirp(model, None, tmp_path / "report_chirp.png").stat().st_size > 10_000
    with pytest.raises(Skip, match="no experiment had a chirp correction"):
        fig_chirp(SimpleNamespace(data=xr.Dataset(), names=["real"]), None, tmp_path / "none.png")
