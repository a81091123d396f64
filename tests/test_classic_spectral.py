"""Single-wavelength thresholds, lowest g >= 50/cm threshold, vectorised saturation fit, Fig. S28 lifetime."""

import math

import numpy as np
import pytest
import xarray as xr

from bayesgain import classic, physics as ph


# ----------------------------------------------------------------------------- vectorised fit
def test_fit_saturation_many_matches_curve_fit(rng):
    x = np.array([0.3, 0.5, 0.8, 1.3, 1.9, 3.1, 5.3, 5.9, 6.6])
    Y = np.array([a * -np.expm1(-b * x) for a, b in [(2e-3, 0.4), (5e-4, 1.5), (1e-2, 0.05)]])
    Y = Y + rng.normal(0, 2e-5, Y.shape)
    popt, pcov, msg = classic.fit_saturation_many(x, Y)
    assert list(msg) == ["", "", ""]
    for k in range(3):
        p1, c1 = classic.fit_saturation(x, Y[k])
        np.testing.assert_allclose(popt[k], p1, rtol=1e-4)
        np.testing.assert_allclose(np.sqrt(np.diag(pcov[k])), np.sqrt(np.diag(c1)), rtol=1e-3)


def test_fit_saturation_many_fits_each_series_on_its_own_points(rng):
    # NaN = a fluence this series was not measured at (a sparse potential x fluence grid)
    x = np.array([0.3, 0.5, 0.8, 1.3, 1.9, 3.1, 5.3, 5.9, 6.6])
    Y = np.array([a * -np.expm1(-b * x) for a, b in [(2e-3, 0.4), (5e-4, 1.5), (1e-2, 0.05)]])
    Y = Y + rng.normal(0, 2e-5, Y.shape)
    Y[0, [1, 4]] = np.nan
    Y[1, 8] = np.nan
    popt, pcov, msg = classic.fit_saturation_many(x, Y)
    assert list(msg) == ["", "", ""]
    for k in range(3):
        own = ~np.isnan(Y[k])
        p1, c1 = classic.fit_saturation(x[own], Y[k, own])
        np.testing.assert_allclose(popt[k], p1, rtol=1e-4)
        np.testing.assert_allclose(np.sqrt(np.diag(pcov[k])), np.sqrt(np.diag(c1)), rtol=1e-3)
    Y[2, 2:] = np.nan  # two points left: not a fit
    assert "at least 3 measured points" in classic.fit_saturation_many(x, Y)[2][2]


def test_fit_saturation_many_flags_bad_rows():
    x = np.linspace(0.2, 5, 8)
    Y = np.vstack([1e-3 * -np.expm1(-0.7 * x), -1e-4 * -np.expm1(-0.7 * x), 1e-4 * x, np.full(8, np.nan),
                   np.where(x > 3, np.inf, 1e-3 * x)])
    popt, pcov, msg = classic.fit_saturation_many(x, Y)
    assert msg[0] == "" and np.allclose(popt[0], [1e-3, 0.7], rtol=1e-6)
    assert "amplitude" in msg[1] and "linear" in msg[2] and "NaN" in msg[3] and "inf" in msg[4]
    assert np.all(np.isnan(popt[1:]))


# ----------------------------------------------------------------------------- threshold at a level
def test_threshold_at_level_value_and_delta_method():
    A, B, L = 2e-3, 0.5, 1e-3
    cov = np.array([[1e-8, 2e-7], [2e-7, 1e-3]])
    f, sd = classic.threshold_at_level(A, B, cov, L, level_sd=1e-5)
    assert f == pytest.approx(math.log(2) / B, rel=1e-12)

    def N(a, b, l):
        return -math.log1p(-l / a) / b

    h = 1e-7
    g = np.array([(N(A * (1 + h), B, L) - N(A * (1 - h), B, L)) / (2 * A * h),
                  (N(A, B * (1 + h), L) - N(A, B * (1 - h), L)) / (2 * B * h)])
    gl = (N(A, B, L * (1 + h)) - N(A, B, L * (1 - h))) / (2 * L * h)
    var = g @ cov @ g + gl**2 * 1e-10  # a variance (SI formula), the sd is its square root
    assert sd == pytest.approx(math.sqrt(var), rel=1e-5)
    assert classic.threshold_at_level(A, B, cov, -1e-4) == (0.0, 0.0)
    with pytest.raises(classic.ThresholdNotReached):
        classic.threshold_at_level(A, B, cov, 3e-3)


