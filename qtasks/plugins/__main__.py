"""``python -m qtasks.plugins``: print the trigger reference (docs/plugin_triggers.md)."""

import sys

from qtasks.plugins.triggers import markdown

sys.stdout.write(markdown())
