"""Model components: one module per kind of observation, each registering one :class:`~.base.Component`.

Every module of this package is imported here, so a component (or a charging law in ``charging_laws``) added as
a file is registered without another edit; ``registered()`` lists them in build order.
"""

import importlib
import pkgutil

from .base import BuildContext, Component, active, get, register, registered

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["BuildContext", "Component", "active", "get", "register", "registered"]
