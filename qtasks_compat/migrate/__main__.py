from __future__ import annotations

import sys

from qtasks_compat.migrate.cli import main

sys.exit(main(prog="python -m qtasks_compat.migrate"))
