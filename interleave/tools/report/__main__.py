"""`python -m interleave.tools.report ...`: `interleave report ...` without the console script."""

import sys

from interleave.tools.report.cli import main

sys.exit(main())
