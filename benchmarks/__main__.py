"""``python -m benchmarks``: run the performance suite (``--quick`` for a short run, ``--help`` for options)."""

import sys

from benchmarks.suite import main

sys.exit(main())
