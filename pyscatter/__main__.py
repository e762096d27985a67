"""``python -m pyscatter``: the command line."""

import sys

from pyscatter.cli import main

sys.exit(main())
