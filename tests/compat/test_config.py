"""``app.conf``: the same configuration given to real Celery and to ``qtasks_compat.config.Settings``
reads the same values; the mapping onto qtasks; warnings for settings without effect; generated files.

Celery's side is ``celery.Celery(...).conf`` (no broker connection is made); ours is a ``Settings`` built the
way the compat app builds it (constructor settings as ``auto_keys``) and, when ``qtasks_compat.app`` exists,
``qtasks_compat.Celery(...).conf`` too.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import celery
import pytest

import qtasks.asyncio as qasync
from qtasks import QueueTasks
from qtasks_compat import config as cfg
from qtasks_compat.config import Settings, annotations_for, apply_to_qtasks, route_for_task
from qtasks_compat.exceptions import CompatWarning, ImproperlyConfigured

ROOT = Path(__file__).resolve().parents[2]

# Every setting the qtasks mapping reads, in new and old spelling.
MAPPED = [
    "broker_url", "result_backend", "task_default_queue", "task_routes", "task_serializer", "accept_content",
    "result_serializer", "result_expires", "task_always_eager", "task_eager_propagates", "task_acks_late",
    "task_time_limit", "task_soft_time_limit", "task_ignore_result", "task_track_started", "worker_concurrency",
    "worker_prefetch_multiplier", "timezone", "enable_utc", "beat_schedule", "imports", "include",
    "task_default_priority", "task_default_rate_limit", "broker_transport_options", "task_annotations",
    "task_queues",
]
NAMES = MAPPED + [cfg.TO_OLD[n] for n in MAPPED] + ["custom_thing", "CUSTOM_THING", "DEBUG"]


# --------------------------------------------------------------------------------------------- helpers
def celery_conf(*configure: Callable[[Any], Any], **ctor: Any) -> Any:
    app = celery.Celery("t", set_as_current=False, **ctor)
    for step in configure:
        step(app)
    return app.conf


def our_conf(*configure: Callable[[Any], Any], **ctor: Any) -> Settings:
    """``Settings`` as the compat app builds it from ``Celery(broker=, backend=, include=, **settings)``."""
    changes = dict(ctor)
    for arg, setting in (("broker", "broker_url"), ("backend", "result_backend"), ("include", "include")):
        if arg in changes:
            changes[setting] = changes.pop(arg)
    conf = Settings(changes, auto_keys=set(changes))
    holder = SimpleNamespace(conf=conf, config_from_object=conf.config_from_object,
                             config_from_envvar=conf.config_from_envvar)
    for step in configure:
        step(holder)
    return conf


def compat_app_conf(*configure: Callable[[Any], Any], **ctor: Any) -> Any:
    try:  # the compat app lands in parallel: compare it too once it is there
        from qtasks_compat.app import Celery
    except ImportError:
        return None

    app = Celery("t", set_as_current=False, **ctor)
    for step in configure:
        step(app)
    return app.conf


def read(conf: Any, name: str) -> tuple[Any, ...]:
    missing = "<missing>"
    return (getattr(conf, name, missing), conf.get(name, missing), name in conf)


def assert_same(*configure: Callable[[Any], Any], **ctor: Any) -> None:
    want = celery_conf(*configure, **ctor)
    engines = {"Settings": our_conf(*configure, **ctor), "qtasks_compat.Celery": compat_app_conf(*configure, **ctor)}
    for label, conf in engines.items():
        if conf is None:
            continue
        for name in NAMES:
            assert read(conf, name) == read(want, name), f"{label}: {name}"


@pytest.fixture
def settings_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable module ``cfgmod_<n>`` with an old-style config and a Django-style ``settings`` object."""
    name = f"cfgmod_{time.monotonic_ns()}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        from datetime import timedelta
        BROKER_URL = "redis://old-style:6379/3"
        CELERY_RESULT_BACKEND = "redis://old-style:6379/4"
        CELERY_ALWAYS_EAGER = True
        CELERYD_CONCURRENCY = 3
        CELERY_TASK_RESULT_EXPIRES = timedelta(hours=2)
        CELERYBEAT_SCHEDULE = {"every": {"task": "t.add", "schedule": 10.0, "args": (1, 2)}}
        CELERY_ROUTES = {"t.add": {"queue": "math"}}
        CUSTOM_THING = 7

        class DjangoSettings:
            DEBUG = True
            TIME_ZONE = "Europe/Paris"
            CELERY_BROKER_URL = "redis://django:6379/1"
            CELERY_RESULT_BACKEND = "redis://django:6379/2"
            CELERY_TASK_ALWAYS_EAGER = True
            CELERY_TASK_EAGER_PROPAGATES = True
            CELERY_WORKER_CONCURRENCY = 5
            CELERY_TASK_ROUTES = {"t.*": "tq"}
            CELERY_CUSTOM_THING = 9
            BROKER_URL = "redis://not-namespaced:6379/0"

        settings = DjangoSettings()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Warnings are once per setting per process: give each test a clean registry, and no env overrides.
    monkeypatch.setattr(cfg, "_warned", set())
    for var in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERY_CONFIG_MODULE"):
        monkeypatch.delenv(var, raising=False)


