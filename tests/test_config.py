"""``QueueConfig``: defaults, ``QTASKS_*`` environment overrides, subscribers, dynamic keys,
and one config object shared by every component of an app."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time

import pytest

import qtasks.asyncio as qasync
from qtasks import QueueTasks
from qtasks.brokers import AsyncRedisBroker
from qtasks.configs import AsyncRedisGlobalConfig, QueueConfig
from qtasks.results import SyncResult
from qtasks.storages import AsyncRedisStorage
from qtasks.workers import AsyncWorker

EXPECTED_DEFAULTS = {
    "max_tasks_process": 10,
    "running_older_tasks": False,
    "delete_finished_tasks": False,
    "task_default_priority": 0,
    "task_default_decode": None,
    "global_config_status_ttl": 20,
    "global_config_status_set_periodic": 17,
    "logs_default_level_server": logging.INFO,
    "logs_default_level_client": logging.INFO,
    "result_time_interval": 1.0,
    "result_statuses_end": ["success", "error", "cancel"],
    "environ_prefix": "QTASKS_",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """No stray ``QTASKS_*`` variable of the calling shell may change the defaults under test."""
    import os

    for k in list(os.environ):
        if k.startswith("QTASKS_"):
            monkeypatch.delenv(k)


def test_every_key_has_a_default():
    for f in dataclasses.fields(QueueConfig):
        assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING, f.name
    cfg = QueueConfig()
    for key, value in EXPECTED_DEFAULTS.items():
        assert getattr(cfg, key) == value, key
    assert "%(message)s" in cfg.logs_format
    assert cfg.result_ttl >= 0 and cfg.lease_timeout > 0 and cfg.broker_poll_interval > 0
    assert cfg.shutdown_timeout > 0 and cfg.reconnect_max_delay > 0


def test_list_defaults_are_not_shared():
    a, b = QueueConfig(), QueueConfig()
    a.result_statuses_end.append("x")
    assert b.result_statuses_end == ["success", "error", "cancel"]


@pytest.mark.parametrize("key, raw, expected", [
    ("max_tasks_process", "3", 3),
    ("task_default_priority", "-2", -2),
    ("result_time_interval", "0.25", 0.25),
    ("lease_timeout", "2", 2.0),
    ("running_older_tasks", "true", True),
    ("running_older_tasks", "YES", True),
    ("running_older_tasks", "1", True),
    ("delete_finished_tasks", "on", True),
    ("delete_finished_tasks", "false", False),
    ("delete_finished_tasks", "0", False),
    ("result_statuses_end", "success,error", ["success", "error"]),
    ("result_statuses_end", '["success", "cancel"]', ["success", "cancel"]),
    ("logs_format", "%(message)s", "%(message)s"),
])
def test_env_overrides(monkeypatch, key, raw, expected):
    monkeypatch.setenv(f"QTASKS_{key.upper()}", raw)
    value = getattr(QueueConfig(), key)
    assert value == expected
    assert type(value) is type(expected)


def test_env_override_bad_bool_raises(monkeypatch):
    monkeypatch.setenv("QTASKS_RUNNING_OLDER_TASKS", "maybe")
    with pytest.raises(ValueError, match="running_older_tasks"):
        QueueConfig()


def test_env_override_bad_int_raises(monkeypatch):
    monkeypatch.setenv("QTASKS_MAX_TASKS_PROCESS", "many")
    with pytest.raises(ValueError):
        QueueConfig()


def test_env_overrides_reach_the_app(monkeypatch, app_name, redis_url):
    monkeypatch.setenv("QTASKS_MAX_TASKS_PROCESS", "3")
    monkeypatch.setenv("QTASKS_TASK_DEFAULT_PRIORITY", "21")
    app = QueueTasks(name=app_name, broker_url=redis_url)
    assert app.config.max_tasks_process == 3
    assert app.worker.config.max_tasks_process == 3

    @app.task
    def t():
        return 1

    assert app.tasks["t"].priority == 21


def test_env_broker_url_is_used(monkeypatch, app_name, redis_url):
    monkeypatch.setenv("QTASKS_BROKER_URL", redis_url)
    app = QueueTasks(name=app_name)
    assert app.broker.url == redis_url
    assert app.add_task("anything").status == "new"
    assert app.get(app.add_task("anything").uuid) is not None


def test_non_positive_lease_timeout_rejected():
    with pytest.raises(ValueError):
        QueueConfig(lease_timeout=0)


def test_subscribe_callback_fires():
    cfg = QueueConfig()
    calls = []

    def cb(config, key, value):
        calls.append((config, key, value))

    cfg.subscribe(cb)
    cfg.subscribe(cb)  # registering twice does not double the calls
    cfg.max_tasks_process = 4
    cfg.result_ttl = 0
    assert calls == [(cfg, "max_tasks_process", 4), (cfg, "result_ttl", 0)]
    assert cfg.max_tasks_process == 4


def test_dynamic_keys():
    cfg = QueueConfig()
    calls = []
    cfg.subscribe(lambda c, k, v: calls.append((k, v)))
    cfg.my_custom_setting = {"a": 1}
    assert cfg.my_custom_setting == {"a": 1}
    assert calls == [("my_custom_setting", {"a": 1})]
    with pytest.raises(AttributeError):
        _ = cfg.never_set
    other = QueueConfig()
    other.copy_from(cfg)
    assert other.my_custom_setting == {"a": 1}
    assert other.max_tasks_process == cfg.max_tasks_process
    assert not hasattr(QueueConfig(), "my_custom_setting")


def test_app_config_is_shared_by_components(app_name, redis_url):
    for cls in (QueueTasks, qasync.QueueTasks):
        app = cls(name=app_name, broker_url=redis_url)
        cfg = app.config
        assert app.broker.config is cfg
        assert app.worker.config is cfg
        assert app.broker.storage.config is cfg
        assert app.broker.storage.global_config.config is cfg
        app.config.lease_timeout = 0.5
        assert app.broker.config.lease_timeout == 0.5


def test_passed_config_is_shared(app_name, redis_url):
    cfg = QueueConfig(max_tasks_process=2)
    app = QueueTasks(name=app_name, broker_url=redis_url, config=cfg)
    assert app.config is cfg
    assert app.broker.config is cfg and app.worker.config is cfg and app.broker.storage.config is cfg


def test_manually_assembled_components_use_app_config(app_name, redis_url):
    gc = AsyncRedisGlobalConfig(name=app_name, url=redis_url)
    storage = AsyncRedisStorage(name=app_name, global_config=gc, url=redis_url)
    broker = AsyncRedisBroker(name=app_name, storage=storage, url=redis_url)
    worker = AsyncWorker(name=app_name, broker=broker)
    app = qasync.QueueTasks(name=app_name, broker=broker, worker=worker)
    for c in (broker, storage, gc, worker):
        assert c.config is app.config, type(c).__name__
    other_gc = AsyncRedisGlobalConfig(name=app_name, url=redis_url)
    app2 = qasync.QueueTasks(name=app_name, broker_url=redis_url, global_config=other_gc)
    assert app2.broker.storage.global_config is other_gc and other_gc.config is app2.config


def test_config_still_shared_while_running(app_name, redis_url, inproc_worker):
    app = QueueTasks(name=app_name, broker_url=redis_url)

    @app.task
    def cfg_ids():
        return None

    inproc_worker(app)
    assert app.add_task("cfg_ids", timeout=10).status == "success"  # the broker is listening (see STOP_RACE)
    assert app.starter.config is app.config
    assert app.worker.config is app.config and app.broker.config is app.config
    assert app.broker.storage.config is app.config


def test_max_tasks_process_from_env_bounds_worker(monkeypatch, app_name, redis_url, inproc_worker):
    monkeypatch.setenv("QTASKS_MAX_TASKS_PROCESS", "1")
    app = QueueTasks(name=app_name, broker_url=redis_url)
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    @app.task
    def busy():
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.15)
        with lock:
            state["now"] -= 1

    inproc_worker(app)
    ts = [app.add_task("busy") for _ in range(3)]
    assert all(SyncResult(uuid=t.uuid, app=app).result(10).status == "success" for t in ts)
    assert state["max"] == 1


def test_result_ttl_config_reaches_storage(app_name, redis_url, rclient, inproc_worker):
    app = QueueTasks(name=app_name, broker_url=redis_url)
    app.config.result_ttl = 50

    @app.task
    def one():
        return 1

    inproc_worker(app)
    t = app.add_task("one", timeout=10)
    assert 0 < rclient.ttl(f"{app_name}:{t.uuid}") <= 50


def test_task_default_decode(app_name, redis_url, inproc_worker):
    app = QueueTasks(name=app_name, broker_url=redis_url)
    app.config.task_default_decode = lambda v: {"wrapped": v}

    @app.task
    def plain():
        return 5

    @app.task(decode=str)
    def own_decode():
        return "plain text"  # not JSON: stored so that it reads back as the same string

    @app.task(decode=json.dumps)
    def json_decode():
        return {"a": [1, 2]}

    inproc_worker(app)
    assert app.add_task("plain", timeout=10).returning == {"wrapped": 5}
    assert app.add_task("own_decode", timeout=10).returning == "plain text"
    assert app.add_task("json_decode", timeout=10).returning == {"a": [1, 2]}
