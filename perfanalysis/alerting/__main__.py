"""Entry point for ``python -m perfanalysis.alerting``."""

import sys

from perfanalysis.alerting.cli import run

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:], prog="python -m perfanalysis.alerting"))
