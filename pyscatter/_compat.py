"""The one place that knows pyUSID 0.0.12 predates numpy 2.

pyUSID 0.0.12 (its last release) calls ``np.product``, which numpy 2 removed. This module is
imported by ``pyscatter/__init__.py`` before anything can import pyUSID, so every pyUSID call made
through pyscatter works under numpy 2.
"""

import numpy as np

if not hasattr(np, "product"):
    # the shim itself: ruff's numpy-2 rules would "fix" this line into a no-op
    setattr(np, "product", np.prod)  # noqa: B010
