"""Run a script or module with ``import celery`` aliased to qtasks_compat.

    python -m qtasks_compat.run_aliased path/to/script.py [args ...]
    python -m qtasks_compat.run_aliased -m package.module [args ...]

The target runs as ``__main__`` with ``sys.argv`` as if started directly (``python script.py args``), after
:func:`qtasks_compat.install.install`. ``-m celery ...`` runs qtasks_compat's own ``__main__``.
"""

from __future__ import annotations

import os
import runpy
import sys

from qtasks_compat.install import alias_target, install

USAGE = "usage: python -m qtasks_compat.run_aliased (SCRIPT.py | -m MODULE) [ARGS ...]"


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not args else sys.stdout)
        raise SystemExit(0 if args else 2)
    install()
    if args[0] == "-m":
        if len(args) < 2:
            raise SystemExit(USAGE)
        module, rest = args[1], args[2:]
        # runpy needs a real module spec; an aliased celery module runs as the qtasks_compat module it is.
        target = alias_target(module) or module
        sys.argv = [module, *rest]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
        return
    script, rest = args[0], args[1:]
    if not os.path.exists(script):
        raise SystemExit(f"run_aliased: no such script: {script}")
    sys.argv = [script, *rest]
    # `python script.py` puts the script's directory first on sys.path; `-m` put the cwd there instead.
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