# ----------------------------------------------------------------------------- hand-made experiment
def _toy_tree(A_sat, B_rate, A0, sigma=4e-14, d_nm=100.0, noise=0.0, seed=0):
    """Minimal tree for single_wavelength_thresholds: film A_0 (via F_A), no SEC (open circuit only),
    reflection-corrected TA with exact saturation -dA = A_sat (1 - exp(-B sigma J))."""
    lam = np.array([590.0, 600.0, 610.0, 620.0])
    J = np.array([2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0]) * 1e12
    delays = np.array([0.5, 1.0, 2.0, 3.0, 4.5, 5.0, 5.5, 10.0])  # covers the 1-3 ps and the 5 ps read-outs
    N = sigma * J
    bleach = np.asarray(A_sat)[None, :] * -np.expm1(-np.outer(N, B_rate))       # (F, W)
    rng = np.random.default_rng(seed)
    dA = -bleach[None, :, :, None] * np.ones(delays.size) + noise * rng.normal(size=(1, J.size, lam.size, delays.size))
    ta = xr.Dataset({
        "dA": xr.DataArray(dA, dims=("potential", "fluence", "wavelength", "delay"),
                           coords=dict(potential=[-0.3], fluence=J, wavelength=lam, delay=delays)),
        "reflection_corrected": xr.DataArray(np.ones((1, J.size), bool), dims=("potential", "fluence")),
    })
    FA = 1 - 10 ** (-np.asarray(A0, float))
    film = xr.Dataset({
        "absorptance": xr.DataArray(FA, dims="wavelength_spectrum", coords=dict(wavelength_spectrum=lam)),
        "reflectance": xr.DataArray(np.full(lam.size, 0.05), dims="wavelength_spectrum",
                                    coords=dict(wavelength_spectrum=lam)),
    }, attrs=dict(open_circuit_potential_V=-0.3))
    tree = xr.DataTree.from_dict({"/": xr.Dataset(attrs=dict(film_thickness_nm=d_nm, film_thickness_sd_nm=0.0,
                                                             pump_wavelength_nm=400.0)),
                                  "/film": film, "/film/ta": ta})
    from bayesgain import preprocess as pp

    corrected = xr.Dataset({"dA": tree["film/ta"]["dA"].assign_attrs(units="OD")})
    return tree, corrected, N, pp


def test_single_wavelength_thresholds_exact_saturation():
    sigma, d = 4e-14, 100.0
    A_sat = np.array([2e-3, 3e-3, 1e-3, 1e-4])     # last wavelength: far too little bleach
    B_rate = np.array([0.5, 0.3, 1.0, 0.5])
    A0 = np.array([1e-3, 1e-3, 5e-4, 1e-3])
    tree, corr, N, _ = _toy_tree(A_sat, B_rate, A0, sigma, d)
    out = classic.single_wavelength_thresholds(tree, corr, delays_ps=(1, 3), g_min_per_cm=0.0,
                                               cross_section_cm2=sigma)
    r = out.isel(potential=0)
    expect = -np.log1p(-A0[:3] / A_sat[:3]) / B_rate[:3]
    np.testing.assert_allclose(r["threshold_excitons"].values[:3], expect, rtol=1e-5)
    np.testing.assert_allclose(r["threshold_photons_cm2"].values[:3], expect / sigma, rtol=1e-5)
    assert list(r["reachable"].values) == [True, True, True, False]
    assert np.isnan(r["threshold_excitons"].values[3])
    assert "not reached" in str(r["reason"].values[3]) and str(r["reason"].values[0]) == ""
    assert np.all(r["threshold_sd_excitons"].values[:3] < 1e-6)  # exact data: no fit error

    # g_min > 0: the level rises by g d / ln 10
    g = 50.0
    out50 = classic.single_wavelength_thresholds(tree, corr, g_min_per_cm=g, cross_section_cm2=sigma)
    L = A0 + g * d * 1e-7 / math.log(10)
    exp50 = -np.log1p(-L[:3] / A_sat[:3]) / B_rate[:3]
    np.testing.assert_allclose(out50["threshold_excitons"].values[0, :3], exp50, rtol=1e-5)
    np.testing.assert_allclose(out50["level_OD"].values[0], L, rtol=1e-9)

    lo = classic.lowest_gain_threshold(tree, corr, g_min_per_cm=g, cross_section_cm2=sigma)
    j = int(np.argmin(exp50))
    assert float(lo["threshold_excitons"][0]) == pytest.approx(exp50[j], rel=1e-5)
    assert float(lo["wavelength_nm"][0]) == [590.0, 600.0, 610.0][j]
    J = exp50[j] / sigma
    assert float(lo["threshold_photons_cm2"][0]) == pytest.approx(J, rel=1e-5)
    assert float(lo["threshold_nJ_cm2"][0]) == pytest.approx(
        float(ph.fluence_to_energy_density_nJ_cm2(J, 400.0)), rel=1e-5)


