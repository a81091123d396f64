"""Charge-dependent stimulated emission: every band-edge exciton of a QD holding injected electrons emits ``c``
transitions more than transition counting says, A*(N, n) - c min(N, g_h) [n >= 1] (physics.transitions).

The paper's measured gain thresholds of charged films lie below transition counting's prediction (0.80
against 1.06 excitons/QD at <n_e> = 0.94); with this component the film TA decides ``c`` (prior centred on
counting's 0, either sign) and the thresholds, gain lifetimes and design predictions carry it.  Compare a fit
with it against one without (``bayesgain compare``): transition counting is the nested c = 0.
"""

from __future__ import annotations

from ..priors import prior_table
from .base import Component, register


@register
class ChargedEmission(Component):
    name = "charged_emission"
    switches = ("charged_emission",)
    switch_docs = {"charged_emission": "extra stimulated emission c per band-edge exciton of a charged QD (c = 0: "
                                       "transition counting)"}
    default_on = False
    requires = ("gain", "dynamics")
    excludes = ("hole_trapping",)  # both change the excited QDs' emission: one at a time, compared by LOO
    order = 35  # a parameter the film TA reads: before film_ta (40)
    # the priors of the parameters this component owns (defaults of every spec; [priors] overrides them); a
    # prior without a condition is used whenever the component is on
    priors = {
        # centred on transition counting (c = 0), either sign: the data decide whether charged QDs emit more or less
        "charged_exciton_emission": prior_table(
            "Normal", "transitions",
            "extra stimulated emission per band-edge exciton of a QD holding injected electrons, in "
            "transitions (A*(N, n) - c min(N, g_h) [n >= 1])",
            mu=0.0, sigma=1.0),
    }

    def parameters(self, ctx):
        ctx.charged_emission = ctx.prior("charged_exciton_emission")

    def add(self, ctx):
        """No observations of its own: the film TA's cascade tables read ``ctx.charged_emission``."""
