"""Read a TOML file (manifest, truth, model spec) with one-line messages for every way it can be wrong."""

from __future__ import annotations

import tomllib
from pathlib import Path


class TomlFileError(ValueError):
    """A TOML file that cannot be read; the message names the file and what was expected."""


def looks_utf16(data: bytes) -> bool:
    """A UTF-16 byte order mark, or ASCII text with every other byte NUL."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    head = data[:400]
    even, odd = head[0::2], head[1::2]
    return len(head) >= 8 and (odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even)
                               or even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd))


def read_toml(path) -> dict:
    """Parse ``path``: a UTF-8 BOM is accepted; UTF-16, binary data, folders and deep nesting are named."""
    path = Path(path)
    if path.is_dir():
        raise TomlFileError(f"{path} is a folder; expected a TOML file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TomlFileError(f"{path}: cannot read file ({exc.strerror})") from None
    if looks_utf16(data):
        raise TomlFileError(f"{path}: UTF-16 text; expected UTF-8 (save the file as UTF-8)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TomlFileError(f"{path}: not UTF-8 text (byte {exc.start}); expected a UTF-8 TOML file") from None
    if "\x00" in text:
        raise TomlFileError(f"{path}: holds NUL bytes (binary data?); expected a UTF-8 TOML text file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlFileError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:
        data = None
    # the parser's own limit depends on the interpreter's recursion limit (which numba/PyTensor raise): check it here
    if data is None or _depth(data) > MAX_DEPTH:
        raise TomlFileError(f"{path}: not valid TOML (arrays or tables nested too deeply; expected at most "
                            f"{MAX_DEPTH} levels)") from None
    return data


# far beyond any manifest or model spec (3 levels), far below Python's recursion limit
MAX_DEPTH = 50


def _depth(x, level=0):
    """Nesting depth of parsed TOML (iterative: a deep value must not exhaust the stack here either)."""
    stack, deepest = [(x, level)], level
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            return d
        if isinstance(v, dict):
            stack.extend((w, d + 1) for w in v.values())
        elif isinstance(v, list):
            stack.extend((w, d + 1) for w in v)
    return deepest
