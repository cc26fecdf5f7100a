"""Train and evaluate interleaved audio LLMs: `python train.py fit|validate|test|predict --config ...`.

The command line itself is `interleave.cli` (a LightningCLI); the offline tools are the
`interleave` command (`interleave --help`).
"""

import sys

try:
    from interleave.cli import cli, main, report_errors  # noqa: F401  (tests and scripts reach them here too)
except KeyboardInterrupt:  # Ctrl-C while torch and Lightning load (seconds): nothing has started yet
    print("interrupted: python train.py; it stopped while loading, before anything was written", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main())
