"""The analysis window from the manifest, and the classic estimates' uncertainties: manifest band-edge window, Gaussian-fit SEC <n_e>, gain-lifetime uncertainty,
masking of meaningless single-wavelength thresholds."""

import math
import pathlib

import numpy as np
import pytest
import xarray as xr

from bayesgain import classic
from bayesgain import preprocess as pp
from bayesgain.io import ExperimentError, check_experiment, load_experiment, open_experiment, save_experiment
from tests.test_classic_spectral import _toy_tree
from tests.test_preprocess import DELAYS, LAM, _film_tree, _spectrum

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "tiny_experiment"


def _with_analysis(folder, text):
    p = folder / "experiment.toml"
    p.write_text(p.read_text() + "\n[analysis]\n" + text + "\n")


# ----------------------------------------------------------------------------- 1. manifest window
def test_manifest_window_reaches_tree_and_functions(folder, tmp_path):
    _with_analysis(folder, "band_edge_window_nm = [505, 525]")
    tree = load_experiment(folder)
    assert list(tree.attrs["band_edge_window_nm"]) == [505.0, 525.0]
    bw = pp.resolve_window(tree)
    assert bw.bounds == (505.0, 525.0) and bw.source == "manifest" and bw.center == 515.0
    # the spectrum carries it, so band_edge_window of the film A_0 uses it too (the models' call)
    assert pp.band_edge_window(pp.film_absorbance(tree)).bounds == (505.0, 525.0)
    # call argument > manifest
    assert pp.resolve_window(tree, (500, 520)).bounds == (500.0, 520.0)
    assert pp.band_edge_window(pp.film_absorbance(tree), window=(500, 520)).source == "explicit"
    assert pp.sec_electrons(tree).attrs["window_nm"] == [505.0, 525.0]
    assert "band_edge_window_nm = [505, 525]" in check_experiment(folder).text
    save_experiment(tree, tmp_path / "t.nc")
    assert list(open_experiment(tmp_path / "t.nc").attrs["band_edge_window_nm"]) == [505.0, 525.0]


@pytest.mark.parametrize("text, pattern", [
    ("band_edge_window_nm = [525, 505]", r"experiment\.toml \[analysis\.band_edge_window_nm\]: got \[525, 505\]; "
                                         r"expected \[lo, hi\] with lo < hi"),
    ("band_edge_window_nm = [505, 505]", r"\[analysis\.band_edge_window_nm\]: got \[505, 505\]"),
    ("band_edge_window_nm = [480, 520]", r"experiment\.toml \[analysis\.band_edge_window_nm\]: window \[480, 520\] nm "
                                         r"lies outside the film TA probe range 500\.\.530 nm"),
    ("band_edge_window_nm = [511, 512]", r"\[analysis\.band_edge_window_nm\]: window \[511, 512\] nm holds 0"),
    ("band_edge_window_nm = [505, 515, 525]", r"\[analysis\.band_edge_window_nm\]: expected an array of two numbers"),
    ("band_edge_window = [505, 525]", r"\[analysis\.band_edge_window\]: unknown key .*did you mean "
                                      r"'band_edge_window_nm'\?"),
    ("solution_band_edge_window_nm = [400, 520]", r"\[analysis\.solution_band_edge_window_nm\]: window \[400, 520\] nm "
                                                  r"lies outside the solution TA probe range"),
])
def test_manifest_window_bad_values(folder, text, pattern):
    _with_analysis(folder, text)
    with pytest.raises(ExperimentError, match=pattern) as info:
        load_experiment(folder)
    assert all(str(folder) in p for p in info.value.problems)


def test_manifest_window_used_by_classic_on_batch_a(batch_a, batch_a_corrected):
    tree = batch_a.copy()
    tree.attrs = {**batch_a.attrs, "band_edge_window_nm": [600.0, 610.0]}
    lam = batch_a_corrected["dA"]["wavelength"].values
    assert pp.resolve_window(tree, probe_wavelengths=lam).bounds == (600.0, 610.0)
    assert pp.resolve_window(batch_a, probe_wavelengths=lam).source == "gaussian fit"
    assert pp.sec_electrons(tree).attrs["window_nm"] == [600.0, 610.0]
    thr = classic.film_thresholds(tree, 3.6e-14, batch_a_corrected)
    ref = classic.film_thresholds(batch_a, 3.6e-14, batch_a_corrected, window=(600.0, 610.0))
    for V in thr:
        assert thr[V]["value"] == ref[V]["value"]
    tree.attrs["band_edge_window_nm"] = [700.0, 730.0]  # outside the probe range -> clear error
    with pytest.raises(ValueError, match=r"manifest \[analysis\] band_edge_window_nm\) lies outside the probe range"):
        pp.resolve_window(tree, probe_wavelengths=lam)


