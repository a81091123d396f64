"""Figures of the classic analysis (bayesgain.classic.figures) on the SYNTHETIC batch-A experiment."""

import re
import warnings

import pytest
import xarray as xr

from bayesgain.classic import figures as cf

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(path, min_bytes=20_000):
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    assert path.stat().st_size > min_bytes, f"{path.name} is only {path.stat().st_size} bytes"


def _no_temp_files(out_dir):
    leftovers = [p.name for p in out_dir.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == [], f"temporary files left: {leftovers}"


@pytest.fixture(scope="module")
def batch_a_figures(batch_a, batch_a_corrected, tmp_path_factory):
    out = tmp_path_factory.mktemp("classic-figures")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = cf.write_classic_figures(batch_a, out, corrected=batch_a_corrected)
    skipped = [str(w.message) for w in caught if "skipped" in str(w.message)]
    return out, paths, skipped


def test_batch_a_writes_all_five_pngs(batch_a_figures):
    out, paths, skipped = batch_a_figures
    assert skipped == []
    assert [p.name for p in paths] == list(cf.FIGURE_NAMES)
    for name in cf.FIGURE_NAMES:
        _check_png(out / name)
    assert all(p.parent == out for p in paths)


def test_batch_a_png_resolution_and_no_temp_files(batch_a_figures):
    import matplotlib.image as mpimg

    out, paths, _ = batch_a_figures
    _no_temp_files(out)
    for p in paths:  # print resolution: every figure at least ~1300 px on its long side at 200 dpi
        img = mpimg.imread(p)
        assert max(img.shape[:2]) >= 1300, (p.name, img.shape)


def test_without_solution_skips_cross_section_with_warning(batch_a, batch_a_corrected, tmp_path):
    no_sol = xr.DataTree.from_dict({path: node.dataset for path, node in batch_a.subtree_with_keys
                                    if not path.startswith("solution")})
    no_sol.attrs = dict(batch_a.attrs)
    assert "solution" not in no_sol.children and "film" in no_sol.children
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = cf.write_classic_figures(no_sol, tmp_path, corrected=batch_a_corrected)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any(re.search(r"cross_section_fit\.png skipped.*solution", m) for m in messages), messages
    assert any(re.search(r"threshold_fits\.png skipped.*cross-section", m) for m in messages), messages
    names = [p.name for p in paths]
    assert "cross_section_fit.png" not in names and not (tmp_path / "cross_section_fit.png").exists()
    # the thresholds need the solution cross-section too; the film-only figures are still made
    assert {"gain_maps.png", "charging_fit.png", "kinetics_fits.png"} <= set(names)
    for p in paths:
        _check_png(p)
    _no_temp_files(tmp_path)


def test_failed_save_leaves_no_file(batch_a, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    fig = plt.figure()

    def boom(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(fig, "savefig", boom)
    with pytest.raises(OSError):
        cf._save(fig, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []
    assert not plt.fignum_exists(fig.number)
