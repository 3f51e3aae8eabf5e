from qtasks.starters.base import AsyncStarter, BaseStarter, SyncStarter

__all__ = ["AsyncStarter", "BaseStarter", "SyncStarter"]
