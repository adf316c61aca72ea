"""``python -m funcnets`` is the ``funcnets`` command."""

import sys

from funcnets.cli import main

sys.exit(main())
