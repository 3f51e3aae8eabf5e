"""Task records that Celery's Redis result backend can read, and that read back what Celery writes.

Each task has two keys:

- ``[global_keyprefix]celery-task-meta-<id>``: Celery's JSON meta (``status``, ``result``, ``traceback``,
  ``children``, ``date_done``, ``task_id``; plus ``name/args/kwargs/worker/retries/queue`` with
  ``result_extended``), SET with the result TTL and PUBLISHed on the channel of the same name in the same
  step, exactly as ``celery.backends.redis.RedisBackend._set`` does. An unchanged ``AsyncResult(id).get()``
  reads it, and one already waiting is woken by the publish. Celery writes nothing for PENDING; so do we.
- ``{name}:<id>``: the qtasks hash (task name, args, priority, timestamps, compat fields), which Celery
  overwrites nothing of when a Celery worker stores a result over our meta.

Reads merge the two: the hash when only it exists (queued), the meta alone for a task only Celery knows,
and when both exist the meta wins over a hash that is still ``new`` (a Celery worker runs it) or when it
is ready and the hash is not final (a Celery worker finished it). qtasks waits listen on the meta channel,
so they wake on a Celery worker's result too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from uuid import UUID

from qtasks._redis import LuaScript, RedisConnector
from qtasks.brokers.base import encode_fields
from qtasks.configs.base import BaseGlobalConfig
from qtasks.configs.config import QueueConfig
from qtasks.configs.redis import RedisGlobalConfig
from qtasks.logs import Logger
from qtasks.schemas.task import Task
from qtasks.storages.base import BaseStorage
from qtasks.storages.redis import _is_uuid
from qtasks.storages.waiter import ResultWaiter

TASK_KEYPREFIX = "celery-task-meta-"
READY_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
EXCEPTION_STATES = frozenset({"FAILURE", "RETRY", "REVOKED"})
_FINAL = frozenset({"success", "error", "cancel"})

# qtasks status -> the Celery state stored for it (new: nothing; process: STARTED only when tracked).
_STATE_OF_STATUS = {"success": "SUCCESS", "error": "FAILURE", "retry": "RETRY", "cancel": "REVOKED"}
# Celery state -> qtasks status; any other (custom, e.g. PROGRESS) state means the task is running.
_STATUS_OF_STATE = {"PENDING": "new", "RECEIVED": "new", "STARTED": "process", "SUCCESS": "success",
                    "FAILURE": "error", "RETRY": "retry", "REVOKED": "cancel", "REJECTED": "error",
                    "IGNORED": "success"}
# qtasks_compat mirrors celery.exceptions: a Celery client must get its own classes back.
_CELERY_MODULES = {"qtasks_compat.exceptions": "celery.exceptions"}
# Fields of the hash that say what the task is; a meta never replaces them.
_IDENTITY = ("task_name", "args", "kwargs", "priority", "created_at")
# Our own URL query options (the rest of the URL goes to redis-py).
_URL_OPTIONS = ("global_keyprefix", "result_extended", "track_started", "failure_ttl")

# Set "process" unless the task is final in the merged view (hash + meta); return each previous status.
# ARGV: now, worker_id, hash prefix, meta prefix, uuids...
_MARK_PROCESS = LuaScript("""
local of_state = {PENDING='new', RECEIVED='new', STARTED='process', SUCCESS='success', FAILURE='error',
                  RETRY='retry', REVOKED='cancel', REJECTED='error', IGNORED='success'}
