"""`python -m hostrelay_relay` runs the `hostrelay-relay` command."""

import sys

from hostrelay_relay.cli import main

sys.exit(main())
