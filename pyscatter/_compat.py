"""The one place that knows pyUSID 0.0.12 predates numpy 2.

pyUSID 0.0.12 (its last release) calls ``np.product``, which numpy 2 removed. This module is
imported by ``pyscatter/__init__.py`` before anything can import pyUSID, so every pyUSID call made
through pyscatter works under numpy 2.
"""

import numpy as np

if not hasattr(np, "product"):
    np.product = np.prod  # type: ignore[attr-defined]  # noqa: NPY201 (the shim itself)