local ready = {SUCCESS=true, FAILURE=true, REVOKED=true}
local final = {success=true, error=true, cancel=true}
local out = {}
for i = 5, #ARGV do
  local key = ARGV[3] .. ARGV[i]
  local prev = redis.call('HGET', key, 'status') or ''
  local raw = redis.call('GET', ARGV[4] .. ARGV[i])
  if raw and not final[prev] then
    local ok, meta = pcall(cjson.decode, raw)
    local st = ok and type(meta) == 'table' and meta.status or nil
    if type(st) == 'string' and (ready[st] or prev == '' or prev == 'new') then
      prev = of_state[st] or 'process'
    end
  end
  out[#out + 1] = prev
  if not final[prev] then
    redis.call('HSET', key, 'status', 'process', 'updated_at', ARGV[1], 'worker_id', ARGV[2])
  end
end
return out
""")

# Per item (7 ARGV): hash key, meta key, hash fields JSON ('' none), meta JSON ('' none), hash TTL, meta TTL,
# drop ('1': the task is queued again, so a meta of an unfinished earlier attempt goes).
# A stored SUCCESS is never overwritten, as Celery's own _store_result guards against duplicate deliveries.
_WRITE = LuaScript("""
local ready = {SUCCESS=true, FAILURE=true, REVOKED=true}
for i = 0, tonumber(ARGV[1]) - 1 do
  local b = 2 + 7 * i
  local hkey, mkey, fields, meta = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local httl, mttl, drop = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), ARGV[b + 6]
  if fields ~= '' then
    local flat = {}
    for k, v in pairs(cjson.decode(fields)) do flat[#flat + 1] = k; flat[#flat + 1] = v end
    if #flat > 0 then redis.call('HSET', hkey, unpack(flat)) end
  end
  if httl > 0 then redis.call('EXPIRE', hkey, httl) end
  local cur, status = redis.call('GET', mkey), nil
  if cur then
    local ok, d = pcall(cjson.decode, cur)
    if ok and type(d) == 'table' then status = d.status end
  end
  if meta ~= '' then
    if status ~= 'SUCCESS' then
      if mttl > 0 then redis.call('SET', mkey, meta, 'EX', mttl) else redis.call('SET', mkey, meta) end
      redis.call('PUBLISH', mkey, meta)
    end
  elseif drop == '1' and cur and not ready[status] then
    redis.call('DEL', mkey)
  end
end
return 1
""")


# ------------------------------------------------------------------------------------- pure mapping
def task_keyprefix(global_keyprefix: str | None = None) -> str:
    """Celery's task key prefix with ``result_backend_transport_options['global_keyprefix']`` applied
    (Celery appends ``_`` unless the prefix already ends in one of ``:_-.``)."""
    prefix = global_keyprefix or ""
    if prefix and prefix[-1] not in ":_-.":
        prefix += "_"
    return prefix + TASK_KEYPREFIX


def _loads(text: Any, default: Any = None) -> Any:
    if text in (None, ""):
        return default
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _exc_from_traceback(traceback: str | None) -> tuple[str, str, list[Any]]:
    """(module, qualname, args) from the last line of a formatted traceback (``mod.Cls: message``)."""
    last = (traceback or "").strip().splitlines()[-1:] or ["Exception"]
    head, _, msg = last[0].partition(": ")
    module, _, qualname = head.strip().rpartition(".")
    return module or "builtins", qualname or "Exception", [msg] if msg else []


def _exception(record: dict[str, str], state: str) -> dict[str, Any]:
    """Celery's JSON form of the record's exception: ``{exc_type, exc_message: [args], exc_module}``."""
    qualname = record.get("exc_type")
    module: str | None
    if qualname:
        module = record.get("exc_module") or None
        args = _loads(record.get("exc_args"), [])
    elif state == "REVOKED":
        module, qualname, args = "celery.exceptions", "TaskRevokedError", [record.get("cancel_reason") or "revoked"]
    else:
        module, qualname, args = _exc_from_traceback(record.get("traceback"))
    if not isinstance(args, list):
        args = [args]
    return {"exc_type": qualname, "exc_message": args, "exc_module": _CELERY_MODULES.get(module or "", module)}


def _child(item: Any) -> Any:
    """A child in Celery's ``as_tuple`` form (compat may store a bare id)."""
    return [[item, None], None] if isinstance(item, str) else item


def _iso(ts: Any) -> str:
    try:
        when = dt.datetime.fromtimestamp(float(ts), dt.timezone.utc)
    except (TypeError, ValueError):
        when = dt.datetime.now(dt.timezone.utc)
    return when.isoformat()


def celery_meta(task_id: str, record: dict[str, str], state: str, extended: bool = False) -> dict[str, Any]:
    """The meta Celery 5.7 stores for ``record`` in ``state`` (keys in Celery's order)."""
    result: Any
    if state == "SUCCESS":
        result = _loads(record.get("returning"))
    elif state in EXCEPTION_STATES:
        result = _exception(record, state)
    elif record.get("celery_meta") not in (None, ""):
        result = _loads(record.get("celery_meta"))
    elif state == "STARTED":
        result = {"pid": os.getpid(), "hostname": record.get("worker_id")}
    else:
        result = None
    meta: dict[str, Any] = {
        "status": state,
        "result": result,
        # Celery stores no traceback for REVOKED, and None rather than "" when there is none.
        "traceback": (record.get("traceback") or None) if state in ("FAILURE", "RETRY") else None,
        "children": [_child(c) for c in _loads(record.get("celery_children"), []) or []],
        "date_done": _iso(record.get("updated_at")) if state in READY_STATES else None,
    }
    for field in ("group_id", "parent_id"):
        if record.get(field):
            meta[field] = record[field]
    if extended:
        retries = _loads(record.get("retries"), 0)
        meta.update({"name": record.get("task_name") or None, "args": _loads(record.get("args"), []),
                     "kwargs": _loads(record.get("kwargs"), {}), "worker": record.get("worker_id") or None,
                     "retries": retries if isinstance(retries, int) else 0, "queue": record.get("queue") or None})
    meta["task_id"] = task_id
    return meta


def record_from_meta(meta: dict[str, Any]) -> dict[str, str]:
    """The qtasks record fields (strings, as stored) that a Celery meta describes."""
    state = str(meta.get("status") or "PENDING")
    result = meta.get("result")
    rec = {"status": _STATUS_OF_STATE.get(state, "process"), "celery_state": state,
           "returning": json.dumps(result) if state == "SUCCESS" else "",
           "traceback": meta.get("traceback") or ""}
    if state in EXCEPTION_STATES and isinstance(result, dict) and result.get("exc_type"):
        args = result.get("exc_message")
        args = args if isinstance(args, list) else ([] if args in (None, "") else [args])
        rec.update(exc_type=str(result["exc_type"]), exc_module=str(result.get("exc_module") or ""),
                   exc_args=json.dumps(args))
        if state == "REVOKED":
            rec["cancel_reason"] = str(args[0]) if args else "revoked"
    elif state not in EXCEPTION_STATES and state != "SUCCESS" and result is not None:
        rec["celery_meta"] = json.dumps(result)
    done = meta.get("date_done")
    if isinstance(done, str):
        with contextlib.suppress(ValueError):
            when = dt.datetime.fromisoformat(done)
            rec["updated_at"] = repr((when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).timestamp())
    if meta.get("name"):  # result_extended
        rec["task_name"] = str(meta["name"])
    for field in ("args", "kwargs"):
        if meta.get(field) is not None:
            rec[field] = json.dumps(meta[field])
    for src, dst in (("worker", "worker_id"), ("queue", "queue"), ("group_id", "group_id"),
                     ("parent_id", "parent_id")):
        if meta.get(src):
            rec[dst] = str(meta[src])
    if isinstance(meta.get("retries"), int):
        rec["retries"] = str(meta["retries"])
    if meta.get("children"):
        rec["celery_children"] = json.dumps(meta["children"])
    return rec


def _decode_meta(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        meta = json.loads(raw)
    except ValueError:
        return None  # not JSON (a pickle-serializing Celery app): not ours to read
    return meta if isinstance(meta, dict) and isinstance(meta.get("status"), str) else None


def merge(record: dict[str, str], raw_meta: str | None) -> dict[str, str]:
    """One task's view from its qtasks hash (maybe empty) and its Celery meta (maybe None)."""
    meta = _decode_meta(raw_meta)
    if meta is None:
        return record
    from_meta = record_from_meta(meta)
    if not record:
        return from_meta
    status, state = record.get("status", ""), meta["status"]
    if status not in _FINAL and (state in READY_STATES or status in ("", "new")):
        # A Celery worker moved the task on: its state wins, what the task is stays ours.
        return {**record, **from_meta, **{k: record[k] for k in _IDENTITY if k in record}}
    if not record.get("celery_state") and from_meta["status"] == status and _STATE_OF_STATUS.get(status) != state:
        return {**record, "celery_state": state}  # e.g. process + STARTED: the meta says which
    return record


# ------------------------------------------------------------------------------------- the storage
class CeleryRedisStorage(BaseStorage):
    """A Redis storage whose results are Celery's (``celery+redis://host:port/db?global_keyprefix=...``).

    ``global_keyprefix`` is Celery's ``result_backend_transport_options['global_keyprefix']``;
    ``result_extended`` adds Celery's extended fields; ``track_started`` stores STARTED when a worker takes
    a task; ``failure_ttl`` is ``result_failure_expires`` (default: ``config.result_ttl``, Celery's
    ``result_expires``, 1 day by default; 0 keeps results forever).
    """

    def __init__(self, name: str = "QueueTasks", url: str | None = None,
                 global_config: BaseGlobalConfig | None = None, log: Logger | None = None,
                 config: QueueConfig | None = None, events: Any = None, connector: RedisConnector | None = None,
                 global_keyprefix: str | None = None, result_extended: bool | None = None,
                 track_started: bool | None = None, failure_ttl: int | None = None) -> None:
        redis_url, opts = split_url(url) if url else (None, {})
        connector = connector or RedisConnector(redis_url)
        if global_config is None:
            global_config = RedisGlobalConfig(name=name, connector=connector, log=log, config=config)
        super().__init__(name=name, global_config=global_config, log=log, config=config, events=events)
        self.connector = connector
        self.url = connector.url
        self.keyprefix = task_keyprefix(global_keyprefix if global_keyprefix is not None
                                        else opts.get("global_keyprefix"))
        self.result_extended = _flag(result_extended, opts.get("result_extended"))
        self.track_started = _flag(track_started, opts.get("track_started"))
        ft = failure_ttl if failure_ttl is not None else opts.get("failure_ttl")
        self.failure_ttl = int(ft) if ft not in (None, "") else None

    def key(self, uuid: UUID | str) -> str:
        return f"{self.name}:{uuid}"

    def meta_key(self, uuid: UUID | str) -> str:
        """Celery's key of the task's meta, which is also the channel its completion is published on."""
        return f"{self.keyprefix}{uuid}"

    done_channel = meta_key

    def task_from_message(self, uuid: str, data: str) -> Task | None:
        # The publish carries Celery's meta only; the wait re-reads the merged record (one round trip).
        return None

    # -- writing
    def _state(self, mapping: dict[str, Any]) -> str | None:
        """The Celery state a write moves the task to, or None when Celery sees no change."""
        explicit = mapping.get("celery_state")
        if explicit not in (None, ""):
            return None if explicit == "PENDING" else str(explicit)
        status = mapping.get("status")
        if status == "process":
            return "STARTED" if self.track_started else None
        return _STATE_OF_STATUS.get(str(status)) if status else None

    def _ttl(self, state: str | None) -> int:
        ttl = int(self.config.result_ttl or 0)
        return self.failure_ttl if state == "FAILURE" and self.failure_ttl is not None else ttl

    async def _write(self, items: list[tuple[str, dict[str, Any]]], expire_final: bool) -> None:
        """Merge fields into the hashes and store (and publish) the Celery meta each change implies."""
        if not items:
            return
        client = self.connector.client()
        states = [self._state(m) for _, m in items]
        need = [u for (u, _), s in zip(items, states, strict=True) if s is not None]
        hashes: dict[str, dict[str, str]] = {}
        if need:  # the meta needs the task's other fields (name, args, exception, children...)
            async with client.pipeline(transaction=False) as p:
                for u in need:
                    p.hgetall(self.key(u))
                hashes = dict(zip(need, await p.execute(), strict=True))
        args: list[Any] = [len(items)]
        for (uuid, mapping), state in zip(items, states, strict=True):
            fields = encode_fields(mapping)
            meta = ""
            if state is not None:
                current = hashes.get(uuid) or {}
                if "status" in fields and "celery_state" not in fields and current.get("celery_state"):
                    fields["celery_state"] = ""  # an older Celery state no longer describes the task
                meta = json.dumps(celery_meta(uuid, {**current, **fields}, state, self.result_extended),
                                  ensure_ascii=False, separators=(",", ":"))
            status = fields.get("status")
            ends = expire_final and (self.is_final(status) or status == "retry")
            args += [self.key(uuid), self.meta_key(uuid),
                     json.dumps(fields, ensure_ascii=False) if fields else "", meta,
                     int(self.config.result_ttl or 0) if ends else 0, self._ttl(state),
                     "1" if state is None and status == "new" else "0"]
        await _WRITE(client, [], args)

    async def add(self, uuid: UUID | str, task_status: dict[str, Any]) -> None:
        await self._write([(str(uuid), task_status)], expire_final=False)

    async def update_task(self, uuid: UUID | str, mapping: dict[str, Any]) -> None:
        await self._write([(str(uuid), mapping)], expire_final=False)

    async def save_results(self, results: list[tuple[str, dict[str, Any]]]) -> None:
        await self._write([(str(u), m) for u, m in results], expire_final=True)

    async def mark_process(self, uuids: list[str], worker_id: str) -> dict[str, str | None]:
        if not uuids:
            return {}
        prev = await _MARK_PROCESS(self.connector.client(), [],
                                   [self.now(), worker_id, f"{self.name}:", self.keyprefix, *uuids])
        out = {u: (p or None) for u, p in zip(uuids, prev, strict=True)}
        if self.track_started:
            started = [(u, {"celery_state": "STARTED"}) for u, p in out.items() if not self.is_final(p)]
            await self._write(started, expire_final=False)
        return out

    # -- reading
    async def _read(self, uuids: list[str]) -> list[dict[str, str]]:
        client = self.connector.client()
        async with client.pipeline(transaction=False) as p:
            for u in uuids:
                p.hgetall(self.key(u))
                p.get(self.meta_key(u))
            got = await p.execute()
        return [merge(rec or {}, meta) for rec, meta in zip(got[::2], got[1::2], strict=True)]

    async def get(self, uuid: UUID | str) -> Task | None:
        rec = (await self._read([str(uuid)]))[0]
        return Task.from_record(uuid, rec) if rec else None

    async def get_all(self) -> list[Task]:
        return [Task.from_record(u, r) for u, r in await self.iter_records()]

    async def _uuids(self) -> list[str]:
        prefix = self.name + ":"
        return [k[len(prefix):] async for k in self.connector.client().scan_iter(match=prefix + "*", count=1000)
                if _is_uuid(k[len(prefix):])]

    async def iter_records(self) -> Iterable[tuple[str, dict[str, str]]]:
        """Tasks this app has a record of (a Celery meta alone is another app's: never listed or swept)."""
        uuids = await self._uuids()
        out: list[tuple[str, dict[str, str]]] = []
        for i in range(0, len(uuids), 500):
            chunk = uuids[i:i + 500]
            out.extend((u, r) for u, r in zip(chunk, await self._read(chunk), strict=True) if r)
        return out

    async def wait_for_change(self, uuid: str, timeout: float,
                              started: Callable[[], Awaitable[Any]] | None = None) -> Task | None:
        return await ResultWaiter.of(self.connector).wait(self, str(uuid), timeout, started)

    # -- removing
    async def delete(self, uuids: list[str]) -> None:
        client = self.connector.client()
        for i in range(0, len(uuids), 250):
            chunk = uuids[i:i + 250]
            await client.delete(*[self.key(u) for u in chunk], *[self.meta_key(u) for u in chunk])

    async def flush_all(self) -> None:
        """Delete this app's task records with their Celery metas, and its other keys except the live-worker
        heartbeat and registry. Celery metas of tasks this app has no record of are left alone."""
        await self.delete(await self._uuids())
        client = self.connector.client()
        keep = {f"{self.name}:GlobalConfig:main", f"{self.name}:GlobalConfig:workers"}
        doomed = [k async for k in client.scan_iter(match=self.name + ":*", count=1000) if k not in keep]
        for i in range(0, len(doomed), 500):
            await client.delete(*doomed[i:i + 500])

    async def stop(self) -> None:
        await ResultWaiter.close_for(self.connector)
        await super().stop()


# ------------------------------------------------------------------------------------- URLs
def _flag(given: bool | None, text: str | None) -> bool:
    if given is not None:
        return given
    return (text or "").strip().lower() in ("1", "true", "yes", "on")


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """``celery+redis://...?global_keyprefix=p`` -> (``redis://...``, our options); other query
    parameters stay in the Redis URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme.startswith("celery+"):
        scheme = scheme[len("celery+"):]
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"Celery-format results need a Redis URL (celery+redis://, celery+rediss://, "
                         f"celery+unix://), got scheme {parts.scheme!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _URL_OPTIONS}
    rest = urlencode([(k, v) for k, v in query if k not in _URL_OPTIONS])
    return urlunsplit((scheme, parts.netloc, parts.path, rest, parts.fragment)), ours


def celery_storage_url(redis_url: str, global_keyprefix: str | None = None, result_extended: bool = False,
                       track_started: bool = False, failure_ttl: int | None = None) -> str:
    """The storage URL of :class:`CeleryRedisStorage` for a Celery ``result_backend`` Redis URL."""
    base, ours = split_url(redis_url)
    opts = dict(ours)
    if global_keyprefix:
        opts["global_keyprefix"] = global_keyprefix
    if result_extended:
        opts["result_extended"] = "1"
    if track_started:
        opts["track_started"] = "1"
    if failure_ttl is not None:
        opts["failure_ttl"] = str(int(failure_ttl))
    parts = urlsplit(base)
    query = "&".join(q for q in (parts.query, urlencode(opts)) if q)
    return urlunsplit(("celery+" + parts.scheme, parts.netloc, parts.path, query, parts.fragment))


__all__ = ["CeleryRedisStorage", "celery_meta", "celery_storage_url", "merge", "record_from_meta", "split_url",
           "task_keyprefix"]
