"""The one exception of the data layer.

Every message names the file (and the line/column or manifest field) and says what was expected,
so that a user can fix the input without reading the source.
"""

from __future__ import annotations

import os


class ExperimentError(ValueError):
    """Bad experiment input: a manifest, spectrum or matrix file that cannot be trusted.

    Attributes
    ----------
    file : str or None
        Path of the offending file.
    line, column : int or None
        1-based position in the file, where one applies.
    field : str or None
        Manifest field (e.g. ``film.ta[2].potential_V``), where one applies.
    problems : list[str]
        All problems this error stands for (one for reader errors, possibly many for
        :func:`~bayesgain.io.load_experiment`).
    """

    def __init__(self, message: str, *, file=None, line=None, column=None, field=None, problems=None):
        self.file = None if file is None else os.fspath(file)
        self.line = line
        self.column = column
        self.field = field
        where = _where(self.file, line, column, field)
        full = f"{where}: {message}" if where else message
        self.problems = list(problems) if problems is not None else [full]
        super().__init__(full)


def _where(file, line=None, column=None, field=None) -> str:
    """``file, line 3, column 2 [field x]`` - the prefix every problem starts with."""
    parts = []
    if file is not None:
        parts.append(str(file))
    if line is not None:
        parts.append(f"line {line}")
    if column is not None:
        parts.append(f"column {column}")
    text = ", ".join(parts)
    if field is not None:
        text = f"{text} [{field}]" if text else f"[{field}]"
    return text
