"""Readers: spectrum and matrix files (Helios CSV, glotaran ascii, KiMoPack), real instrument files."""

import hashlib
import os
import pathlib

import numpy as np
import pytest
import xarray as xr

from bayesgain.io import ExperimentError, detect_format, read_matrix, read_spectrum

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "tiny_experiment"

# A small matrix used throughout: wavelengths (nm) x delays (ps), values in OD.
WL = [500.0, 510.0, 520.0]
DELAYS = [-0.5, 0.0, 1.5, 100.0]
VALUES = np.array([[0.001, -0.002, -0.010, -0.005],
                   [0.000, -0.003, -0.015, -0.008],
                   [-0.001, 0.002, 0.011, 0.006]])


def helios_text(sep=",", eol="\n", corner="", metadata=True):
    lines = [sep.join([corner] + [f"{d:g}" for d in DELAYS])]
    lines += [sep.join([f"{w:g}"] + [f"{v:g}" for v in row]) for w, row in zip(WL, VALUES)]
    if metadata:
        lines += ["", "Pump wavelength" + sep + "400 nm", "Comment" + sep + "fixture"]
    return eol.join(lines) + eol


def write(path, text):
    path.write_bytes(text.encode())
    return path


def strip_source(da):
    da = da.copy()
    da.attrs.pop("source_file", None)
    da.attrs.pop("header", None)  # the header row keeps its own separator
    da.attrs.pop("layout", None)  # says how the layout was recognised, which differs by design
    return da


# ----------------------------------------------------------------------------- Helios CSV
def test_helios_matrix_values_axes_and_units(tmp_path):
    da = read_matrix(write(tmp_path / "m.csv", helios_text(corner="Wavelength/Time")))
    assert da.dims == ("wavelength", "delay")
    assert da.shape == (3, 4)
    np.testing.assert_array_equal(da.wavelength, WL)
    np.testing.assert_array_equal(da.delay, DELAYS)
    np.testing.assert_array_equal(da.values, VALUES)
    assert da.sel(wavelength=510.0, delay=1.5).item() == -0.015
    assert da.attrs["units"] == "OD" and da.attrs["format"] == "helios"
    assert da.wavelength.attrs["units"] == "nm" and da.delay.attrs["units"] == "ps"


def test_helios_descending_axes_are_sorted_ascending(tmp_path):
    text = "," + ",".join(f"{d:g}" for d in DELAYS[::-1]) + "\n"
    text += "".join(f"{w:g}," + ",".join(f"{v:g}" for v in row[::-1]) + "\n"
                    for w, row in zip(WL[::-1], VALUES[::-1]))
    da = read_matrix(write(tmp_path / "m.csv", text))
    np.testing.assert_array_equal(da.wavelength, WL)
    np.testing.assert_array_equal(da.values, VALUES)


@pytest.mark.parametrize("eol", ["\n", "\r", "\r\n"], ids=["LF", "CR", "CRLF"])
@pytest.mark.parametrize("sep", [",", "\t"], ids=["comma", "tab"])
def test_line_endings_and_separators_read_the_same(tmp_path, eol, sep):
    ref = read_matrix(write(tmp_path / "ref.csv", helios_text()))
    da = read_matrix(write(tmp_path / "m.csv", helios_text(sep=sep, eol=eol)))
    xr.testing.assert_identical(strip_source(da), strip_source(ref))
    spec_ref = read_spectrum(write(tmp_path / "ref.txt", "wl,A\n500,0.1\n510,0.2\n520,0.15\n"))
    spec = read_spectrum(write(tmp_path / "s.txt", eol.join(["wl" + sep + "A", "500" + sep + "0.1",
                                                              "510" + sep + "0.2", "520" + sep + "0.15"]) + eol))
    xr.testing.assert_identical(strip_source(spec), strip_source(spec_ref))


