"""Forward physics of optical gain in doped QD films.

Submodules hold the PyTensor graphs, one per physical idea: ``transitions`` (transition counting),
``poisson`` (excitation statistics), ``charging`` (electrochemical charge fractions), ``auger``
(multiexciton cascade), ``ensemble`` (ensemble absorption, thresholds), ``optics``.  The names
exported here are their NumPy face (see :mod:`bayesgain.physics.api`).
"""

from .api import *  # noqa: F401,F403
from .api import __all__  # noqa: F401
