"""Where the shipped model specifications and the demo experiment are: in the package or in the checkout.

A wheel holds them as ``bayesgain/models`` and ``bayesgain/data`` (setuptools maps the checkout's
top-level ``models/`` and ``data/`` there: docs/decisions/package-data.md); a checkout, installed
editable or used through ``PYTHONPATH``, reads the top-level folders beside the package.
"""

import importlib.resources
import pathlib

_CHECKOUT = pathlib.Path(__file__).resolve().parents[1]


def shipped_folder(name):
    """The folder ``name`` ("models" or "data") shipped with bayesgain, as a filesystem path.

    The package's own copy wins (an installed wheel); otherwise the checkout's top-level folder.  A
    package imported from a zip archive has no filesystem folder: that is an error, not a silent miss.
    """
    packaged = importlib.resources.files("bayesgain") / name
    if packaged.is_dir():
        if not isinstance(packaged, pathlib.Path):
            raise RuntimeError(f"bayesgain's shipped {name!r} folder is inside an archive ({packaged}); install "
                               "bayesgain as a regular wheel (pip install) to use the shipped files")
        return packaged
    return _CHECKOUT / name
