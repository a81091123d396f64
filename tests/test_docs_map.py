"""ARCHITECTURE.md is the map of the package: it names every module."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_architecture_lists_every_module():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    modules = [p.relative_to(ROOT / "bayesgain").as_posix() for p in sorted((ROOT / "bayesgain").rglob("*.py"))
               if p.name != "__init__.py"]
    missing = [m for m in modules if f"`{m}`" not in text]
    assert not missing, f"ARCHITECTURE.md has no line for {missing}"