# ----------------------------------------------------------------------------- 2. Gaussian <n_e>
def test_fit_1s_amplitudes_exact_and_calibrated_errors():
    lam = np.arange(580.0, 640.0, 2.5)
    g = np.exp(-0.5 * ((lam - 605.0) / 7.0) ** 2)
    amps = np.array([0.0, 1e-3, 2e-3, -5e-4])
    y = amps[:, None] * g + 3e-4 - 2e-5 * (lam - 605.0)
    da = xr.DataArray(y, dims=("potential", "wavelength"), coords=dict(potential=[0, 1, 2, 3], wavelength=lam),
                      attrs=dict(units="OD"))
    a, se = pp.fit_1s_amplitudes(da, 605.0, 7.0, (590.0, 630.0))
    np.testing.assert_allclose(a.values, amps, atol=1e-12)
    assert a.dims == ("potential",) and np.all(se.values < 1e-12)
    # standard errors match the scatter of repeated noisy fits
    rng = np.random.default_rng(4)
    noisy = da.isel(potential=1).values + 1e-4 * rng.normal(size=(4000, lam.size))
    a, se = pp.fit_1s_amplitudes(xr.DataArray(noisy, dims=("rep", "wavelength"), coords=dict(wavelength=lam)),
                                 605.0, 7.0, (590.0, 630.0))
    assert float(a.mean()) == pytest.approx(1e-3, abs=3 * float(a.std()) / math.sqrt(4000))
    assert float(se.mean()) == pytest.approx(float(a.std()), rel=0.05)
    with pytest.raises(ValueError, match="need at least 5"):
        pp.fit_1s_amplitudes(da, 605.0, 7.0, (600.0, 606.0))


def test_sec_electrons_gaussian_ignores_sloped_baseline():
    """A sloped SEC baseline biases the window average but not the Gaussian fit (known <n_e>)."""
    A0 = np.asarray(_spectrum(LAM, 605.0, 8.0, 0.0045, 0.0, blue=False).values) - 0.002
    Vsec = np.linspace(-1.6, -0.3, 14)
    n_true = 2.0 / (1 + np.exp((Vsec + 1.25) / 0.05))
    base = 2e-4 + 1e-5 * (LAM - 605.0)                   # baseline drift of the SEC spectra
    sec_vals = -(n_true[:, None] / 2.0) * A0[None, :] + base[None, :] * (Vsec[:, None] < -0.31)
    sec_vals = np.broadcast_to(sec_vals, (1, 2) + sec_vals.shape)
    sec = xr.Dataset({"absorption": (("cycle", "direction", "potential", "wavelength"), sec_vals)},
                     coords={"cycle": [1], "direction": ["forward", "backward"], "potential": Vsec, "wavelength": LAM})
    z = np.zeros((LAM.size, DELAYS.size))
    tree = _film_tree(LAM, DELAYS, [-0.3], [1e13], z, z, np.maximum(A0, 1e-9), sec=sec)
    gauss = pp.sec_electrons(tree, method="gaussian")
    window = pp.sec_electrons(tree)
    assert gauss.attrs["method"] == "gaussian" and gauss["n_e"].dims == ("cycle", "direction", "potential")
    np.testing.assert_allclose(gauss["n_e"].values[0, 0], n_true, atol=1e-6)
    assert np.max(np.abs(window["n_e"].values[0, 0] - n_true)) > 0.05   # the window method is biased here
    assert gauss.attrs["center_1S_nm"] == pytest.approx(605.0, abs=0.05)
    with pytest.raises(ValueError, match="method"):
        pp.sec_electrons(tree, method="gauss")


def test_batch_a_sec_electrons_gaussian_against_truth(batch_a):
    truth = batch_a["truth"].attrs
    sec = pp.sec_electrons(batch_a, method="gaussian")
    mean = sec["n_e"].mean(("cycle", "direction"))
    for V in batch_a["film/ta"]["potential"].values:
        n_true = truth[f"film_ta_mean_electrons.{V:+.3f}V"]
        assert float(mean.interp(potential=V)) == pytest.approx(n_true, abs=0.03), V  # measured <= 0.016
    ne = sec["n_e"]
    fd = classic.fit_fermi_dirac(np.broadcast_to(ne["potential"].values, ne.shape).ravel(), ne.values.ravel(),
                                 V_C=0.0, temperature_K=truth["temperature_K"])
    assert fd["V_1S"][0] == pytest.approx(truth["V_1S_V"], abs=0.008)       # measured -1.2512 V
    assert fd["sigma_1S"][0] == pytest.approx(truth["sigma_1S_V"], rel=0.05)  # measured 0.1094 V


