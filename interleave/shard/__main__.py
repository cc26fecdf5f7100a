"""`python -m interleave.shard ...`: the SHARD command line (`interleave.shard.cli`)."""

import sys

from interleave.shard.cli import main

sys.exit(main())
