"""Preprocessing: hand-made arrays with known answers, and the SYNTHETIC batch-a against its truth."""

import math

import numpy as np
import pytest
import xarray as xr

from bayesgain import preprocess as pp



# ----------------------------------------------------------------------------- hand-made data
def _spectrum(lam, centre=600.0, hwhm=8.0, amp=0.05, slope=-1e-4, blue=True):
    s = hwhm / math.sqrt(2 * math.log(2))
    y = amp * np.exp(-0.5 * ((lam - centre) / s) ** 2) + 0.002 + slope * (lam - centre)
    if blue:  # a rising "shell" edge far to the blue
        y = y + 0.2 / (1 + np.exp((lam - 500.0) / 8.0))
    return xr.DataArray(y, coords={"wavelength_spectrum": lam}, dims="wavelength_spectrum", attrs={"units": "OD"})


def _film_tree(lam, delays, potentials, fluences, dA_true, dR, A0, r=0.1, corrected=None, sec=None, d_nm=100.0):
    """A minimal DataTree in the io layout; dA stored as the raw extinction matching dA_true and dR."""
    F_A = 1 - 10.0 ** (-A0)
    F_R = r * 10.0 ** (-A0)
    num = 10.0 ** (-dA_true) * (1 - F_A)[:, None] - 10.0 ** (-dR) * F_R[:, None]
    dA_star = -np.log10(num / (1 - F_A - F_R)[:, None])  # (..., L, T)
    shape = (len(potentials), len(fluences), len(lam), len(delays))
    dA_star = np.broadcast_to(dA_star, shape).copy()
    corr = np.zeros(shape[:2], bool) if corrected is None else corrected
    dA_star[corr] = np.broadcast_to(dA_true, shape)[corr]
    coords = {"potential": potentials, "fluence": fluences, "wavelength": lam, "delay": delays}
    ta = xr.Dataset({"dA": (("potential", "fluence", "wavelength", "delay"), dA_star, {"units": "OD"}),
                     "reflection_corrected": (("potential", "fluence"), corr)}, coords=coords)
    tr = xr.Dataset({"dR": (("potential", "fluence", "wavelength", "delay"),
                            np.broadcast_to(dR, (1,) + shape[1:]).copy(), {"units": "OD"})},
                    coords={**coords, "potential": [-0.3]})
    film = xr.Dataset({"absorptance": ("wavelength_spectrum", F_A, {"units": "1"}),
                       "reflectance": ("wavelength_spectrum", F_R, {"units": "1"})},
                      coords={"wavelength_spectrum": lam}, attrs={"open_circuit_potential_V": -0.3})
    d = {"/": xr.Dataset(attrs={"film_thickness_nm": d_nm, "g_e": 2, "temperature_K": 293.0}),
         "/film": film, "/film/ta": ta, "/film/tr": tr}
    if sec is not None:
        d["/film/sec"] = sec
    return xr.DataTree.from_dict(d)


LAM = np.linspace(450.0, 720.0, 109)
DELAYS = np.array([-1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 100.0])


def test_band_edge_window_recovers_gaussian():
    lam = np.arange(450.0, 720.0, 1.0)
    bw = pp.band_edge_window(_spectrum(lam))
    assert bw.center == pytest.approx(600.0, abs=0.05)
    assert bw.hwhm == pytest.approx(8.0, abs=0.05)
    assert (bw.lo, bw.hi) == pytest.approx((bw.center - bw.hwhm, bw.center + bw.hwhm))
    assert bw.amplitude == pytest.approx(0.05, rel=1e-3)
    two = pp.band_edge_window(_spectrum(lam), half_widths=2.0)
    assert two.hi - two.lo == pytest.approx(4 * bw.hwhm)


def test_band_edge_window_override_and_errors():
    lam = np.arange(450.0, 720.0, 1.0)
    bw = pp.band_edge_window(_spectrum(lam), window=(595, 610))
    assert bw.bounds == (595.0, 610.0) and bw.source == "explicit"
    with pytest.raises(ValueError, match="outside the probe range"):
        pp.band_edge_window(_spectrum(lam), probe_wavelengths=np.arange(450.0, 598.0))
    with pytest.raises(ValueError, match="outside the probe range"):
        pp.band_edge_window(_spectrum(lam), window=(700, 730), probe_wavelengths=lam)
    flat = xr.DataArray(np.linspace(1.0, 0.1, lam.size), coords={"w": lam}, dims="w")
    with pytest.raises(ValueError, match="no 1S peak"):
        pp.band_edge_window(flat)
    with pytest.raises(ValueError, match="lo < hi"):
        pp.band_edge_window(flat, window=(610, 600))


