"""The classic results as an xarray.Dataset: rows -> Dataset -> classic.csv -> Dataset, and the report reading
classic values by coordinate."""

import csv
import math

import numpy as np
import pytest
import xarray as xr

from bayesgain.classic import classic_dataset, classic_rows, read_classic_csv, write_classic_csv
from bayesgain.classic.dataset import make_row, parse_row_name

HOW = "a method"
POTENTIALS = (-1.562, -1.449, -0.3)
FLUENCES = (8.33e12, 2.5e13)


def _rows():
    """Rows as classic_analysis makes them: scalars (one NaN), a variant, a quantity over potential with a NaN
    element, one over (potential, fluence), and three units of one quantity interleaved per potential."""
    rows = [make_row("cross_section_cm2", 3.5e-14, 5.7e-16, "cm^2", HOW),
            make_row("solution_threshold_excitons", np.nan, np.nan, "excitons/QD", HOW, "threshold not reached")]
    rows += [make_row("subgap_residual_OD", 1e-4 * (i + 1) * (k + 1), np.nan, "OD", HOW, f"before {i},{k}",
                      potential=V, fluence=F) for i, V in enumerate(POTENTIALS) for k, F in enumerate(FLUENCES)]
    rows += [make_row("V_1S_V", -1.25, 0.007, "V", HOW), make_row("V_1S_V[sec=gaussian]", -1.26, 0.008, "V", "other")]
    rows += [make_row("threshold_excitons", v, u, "excitons/QD", HOW, n, potential=V)
             for V, v, u, n in zip(POTENTIALS, (0.057, np.nan, 1.49), (0.004, np.nan, 0.2), ("A = 1", "not reached", ""))]
    for V, N in zip(POTENTIALS, (0.25, 0.37, np.nan)):
        rows += [make_row(f"lowest_threshold_g50_{tag}", N * f, 0.1 * N * f, unit, HOW, "" if N == N else "none",
                          potential=V)
                 for tag, unit, f in (("excitons", "excitons/QD", 1.0), ("photons_cm2", "photons/cm^2", 2.8e13),
                                      ("nJ_cm2", "nJ/cm^2", 1.4e4))]
    return rows


def _same(a, b):
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def test_rows_dataset_csv_dataset_round_trip(tmp_path):
    rows = _rows()
    ds = classic_dataset(rows)
    path = write_classic_csv(ds, tmp_path / "classic.csv")
    back = read_classic_csv(path)
    xr.testing.assert_identical(back, ds)  # values, coordinates, uncertainties, notes, attrs
    # the CSV holds the rows in the order they were made, with their names and fields
    written = list(csv.DictReader(open(path)))
    assert [r["name"] for r in written] == [r["name"] for r in rows]
    for w, r in zip(written, rows):
        assert _same(float(w["value"]), r["value"]) and _same(float(w["uncertainty"]), r["uncertainty"])
        assert (w["unit"], w["method"], w["note"]) == (r["unit"], r["method"], r["note"])
    assert all(_same(a[k], b[k]) for a, b in zip(classic_rows(back), rows) for k in a)
    # written again from the Dataset read back: the same bytes
    assert write_classic_csv(back, tmp_path / "again.csv").read_bytes() == path.read_bytes()


def test_dataset_layout():
    ds = classic_dataset(_rows())
    assert ds["threshold_excitons"].dims == ("potential",)
    assert ds["subgap_residual_OD"].dims == ("potential", "fluence")
    assert ds["cross_section_cm2"].dims == () and float(ds["cross_section_cm2"]) == 3.5e-14
    assert list(ds["potential"].values) == list(POTENTIALS) and list(ds["fluence"].values) == list(FLUENCES)
    thr = ds["threshold_excitons"]
    assert thr.attrs["unit"] == "excitons/QD" and thr.attrs["method"] == HOW
    assert float(thr.sel(potential=-0.3)) == 1.49
    assert float(ds["threshold_excitons_uncertainty"].sel(potential=-1.562)) == 0.004
    assert np.isnan(float(thr.sel(potential=-1.449)))
    assert ds["threshold_excitons_note"].sel(potential=-1.449).item() == "not reached"
    assert float(ds["subgap_residual_OD"].sel(potential=-1.449, fluence=2.5e13)) == pytest.approx(4e-4)
    assert float(ds["V_1S_V_sec_gaussian"]) == -1.26 and ds["V_1S_V_sec_gaussian"].attrs["method"] == "other"
    assert ds["lowest_threshold_g50_nJ_cm2_note"].sel(potential=-0.3).item() == "none"


def test_coordinates_are_the_precision_of_the_row_names():
    ds = classic_dataset([make_row("gain_lifetime_ps", 1.0, 0.1, "ps", HOW, potential=-1.56249, fluence=2.4987e13)])
    assert float(ds["potential"][0]) == -1.562 and float(ds["fluence"][0]) == 2.5e13
    assert classic_rows(ds)[0]["name"] == "gain_lifetime_ps[V=-1.562,J=2.5e+13]"


