"""``redis+sentinel://`` URLs: a real redis-server master watched by a real sentinel."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from qtasks import QueueTasks

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import services


@pytest.fixture
def sentinel(tmp_path):
    master = services.RedisServer().start()
    port = services.free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                    f"sentinel monitor themaster 127.0.0.1 {master.port} 1\n"
                    "sentinel down-after-milliseconds themaster 1000\n")
    binary = services.ensure_binary("redis-server", "redis-server")
    proc = subprocess.Popen([binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        s = redis.Redis(port=port, decode_responses=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                if s.execute_command("SENTINEL", "get-master-addr-by-name", "themaster"):
                    break
            except redis.ConnectionError:
                pass
            assert time.monotonic() < deadline, "sentinel did not start"
            time.sleep(0.1)
        yield port, master
    finally:
        proc.terminate()
        proc.wait(10)
        master.stop()


def test_sentinel_url_finds_the_master_and_runs_tasks(sentinel, inproc_worker):
    port, master = sentinel
    app = QueueTasks(name="sent", broker_url=f"redis+sentinel://127.0.0.1:{port}/themaster/0")

    @app.task
    def double(x):
        return x * 2

    inproc_worker(app)
    assert double.add_task(21, timeout=10).returning == 42
    # The record really lives on the master the sentinel named.
    assert redis.Redis(port=master.port).keys("sent:*")


def test_sentinel_url_needs_a_service_name():
    app = QueueTasks(name="s2", broker_url="redis+sentinel://127.0.0.1:1")
    with pytest.raises(ValueError, match="service name"):
        app.add_task("x")
