"""Transition counting with saturation: the band-edge (1S) absorption of one QD.

SI section 1.1-1.2.  In units of the proportionality constant gamma (the neutral ground state
absorbs ``g_e * g_h``), a QD holding ``N`` photo-excited excitons and ``n_echem`` electrochemically
injected 1S(e) electrons absorbs (eq. S6; eq. S4 when ``n_echem = 0``)::

    A*(N, n) = max(g_h - N, 0) * max(g_e - N - n, 0)      # open absorption transitions
             - min(N, g_h)     * min(N + n, g_e)          # stimulated-emission transitions

Carriers beyond a level's degeneracy sit in higher levels and neither absorb nor emit at the band
edge: that is the "saturation" the max/min express.  Without it (eq. S3) the neutral threshold of
the Poisson ensemble would be 4/3 instead of 1.54.
"""

import numpy as np
import pytensor.tensor as pt

__all__ = ["band_edge_absorption", "band_edge_absorption_unsaturated", "transition_table"]


def band_edge_absorption(N, n_echem, g_e=2, g_h=4):
    """A*(N, n_echem) of eq. S6 in units of gamma (PyTensor; broadcasts N against n_echem)."""
    N = pt.as_tensor_variable(N)
    n = pt.as_tensor_variable(n_echem)
    absorption = pt.maximum(g_h - N, 0) * pt.maximum(g_e - N - n, 0)
    emission = pt.minimum(N, g_h) * pt.minimum(N + n, g_e)
    return absorption - emission


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
