"""Every report figure's title (SYNTHETIC / NOT CONVERGED tags), notes, margins and atomic PNG save."""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..._atomic import atomic_path  # noqa: E402
from ..common import DPI, HDI, _converged, _synthetic  # noqa: E402


def _title(fig, model, title, experiment=None, extra_notes=()):
    tags = []
    if _synthetic(model):
        tags.append("SYNTHETIC DATA")
    if not _converged(model):
        tags.append("NOT CONVERGED")
    head = " -- ".join(tags + [title])
    color = "firebrick" if tags else "black"
    head = textwrap.fill(head, 70)
    if experiment is not None and len(model.names) > 1:  # a line of its own: appended, a long title ran off the figure
        head += f"\nexperiment {model.names[experiment]}"
    fig.suptitle(head, fontsize=10.5, color=color, fontweight="bold" if tags else "normal")
    notes = []
    if _synthetic(model):
        notes.append("SYNTHETIC data (bayesgain.simulate): not a measurement")
    if not _converged(model):
        notes.append("fit NOT CONVERGED: not final")
    notes.append(f"model '{model.spec.name}', experiments: {', '.join(map(str, model.names))}; bands: {HDI:.0%} HDI")
    notes += list(extra_notes)
    fig.text(0.5, 0.003, "\n".join(notes), ha="center", va="bottom", fontsize=6.5, color=color)
    return head.count("\n") + 1, len(notes)


def _save(fig, model, path, title, experiment=None, notes=()):
    """Title, notes and margins of ``fig`` (``experiment``: the index of the experiment it shows, named in the title
    of a fit of several; ``notes``: lines of its own, e.g. an overlay that failed), written to ``path`` atomically."""
    title_lines, note_lines = _title(fig, model, title, experiment, notes)
    h = fig.get_size_inches()[1]
    # room for the title (10.5 pt lines) and the notes (6.5 pt lines), in inches, as figure fractions
    top = (0.08 + 0.19 * title_lines) / h
    bottom = (0.04 + 0.11 * note_lines) / h
    fig.tight_layout(rect=(0, min(0.3, bottom), 1, 1 - min(0.3, top)))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    return path
