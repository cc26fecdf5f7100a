"""`python -m interleave.tools.demo ...`: `interleave demo ...` without the console script."""

import sys

from interleave.tools.demo.cli import main

sys.exit(main())