def test_window_average_mean_and_sem():
    lam = np.arange(590.0, 621.0, 2.0)
    vals = np.arange(lam.size, dtype=float) ** 2
    da = xr.DataArray(vals, coords={"wavelength": lam}, dims="wavelength", attrs={"units": "OD"})
    mean, sem = pp.window_average(da, (600.0, 610.0))
    sel = (lam >= 600) & (lam <= 610)
    assert float(mean) == pytest.approx(vals[sel].mean())
    assert float(sem) == pytest.approx(vals[sel].std(ddof=1) / math.sqrt(sel.sum()))
    assert mean.attrs["units"] == "OD" and mean.attrs["n_points"] == sel.sum()
    with pytest.raises(ValueError, match="need at least 2"):
        pp.window_average(da, (600.5, 601.5))


def test_reflection_correction_removes_pure_reflection_artefact():
    A0 = np.asarray(_spectrum(LAM, 605.0, 8.0, 0.0045, 0.0, blue=False).values)
    dR = 0.003 * np.exp(-0.5 * ((LAM - 640.0) / 20.0) ** 2)[:, None] * (DELAYS >= 0)[None, :]
    tree = _film_tree(LAM, DELAYS, [-1.5, -0.3], [1e13, 2e13], np.zeros((LAM.size, DELAYS.size)), dR, A0)
    out = pp.reflection_correct_film(tree)
    assert out["dA"].attrs["units"] == "OD" and out["dA"].attrs["reflection_corrected"]
    np.testing.assert_allclose(out["dA"].values, 0.0, atol=1e-12)  # both potentials use the OC dR
    assert float(out["subgap_before"].min()) > 1e-4
    np.testing.assert_allclose(out["subgap_after"].values, 0.0, atol=1e-12)
    assert out["subgap_after"].dims == ("potential", "fluence")
    assert out.attrs["subgap_window_nm"][0] == pytest.approx(605 + 2 * 8.0, abs=0.3)


def test_reflection_correction_keeps_true_signal_and_passes_corrected_entries():
    A0 = np.asarray(_spectrum(LAM, 605.0, 8.0, 0.0045, 0.0, blue=False).values)
    bleach = -0.002 * np.exp(-0.5 * ((LAM - 605.0) / 7.0) ** 2)[:, None] * np.ones(DELAYS.size)[None, :]
    dR = 0.002 * np.ones((LAM.size, DELAYS.size))
    corr = np.array([[True, False], [False, False]])
    tree = _film_tree(LAM, DELAYS, [-1.5, -0.3], [1e13, 2e13], bleach, dR, A0, corrected=corr)
    out = pp.reflection_correct_film(tree)
    np.testing.assert_allclose(out["dA"].values, np.broadcast_to(bleach, out["dA"].shape), atol=1e-12)
    # the pass-through entry is untouched, so its before/after residuals agree
    assert float(out["subgap_before"][0, 0]) == pytest.approx(float(out["subgap_after"][0, 0]))


def test_reflection_correction_fluence_mismatch_and_missing_tr():
    A0 = np.asarray(_spectrum(LAM, 605.0, 8.0, 0.0045, 0.0, blue=False).values)
    z = np.zeros((LAM.size, DELAYS.size))
    tree = _film_tree(LAM, DELAYS, [-0.3], [1e13, 2e13], z, z, A0)
    tr = tree["film/tr"].to_dataset().assign_coords(fluence=[1e13, 3e13])
    bad = tree.copy()
    bad["film/tr"] = xr.DataTree(tr)
    with pytest.raises(ValueError, match="no transient reflection at fluence 2e\\+13"):
        pp.reflection_correct_film(bad)
    d = {k: tree[k].to_dataset() for k in ("/", "/film", "/film/ta")}
    with pytest.raises(ValueError, match="no film transient reflection"):
        pp.reflection_correct_film(xr.DataTree.from_dict(d))


def test_excited_state_absorption_and_gain():
    A0 = np.asarray(_spectrum(LAM, 605.0, 8.0, 0.0045, 0.0, blue=False).values)
    bleach = -0.003 * np.exp(-0.5 * ((LAM - 605.0) / 7.0) ** 2)[:, None] * np.ones(DELAYS.size)[None, :]
    Vsec = np.linspace(-1.6, -0.3, 14)
    shape1S = np.exp(-0.5 * ((LAM - 605.0) / 7.0) ** 2)
    sec_vals = -0.001 * (Vsec[:, None] <= -1.0) * shape1S[None, :]  # step in potential, (V, L)
    sec_vals = np.broadcast_to(sec_vals, (2, 2) + sec_vals.shape)
    sec = xr.Dataset({"absorption": (("cycle", "direction", "potential", "wavelength"), sec_vals, {"units": "OD"})},
                     coords={"cycle": [1, 2], "direction": ["forward", "backward"], "potential": Vsec,
                             "wavelength": LAM})
    tree = _film_tree(LAM, DELAYS, [-1.5, -0.3], [1e13], bleach, np.zeros_like(bleach), A0, sec=sec, d_nm=100.0)
    out = pp.excited_state_absorption(tree)
    np.testing.assert_allclose(out["A0"].values, A0, rtol=1e-10)
    expect_sec = np.stack([-0.001 * shape1S, 0 * shape1S])
    np.testing.assert_allclose(out["dA_sec"].values, expect_sec, atol=1e-12)
    expect = A0[None, None, :, None] + expect_sec[:, None, :, None] + bleach[None, None]
    np.testing.assert_allclose(out["A_star"].values, expect, atol=1e-12)
    np.testing.assert_allclose(out["gain_per_cm"].values, -expect * math.log(10) / 100e-7, rtol=1e-10)
    assert out["gain_per_cm"].attrs["units"] == "1/cm"


