"""``python -m drmaa2.cli``: the drmaa2 command line (see :mod:`drmaa2.cli`)."""

import sys

from drmaa2.cli import main

sys.exit(main())
