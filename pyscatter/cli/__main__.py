import sys

from pyscatter.cli import main

sys.exit(main())