def test_potential_axis_matrix(tmp_path):
    text = "V,0,-0.5,-1.0\n500,0,-0.01,-0.05\n510,0,-0.02,-0.09\n"
    da = read_matrix(write(tmp_path / "sec.csv", text), axis="potential")
    assert da.dims == ("wavelength", "potential")
    np.testing.assert_array_equal(da.potential, [-1.0, -0.5, 0.0])
    assert da.sel(wavelength=510.0, potential=-1.0).item() == -0.09
    assert da.potential.attrs["units"] == "V"


# ----------------------------------------------------------------------------- errors with positions
@pytest.mark.parametrize("text, pattern", [
    (",0,1\n500,0.1,abc\n510,0.2,0.3\n", r"m\.csv, line 2, column 3: non-numeric cell 'abc'; expected a number"),
    (",0,1,2\n500,0.1,,0.2\n", r"line 2, column 3: empty cell"),
    (",0,1,2\n500,0.1,0.2\n", r"line 2: row has 2 value\(s\) after the axis cell; expected 3"),
    (",0,1,1\n500,0.1,0.2,0.3\n", r"line 1, column 4: duplicate delay 1 ps"),
    (",0,1\n500,0.1,0.2\n520,0.1,0.2\n510,0.1,0.2\n", r"line 4, column 1: wavelength axis is not strictly monotonic: 520 then 510"),
    (",0,1\n500,0.1,nan\n", r"line 2, column 3: value nan .*nan = \"zero\""),
    (",0,1\n500,inf,0.1\n", r"line 2, column 2: value inf"),
    (",0,1\n5,0.1,0.2\n6,0.1,0.2\n", r"wavelength axis \(column 0\) holds 5 to 6; expected wavelengths in nm"),
    (",0,1\n500,0.1,0.2\n\n510,0.1,0.2\n", r"numeric data rows follow at line 4"),
    ("", r"file is empty"),
])
def test_matrix_errors_name_file_line_and_column(tmp_path, text, pattern):
    with pytest.raises(ExperimentError, match=pattern):
        read_matrix(write(tmp_path / "m.csv", text))


def test_transposed_matrix_is_refused_under_a_stated_format_and_read_when_detected(tmp_path):
    path = write(tmp_path / "m.csv", ",400,500,600\n-1,0.1,0.2,0.3\n0,0.1,0.2,0.4\n10,0.1,0.2,0.5\n")
    with pytest.raises(ExperimentError, match="looks transposed"):
        read_matrix(path, format="helios")
    da = read_matrix(path)
    assert da.attrs["format"] == "kimopack" and "along the first row" in da.attrs["layout"]
    assert "first column -1 to 10 ps cannot be wavelengths" in da.attrs["layout"]
    np.testing.assert_array_equal(da.sel(wavelength=600.0).values, [0.3, 0.4, 0.5])


def test_sec_matrix_transposed_or_in_millivolts(tmp_path):
    with pytest.raises(ExperimentError, match="looks transposed"):
        read_matrix(write(tmp_path / "t.csv", ",500,510,520\n0,1,2,3\n-0.5,1,2,3\n"), axis="potential",
                    format="helios")
    t = read_matrix(tmp_path / "t.csv", axis="potential")  # detected: wavelengths along the first row
    np.testing.assert_array_equal(t.sel(potential=-0.5).values, [1, 2, 3])
    with pytest.raises(ExperimentError, match=r"expected potentials in V within"):
        read_matrix(write(tmp_path / "mv.csv", ",0,-500,-1000\n500,1,2,3\n510,1,2,3\n"), axis="potential")


def test_nan_policies(tmp_path):
    path = write(tmp_path / "m.csv", ",0,1\n500,0.1,0.2\n510,nan,0.3\n520,0.4,0.5\n")
    zero = read_matrix(path, nan="zero")
    assert zero.sel(wavelength=510.0, delay=0.0).item() == 0.0
    assert zero.attrs["nan_cells_zeroed"] == 1
    dropped = read_matrix(path, nan="drop-wavelengths")
    np.testing.assert_array_equal(dropped.wavelength, [500.0, 520.0])
    assert dropped.attrs["wavelengths_dropped"] == 1
    with pytest.raises(ExperimentError, match="line 3, column 2"):
        read_matrix(path)