# ----------------------------------------------------------------------------- 3. gain lifetime +- sd
def test_gain_lifetime_uncertainty_hand_made():
    t = np.arange(0.0, 21.0, 1.0)
    a = -1.0 + t / 10.0                                  # crosses 0 at 10; +-0.1 reaches 0 at 9 and 11
    res = classic.gain_lifetime_with_uncertainty(t, a, np.full(t.size, 0.1))
    assert res["value"] == pytest.approx(10.0) and res["interval"] == pytest.approx((9.0, 11.0))
    assert res["uncertainty"] == pytest.approx(1.0) and not res["open_interval"]
    # interpolation propagation between (t0, a0) = (9.5, -0.05) and (10.5, +0.05) with s = 0.1 each
    t2 = np.array([0.0, 9.5, 10.5, 20.0])
    a2 = -1.0 + t2 / 10.0
    r2 = classic.gain_lifetime_with_uncertainty(t2, a2, np.full(4, 0.1))
    expect = 1.0 * math.sqrt(0.05**2 * 0.01 + 0.05**2 * 0.01) / 0.1**2
    assert r2["uncertainty_interp"] == pytest.approx(expect)
    # SEM never lets A* - SEM reach 0: open interval to the last delay
    r3 = classic.gain_lifetime_with_uncertainty(t, a, np.full(t.size, 1.5))
    assert r3["open_interval"] and r3["interval"] == (0.0, 20.0) and r3["uncertainty"] == 10.0
    with pytest.raises(ValueError, match="negative standard error"):
        classic.gain_lifetime_with_uncertainty(t, a, -np.ones(t.size))


def test_gain_lifetime_uncertainty_covers_noise(rng):
    """With independent noise of known SEM, the crossing scatters by about the reported uncertainty."""
    t = np.linspace(0.0, 40.0, 81)
    sem = 0.03
    vals, sds = [], []
    for _ in range(300):
        a = -np.exp(-t / 15.0) + 0.2 + sem * rng.normal(size=t.size)   # crossing at 15 ln 5 = 24.1
        r = classic.gain_lifetime_with_uncertainty(t, a, np.full(t.size, sem))
        vals.append(r["value"])
        sds.append(r["uncertainty"])
    # the raw crossing is biased early (first noise crossing), but by less than the reported uncertainty
    rms = math.sqrt(np.mean((np.array(vals) - 15.0 * math.log(5.0)) ** 2))
    assert 0.5 < rms / np.mean(sds) < 1.5, (rms, np.mean(sds))


# ----------------------------------------------------------------------------- 4. masked thresholds
def test_subgap_wavelength_is_masked_not_a_tiny_threshold():
    sigma = 4e-14
    A_sat = np.array([2e-3, 3e-3, 1e-3, 4e-5])           # last: sub-gap, bleach at the noise level
    B_rate = np.array([0.5, 0.3, 1.0, 0.5])
    A0 = np.array([1e-3, 1e-3, 5e-4, 1e-6])              # last: no absorption (below the gap)
    tree, corr, N, _ = _toy_tree(A_sat, B_rate, A0, sigma, noise=2e-5, seed=5)
    raw = classic.single_wavelength_thresholds(tree, corr, g_min_per_cm=0.0, cross_section_cm2=sigma,
                                               min_significance=0.0)
    assert np.isfinite(raw["threshold_excitons"].values[0, 3])        # the spurious tiny threshold ...
    assert raw["threshold_excitons"].values[0, 3] < 0.1
    out = classic.single_wavelength_thresholds(tree, corr, g_min_per_cm=0.0, cross_section_cm2=sigma)
    r = out.isel(potential=0)
    assert np.isnan(r["threshold_excitons"].values[3])                # ... is masked with a reason
    assert str(r["reason"].values[3]).startswith("not meaningful: film absorption A_0")
    expect = -np.log1p(-A0[:3] / A_sat[:3]) / B_rate[:3]
    assert np.all(np.abs(r["threshold_excitons"].values[:3] - expect) < 5 * r["threshold_sd_excitons"].values[:3])
    lo = classic.lowest_gain_threshold(tree, corr, g_min_per_cm=0.0, spectral=out)
    assert int(lo["n_not_meaningful"][0]) == 1
    assert float(lo["wavelength_nm"][0]) != 620.0


def test_batch_a_transparency_minimum_is_near_the_band_edge(batch_a, batch_a_corrected):
    lo = classic.lowest_gain_threshold(batch_a, batch_a_corrected, g_min_per_cm=0.0,
                                       cross_section_cm2=3.54e-14, cross_section_sd_cm2=5.7e-16)
    lam = lo["wavelength_nm"].values
    assert np.all((lam > 590) & (lam < 630)), lam                    # without masking: 700-720 nm
    n = lo["threshold_excitons"].sortby("potential")                  # neutral film: ~1.2, not ~0.003
    assert float(n.sel(potential=-0.3)) > 0.8
    assert np.all(lo["threshold_sd_excitons"].values < 0.2)          # without masking: sd ~0.4-0.7
    assert np.all(lo["n_not_meaningful"].values > 0)
