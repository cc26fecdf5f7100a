"""`python -m interleave.tools.frontier ...`: `interleave frontier ...` without the console script."""

import sys

from interleave.tools.frontier.cli import main

sys.exit(main())
