"""Transition counting with saturation: the band-edge (1S) absorption of one QD.

SI section 1.1-1.2.  In units of the proportionality constant gamma (the neutral ground state
absorbs ``g_e * g_h``), a QD holding ``N`` photo-excited excitons and ``n_echem`` electrochemically
injected 1S(e) electrons absorbs (eq. S6; eq. S4 when ``n_echem = 0``)::

    A*(N, n) = max(g_h - N, 0) * max(g_e - N - n, 0)      # open absorption transitions
             - min(N, g_h)     * min(N + n, g_e)          # stimulated-emission transitions

Carriers beyond a level's degeneracy sit in higher levels and neither absorb nor emit at the band
edge: that is the "saturation" the max/min express.  Without it (eq. S3) the neutral threshold of
the Poisson ensemble would be 4/3 instead of 1.54.

Hole trapping (the second batch's low-PLQY dots, SI Figs. S33, S41): the same counting with one of the N
photo-excited holes removed from the band edge (h = N - 1 band-edge holes, e = N + n electrons)::

    A*_trap(N, n) = max(g_h - N + 1, 0) * max(g_e - N - n, 0) - min(N - 1, g_h) * min(N + n, g_e),  N >= 1

the trapped hole's transition absorbs again and its emission is gone; the electron stays and keeps
blocking absorption.  N = 0 has no hole to trap (A*_trap(0, n) = A*(0, n)).

Charge-dependent emission (component ``charged_emission``; the paper's measured thresholds of charged films
lie below transition counting's, 0.80 against 1.06 excitons/QD at <n_e> = 0.94): every band-edge exciton of a
QD that holds injected electrons adds ``c`` transitions of stimulated emission beyond the counting::

    A*_c(N, n) = A*(N, n) - c * min(N, g_h) * [n >= 1]

``c = 0`` is transition counting; the table ``min(N, g_h) [n >= 1]`` is :func:`charged_exciton_table`.
"""

import numpy as np
import pytensor.tensor as pt

__all__ = ["band_edge_absorption", "band_edge_absorption_trapped_hole", "band_edge_absorption_unsaturated",
           "transition_table", "trapped_hole_transition_table", "emission_table", "occupancy_table", "charged_exciton_table",
           "effective_table"]


def _counting(holes, electrons, g_e, g_h):
    """Open absorption minus stimulated-emission transitions of h band-edge holes and e 1S(e) electrons."""
    absorption = pt.maximum(g_h - holes, 0) * pt.maximum(g_e - electrons, 0)
    emission = pt.minimum(holes, g_h) * pt.minimum(electrons, g_e)
    return absorption - emission


def band_edge_absorption(N, n_echem, g_e=2, g_h=4):
    """A*(N, n_echem) of eq. S6 in units of gamma (PyTensor; broadcasts N against n_echem)."""
    N = pt.as_tensor_variable(N)
    return _counting(N, N + pt.as_tensor_variable(n_echem), g_e, g_h)


def band_edge_absorption_trapped_hole(N, n_echem, g_e=2, g_h=4):
    """A*_trap(N, n_echem): eq. S6 with one photo-excited hole trapped off the band edge (units of gamma)."""
    N = pt.as_tensor_variable(N)
    return _counting(pt.maximum(N - 1, 0), N + pt.as_tensor_variable(n_echem), g_e, g_h)


def band_edge_absorption_unsaturated(N, g_e=2, g_h=4):
    """Eq. S3 (no saturation, neutral QD): gamma [(g_e - N)(g_h - N) - N^2]. Kept for comparison only."""
    N = pt.as_tensor_variable(N)
    return (g_e - N) * (g_h - N) - N**2


def transition_table(n_max, g_e=2, g_h=4):
    """A*(N, n) for N = 0..n_max (rows) and n = 0..g_e (columns), as a PyTensor float matrix.

    ``n_max`` may be a Python int or a symbolic integer scalar.
    """
    N = pt.arange(n_max + 1, dtype="float64")[:, None]
    n = pt.as_tensor_variable(np.arange(g_e + 1, dtype="float64"))[None, :]
    return band_edge_absorption(N, n, g_e, g_h)


def trapped_hole_transition_table(n_max, g_e=2, g_h=4):
    """A*_trap(N, n) for N = 0..n_max (rows) and n = 0..g_e (columns): :func:`transition_table` with a trapped hole.

    Constant from N = max(g_e, g_h + 1) on (the band-edge holes saturate one exciton later)."""
    N = pt.arange(n_max + 1, dtype="float64")[:, None]
    n = pt.as_tensor_variable(np.arange(g_e + 1, dtype="float64"))[None, :]
    return band_edge_absorption_trapped_hole(N, n, g_e, g_h)


def emission_table(n_max, g_e=2, g_h=4):
    """Stimulated-emission transitions min(N, g_h) min(N + n, g_e) of eq. S6 for N = 0..n_max (rows), n = 0..g_e
    (columns), as a NumPy float matrix (the hole-trapping "emission" form adds eta times it to the counting)."""
    N = np.arange(int(n_max) + 1, dtype=float)[:, None]
    n = np.arange(int(g_e) + 1, dtype=float)[None, :]
    return np.minimum(N, g_h) * np.minimum(N + n, g_e)


def occupancy_table(n_max, g_e=2):
    """1S(e) occupancy min(N + n, g_e) / g_e for N = 0..n_max (rows), n = 0..g_e (columns), NumPy: electrons beyond
    the level's degeneracy sit in higher levels (the saturation of eq. S6)."""
    N = np.arange(int(n_max) + 1, dtype=float)[:, None]
    n = np.arange(int(g_e) + 1, dtype=float)[None, :]
    return np.minimum(N + n, g_e) / g_e


def charged_exciton_table(n_max, g_e=2, g_h=4):
    """Band-edge excitons of charged QDs, min(N, g_h) [n >= 1], for N = 0..n_max (rows), n = 0..g_e (columns),
    NumPy: what the charge-dependent emission ``c`` multiplies (A*_c = A* - c x this table).  Constant in N from
    N = g_h on, so the cascade's saturated lumping (J = max(g_e, g_h)) stays exact."""
    N = np.arange(int(n_max) + 1, dtype=float)[:, None]
    n = np.arange(int(g_e) + 1, dtype=float)[None, :]
    return np.minimum(N, g_h) * (n >= 1)


def effective_table(counting, emission=None, eta=None, charged=None, charged_emission=None):
    """The table the cascade and the threshold read: ``counting + eta * emission - charged_emission * charged``.

    ``counting`` is A* (:func:`transition_table`, or its Poisson average a_n), ``emission`` the emission table
    (the "emission" form of hole trapping adds eta times it), ``charged`` the charged-exciton table (component
    ``charged_emission`` subtracts c times it).  A term whose coefficient is None is absent; NumPy or PyTensor,
    any shapes that broadcast (one home for the sum that the model, the posterior quantities and the threshold
    solver share)."""
    out = counting
    if eta is not None:
        out = out + eta * emission
    if charged_emission is not None:
        out = out - charged_emission * charged
    return out