def test_nan_in_axis_is_always_an_error(tmp_path):
    path = write(tmp_path / "m.csv", ",0,nan\n500,0.1,0.2\n")
    with pytest.raises(ExperimentError, match=r"delay axis value is nan"):
        read_matrix(path, nan="zero")


# ----------------------------------------------------------------------------- spectra
def test_spectrum_with_and_without_header(tmp_path):
    a = read_spectrum(write(tmp_path / "a.csv", "wavelength_nm,absorbance\n490,0.2\n500,0.3\n"))
    b = read_spectrum(write(tmp_path / "b.csv", "500\t0.3\n490\t0.2\n"))
    np.testing.assert_array_equal(a.wavelength, [490.0, 500.0])
    np.testing.assert_array_equal(a.values, b.values)
    assert a.attrs["header"] == "wavelength_nm,absorbance" and "header" not in b.attrs


@pytest.mark.parametrize("text, pattern", [
    ("wl,A\n490,0.2\n500,x\n", r"s\.csv, line 3, column 2: non-numeric cell 'x'"),
    ("490,0.2,0.1\n500,0.3,0.1\n", r"line 1: 2 value columns \(2, 3\); expected column = \"name\" or a column number"),
    ("wl,A\n490,0.2\n500,0.3,0.1\n", r"line 3: row has 3 cell\(s\); expected 2: wavelength"),
    ("0.49,0.2\n0.50,0.3\n", r"expected wavelengths in nm"),
    ("490,0.2\n490,0.3\n", r"duplicate wavelength 490 nm"),
    ("490,0.2\n\n500,0.3\n", r"line 2: empty line inside the data"),
])
def test_spectrum_errors(tmp_path, text, pattern):
    with pytest.raises(ExperimentError, match=pattern):
        read_spectrum(write(tmp_path / "s.csv", text))


# ----------------------------------------------------------------------------- glotaran / KiMoPack
def glotaran_time_explicit(header="Header\nOriginal filename: test.txt"):
    lines = [header, "Time explicit", f"intervalnr {len(DELAYS)}",
             "\t" + "\t".join(f"{d:g}" for d in DELAYS)]
    lines += ["\t".join([f"{w:g}"] + [f"{v:g}" for v in row]) for w, row in zip(WL, VALUES)]
    return "\n".join(lines) + "\n"


def test_glotaran_time_and_wavelength_explicit_agree(tmp_path):
    t = read_matrix(write(tmp_path / "t.ascii", glotaran_time_explicit()))
    lines = ["Header", "", "Wavelength explicit", f"intervalnr {len(WL)}", " ".join(f"{w:g}" for w in WL)]
    lines += [" ".join([f"{d:g}"] + [f"{v:g}" for v in VALUES[:, k]]) for k, d in enumerate(DELAYS)]
    w = read_matrix(write(tmp_path / "w.ascii", "\r\n".join(lines) + "\r\n"))
    assert t.attrs["format"] == w.attrs["format"] == "glotaran"
    assert t.attrs["units"] == "unknown"  # nothing in the header says mOD: no silent scaling
    np.testing.assert_array_equal(t.values, VALUES)
    xr.testing.assert_identical(strip_source(t), strip_source(w))


def test_glotaran_units_inferred_from_header(tmp_path):
    da = read_matrix(write(tmp_path / "t.ascii", glotaran_time_explicit("dA in mOD\nrun 3")))
    assert da.attrs["units"] == "mOD"
    np.testing.assert_array_equal(da.values, VALUES)  # values as in the file, not rescaled


def test_glotaran_fortran_fixed_width_fields_that_touch(tmp_path):
    text = ("f.ascii\n\n Time explicit\n Intervalnr 3\n  -9.5E-04  2.3E-02  1.0\n"
            "   420.1  2.99999993E-02-0.209999993  1.0D-01\n   421.6  1.0  2.0  3.0\n")
    da = read_matrix(write(tmp_path / "f.ascii", text))
    np.testing.assert_allclose(da.sel(wavelength=420.1).values, [0.0299999993, -0.209999993, 0.1])


