"""The 1.7 import path of ``Depends`` and ``ScopeEnum`` (implemented in :mod:`qtasks.injection`)."""

from qtasks.injection.depends import Depends, ScopeEnum

__all__ = ["Depends", "ScopeEnum"]