# --------------------------------------------------------------------------------------------- same values
def test_defaults_and_constructor_settings() -> None:
    assert_same()
    assert_same(broker="redis://h:6379/1", backend="redis://h:6379/2", include=("a.tasks",), task_acks_late=True,
                worker_concurrency=2, result_expires=60, timezone="Europe/London", task_default_queue="jobs")


def test_update_and_attribute_writes_new_and_old_names() -> None:
    def configure(app: Any) -> None:
        app.conf.update({"task_serializer": "json"}, task_time_limit=30, custom_thing=1)
        app.conf.task_soft_time_limit = 20
        app.conf["worker_prefetch_multiplier"] = 1
        app.conf.setdefault("task_default_rate_limit", "10/m")
        app.conf.setdefault("task_acks_late", "never used: already has a default")

    assert_same(configure)

    def old(app: Any) -> None:
        app.conf.update(BROKER_URL="redis://x:1/0", CELERY_ALWAYS_EAGER=True, CUSTOM_THING=2)

    assert_same(old)


def test_config_from_dict_new_and_old_style() -> None:
    new = {"broker_url": "redis://n:1/0", "task_routes": {"a.*": "qa"}, "beat_schedule": {"x": {"task": "t"}},
           "result_expires": timedelta(minutes=5), "task_annotations": {"*": {"rate_limit": "1/s"}}}
    assert_same(lambda app: app.config_from_object(new))
    old = {"BROKER_URL": "redis://o:1/0", "CELERY_ROUTES": {"a.*": "qa"}, "CELERYBEAT_SCHEDULE": {"x": {}},
           "CELERY_TASK_RESULT_EXPIRES": 30, "CELERYD_PREFETCH_MULTIPLIER": 1, "CELERY_DEFAULT_QUEUE": "old-q",
           "CELERY_QUEUES": ["a", "b"]}
    assert_same(lambda app: app.config_from_object(old))
    # Both spellings of one setting are not "mixing" (Celery only complains about keys without their twin).
    assert_same(lambda app: app.config_from_object({"broker_url": "redis://a:1/0", "BROKER_URL": "redis://b:1/0",
                                                    "task_acks_late": True}))


def test_config_from_module_string_and_object(settings_module: str) -> None:
    assert_same(lambda app: app.config_from_object(settings_module))
    assert_same(lambda app: app.config_from_object(sys.modules[settings_module]))
    conf = our_conf(lambda app: app.config_from_object(settings_module))
    assert conf.worker_concurrency == 3 and conf.CELERYD_CONCURRENCY == 3
    assert conf.result_expires == timedelta(hours=2)
    assert conf.beat_schedule["every"]["args"] == (1, 2)


def test_django_pattern_namespace(settings_module: str) -> None:
    def django(source: str) -> Callable[[Any], Any]:
        return lambda app: app.config_from_object(source, namespace="CELERY")

    for source in (f"{settings_module}:settings", f"{settings_module}.settings"):
        assert_same(django(source))
    conf = our_conf(lambda app: app.config_from_object(f"{settings_module}:settings", namespace="CELERY"))
    assert conf.broker_url == "redis://django:6379/1"  # CELERY_BROKER_URL wins over the plain BROKER_URL
    assert conf.task_always_eager is True and conf.worker_concurrency == 5
    assert conf.timezone == "Europe/Paris"  # Django's TIME_ZONE, as Celery reads it
    assert conf.custom_thing == 9 and conf.DEBUG is True


