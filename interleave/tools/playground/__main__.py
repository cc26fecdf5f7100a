"""`python -m interleave.tools.playground ...`: `interleave playground ...` without the console script."""

import sys

from interleave.tools.playground.cli import main

sys.exit(main())
