"""Dependencies point down: no module of bayesgain.model imports the classic analysis."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "bayesgain"
FORBIDDEN = ("bayesgain.classic",)


def imported_modules(source, module):
    """Absolute names of every module that ``source`` (the text of dotted ``module``) imports, at any depth."""
    package = module.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            stem = ".".join(base + ([node.module] if node.module else []))
            # `from .. import classic` imports the submodule: count both the package and package.name
            out += [stem] + [f"{stem}.{a.name}" for a in node.names]
    return out


def _offending(source, module):
    return [m for m in imported_modules(source, module) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


@pytest.mark.parametrize("text", ["from ..classic import fit_fermi_dirac", "from .. import classic",
                                  "import bayesgain.classic as cl", "from bayesgain.classic.figures import x",
                                  "def f():\n    from ..classic import GAIN_DELAY_PS\n"])
def test_detector_sees_every_import_form(text):
    assert _offending(text, "bayesgain.model.core")


def test_detector_ignores_siblings():
    assert not _offending("from ..fitting import fit_fermi_dirac\nfrom .data import x\nfrom . import spec",
                          "bayesgain.model.core")


def test_model_does_not_import_classic():
    files = sorted((PACKAGE / "model").rglob("*.py"))
    assert files
    bad = {}
    for path in files:
        module = ".".join(("bayesgain",) + path.relative_to(PACKAGE).with_suffix("").parts)
        if path.name == "__init__.py":
            module += ".__init__"
        hits = _offending(path.read_text(), module)
        if hits:
            bad[str(path.relative_to(PACKAGE))] = hits
    assert not bad, f"bayesgain.model imports the classic analysis: {bad}"
