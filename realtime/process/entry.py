"""The `liaison` console script: the start-up preflight runs before any of our packages is
imported, so that a foreign package standing in for one of ours is named clearly instead of
failing with a plain ImportError (realtime/process/preflight.py)."""

from __future__ import annotations

import sys


def main() -> int:
    from realtime.process import preflight  # only the standard library behind it

    preflight.check()
    from realtime.process.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