def test_namespace_on_a_plain_dict() -> None:
    assert_same(lambda app: app.config_from_object({"CELERY_BROKER_URL": "redis://ns:1/0",
                                                    "CELERY_TASK_ACKS_LATE": True,
                                                    "CELERY_ALWAYS_EAGER": True}, namespace="CELERY"))


def test_config_from_envvar(settings_module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_CONFIG_MODULE", settings_module)
    assert_same(lambda app: app.config_from_envvar("CELERY_CONFIG_MODULE"))
    for make in (celery_conf, our_conf):
        with pytest.raises(Exception, match="NOPE_NOT_SET") as err:
            make(lambda app: app.config_from_envvar("NOPE_NOT_SET"))
        assert type(err.value).__name__ == "ImproperlyConfigured"
    assert our_conf().config_from_envvar("NOPE_NOT_SET", silent=True) is False


def test_env_overrides_broker_and_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://from-env:1/0")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "redis://from-env:1/1")
    assert_same(broker="redis://ctor:1/0", backend="redis://ctor:1/1")
    assert our_conf(broker="redis://ctor:1/0").broker_url == "redis://from-env:1/0"


@pytest.mark.parametrize("source, renames", [
    ({"BROKER_URL": "redis://x", "task_acks_late": True}, ["BROKER_URL -> broker_url"]),
    ({"BROKER_URL": "redis://x", "CELERY_ALWAYS_EAGER": True, "task_acks_late": True},
     ["task_acks_late -> CELERY_ACKS_LATE"]),
])
def test_mixing_old_and_new_names_raises(source: dict[str, Any], renames: list[str]) -> None:
    for make in (celery_conf, our_conf):
        conf_ = make(lambda app: app.config_from_object(source))
        with pytest.raises(Exception) as err:  # the type is compared by name below
            conf_.broker_url  # noqa: B018 - the source is read at first access, as in Celery
        assert type(err.value).__name__ == "ImproperlyConfigured"
        text = re.sub(r" +", " ", str(err.value))
        assert "Cannot mix new" in text and all(r in text for r in renames), text
    # Pre-configuration updates are checked too; constructor settings are not (both as Celery).
    with pytest.raises(ImproperlyConfigured):
        our_conf(lambda app: app.conf.update(BROKER_URL="x", task_acks_late=True)).get("broker_url")
    assert our_conf(BROKER_URL="x", task_acks_late=True).broker_url == "x"


def test_lazy_and_silent_sources() -> None:
    for make in (celery_conf, our_conf):
        conf_ = make(lambda app: app.config_from_object("no_such_module_qtc"))  # no error yet: lazy
        with pytest.raises(ModuleNotFoundError):
            conf_.broker_url  # noqa: B018
        with pytest.raises(ModuleNotFoundError):
            make(lambda app: app.config_from_object("no_such_module_qtc", force=True))
    assert_same(lambda app: app.config_from_object("no_such_module_qtc", silent=True))


def test_reconfigure_after_first_read() -> None:
    def configure(app: Any) -> None:
        app.config_from_object({"broker_url": "redis://first:1/0"})
        assert app.conf.broker_url == "redis://first:1/0"
        app.config_from_object({"broker_url": "redis://second:1/0"})

    assert_same(configure)


def test_mapping_protocol_and_table() -> None:
    conf = our_conf(broker="redis://:secret@h:6379/0", task_acks_late=True)
    conf.update(SECRET_KEY="s3", custom=1)
    assert "broker_url" in conf and "BROKER_URL" in conf and "nope" not in conf
    assert {"broker_url", "task_acks_late", "custom", "worker_concurrency"} <= set(conf.keys())
    assert dict(conf)["custom"] == 1
    table = conf.table()
    assert table["task_acks_late"] is True and table["custom"] == 1 and "worker_concurrency" not in table
    assert table["SECRET_KEY"] == "********" and "secret" not in table["broker_url"]
    assert "worker_concurrency" in conf.table(with_defaults=True)
    with pytest.raises(AttributeError):
        conf.no_such_setting  # noqa: B018
    conf.clear()
    assert conf.get("custom") is None and conf.task_acks_late is False


# --------------------------------------------------------------------------------------------- routes, annotations
def _route_fn(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> Any:
    return {"queue": "fq", "priority": 7} if name.startswith("f.") else None


ROUTES: list[Any] = [
    {"a.x": "qa", "b.*": {"queue": "qb", "priority": 3}, re.compile(r"c\..*"): "qc"},
    _route_fn,
    f"{__name__}:_route_fn",
]


@pytest.mark.parametrize("name, options", [
    ("a.x", {}), ("b.y", {}), ("b.y", {"queue": "explicit"}), ("b.y", {"priority": None}), ("c.z", {}),
    ("f.q", {}), ("f.q", {"priority": 1}), ("zzz", {}),
])
def test_routes_like_celery(name: str, options: dict[str, Any]) -> None:
    for routes in (ROUTES, ROUTES[2], [ROUTES[0]]):
        app = celery.Celery("t", set_as_current=False, task_routes=routes, task_default_queue="dq")
        want = app.amqp.router.route(dict(options), name, (), {})
        want = {k: (v.name if k == "queue" else v) for k, v in want.items() if v is not None}
        got = route_for_task(our_conf(task_routes=routes, task_default_queue="dq"), name, (), {}, options)
        assert got == want, (routes, name, options)


def test_annotations_like_celery() -> None:
    annotations = [{"t.add": {"rate_limit": "10/s", "acks_late": True}}, {"*": {"time_limit": 5}}]
    app = celery.Celery("t", set_as_current=False, task_annotations=annotations)

    @app.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="t.other")
    def other() -> None:
        return None

    app.finalize()
    conf = our_conf(task_annotations=annotations)
    for name in ("t.add", "t.other"):
        got = annotations_for(conf, name)
        assert got, name
        assert {k: getattr(app.tasks[name], k) for k in got} == got
    assert annotations_for(conf, "t.add") == {"rate_limit": "10/s", "acks_late": True, "time_limit": 5}
    with pytest.raises(NotImplementedError, match="'@"):
        annotations_for(our_conf(task_annotations={"*": {"@__call__": print}}), "x")


# --------------------------------------------------------------------------------------------- qtasks mapping
def test_qtasks_options_and_config() -> None:
    conf = our_conf(broker="redis://b:6379/0", backend="db+postgresql://u@h/db", worker_concurrency=3,
                    result_expires=timedelta(minutes=2), task_always_eager=True, task_default_priority=4,
                    broker_transport_options={"visibility_timeout": 45}, task_queues=["a", "b"],
                    imports=("m1",), include=["m2", "m1"])
    opts = cfg.qtasks_options(conf)
    assert opts.broker_url == "redis://b:6379/0" and opts.storage_url == "postgresql://u@h/db"
    assert opts.default_queue == "celery" and opts.worker_queues == ["a", "b"] and opts.modules == ["m1", "m2"]
    assert opts.config == {"max_tasks_process": 3, "result_ttl": 120, "eager": True, "eager_propagates": False,
                           "task_default_priority": 4, "lease_timeout": 45.0}
    # Defaults: Celery's (concurrency = CPU count, results kept one day, eager failures returned).
    d = cfg.qtasks_options(our_conf()).config
    assert d["result_ttl"] == 86400 and d["max_tasks_process"] >= 1 and d["eager"] is False
    assert cfg.qtasks_options(our_conf(result_expires=None)).config["result_ttl"] == 0
    assert cfg.qtasks_storage_url("rpc://") is None and cfg.qtasks_storage_url("db+sqlite:///r.db") == "sqlite:///r.db"
    with pytest.raises(ImproperlyConfigured, match="django-db"):
        cfg.qtasks_storage_url("django-db")


@pytest.mark.parametrize("setting, value, error", [
    ("task_serializer", "pickle", NotImplementedError),
    ("result_serializer", "pickle", NotImplementedError),
    ("accept_content", ["json", "pickle"], NotImplementedError),
    ("accept_content", ["application/x-python-serialize"], NotImplementedError),
    ("task_serializer", "yaml", ImproperlyConfigured),
    ("result_accept_content", ["msgpack"], ImproperlyConfigured),
    ("task_serializer", "auth", ImproperlyConfigured),
    ("broker_use_ssl", {"ssl_cert_reqs": "required"}, ImproperlyConfigured),
])
def test_non_json_and_unsupported_values_raise(setting: str, value: Any, error: type[Exception]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CompatWarning)
        conf = our_conf(**{setting: value})
    with pytest.raises(error, match=setting):
        cfg.qtasks_options(conf)
    cfg.qtasks_options(our_conf(task_serializer="json", accept_content=["application/json"]))  # fine


@pytest.mark.parametrize("make_app", [
    lambda name, url: QueueTasks(name=name, broker_url=url),
    lambda name, url: qasync.QueueTasks(name=name, broker_url=url),
], ids=["sync", "async"])
def test_apply_to_qtasks_takes_effect(make_app: Any, app_name: str, redis_url: str, rclient: Any,
                                      inproc_worker: Any) -> None:
    """result_expires becomes the TTL of the stored record; worker_concurrency the worker's slots."""
    app = make_app(app_name, redis_url)
    conf = our_conf(result_expires=timedelta(seconds=321), worker_concurrency=2,
                    broker_transport_options={"visibility_timeout": 12})
    apply_to_qtasks(conf, app)
    assert (app.config.result_ttl, app.config.max_tasks_process, app.config.lease_timeout) == (321, 2, 12.0)

    @app.task(name="double")
    def double(x: int) -> int:
        return 2 * x

    inproc_worker(app)
    if isinstance(app, QueueTasks):
        task = app.add_task("double", 21, timeout=10)
    else:
        task = app._blocking(app.add_task("double", 21, timeout=10))
    assert task is not None
    assert task.status == "success" and task.returning == 42
    ttls = [rclient.ttl(k) for k in rclient.scan_iter(match=f"{app_name}:*{task.uuid}*")]
    assert any(300 < t <= 321 for t in ttls), ttls


# --------------------------------------------------------------------------------------------- warnings
def _caught(fn: Callable[[], Any]) -> list[str]:
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in rec if issubclass(w.category, CompatWarning)]


