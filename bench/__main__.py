"""``python -m bench``: see the package's docstring, or ``python -m bench --help``."""

import sys

from bench.runner import main

sys.exit(main())
