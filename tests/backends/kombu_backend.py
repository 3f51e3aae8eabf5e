"""Kombu-transport brokers for the contract suite; task records live in a Redis storage on the test Redis.

Leases: on AMQP, memory and filesystem an unacked message is held by the consumer's
connection, so "the worker died" is simulated by closing that connection abruptly. SQS
visibility timeouts are whole seconds (the suite's leases are 0.4 s), so there it is
simulated by making the held messages visible again. kombu's Redis transport has
timed leases like the Redis broker.
"""

from __future__ import annotations

import atexit
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.backends import Backend

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import services

_urls: dict[str, str] = {}


def _redis() -> str:
    if "redis" not in _urls:
        url, server = services.redis_url()
        if server is not None:
            atexit.register(server.stop)
        base = url.rstrip("/").rsplit("/", 1)[0] if url.rstrip("/")[-2:] == "/0" else url.rstrip("/")
        _urls["redis"] = base + "/13"   # records
        _urls["kombu-redis"] = base + "/12"  # kombu's Redis transport
    return _urls["redis"]


def _needs_kombu() -> str | None:
    try:
        import kombu  # noqa: F401  (kombu replaces its module object, so find_spec cannot be used)
    except ImportError:
        return 'kombu is not installed (pip install "qtasks[amqp]")'
    return None


def _setup_amqp() -> str | None:
    if (reason := _needs_kombu()) is not None:
        return reason
    _redis()
    if "amqp" not in _urls:
        try:
            url, server = services.rabbitmq_url()
        except services.ServiceUnavailable as e:
            return str(e)
        if server is not None:
            atexit.register(server.stop)
        _urls["amqp"] = url
    return None


def _setup_sqs() -> str | None:
    if (reason := _needs_kombu()) is not None:
        return reason
    try:
        import boto3  # noqa: F401
    except ImportError:
        return 'boto3 is not installed (pip install "qtasks[sqs]")'
    _redis()
    if "sqs" not in _urls:
        try:
            url, server = services.sqs_url()
        except services.ServiceUnavailable as e:
            return str(e)
        atexit.register(server.stop)
        _urls["sqs"] = url
        # moto accepts any credentials; boto3 still wants some and a region.
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return None


def _setup_local() -> str | None:
    if (reason := _needs_kombu()) is not None:
        return reason
    _redis()
    if "filesystem" not in _urls:
        _urls["filesystem"] = tempfile.mkdtemp(prefix="qtasks-kombu-fs-")
    return None


def _maker(kind: str) -> Any:
    def make(name: str, config: Any) -> Any:
        from qtasks.brokers.kombu import KombuBroker
        from qtasks.storages.redis import RedisStorage

        storage = RedisStorage(name=name, url=_urls["redis"], config=config)
        options: dict[str, Any] = {}
        if kind == "amqp":
            url = _urls["amqp"]
        elif kind == "redis":
            url = "kombu+" + _urls["kombu-redis"]
        elif kind == "sqs":
            url = _urls["sqs"]
            options = {"is_secure": False, "region": "us-east-1"}
        elif kind == "filesystem":
            url = "filesystem://"
            options = {"data_folder_in": _urls["filesystem"], "data_folder_out": _urls["filesystem"]}
        else:
            url = "memory://"
        return KombuBroker(name=name, url=url, storage=storage, config=config, transport_options=options)

    return make


async def _drop_connection(broker: Any) -> None:
    await broker.close_connection()


async def _release_held(broker: Any) -> None:
    """Make the held messages deliverable again (what a visibility timeout / a dead process does)."""
    await broker._requeue(list(await broker._call(lambda: list(broker._session.held))))


BACKENDS = {
    "kombu-amqp": Backend(make=_maker("amqp"), setup=_setup_amqp, expire_leases=_drop_connection),
    "kombu-redis": Backend(make=_maker("redis"), setup=_setup_local),
    # In-process only: kombu's memory transport never restores on close (the process is the queue).
    "kombu-memory": Backend(make=_maker("memory"), setup=_setup_local,
                            expire_leases=_release_held),
    "kombu-filesystem": Backend(make=_maker("filesystem"), setup=_setup_local,
                                expire_leases=_drop_connection),
    "kombu-sqs": Backend(make=_maker("sqs"), setup=_setup_sqs, lists_delayed=False, expire_leases=_release_held),
}