def test_glotaran_wrapped_rows_and_trailing_text(tmp_path):
    text = ("h\nTime explicit\nintervalnr 4\n0 1\n2 3\n"
            "500 1 2\n 3 4\n510 5 6 7 8\nend of data\n")
    da = read_matrix(write(tmp_path / "w.ascii", text))
    np.testing.assert_array_equal(da.delay, [0, 1, 2, 3])
    np.testing.assert_array_equal(da.values, [[1, 2, 3, 4], [5, 6, 7, 8]])


def test_glotaran_data_after_text_is_an_error(tmp_path):
    text = "h\nTime explicit\nintervalnr 2\n0 1\n500 1 2\nx 0 0\n510 5 6\n"
    with pytest.raises(ExperimentError, match=r"line 6, column 1: the matrix stops at the text 'x', but numeric data rows follow at line 7"):
        read_matrix(write(tmp_path / "w.ascii", text))


def test_glotaran_short_row_is_an_error(tmp_path):
    text = glotaran_time_explicit().rstrip("\n").rsplit("\t", 1)[0] + "\n"
    with pytest.raises(ExperimentError, match=r"line 8: row is incomplete: 3 of 4 values"):
        read_matrix(write(tmp_path / "t.ascii", text))


def kimopack_text():
    lines = ["Time in ps\t" + "\t".join(f"{w:g}" for w in WL)]
    lines += ["\t".join([f"{d:g}"] + [f"{v:g}" for v in VALUES[:, k]]) for k, d in enumerate(DELAYS)]
    return "\n".join(lines) + "\n"


def test_kimopack_matrix_is_transpose_of_helios(tmp_path):
    k = read_matrix(write(tmp_path / "k.SIA", kimopack_text()))
    h = read_matrix(write(tmp_path / "h.csv", helios_text()))
    assert k.attrs["format"] == "kimopack" and k.dims == ("wavelength", "delay")
    np.testing.assert_array_equal(k.values, h.values)
    np.testing.assert_array_equal(k.wavelength, h.wavelength)


def test_kimopack_delay_unit_must_be_ps(tmp_path):
    with pytest.raises(ExperimentError, match=r"line 1, column 1: corner cell 'Time in ns'; expected 'Time in ps'"):
        read_matrix(write(tmp_path / "k.SIA", kimopack_text().replace("Time in ps", "Time in ns")))


def test_format_detection_and_explicit_format(tmp_path):
    assert detect_format(write(tmp_path / "k.SIA", kimopack_text())) == "kimopack"
    assert detect_format(write(tmp_path / "g.ascii", glotaran_time_explicit())) == "glotaran"
    assert detect_format(write(tmp_path / "h.csv", helios_text())) == "helios"
    # Forcing the Helios layout on a KiMoPack file makes the axes implausible: say so.
    with pytest.raises(ExperimentError, match="looks transposed"):
        read_matrix(tmp_path / "k.SIA", format="helios")
    with pytest.raises(ExperimentError, match="format 'origin'; expected one of"):
        read_matrix(tmp_path / "k.SIA", format="origin")


# ----------------------------------------------------------------------------- files are read-only
def _snapshot(paths):
    return {p: (hashlib.sha256(p.read_bytes()).hexdigest(), os.stat(p).st_mtime_ns) for p in paths}


def test_readers_leave_files_untouched():
    paths = sorted(p for p in FIXTURE.iterdir() if p.suffix in (".csv", ".txt"))
    before = _snapshot(paths)
    for p in paths:
        if p.name.startswith(("film_F", "solution_absorbance")):
            read_spectrum(p)
        else:
            read_matrix(p, axis="potential" if p.name.startswith("sec_") else "delay")
    assert _snapshot(paths) == before


