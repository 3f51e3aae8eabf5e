from qtasks.brokers.base import BaseBroker
from qtasks.brokers.redis import AsyncRedisBroker, RedisBroker, SyncRedisBroker

__all__ = ["AsyncRedisBroker", "BaseBroker", "RedisBroker", "SyncRedisBroker"]

# Brokers with optional dependencies, imported on first use (``import qtasks.brokers`` never imports kombu).
_LAZY: dict[str, tuple[str, str]] = {
    name: ("qtasks.brokers.kombu", "amqp")
    for name in ("KombuBroker", "SyncKombuBroker", "AsyncKombuBroker",
                 "RabbitMQBroker", "SyncRabbitMQBroker", "AsyncRabbitMQBroker")
} | {name: ("qtasks.brokers.kafka", "kafka") for name in ("KafkaBroker", "SyncKafkaBroker", "AsyncKafkaBroker")} | {
    name: ("qtasks.brokers.celery_protocol", "amqp")
    for name in ("CeleryProtocolBroker", "SyncCeleryProtocolBroker", "AsyncCeleryProtocolBroker")}


def __getattr__(name: str) -> object:
    try:
        module, extra = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise ImportError(f"qtasks.brokers.{name} needs extra packages: pip install \"qtasks[{extra}]\" ({e})") from e
