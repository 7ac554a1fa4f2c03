"""``python -m ase_xanesgen``: the ``xanesgen`` command line, where the console script is not on the PATH."""

import sys

from .cli.main import main

sys.exit(main())
