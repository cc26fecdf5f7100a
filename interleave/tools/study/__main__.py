"""`python -m interleave.tools.study ...`: `interleave study ...` without the console script."""

import sys

from interleave.tools.study.cli import main

sys.exit(main())
