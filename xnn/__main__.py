"""``python -m xnn``: see xnn.cli."""

import sys

from .cli import main

sys.exit(main())
