"""Posterior-derived quantities of one fit, each computed once per report (a failure is kept and raised again)."""

from __future__ import annotations

import numpy as np

from .common import G_MIN_PER_CM, HDI, _has


class Skip(Exception):
    """A figure or table this model cannot make (the message says why); not an error."""


class _Cache:
    """Quantities of one experiment of the fit (index ``experiment``, 0 = the first), keyed (name, experiment)."""

    def __init__(self, model):
        self.model = model
        self._c = {}

    def get(self, key, fn):
        if key not in self._c:
            try:
                self._c[key] = (True, fn())
            except Exception as exc:  # noqa: BLE001 -- Skip or failure, recorded in the report
                self._c[key] = (False, exc)
        ok, v = self._c[key]
        if not ok:
            raise v
        return v

    def threshold_curve(self, experiment=0):
        from ..model.quantities import hdi_table, threshold_curve

        def f():
            if not _has(self.model, "V_C_V"):
                raise Skip("needs the charging parameters (charging or gain component)")
            curve = threshold_curve(self.model, experiment=experiment)
            return curve, hdi_table(curve)

        return self.get(("curve", experiment), f)

    def at_potentials(self, experiment=0):
        from ..model.quantities import thresholds_at_potentials

        def f():
            if not _has(self.model, "ta_charge_fractions"):
                raise Skip("needs the gain or dynamics component (film TA potentials)")
            return thresholds_at_potentials(self.model, experiment)

        return self.get(("at_potentials", experiment), f)

    def lifetimes(self, experiment=0):
        from ..model.quantities import gain_lifetime_curves

        def f():
            if not _has(self.model, "tau_xx_ps", "V_C_V"):
                raise Skip("needs the Auger rates (gain, dynamics or cross-section component) and the charging "
                           "parameters")
            g_e = int(self.model.data["experiment_g_e"].values[experiment])
            levels = tuple(x for x in (0.0, 0.5, 1.0, 1.5, 1.9) if x < g_e)
            return gain_lifetime_curves(self.model, n_e_levels=levels, mean_excitons=np.linspace(0.5, 8.0, 16),
                                        experiment=experiment, max_samples=100)

        return self.get(("lifetimes", experiment), f)

    def single_wavelength(self, experiment=0):
        from ..model.quantities import single_wavelength_thresholds

        def f():
            if "spectrum_A_star" not in self.model.data or not _has(self.model, "ta_mean_excitons"):
                raise Skip("needs the gain component (film TA spectra)")
            return single_wavelength_thresholds(self.model, experiment, g_min_per_cm=G_MIN_PER_CM, max_samples=60)

        return self.get(("single_wavelength", experiment), f)

    def gain_coefficient(self, experiment=0):
        from ..model.quantities import gain_coefficient

        def f():
            if "ta_A" not in self.model.data or not _has(self.model, "ta_mean_excitons"):
                raise Skip("needs the gain or dynamics component (film TA)")
            return gain_coefficient(self.model, experiment)

        return self.get(("gain_coefficient", experiment), f)

    def measured_thresholds(self, experiment=0):
        from ..model.measured_thresholds import threshold_comparison

        def f():
            d = self.model.data
            if ("ta_A" not in d or not _has(self.model, "ta_mean_excitons", "ta_charge_fractions")
                    or not np.any(d["ta_point_component"].values == "gain")):
                raise Skip("needs the gain component (film TA at the gain delay)")
            return threshold_comparison(self.model, experiment, prob=HDI)

        return self.get(("measured_thresholds", experiment), f)

    def residuals(self):
        from ..model.checks import film_residual_check

        def f():
            out = film_residual_check(self.model)
            if out is None:
                raise Skip("needs the gain or dynamics component (film TA)")
            return out

        return self.get(("residuals", None), f)  # one check over every experiment's film TA