def test_single_wavelength_gain_without_pump_and_noise():
    sigma = 4e-14
    A_sat = np.array([2e-3, 3e-3, 1e-3, 2e-3])
    B_rate = np.array([0.5, 0.3, 1.0, 0.5])
    A0 = np.array([1e-3, 1e-3, 5e-4, -1e-3])      # last: negative absorbance already (gain without pump)
    tree, corr, N, _ = _toy_tree(A_sat, B_rate, A0, sigma, noise=2e-5, seed=3)
    out = classic.single_wavelength_thresholds(tree, corr, g_min_per_cm=0.0, cross_section_cm2=sigma,
                                               cross_section_sd_cm2=0.1 * sigma)
    r = out.isel(potential=0)
    assert r["threshold_excitons"].values[3] == 0.0 and bool(r["reachable"].values[3])
    assert "without pump" in str(r["reason"].values[3])
    expect = -np.log1p(-A0[:3] / A_sat[:3]) / B_rate[:3]
    sd = r["threshold_sd_excitons"].values[:3]
    assert np.all(sd > 0) and np.all(np.abs(r["threshold_excitons"].values[:3] - expect) < 5 * sd)
    # cross-section error enters <N> but not the fluence J = <N>/sigma
    tot = r["threshold_total_sd_excitons"].values[:3]
    np.testing.assert_allclose(tot, np.hypot(sd, r["threshold_photons_cm2"].values[:3] * 0.1 * sigma))
    lo = classic.lowest_gain_threshold(tree, corr, g_min_per_cm=0.0, spectral=out)
    assert int(lo["n_reached_without_pump"][0]) == 1 and float(lo["threshold_excitons"][0]) > 0


# ----------------------------------------------------------------------------- batch A
@pytest.fixture(scope="module")
def lowest_a(batch_a, batch_a_corrected):
    return classic.lowest_gain_threshold(batch_a, batch_a_corrected, g_min_per_cm=50.0)


def test_batch_a_doped_film_reaches_gain_far_earlier(lowest_a):
    pots = lowest_a["potential"].values
    doped = lowest_a.sel(potential=pots.min())
    neutral = lowest_a.sel(potential=pots.max())
    N_d, N_n = float(doped["threshold_excitons"]), float(neutral["threshold_excitons"])
    assert np.isfinite(N_d) and np.isfinite(N_n)
    assert N_d < 0.3 * N_n
    assert N_d + 3 * float(doped["threshold_total_sd_excitons"]) < N_n - 3 * float(
        neutral["threshold_total_sd_excitons"])
    assert 590 < float(doped["wavelength_nm"]) < 630  # gain near the 1S line
    # monotone: more electrons, lower threshold (within errors)
    t = lowest_a["threshold_excitons"].sortby("potential").values
    assert np.all(np.diff(t) > -3 * lowest_a["threshold_total_sd_excitons"].sortby("potential").values[1:])


def test_batch_a_units_consistent(lowest_a):
    sigma = lowest_a.attrs["cross_section_cm2"]
    assert lowest_a.attrs["pump_wavelength_nm"] == 400.0
    N = lowest_a["threshold_excitons"].values
    J = lowest_a["threshold_photons_cm2"].values
    np.testing.assert_allclose(J, N / sigma, rtol=1e-12)
    e_photon_J = 6.62607015e-34 * 2.99792458e8 / 400e-9
    np.testing.assert_allclose(lowest_a["threshold_nJ_cm2"].values, J * e_photon_J * 1e9, rtol=1e-6)
    np.testing.assert_allclose(lowest_a["threshold_sd_nJ_cm2"].values,
                               lowest_a["threshold_sd_photons_cm2"].values * e_photon_J * 1e9, rtol=1e-6)


