"""Train and evaluate interleaved audio LLMs: `python train.py fit|validate|test|predict --config ...`.

The command line itself is `interleave.cli` (a LightningCLI); the offline tools are the
`interleave` command (`interleave --help`).
"""

import sys

from interleave.cli import cli, main, report_errors  # noqa: F401  (tests and scripts reach them here too)

if __name__ == "__main__":
    sys.exit(main())
