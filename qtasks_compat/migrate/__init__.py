"""``qtasks migrate``: assess a Celery code base (``check``) and switch it to qtasks_compat (``apply``).

Static only: Python files are parsed with libcst, never imported or run. Needs the ``migrate`` extra
(``libcst``, ``rich``). See migration_guide/assess.md.
"""

from __future__ import annotations
