"""Private instances of the three services, for tests that stop and restart one.

Each runs on spare ports with its own data directory and is the test's alone:
the machine's shared PostgreSQL, Redis and Azurite are never touched.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / "tools" / "azurite" / "node_modules" / ".bin" / "azurite"
# Azurite's well-known development account (public, in Azurite's documentation).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s")


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


class PrivateRedis:
    """A real redis-server owned by one test, so it can be stopped and restarted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for this test"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        self.process = subprocess.Popen(
            [*args, "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
        )

        def answers() -> bool:
            try:
                return bool(redis.Redis.from_url(self.url).ping())
            except redis.ConnectionError:
                return False

        wait_for(answers, "private redis-server", 10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    assert candidates, f"PostgreSQL's {name} is needed for this test"
    return str(candidates[0])


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb), started and stopped by the test.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the
    ``postgres`` user and its commands run as that user.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="private-pg-"))
        self.data = self.dir / "data"
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def create(self) -> None:
        self._run(
            _pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"),
            "-w", "start",
        )  # fmt: skip

        def answers() -> bool:
            try:
                psycopg.connect(self.dsn, connect_timeout=1).close()
            except psycopg.OperationalError:
                return False
            return True

        wait_for(answers, "private PostgreSQL")

    def stop(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateAzurite:
    """An Azurite on spare ports with its own workspace; a restart keeps its data."""

    def __init__(self) -> None:
        self.ports = [free_port() for _ in range(3)]
        self.dir = Path(tempfile.mkdtemp(prefix="private-azurite-"))
        blob, queue, table = self.ports
        self.connection = (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{blob}/{DEV_ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{queue}/{DEV_ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{table}/{DEV_ACCOUNT};"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert AZURITE.exists(), "Azurite is not installed: run make services"
        blob, queue, table = (str(port) for port in self.ports)
        self.process = subprocess.Popen(
            [
                str(AZURITE), "--silent", "--disableTelemetry", "--skipApiVersionCheck",
                "--location", str(self.dir), "--blobPort", blob, "--queuePort", queue,
                "--tablePort", table, "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1",
                "--tableHost", "127.0.0.1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: all(_port_open(port) for port in self.ports), "private Azurite")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
