"""`python -m interleave.tools ...`: the `interleave` command without its console script."""

import sys

from interleave.tools.command import main

sys.exit(main())
