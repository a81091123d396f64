"""Sampling transforms of positive parameters (geometry only: the model's density is unchanged).

PyMC samples a positive parameter x on log x by default.  For the charging energy V_C that bends a
ridge of the SEC posterior: V_C and the disorder both broaden the <n_e>(V) step, and at V_C << sigma_1S
the data pin sigma_1S^2 + kT V_C (for g_e = 2, to first order in V_C), a line in (V_C, log sigma_1S) and an
exponential curve in (log V_C, log sigma_1S).  :class:`ScaledSoftplus` samples y with x = s softplus(y):
linear in x for x >> s (the ridge stays straight) and logarithmic for x << s (the boundary at 0 is
still never reached).
"""

from __future__ import annotations

import pytensor.tensor as pt
from pymc.logprob.transforms import Transform

__all__ = ["ScaledSoftplus"]


class ScaledSoftplus(Transform):
    """x = scale * softplus(y), y = log(expm1(x / scale)); log |dx/dy| = log(scale) - softplus(-y)."""

    name = "softplus"  # no underscore: PyMC recovers the variable name by cutting "_<name>__"
    ndim_supp = 0

    def __init__(self, scale):
        if not scale > 0:
            raise ValueError(f"ScaledSoftplus: scale must be positive, got {scale!r}")
        self.scale = float(scale)

    def forward(self, value, *inputs):
        u = pt.as_tensor_variable(value) / self.scale
        # log(expm1(u)) as u + log(-expm1(-u)): no overflow for large u, and -expm1(-u) ~ u keeps small u exact
        return u + pt.log(-pt.expm1(-u))

    def backward(self, value, *inputs):
        return self.scale * pt.softplus(value)

    def log_jac_det(self, value, *inputs):
        return pt.log(self.scale) - pt.softplus(-value)
