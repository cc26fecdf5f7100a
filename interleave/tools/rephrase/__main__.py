"""`python -m interleave.tools.rephrase ...`: `interleave rephrase ...` without the console script."""

import sys

from interleave.tools.rephrase.cli import main

sys.exit(main())
