from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tests.backends import Backend

_dir: list[Path] = []


def _make(name: str, config: Any) -> Any:
    from qtasks.brokers.sqlite import SQLiteBroker

    if not _dir:
        _dir.append(Path(tempfile.mkdtemp(prefix="qtasks-contract-sqlite-")))
        atexit.register(shutil.rmtree, _dir[0], True)
    return SQLiteBroker(name=name, url=f"sqlite:///{_dir[0] / name}.db", config=config)


BACKENDS = {"sqlite": Backend(make=_make)}