# ----------------------------------------------------------------------------- real instrument files
def test_real_glotaran_hippius(real_data_dir):
    path = real_data_dir / "pyglotaran-examples" / "demo_data_Hippius_etal_JPCC2007_111_13988_Figs5_9.ascii"
    da = read_matrix(path)
    assert da.attrs["format"] == "glotaran" and da.attrs["units"] == "unknown"
    assert da.shape == (346, 335)  # 346 wavelength rows, intervalnr 335
    assert da.wavelength[0].item() == 377.96045 and da.wavelength[-1].item() == 854.40436
    assert da.delay[0].item() == -0.00095 and da.delay[-1].item() == 909.8548
    assert da.isel(wavelength=0, delay=0).item() == -0.00403  # line 6, first value
    assert da.isel(wavelength=0, delay=-1).item() == -0.0014
    assert da.isel(wavelength=94, delay=0).item() == 4e-05  # line 100, field 2
    assert da.isel(wavelength=94, delay=9).item() == -0.00019  # line 100, field 11
    assert da.isel(wavelength=-1, delay=-1).item() == -0.00319


def test_real_glotaran_fortran_fixed_width(real_data_dir):
    da = read_matrix(real_data_dir / "pyglotaran-examples" / "2016co_tol.ascii")
    assert da.shape == (255, 335)
    assert da.delay[0].item() == pytest.approx(-9.50000016e-04, rel=1e-12)
    assert da.wavelength[0].item() == 420.149475
    np.testing.assert_allclose(da.isel(wavelength=0, delay=[0, 1, -1]).values,
                               [2.99999993e-02, -9.00000036e-02, 0.180000007], rtol=1e-12)
    assert da.isel(wavelength=-1, delay=-1).item() == 0.335000008
    assert da.wavelength[-1].item() == 772.880188


def test_real_kimopack(real_data_dir):
    path = real_data_dir / "kimopack" / "TA_Ru-dppz_400nm_ACN.SIA"
    before = _snapshot([path])
    da = read_matrix(path)
    assert _snapshot([path]) == before
    assert da.attrs["format"] == "kimopack"
    assert da.shape == (446, 183)  # wavelengths 335..780 nm in 1 nm steps, 183 delays
    assert da.wavelength[0].item() == 335.0 and da.wavelength[-1].item() == 780.0
    assert da.delay[0].item() == -10.0001 and da.delay[-1].item() == 1799.9999
    assert da.sel(wavelength=335.0, delay=-10.0001).item() == 0.002350935
    assert da.sel(wavelength=780.0, delay=-10.0001).item() == 0.000368999
    assert da.sel(wavelength=434.0, delay=0.0499).item() == -0.052582233  # line 50, column 101
    assert da.sel(wavelength=780.0, delay=1799.9999).item() == 0.004964113


def test_a_format_registered_in_one_place_is_read_detected_and_accepted_by_the_manifest(tmp_path):
    """A lab's own layout: one register_reader call, and read_matrix, detect_format and the manifest know it."""
    from bayesgain.io import readers
    from bayesgain.io.readers import header_matrix, registry

    def parse(path, lines, axis, format):  # a header matrix whose first line is a banner to skip
        p = header_matrix.parse(path, lines[1:], axis, "helios")
        return registry.Parsed(p.table, p.wl_in, "banner-helios", "mOD", "banner line, then a Helios matrix")

    f = tmp_path / "banner.csv"
    f.write_text("# BANNER v1\n0,0.5,1.0,2.0\n600,1,2,3\n610,4,5,6\n620,7,8,9\n")
    registry.register_reader("banner-helios", lambda lines: bool(lines) and lines[0].startswith("# BANNER"), parse,
                             priority=50)
    try:
        assert readers.detect_format(f) == "banner-helios"
        da = readers.read_matrix(f)
        assert da.attrs["format"] == "banner-helios" and da.attrs["units"] == "mOD"
        np.testing.assert_array_equal(da.sel(wavelength=610.0).values, [4.0, 5.0, 6.0])
        with pytest.raises(ValueError, match="registered twice"):
            registry.register_reader("banner-helios", lambda lines: False, parse)
        from bayesgain.io import manifest
        assert "banner-helios" in manifest._MATRIX_COMMON["format"].choices()
    finally:
        registry._READERS.pop("banner-helios")
    assert readers.detect_format(f) == "helios"  # gone again: the banner line is not a header matrix's axis row
