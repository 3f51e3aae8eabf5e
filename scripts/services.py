"""Find or start the servers that the demo and the tests need (stdlib only).

    python scripts/services.py redis     # prints a Redis URL; starts redis-server if none answers

A service is used at the URL from the environment (``QTASKS_TEST_REDIS_URL``,
``REDIS_URL``), else at its default local port; when nothing answers there,
a private server is started on a free loopback port. A missing binary is
installed with apt-get when running as root; otherwise the error says what to
install.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlparse

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class ServiceUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_ping(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING at ``url``."""
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=timeout) as s:
            if u.password:
                s.sendall(f"AUTH {u.password}\r\n".encode())
                s.recv(64)
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def ensure_binary(binary: str, package: str) -> str:
    path = shutil.which(binary) or (f"/usr/bin/{binary}" if os.path.exists(f"/usr/bin/{binary}") else None)
    if path:
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServiceUnavailable(
            f"{binary} is not installed; install the Debian package {package!r} "
            f"(sudo apt-get install -y {package}) or point the tests at a running server"
        )
    print(f"[services] installing {package} with apt-get ...", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=False, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", package], check=True, env=env, stdout=subprocess.DEVNULL)
    path = shutil.which(binary) or f"/usr/bin/{binary}"
    if not os.path.exists(path):
        raise ServiceUnavailable(f"apt-get installed {package} but {binary} is still missing")
    return path


class RedisServer:
    """A private redis-server on a free loopback port, stopped by :meth:`stop`."""

    def __init__(self, port: int | None = None, appendonly: bool = False) -> None:
        self.port = port or free_port()
        self.appendonly = appendonly
        self.dir = tempfile.mkdtemp(prefix="qtasks-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = ensure_binary("redis-server", "redis-server")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log")]
        args += ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if redis_ping(self.url):
                return self
            if self.proc.poll() is not None:
                raise ServiceUnavailable(f"redis-server exited with {self.proc.returncode}; see {self.dir}")
            time.sleep(0.05)
        raise ServiceUnavailable(f"redis-server did not answer on port {self.port} in {timeout}s")

    def stop(self, keep_dir: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self) -> None:
        """Stop at once (SIGKILL), keeping the data directory for a restart on the same port."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def redis_url(start_if_missing: bool = True) -> tuple[str, RedisServer | None]:
    """A Redis URL to use and the server started for it, if one had to be started."""
    url = os.environ.get("QTASKS_TEST_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if redis_ping(url):
        return url, None
    if not start_if_missing:
        raise ServiceUnavailable(f"no Redis answers at {url}")
    server = RedisServer().start()
    return server.url, server


if __name__ == "__main__":
    if sys.argv[1:] != ["redis"]:
        sys.exit("usage: services.py redis")
    try:
        found, started = redis_url()
    except (ServiceUnavailable, subprocess.CalledProcessError) as e:
        sys.exit(f"[services] {e}")
    print(found, flush=True)
    if started is not None:  # keep it running while our parent needs it: stop on stdin EOF
        atexit.register(started.stop)
        sys.stdin.read()
