"""``python -m perfanalysis.grafana generate|check|sync``."""

import sys

from perfanalysis.grafana.cli import run

sys.exit(run(sys.argv[1:]))