def test_setting_without_effect_warns_once_naming_it() -> None:
    msgs = _caught(lambda: our_conf(worker_max_tasks_per_child=100, custom_unknown=1,
                                    task_acks_late=True).broker_url)
    assert len(msgs) == 1 and "'worker_max_tasks_per_child'" in msgs[0] and "migration_guide/settings.md" in msgs[0]
    # Once per setting per process, whatever app or spelling sets it.
    assert _caught(lambda: our_conf(CELERYD_MAX_TASKS_PER_CHILD=5).broker_url) == []
    # A write after configuration warns too (a new setting).
    conf = our_conf()
    conf.broker_url  # noqa: B018
    msgs = _caught(lambda: conf.update(worker_pool_restarts=True))
    assert len(msgs) == 1 and "worker_pool_restarts" in msgs[0]


def test_compatible_values_are_silent_others_warn(settings_module: str) -> None:
    assert _caught(lambda: our_conf(broker_connection_retry_on_startup=True, worker_prefetch_multiplier=1,
                                    task_create_missing_queues=True).broker_url) == []
    msgs = _caught(lambda: our_conf(task_create_missing_queues=False).broker_url)
    assert len(msgs) == 1 and "task_create_missing_queues" in msgs[0]
    msgs = _caught(lambda: our_conf(broker_transport_options={"visibility_timeout": 5, "priority_steps": [0]})
                   .broker_url)
    assert len(msgs) == 1 and "priority_steps" in msgs[0]
    # Settings read from a namespaced source are found under their new names.
    msgs = _caught(lambda: our_conf(lambda app: app.config_from_object(
        {"CELERY_WORKER_LOST_WAIT": 3, "DEBUG": True}, namespace="CELERY")).broker_url)
    assert len(msgs) == 1 and "worker_lost_wait" in msgs[0]


# --------------------------------------------------------------------------------------------- generated files
def _gen() -> Any:
    spec = importlib.util.spec_from_file_location("gen_compat_settings", ROOT / "scripts" / "gen_compat_settings.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_settings_table_matches_installed_celery() -> None:
    from celery.app.defaults import _TO_NEW_KEY, _TO_OLD_KEY, DEFAULTS

    assert (ROOT / "qtasks_compat" / "_settings_table.py").read_text() == _gen().render_table()
    assert {s.name: s.default for s in cfg.SETTINGS} == DEFAULTS
    assert cfg.TO_NEW == _TO_NEW_KEY and cfg.TO_OLD == _TO_OLD_KEY


def test_settings_doc_is_up_to_date() -> None:
    text = (ROOT / "migration_guide" / "settings.md").read_text()
    assert text == _gen().render_doc(), "run: python scripts/gen_compat_settings.py"
    assert all(f"| `{s.name}` |" in text for s in cfg.SETTINGS)
    assert set(cfg.TREATMENTS) == {s.name for s in cfg.SETTINGS}