def test_batch_a_spectral_nan_always_has_reason(batch_a, batch_a_corrected):
    sp = classic.single_wavelength_thresholds(batch_a, batch_a_corrected, g_min_per_cm=50.0)
    thr = sp["threshold_excitons"].values
    reasons = sp["reason"].values
    assert np.all((reasons[np.isnan(thr)] != ""))
    assert np.all(sp["reachable"].values == np.isfinite(thr))
    assert sp["threshold_excitons"].dims == ("potential", "wavelength")


def test_classic_analysis_lowest_rows(batch_a):
    rows = classic.classic_analysis(batch_a, gain_lifetime_method="both")
    by = {r["name"]: r for r in rows}
    names = [n for n in by if n.startswith("lowest_threshold_g50_")]
    assert len(names) == 3 * 6
    for n in names:
        r = by[n]
        assert set(r) == {"name", "value", "uncertainty", "unit", "method", "note"}
        assert np.isfinite(r["value"]) or r["note"]
    units = {n.split("[")[0]: by[n]["unit"] for n in names}
    assert units == {"lowest_threshold_g50_excitons": "excitons/QD",
                     "lowest_threshold_g50_photons_cm2": "photons/cm^2",
                     "lowest_threshold_g50_nJ_cm2": "nJ/cm^2"}
    assert any(n.startswith("gain_lifetime_fit_ps[") for n in by)
    assert any(n.startswith("gain_lifetime_ps[") for n in by)


# ----------------------------------------------------------------------------- gain lifetime fit
def test_gain_lifetime_fit_noisy_crossing(rng):
    t = np.concatenate([np.linspace(-1, 1, 21), np.geomspace(1.2, 3000, 60)])
    true = lambda x: -(1.5e-3 * np.exp(-x / 60.0) + 1.0e-3 * np.exp(-x / 600.0) - 5e-4)  # A*(t)
    a = np.where(t >= 0, true(t), 1e-3)
    # exact crossing
    from scipy.optimize import brentq

    t0 = brentq(true, 1, 3000)
    res = classic.gain_lifetime_fit(t, a + rng.normal(0, 4e-5, t.size))
    assert res["value"] == pytest.approx(t0, rel=0.1)
    assert classic.gain_lifetime_fit(t, a)["value"] == pytest.approx(t0, rel=1e-3)
    with pytest.raises(ValueError):
        classic.gain_lifetime_fit(t, np.abs(a) + 1e-4)  # never gain


def test_potential_selection(batch_a, batch_a_corrected, lowest_a):
    sp = classic.single_wavelength_thresholds(batch_a, batch_a_corrected, potential=-1.56, g_min_per_cm=50.0)
    assert sp.sizes["potential"] == 1 and float(sp["potential"][0]) == pytest.approx(-1.562, abs=1e-3)
    lo = classic.lowest_gain_threshold(batch_a, batch_a_corrected, g_min_per_cm=50.0, spectral=sp)
    assert float(lo["threshold_excitons"][0]) == pytest.approx(
        float(lowest_a["threshold_excitons"].sel(potential=sp["potential"][0])), rel=1e-12)


def test_effective_temperature_fit_recovers_a_plain_fermi_dirac_curve():
    from bayesgain import classic as cl

    V = np.linspace(-1.6, -0.9, 60)
    n = ph.mean_electrons(ph.charge_fractions(V, -1.25, 0.0, 0.0, 841.0))
    fit = cl.fit_fermi_dirac_effective_temperature(V, n + np.random.default_rng(3).normal(0, 0.005, V.size))
    assert fit["T_eff_K"][0] == pytest.approx(841.0, rel=0.03)
    assert fit["V_1S"][0] == pytest.approx(-1.25, abs=0.003)


def test_classic_rows_include_effective_temperature(batch_a):
    from bayesgain import classic as cl

    rows = {r["name"]: r for r in cl.classic_analysis(batch_a)}
    # sigma_1S = 110 mV of disorder reads as an effective temperature near the paper's 841 K
    assert 700 < rows["T_eff_K"]["value"] < 1000
    assert rows["T_eff_K"]["unit"] == "K" and rows["T_eff_K"]["uncertainty"] > 0
