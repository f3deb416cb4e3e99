"""``python -m gateway`` is the ``execgw`` command."""

import sys

from gateway.cli import main

sys.exit(main())