def test_sec_electrons_exact_bleach_and_pl():
    A0 = np.asarray(_spectrum(LAM, 605.0, 8.0, 0.0045, 0.0, blue=False).values) - 0.002  # pure Gaussian
    Vsec = np.linspace(-1.6, -0.3, 14)
    n_true = 2.0 / (1 + np.exp((Vsec + 1.25) / 0.05))
    sec_vals = -(n_true[:, None] / 2.0) * A0[None, :]
    sec_vals = np.broadcast_to(sec_vals, (1, 2) + sec_vals.shape)
    lam_pl = np.linspace(560, 700, 30)
    pl = (1 - n_true / 2)[:, None] * np.exp(-0.5 * ((lam_pl - 620) / 15) ** 2)[None, :] * 1000
    pl = np.broadcast_to(pl, (1, 2) + pl.shape)
    sec = xr.Dataset({"absorption": (("cycle", "direction", "potential", "wavelength"), sec_vals),
                      "photoluminescence": (("cycle", "direction", "potential", "wavelength_pl"), pl)},
                     coords={"cycle": [1], "direction": ["forward", "backward"], "potential": Vsec,
                             "wavelength": LAM, "wavelength_pl": lam_pl})
    z = np.zeros((LAM.size, DELAYS.size))
    tree = _film_tree(LAM, DELAYS, [-0.3], [1e13], z, z, np.maximum(A0, 1e-9), sec=sec)
    out = pp.sec_electrons(tree)
    assert out["n_e"].dims == ("cycle", "direction", "potential")
    np.testing.assert_allclose(out["n_e"].values[0, 0], n_true, atol=1e-6)
    np.testing.assert_allclose(out["pl_norm"].values[0, 1], (1 - n_true / 2) / (1 - n_true[-1] / 2), rtol=1e-10)
    assert np.all(out["n_e_sem"].values >= 0)


# ----------------------------------------------------------------------------- SYNTHETIC batch-a
def test_batch_a_band_edge(batch_a):
    truth = batch_a["truth"].attrs
    bw = pp.band_edge_window(pp.film_absorbance(batch_a))
    assert bw.center == pytest.approx(truth["peak_1S_nm"], abs=1.0)
    # FWHM 55 meV at 605 nm -> HWHM ~ 8.1 nm in wavelength
    hwhm_nm = 0.5 * truth["fwhm_1S_meV"] * 1e-3 * truth["peak_1S_nm"] ** 2 / 1239.84
    assert bw.hwhm == pytest.approx(hwhm_nm, rel=0.05)


def test_batch_a_reflection_correction_report(batch_a_corrected):
    out = batch_a_corrected
    before, after = out["subgap_before"], out["subgap_after"]
    # the artefact grows with fluence; after the correction only noise (~1.5e-4 OD mean |noise| at the red edge) is left
    assert float(before.isel(fluence=-1).min()) > 3 * float(after.isel(fluence=-1).max())
    assert float(after.max()) < 2.5e-4
    assert out["dA"].attrs["reflection_corrected"]


def test_batch_a_sec_electrons_at_ta_potentials(batch_a):
    sec = pp.sec_electrons(batch_a)
    truth = batch_a["truth"].attrs
    mean = sec["n_e"].mean(("cycle", "direction"))
    for V in batch_a["film/ta"]["potential"].values:
        n_true = truth[f"film_ta_mean_electrons.{V:+.3f}V"]
        assert float(mean.interp(potential=V)) == pytest.approx(n_true, abs=0.08), V
    assert float(sec["pl_norm"].sel(potential=-0.3, method="nearest").mean()) == pytest.approx(1.0)
    assert float(sec["pl_norm"].sel(potential=-1.6).mean()) < 0.2


def test_batch_a_excited_state_absorption(batch_a, batch_a_corrected):
    out = pp.excited_state_absorption(batch_a, batch_a_corrected)
    bw = pp.band_edge_window(pp.film_absorbance(batch_a))
    pre, _ = pp.window_average(out["A_pre"], bw)
    # at -1.562 V (<n_e> = 1.99) the 1S absorption is (almost) gone before the pump
    assert float(pre.sel(potential=-1.562)) < 0.05 * float(pre.sel(potential=-0.3))
    # highest fluence at open circuit shows gain near the band edge at 2 ps
    g = out["gain_per_cm"].sel(potential=-0.3).isel(fluence=-1).sel(delay=2.0, method="nearest")
    assert float(g.sel(wavelength=slice(bw.lo, bw.hi)).mean()) > 0
