"""Model discrepancy of the film TA: a smooth function of log delay per file (Hilbert-space GP).

The physical model of A*(t) is exact only for the physics it holds (transition counting, the Auger
cascade).  Real films add what it does not: a 2S/higher-band tail in the 1S window with its own
kinetics, hot-carrier cooling, a shifted biexciton line, baseline drifts.  With independent
residuals the likelihood reads such smooth misfits as information, and the intervals of the
kinetic parameters shrink around a biased value.  A Gaussian process over log delay per film TA
file lets the misfit be smooth and correlated instead; its amplitude is learned (close to zero when
the model holds, so the intervals then stay as tight as the data allow).

The GP is the Hilbert-space approximation (Solin & Saerkkae 2020; Riutort-Mayol et al. 2023, the
method behind ``pm.gp.HSGP``) with an exponentiated-quadratic kernel: on log delays x in
[c - S, c + S], f(x) = sum_j phi_j(x) sqrt(s(sqrt(lambda_j); ell)) beta_j with the Laplacian's
eigenfunctions on [c - L, c + L], L = ``BOUNDARY_FACTOR`` S, and beta_j ~ N(0, 1) (non-centred:
the amplitude can go to zero without a funnel in the coefficients' conditional scale).
The basis is fixed NumPy (it depends on the delays only); the graph is a product and a gather.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BOUNDARY_FACTOR", "hsgp_basis", "expquad_sqrt_spectral_density", "basis_functions_needed"]

# L / S = 2: the kernel is reproduced to < 0.05 for ell from 0.8 to 3 (log-delay units) with 14 functions
BOUNDARY_FACTOR = 2.0


def hsgp_basis(x, n_basis, center=None, half_range=None, boundary_factor=BOUNDARY_FACTOR):
    """Eigenfunctions phi_j(x) (shape ``(len(x), n_basis)``) and sqrt(lambda_j) (shape ``(n_basis,)``).

    ``center`` and ``half_range`` default to the middle and half-width of ``x``; the domain is
    [center - L, center + L] with L = boundary_factor x half_range.
    """
    x = np.asarray(x, float)
    if center is None:
        center = 0.5 * (x.min() + x.max())
    if half_range is None:
        half_range = max(0.5 * (x.max() - x.min()), 1e-6)
    L = boundary_factor * half_range
    j = np.arange(1, int(n_basis) + 1)
    sqrt_lam = np.pi * j / (2.0 * L)
    phi = np.sqrt(1.0 / L) * np.sin(sqrt_lam[None, :] * (x[:, None] - center + L))
    return phi, sqrt_lam


def expquad_sqrt_spectral_density(sqrt_lam, ell, xp=np):
    """sqrt of the 1-D exponentiated-quadratic kernel's spectral density (unit variance) at omega = sqrt_lam.

    s(omega) = sqrt(2 pi) ell exp(-ell^2 omega^2 / 2); ``ell`` broadcasts against ``sqrt_lam``.
    ``xp``: ``numpy`` or ``pytensor.tensor``.
    """
    return xp.sqrt(np.sqrt(2.0 * np.pi) * ell) * xp.exp(-0.25 * (ell * sqrt_lam) ** 2)


def basis_functions_needed(half_range, min_lengthscale, boundary_factor=BOUNDARY_FACTOR):
    """Basis size that resolves an EQ kernel of ``min_lengthscale`` (Riutort-Mayol et al. 2023, m = 1.75 c S / ell)."""
    return int(np.ceil(1.75 * boundary_factor * half_range / min_lengthscale))
