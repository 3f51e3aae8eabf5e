"""Find or start the servers that the demo and the tests need (stdlib only; psycopg if installed).

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


DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def amqp_ping(url: str, timeout: float = 1.0) -> bool:
    """True when an AMQP 0-9-1 server answers the protocol header at ``url``."""
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 5672), timeout=timeout) as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            return s.recv(1) == b"\x01"  # a Connection.Start method frame
    except OSError:
        return False


class RabbitMQServer:
    """A private rabbitmq-server node on free loopback ports (its own node name and data dir)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dist_port = free_port()
        self.dir = tempfile.mkdtemp(prefix="qtasks-rabbitmq-")
        self.node = f"qtasks{self.port}@localhost"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self, timeout: float = 60.0) -> RabbitMQServer:
        binary = ensure_binary("rabbitmq-server", "rabbitmq-server")
        # Debian's /usr/sbin wrapper re-runs the server as user rabbitmq (who cannot write our
        # private directory); the real script under /usr/lib runs as the current user.
        direct = "/usr/lib/rabbitmq/bin/rabbitmq-server"
        binary = direct if os.path.exists(direct) else binary
        env = dict(os.environ, HOME=self.dir, RABBITMQ_NODENAME=self.node, RABBITMQ_NODE_PORT=str(self.port),
                   RABBITMQ_NODE_IP_ADDRESS="127.0.0.1", RABBITMQ_DIST_PORT=str(self.dist_port),
                   RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
                   RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
                   RABBITMQ_PID_FILE=os.path.join(self.dir, "rabbit.pid"),
                   RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.dir, "enabled_plugins"),
                   RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "rabbitmq"))
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        self.proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if amqp_ping(self.url):
                return self
            if self.proc.poll() is not None:
                raise ServiceUnavailable(f"rabbitmq-server exited with {self.proc.returncode}; see {self.dir}/log")
            time.sleep(0.2)
        self.stop(keep_dir=True)
        raise ServiceUnavailable(f"rabbitmq-server did not answer on port {self.port} in {timeout}s")

    def stop(self, keep_dir: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # rabbitmq-server is a shell wrapper around the Erlang VM: signal the whole session.
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.proc = None
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def rabbitmq_url(start_if_missing: bool = True) -> tuple[str, RabbitMQServer | None]:
    """An AMQP URL (``QTASKS_TEST_AMQP_URL``, else the local default) and the server started for it."""
    env = os.environ.get("QTASKS_TEST_AMQP_URL")
    if env:
        return env, None
    if amqp_ping(DEFAULT_AMQP_URL):
        return DEFAULT_AMQP_URL, None
    if not start_if_missing:
        raise ServiceUnavailable(f"no RabbitMQ answers at {DEFAULT_AMQP_URL}")
    server = RabbitMQServer().start()
    return server.url, server


class MotoServer:
    """moto's AWS emulator (``moto_server`` from ``moto[server]``) on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """A kombu SQS URL; the endpoint is ``http://127.0.0.1:<port>`` (transport option ``is_secure=False``)."""
        return f"sqs://testing:testing@127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoServer:
        binary = shutil.which("moto_server") or os.path.join(os.path.dirname(sys.executable), "moto_server")
        if not os.path.exists(binary):
            raise ServiceUnavailable('moto_server is not installed; pip install "moto[server]"')
        self.proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_open("127.0.0.1", self.port):
                return self
            if self.proc.poll() is not None:
                raise ServiceUnavailable(f"moto_server exited with {self.proc.returncode}")
            time.sleep(0.1)
        raise ServiceUnavailable(f"moto_server did not answer on port {self.port} in {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def sqs_url() -> tuple[str, MotoServer]:
    """A kombu ``sqs://`` URL served by a fresh moto server, and that server."""
    server = MotoServer().start()
    return server.url, server


DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_ping(url: str, timeout: float = 2.0) -> bool:
    """True when a PostgreSQL server accepts a connection at ``url`` (uses psycopg when installed)."""
    try:
        import psycopg
    except ImportError:
        u = urlparse(url)
        return port_open(u.hostname or "127.0.0.1", u.port or 5432, timeout)
    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout))) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _postgres_bin(name: str) -> str:
    import glob

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        ensure_binary("psql", "postgresql")  # installs the server too when root
        found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise ServiceUnavailable(f"PostgreSQL's {name} is not installed; install the Debian package 'postgresql'")
    return found[-1]


class PostgresServer:
    """A private PostgreSQL cluster (initdb in a temp dir, trust auth) on a free loopback port.

    PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` OS user.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="qtasks-postgres-")
        self.data = os.path.join(self.dir, "data")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, args: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return args
        return ["runuser", "-u", "postgres", "--", *args]

    def start(self, timeout: float = 60.0) -> PostgresServer:
        initdb, postgres = _postgres_bin("initdb"), _postgres_bin("postgres")
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        subprocess.run(self._as_owner([initdb, "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                                       "--no-sync"]), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        # Socket in our own dir (the default /var/run/postgresql may not exist or be writable).
        with open(os.path.join(self.dir, "postgres.log"), "wb") as log:
            self.proc = subprocess.Popen(
                self._as_owner([postgres, "-D", self.data, "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                                "-c", f"unix_socket_directories={self.dir}", "-c", "fsync=off"]),
                stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if postgres_ping(self.url):
                return self
            if self.proc.poll() is not None:
                raise ServiceUnavailable(f"postgres exited with {self.proc.returncode}; see {self.dir}/postgres.log")
            time.sleep(0.1)
        self.stop(keep_dir=True)
        raise ServiceUnavailable(f"postgres did not answer on port {self.port} in {timeout}s")

    def stop(self, keep_dir: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # runuser forwards SIGTERM: a "smart" shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def postgres_url(start_if_missing: bool = True) -> tuple[str, PostgresServer | None]:
    """A PostgreSQL URL (``QTASKS_TEST_POSTGRES_URL``, else the local default) and the server started for it."""
    url = os.environ.get("QTASKS_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    if postgres_ping(url):
        return url, None
    if not start_if_missing:
        raise ServiceUnavailable(f"no PostgreSQL answers at {url}")
    server = PostgresServer().start()
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
