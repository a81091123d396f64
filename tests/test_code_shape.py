"""Code shape: no function over 80 lines and no class over 350 lines in bayesgain/, unless a one-line
``# long: <why>`` comment on its ``def``/``class`` line or the line above says why."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / "bayesgain"
MAX_FUNCTION_LINES = 80
MAX_CLASS_LINES = 350
EXCLUDED = ()  # a file that may hold long functions (none now); a single function says why with "# long:"


def _excluded(rel):
    return any(pathlib.PurePosixPath(rel).match(pattern) for pattern in EXCLUDED)


def _has_reason(lines, node):
    """A ``# long:`` comment on the definition's line, or on the line above it (or above its decorators)."""
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    candidates = {node.lineno, node.lineno - 1, first - 1}
    return any(1 <= n <= len(lines) and "# long:" in lines[n - 1] for n in candidates)


def oversized(root=ROOT):
    """``path:line kind name (N lines)`` for every over-long function or class without a reason."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if _excluded(rel):
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                kind, limit = "function", MAX_FUNCTION_LINES
            elif isinstance(node, ast.ClassDef):
                kind, limit = "class", MAX_CLASS_LINES
            else:
                continue
            n = node.end_lineno - node.lineno + 1
            if n > limit and not _has_reason(lines, node):
                found.append(f"bayesgain/{rel}:{node.lineno} {kind} {node.name} ({n} lines > {limit})")
    return found


def test_no_long_functions_or_classes():
    found = oversized()
    assert not found, "split these, or add a one-line '# long: <why>' comment above them:\n" + "\n".join(found)


def test_the_check_finds_a_long_function_and_accepts_a_reason(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "mod.py").write_text(f"def too_long():\n{body}\n\n# long: a table of constants\ndef fine():\n{body}")
    found = oversized(tmp_path)
    assert len(found) == 1 and "too_long" in found[0] and f"({MAX_FUNCTION_LINES + 1} lines" in found[0]


def test_the_check_finds_a_long_class(tmp_path):
    methods = "".join(f"    def m{i}(self):\n        return {i}\n" for i in range(MAX_CLASS_LINES // 2))
    (tmp_path / "mod.py").write_text(f"class Big:\n{methods}")
    assert [f.split()[1:3] for f in oversized(tmp_path)] == [["class", "Big"]]
