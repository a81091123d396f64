"""The output folder: checked before anything is created, locked while written, never emptied by force.

A lock file (``.bayesgain.lock``, created with O_CREAT | O_EXCL, so only one run can create it) keeps a
second concurrent writer out of the same ``--out``.  A lock whose process is gone (killed run) and the
``.NAME.XXXX.tmp`` files of :mod:`bayesgain._atomic` it left behind are removed, and said so.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from pathlib import Path

from .interrupt import forget, on_interrupt

LOCK_NAME = ".bayesgain.lock"
# tempfile.mkstemp(prefix=".NAME.", suffix=".tmp") as used by bayesgain._atomic
_TEMP_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.tmp$")


class OutputFolderError(ValueError):
    """An output path that cannot be used (a file, not creatable, not empty, locked by another run)."""


def stale_temporaries(folder) -> list[Path]:
    """Temporaries of atomic writes (``.posterior.nc.ab12cd34.tmp``) directly in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _TEMP_RE.match(p.name) and p.is_file())


def _first_existing(path: Path) -> Path:
    p = path.absolute()
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _user_entries(folder: Path) -> list[Path]:
    skip = {p.name for p in stale_temporaries(folder)} | {LOCK_NAME}
    return [p for p in folder.iterdir() if p.name not in skip]


def output_problem(out, force: bool, option: str = "--out") -> str | None:
    """Why ``out`` cannot be used as an output folder (None when it can); creates and changes nothing."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        return (f"{option} {out} is a file, not a folder; choose a folder path (--force only replaces files "
                "inside an output folder, never the folder itself)")
    if not out.exists():
        base = _first_existing(out)
        if not base.is_dir():
            return f"cannot create output folder {out}: {base} is not a folder; choose another {option}"
        if not os.access(base, os.W_OK | os.X_OK):
            return f"cannot create output folder {out}: {base} is not writable; choose another {option}"
        return None
    if not os.access(out, os.W_OK | os.X_OK):
        return f"output folder {out} is not writable; choose another {option}"
    if not force and _user_entries(out):
        return f"output folder {out} exists and is not empty; use --force to write into it (files of the same " \
               "names are replaced)"
    return None


def output_file_problem(target, force: bool, option: str = "--out") -> str | None:
    """Why ``target`` cannot be written as one output file (None when it can)."""
    target = Path(target)
    if target.is_dir():
        return f"{option} {target} is a folder; expected the path of a file to write"
    if target.exists() and not force:
        return f"{target} exists; use --force to replace it"
    parent = target.absolute().parent
    if not parent.is_dir():
        return f"cannot write {target}: folder {parent} does not exist or is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot write {target}: folder {parent} is not writable"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed but unreaped process (zombie) writes nothing any more
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _read_lock(path: Path) -> dict:
    info = {}
    try:
        for line in path.read_text(errors="replace").splitlines():
            k, _, v = line.partition("=")
            info[k.strip()] = v.strip()
    except OSError:
        pass
    return info


class OutputFolder:
    """Context manager: validate, create and lock ``out``; on exit unlock (and remove it again when this run
    created it and an error or interrupt left it empty).  ``notes`` says what stale leftovers were removed."""

    def __init__(self, out, force: bool = False, option: str = "--out"):
        self.path = Path(out)
        self.force, self.option = force, option
        self.notes: list[str] = []
        self.created = False
        self._lock: Path | None = None

    def __enter__(self) -> "OutputFolder":
        problem = output_problem(self.path, self.force, self.option)
        if problem:
            raise OutputFolderError(problem)
        self.created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputFolderError(f"cannot create output folder {self.path} ({exc.strerror}); choose another "
                                    f"{self.option}") from None
        try:
            self._acquire()
            for tmp in stale_temporaries(self.path):  # we hold the lock: no live run writes these
                tmp.unlink()
                self.notes.append(f"removed {tmp.name}, a temporary file left in {self.path} by an interrupted run")
            problem = output_problem(self.path, self.force, self.option)  # another run may have finished since
            if problem:
                raise OutputFolderError(problem)
        except BaseException:
            self._release(failed=True)
            raise
        return self

    def __exit__(self, kind, exc, tb):
        self._release(failed=kind is not None)
        return False

    def _acquire(self) -> None:
        lock = self.path / LOCK_NAME
        text = (f"pid = {os.getpid()}\nhost = {socket.gethostname()}\nsince = {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                f"command = {' '.join(sys.argv[:3])}\n")
        for attempt in (1, 2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = _read_lock(lock)
                pid = int(info["pid"]) if info.get("pid", "").isdigit() else None
                same_host = info.get("host") == socket.gethostname()
                if attempt == 1 and pid is not None and same_host and not _alive(pid):
                    lock.unlink(missing_ok=True)
                    self.notes.append(f"removed the lock of an earlier run (pid {pid}) that no longer exists")
                    continue
                who = f"pid {pid} on {info.get('host', '?')} since {info.get('since', '?')}" if pid else "unknown"
                raise OutputFolderError(
                    f"output folder {self.path} is in use by another bayesgain run ({who}); wait for it to finish "
                    f"or choose another {self.option} (if no run is active, delete {lock})") from None
            except OSError as exc:
                raise OutputFolderError(f"cannot write in output folder {self.path} ({exc.strerror}); choose "
                                        f"another {self.option}") from None
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            self._lock = lock
            on_interrupt(self._on_forced_exit)
            return

    def _on_forced_exit(self) -> None:
        self._release(failed=True)

    def _release(self, failed: bool) -> None:
        forget(self._on_forced_exit)
        if self._lock is not None:
            self._lock.unlink(missing_ok=True)
            self._lock = None
        if failed:
            for tmp in stale_temporaries(self.path):
                tmp.unlink(missing_ok=True)
            if self.created and self.path.is_dir() and not any(self.path.iterdir()):
                self.path.rmdir()


def remove_simulated(out) -> list[Path]:
    """Before re-simulating into ``out``: remove only what a simulator wrote there (``experiment.toml``,
    ``truth.toml`` and the files the manifest names, then folders left empty); anything else stays.

    Refuses (:class:`OutputFolderError`) a folder whose manifest is unreadable or not synthetic.
    """
    from ..io.tomlfile import TomlFileError, read_toml
    from .containment import OutsideFolderError, contained_path

    out = Path(out)
    if not _user_entries(out):
        return []
    manifest = out / "experiment.toml"
    if not manifest.exists():
        return []  # no experiment here: the simulation is written beside the files already there
    try:
        raw = read_toml(manifest)
    except TomlFileError as exc:
        raise OutputFolderError(f"{exc}; --force replaces only a previous synthetic experiment") from None
    if raw.get("synthetic") is not True:
        raise OutputFolderError(f"{manifest} is a real experiment (synthetic is not true); simulate never "
                                "replaces one, even with --force: choose another --out")
    names = ["experiment.toml", "truth.toml"]
    for group in ("solution", "film"):
        table = raw.get(group) if isinstance(raw.get(group), dict) else {}
        for key, value in table.items():
            if key.endswith("_file") and isinstance(value, str):
                names.append(value)
            elif isinstance(value, list):
                names += [t["file"] for t in value if isinstance(t, dict) and isinstance(t.get("file"), str)]
    removed = []
    for name in names:
        try:
            p = contained_path(out, name)
        except OutsideFolderError:
            continue  # never delete outside the folder
        if p.is_file():
            p.unlink()
            removed.append(p)
    root = out.resolve()
    for folder in sorted({p.parent for p in removed}, key=lambda q: -len(q.parts)):
        while folder != root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    return removed
