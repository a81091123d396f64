"""Path containment: every file an experiment names must resolve (symlinks included) inside its folder.

Also the short, sanitised excerpt that messages may quote from a file, and duplicate detection by
resolved path and content hash.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

EXCERPT_CHARS = 12


class OutsideFolderError(ValueError):
    """A manifest path that leaves the experiment folder (``..``, absolute path or symlink)."""


def contained_path(folder, rel, what: str = "path") -> Path:
    """``folder / rel`` resolved; raises :class:`OutsideFolderError` when it resolves outside ``folder``.

    The message names only the manifest's own words, never the target's content.
    """
    root = Path(folder).resolve()
    rel_s = os.fspath(rel)
    if "\x00" in rel_s:
        raise OutsideFolderError(f"{what} {cell_excerpt(rel_s)} holds a NUL byte; expected a file name inside "
                                 "the experiment folder")
    target = (root / rel_s).resolve()
    if target != root and root not in target.parents:
        how = "an absolute path" if os.path.isabs(rel_s) else (
            "a symbolic link" if (root / rel_s).is_symlink() or _has_link(root, rel_s) else "a relative path")
        raise OutsideFolderError(f"{what} {cell_excerpt(rel_s, 60)} is {how} that resolves outside the "
                                 f"experiment folder {root}; expected a file inside that folder")
    return target


def _has_link(root: Path, rel: str) -> bool:
    p = root
    for part in Path(rel).parts:
        p = p / part
        if p.is_symlink():
            return True
    return False


def cell_excerpt(text, limit: int = EXCERPT_CHARS) -> str:
    """A quoted, printable excerpt of at most ``limit`` characters (control bytes shown as '?')."""
    s = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return repr(s if len(s) <= limit else s[:limit] + "...")


def damage_reason(exc, path, limit: int = 160) -> str:
    """'ErrorType: message' of a failure to read ``path``, on one line, the path itself left out (it is named
    beside it), at most ``limit`` characters: what a damaged-file refusal says."""
    why = " ".join(str(exc).replace(str(path), "").split())[:limit].strip(" :")
    return f"{type(exc).__name__}: {why or 'unreadable'}"


def file_digest(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def duplicate_files(named: list[tuple[str, Path]]) -> list[tuple[str, str, str]]:
    """``(label, path)`` pairs -> ``(label, earlier_label, how)`` for each path that repeats an earlier
    one by resolved path or by content (``how`` is the verb phrase for a message)."""
    seen_path: dict[Path, str] = {}
    seen_hash: dict[str, str] = {}
    out = []
    for label, path in named:
        real = Path(path).resolve()
        if real in seen_path:
            if seen_path[real] != label:
                out.append((label, seen_path[real], "names the same file as"))
            continue
        seen_path[real] = label
        try:
            digest = file_digest(real) if real.is_file() else None
        except OSError:
            digest = None
        if digest is None:
            continue
        if digest in seen_hash:
            out.append((label, seen_hash[digest], "names a file with the same content as"))
        else:
            seen_hash[digest] = label
    return out


def repeated_folders(folders) -> list[tuple[str, str, str]]:
    """Experiment folders given more than once: ``(folder, earlier, how)`` by resolved path or by identical
    ``experiment.toml`` bytes (``how`` is the verb phrase for a message)."""
    seen: dict = {}
    out = []
    for folder in folders:
        p = Path(folder)
        if p.name == "experiment.toml":
            p = p.parent
        keys = [("is the same folder as", p.resolve())]
        if (p / "experiment.toml").is_file():
            keys.append(("has the same experiment.toml as", file_digest(p / "experiment.toml")))
        for how, key in keys:
            if key in seen:
                out.append((str(folder), seen[key], how))
                break
        for how, key in keys:
            seen.setdefault(key, str(folder))
    return out