def test_an_element_without_a_row_is_not_written(tmp_path):
    rows = [make_row("threshold_excitons", 0.1, 0.01, "excitons/QD", HOW, potential=-1.5),
            make_row("gain_lifetime_ps", 30.0, 1.0, "ps", HOW, potential=-1.2, fluence=1e13)]
    ds = classic_dataset(rows)
    assert ds["threshold_excitons"].sizes["potential"] == 2  # -1.5 and -1.2 share the axis
    assert not isinstance(ds["threshold_excitons_note"].sel(potential=-1.2).item(), str)  # no note: no row
    assert [r["name"] for r in classic_rows(ds)] == [r["name"] for r in rows]


@pytest.mark.parametrize("name, why", [("threshold_excitons[V=abc]", "not a number"),
                                       ("threshold_excitons[V=nan]", "not a finite number"),
                                       ("threshold_excitons[V=1,V=2]", "given twice"),
                                       ("threshold_excitons[V]", "key=value"),
                                       ("a[b]c", "quantity")])
def test_bad_row_names_are_refused(name, why):
    with pytest.raises(ValueError, match=why):
        parse_row_name(name)


def test_rows_of_one_quantity_must_agree():
    rows = [make_row("t", 1.0, 0.1, "ps", HOW, potential=-1.0), make_row("t", 2.0, 0.1, "ns", HOW, potential=-0.5)]
    with pytest.raises(ValueError, match="unit differs"):
        classic_dataset(rows)
    with pytest.raises(ValueError, match="coordinates"):
        classic_dataset([make_row("t", 1.0, 0.1, "ps", HOW, potential=-1.0), make_row("t", 1.0, 0.1, "ps", HOW)])


def test_reader_names_the_file(tmp_path):
    bad = tmp_path / "classic.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="classic.csv: expected the columns"):
        read_classic_csv(bad)
    bad.write_text("name,value,uncertainty,unit,method,note\n")
    with pytest.raises(ValueError, match="no rows"):
        read_classic_csv(bad)
    bad.write_text("name,value,uncertainty,unit,method,note\nx[V=one],1,0.1,ps,m,\n")
    with pytest.raises(ValueError, match=r"classic.csv: row name 'x\[V=one\]'"):
        read_classic_csv(bad)


# ----------------------------------------------------------------------------- the report reads by coordinate
class _NoModel:
    """A report cache whose model has no thresholds at the potentials (the classic column stands alone)."""

    def at_potentials(self):
        from bayesgain.report.cache import Skip

        raise Skip("no gain component")


def _hand_made(potentials, values, sds, notes):
    """A classic Dataset made directly with xarray (no row names anywhere), potentials in the given order."""
    coords = {"potential": ("potential", np.asarray(potentials, float))}
    return xr.Dataset({"threshold_excitons": ("potential", np.asarray(values, float), {"unit": "excitons/QD"}),
                       "threshold_excitons_uncertainty": ("potential", np.asarray(sds, float)),
                       "threshold_excitons_note": ("potential", np.asarray(notes, dtype=object))}, coords=coords)


def test_report_classic_thresholds_come_from_the_dataset_by_coordinate():
    from bayesgain.report.markdown import _classic_threshold_rows
    from bayesgain.report.tables import _classic_thresholds

    ds = _hand_made([-0.3, -1.562, -1.0], [1.49, 0.057, np.nan], [0.2, 0.004, np.nan], ["", "", "fit failed"])
    got = _classic_thresholds(ds)
    assert [(V, v) for V, v, _ in got[:2]] == [(-0.3, 1.49), (-1.562, 0.057)]
    assert got[2][0] == -1.0 and np.isnan(got[2][1]) and np.isnan(got[2][2])
    table = _classic_threshold_rows(_NoModel(), ds)
    assert [r[0] for r in table] == ["`threshold_excitons[V=-0.300]`", "`threshold_excitons[V=-1.562]`",
                                     "`threshold_excitons[V=-1.000]`"]
    assert table[1][2] == "0.057 +- 0.004" and table[2][2] == "-- +- --" and table[1][3] == "not in this model"
    # a potential without a row (no note) is not a classic threshold
    ds["threshold_excitons_note"][2] = np.nan
    assert [V for V, _, _ in _classic_thresholds(ds)] == [-0.3, -1.562]


def test_report_without_classic_thresholds():
    from bayesgain.report.tables import _classic_thresholds, _classic_value

    ds = classic_dataset([make_row("threshold_excitons", np.nan, np.nan, "excitons/QD", HOW, "failed: no window"),
                          make_row("V_1S_V", -1.25, 0.01, "V", HOW)])
    assert _classic_thresholds(ds) == [] and _classic_thresholds(None) == []  # unlocated failure: no points
    assert _classic_value(ds, "V_1S_V")["value"] == -1.25 and _classic_value(ds, "T_eff_K") is None
    assert _classic_value(ds, "threshold_excitons")["note"] == "failed: no window"
