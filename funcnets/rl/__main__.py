"""``python -m funcnets.rl``: the ``funcnets rl cartpole`` command (see `funcnets.rl.cli`)."""

import sys

from funcnets.rl.cli import cli_main

sys.exit(cli_main(prog="python -m funcnets.rl"))
