"""``python -m drmaa2.cli``: the drmaa2 command line (see :mod:`drmaa2.cli`), or a session
keeper process when the first argument is ``__keeper__`` (see :mod:`drmaa2.cli.keeper`)."""

import sys

from drmaa2.cli import keeper, main

if sys.argv[1:2] == [keeper.COMMAND]:
    sys.exit(keeper.main(sys.argv[2:]))
sys.exit(main())
