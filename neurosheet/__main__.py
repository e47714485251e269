"""``python -m neurosheet`` runs the CLI."""

import sys

from neurosheet.cli import main

sys.exit(main())
