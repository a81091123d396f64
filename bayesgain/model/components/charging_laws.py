"""Charging laws: the fractions f_0..f_{g_e} of QDs holding 0..g_e electrons at a potential (option ``disorder``).

Each law is one class: its option value (``name``), whether its fractions are a quadrature over level disorder
(sized before sampling and checked after, see :mod:`..sizing`), and ``fractions(ctx, V, e_idx)``, the graph
for potentials ``V`` of experiments ``e_idx`` from the shared parameters ``ctx.P``.  The equations live in
:mod:`bayesgain.physics.charging`; a law only says which parameters feed them.
"""

from __future__ import annotations

import numpy as np

from ...physics.charging import MODEL_QUADRATURE_HALF_WIDTH

__all__ = ["ChargingLaw", "LAWS", "law_for"]

LAWS = {}


def _law(cls):
    LAWS[cls.name] = cls()
    return cls


class ChargingLaw:
    name = ""
    uses_quadrature = False  # a disorder average whose nodes are sized (sizing.choose_nodes) and checked

    def fractions(self, ctx, V, e_idx):
        raise NotImplementedError

    def numpy_fractions(self, V, p, T, g_e, n_nodes=64):
        """The same fractions in NumPy for posterior draws: ``p`` maps parameter names to arrays that broadcast
        with ``V`` (e.g. (D, 1) against (1, P)); returns (..., g_e + 1).  For quantities, design and the report."""
        raise NotImplementedError

    def fractions_at_mean_electrons(self, n_e, g_e):
        """(..., g_e + 1) fractions at doping levels ``n_e`` where the law fixes them by <n_e> alone, else None
        (then they depend on the draw's parameters and quantities inverts <n_e>(V) per draw)."""
        return None


@_law
class GaussianDisorder(ChargingLaw):
    """Grand-canonical fractions averaged over a Gaussian spread sigma_1S of the level potential (eq. S15-S16)."""

    name = "gaussian"
    uses_quadrature = True

    def fractions(self, ctx, V, e_idx):
        from ...physics import charging

        P = ctx.P
        return charging.charge_fractions_disordered(V, P["V_1S_V"][e_idx], P["V_C_V"][e_idx], P["sigma_1S_V"][e_idx],
                                                    ctx.T[e_idx], ctx.g_e, n_nodes=ctx.nodes,
                                                    half_width=MODEL_QUADRATURE_HALF_WIDTH)

    def numpy_fractions(self, V, p, T, g_e, n_nodes=64):
        from ...physics import api

        return api.charge_fractions(V, p["V_1S_V"], p["V_C_V"], p["sigma_1S_V"], T, g_e, n_nodes=n_nodes,
                                    half_width=MODEL_QUADRATURE_HALF_WIDTH)


@_law
class EffectiveTemperature(ChargingLaw):
    """Grand-canonical fractions at a free effective temperature T_eff (the SI's alternative fit)."""

    name = "effective-temperature"

    def fractions(self, ctx, V, e_idx):
        from ...physics import charging

        P = ctx.P
        return charging.charge_fractions(V, P["V_1S_V"][e_idx], P["V_C_V"][e_idx], P["T_eff_K"][e_idx], ctx.g_e)

    def numpy_fractions(self, V, p, T, g_e, n_nodes=64):
        from ...physics import api

        return api.charge_fractions(V, p["V_1S_V"], p["V_C_V"], 0.0, p["T_eff_K"], g_e)


@_law
class NoDisorder(ChargingLaw):
    """Grand-canonical fractions at the lab temperature: every QD's level at V_1S."""

    name = "none"

    def fractions(self, ctx, V, e_idx):
        from ...physics import charging

        P = ctx.P
        return charging.charge_fractions(V, P["V_1S_V"][e_idx], P["V_C_V"][e_idx], ctx.T[e_idx], ctx.g_e)

    def numpy_fractions(self, V, p, T, g_e, n_nodes=64):
        from ...physics import api

        return api.charge_fractions(V, p["V_1S_V"], p["V_C_V"], 0.0, T, g_e)


@_law
class UniformDoping(ChargingLaw):
    """Uniform doping (SI Fig. S6b): the <n_e>(V) of the Gaussian-disorder law, but every QD holds floor(<n_e>) or
    ceil(<n_e>) electrons (``charging.charge_fractions_uniform``).  Same parameters and SEC curve as "gaussian":
    the two differ only in how the charge is spread over the QDs (the film TA and PL tell them apart)."""

    name = "uniform"
    uses_quadrature = True

    def fractions(self, ctx, V, e_idx):
        from ...physics import charging

        return charging.charge_fractions_uniform(charging.mean_electrons(LAWS["gaussian"].fractions(ctx, V, e_idx)),
                                                 ctx.g_e)

    def numpy_fractions(self, V, p, T, g_e, n_nodes=64):
        from ...physics import api

        f = LAWS["gaussian"].numpy_fractions(V, p, T, g_e, n_nodes)
        return api.charge_fractions_uniform(f @ np.arange(g_e + 1.0), g_e)

    def fractions_at_mean_electrons(self, n_e, g_e):
        from ...physics import api

        return api.charge_fractions_uniform(np.asarray(n_e, float), g_e)


def law_for(spec):
    """The charging law the spec's ``disorder`` option names."""
    return LAWS[spec.options["disorder"]]
