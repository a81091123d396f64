"""The wheel: every package, the shipped model specs and the demo experiment inside, built without warnings.

The wheel is built from a copy of the checkout's package files in ``tmp_path`` (nothing is written
into the checkout) with the running environment's setuptools (``--no-build-isolation``: seconds, no
download).  Installing it into a fresh virtual environment and running from an empty folder is the
CI step ``.ci/wheel-smoke`` (minutes: the dependencies come from the package registry).
"""

import pathlib
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_of_the_checkout_is_listed_for_the_wheel():
    """Package discovery is off (the shipped folders are mapped): a new subpackage must be listed."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "bayesgain").rglob("__init__.py")}
    assert found - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"
    assert {"bayesgain.models", "bayesgain.data"} <= listed


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory):
    import setuptools

    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__} < 77 here (the build needs SPDX license support)")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("bayesgain", "models", "data"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out),
                           str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.glob("bayesgain-*.whl")
    return wheel, proc.stdout + proc.stderr


def test_the_build_prints_no_deprecation_warning(built_wheel):
    _, log = built_wheel
    assert "deprecat" not in log.lower() and "warning" not in log.lower(), log


def test_the_wheel_holds_the_package_the_models_and_the_demo_data(built_wheel):
    wheel, _ = built_wheel
    names = set(zipfile.ZipFile(wheel).namelist())
    code = {p.relative_to(ROOT).as_posix() for p in (ROOT / "bayesgain").rglob("*.py")}
    assert code - names == set()
    models = {f"bayesgain/models/{p.name}" for p in (ROOT / "models").glob("*.toml")}
    assert len(models) >= 8 and models <= names
    demo = ROOT / "data" / "synthetic-batch-a"
    data = {f"bayesgain/data/{p.relative_to(ROOT / 'data').as_posix()}" for p in demo.rglob("*") if p.is_file()}
    assert {"bayesgain/data/synthetic-batch-a/experiment.toml", "bayesgain/data/synthetic-batch-a/truth.toml",
            "bayesgain/data/README.md"} <= names
    assert data <= names
    shipped = {n for n in names if not n.startswith("bayesgain-")}
    assert shipped - code - models - data == {"bayesgain/data/README.md"}  # nothing else: no tests, no batch B
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert "License-Expression: MIT" in meta


# ----------------------------------------------------------------------------- the installation check
def test_dry_run_checks_the_shipped_demo_writes_nothing_and_finds_it_in_the_package_or_checkout(tmp_path,
                                                                                                 monkeypatch):
    from bayesgain import demo
    from bayesgain.model.spec import MODELS_DIR

    assert MODELS_DIR == ROOT / "models" and demo.DEMO_FOLDER == ROOT / "data" / "synthetic-batch-a"  # checkout
    monkeypatch.chdir(tmp_path)
    lines = []
    assert demo.dry_run(models=["sec-only"], log=lines.append)
    text = "\n".join(lines)
    assert "Result: OK" in text and "sec-only" in text and "Installation check: OK" in text
    assert list(tmp_path.iterdir()) == []


def test_dry_run_fails_on_invalid_data_with_the_check_report(tmp_path):
    from bayesgain import demo

    folder = tmp_path / "exp"
    shutil.copytree(ROOT / "tests" / "fixtures" / "tiny_experiment", folder)
    text = (folder / "experiment.toml").read_text().replace("film_thickness_nm", "film_thicknes_nm")
    (folder / "experiment.toml").write_text(text)
    lines = []
    assert not demo.dry_run(folder, log=lines.append)
    assert "film_thicknes_nm" in "\n".join(lines)


@pytest.mark.slow
def test_demo_dry_run_command_builds_every_shipped_model(tmp_path, monkeypatch, capsys):
    from bayesgain import cli
    from bayesgain.model.spec import available_models

    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in available_models()) and "Installation check: OK" in out
    assert list(tmp_path.iterdir()) == []
