"""bayesgain: calibrated physics of optical gain in electrochemically doped quantum-dot films.

Reference: J. Geuchies et al., "Quantitative electrochemical control over optical gain in
quantum-dot solids" (with SI). Forward physics lives in :mod:`bayesgain.physics` and is written
once in PyTensor; the NumPy face of the same graphs is :mod:`bayesgain.physics` too.
"""

__version__ = "0.1.0"
