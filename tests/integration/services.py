"""Private instances of the three services, for tests that stop and restart one.

Each runs on spare ports with its own data directory and is the test's alone:
the machine's shared PostgreSQL, Redis and Azurite are never touched.

For identity-based storage connections: an Azurite over HTTPS that accepts
OAuth bearer tokens (``PrivateAzurite(tls=..., oauth=True)``, with a
certificate from ``self_signed_certificate``), and ``FakeIdentityEndpoint``,
the App Service managed identity endpoint that azure-identity's
ManagedIdentityCredential asks for tokens.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate (PEM) and its key: the server's and the clients' CA."""

    cert: Path
    key: Path


def self_signed_certificate(directory: Path) -> Certificate:
    """A certificate for https://127.0.0.1 (subjectAltName IP:127.0.0.1), valid 2 days."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed for this test"
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
            "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return Certificate(cert, key)


class PrivateAzurite:
    """An Azurite on spare ports with its own workspace; a restart keeps its data.

    With ``tls`` it serves HTTPS with that certificate; with ``oauth`` too it
    accepts bearer tokens (``--oauth basic``: issuer, audience and lifetime are
    checked, the signature is not). Shared-key requests keep working either way.
    """

    def __init__(self, tls: Certificate | None = None, oauth: bool = False) -> None:
        assert tls is not None or not oauth, "Azurite takes OAuth over HTTPS only"
        self.ports = [free_port() for _ in range(3)]
        self.dir = Path(tempfile.mkdtemp(prefix="private-azurite-"))
        self.tls = tls
        self.oauth = oauth
        self.scheme = "https" if tls else "http"
        blob, queue, table = (self.service_uri(s) for s in ("blob", "queue", "table"))
        self.connection = (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={DEV_ACCOUNT};"
            f"AccountKey={DEV_KEY};BlobEndpoint={blob};QueueEndpoint={queue};"
            f"TableEndpoint={table};"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def service_uri(self, service: str) -> str:
        """The account's endpoint for ``blob``, ``queue`` or ``table`` (path style)."""
        port = self.ports[("blob", "queue", "table").index(service)]
        return f"{self.scheme}://127.0.0.1:{port}/{DEV_ACCOUNT}"

    def start(self) -> None:
        assert AZURITE.exists(), "Azurite is not installed: run make services"
        blob, queue, table = (str(port) for port in self.ports)
        secure: list[str] = []
        if self.tls is not None:
            secure = ["--cert", str(self.tls.cert), "--key", str(self.tls.key)]
        if self.oauth:
            secure += ["--oauth", "basic"]
        self.process = subprocess.Popen(
            [
                str(AZURITE), "--silent", "--disableTelemetry", "--skipApiVersionCheck",
                "--location", str(self.dir), "--blobPort", blob, "--queuePort", queue,
                "--tablePort", table, "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1",
                "--tableHost", "127.0.0.1", *secure,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: all(_port_open(port) for port in self.ports), "private Azurite")

    def stop(self) -> None:
        """A clean stop: Azurite writes its data down first, so start() finds it again."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)  # frozen ones too
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def freeze(self) -> None:
        """It keeps its ports, so connections open, but it answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- managed identity ------------------------------------------------------------

STORAGE_RESOURCE = "https://storage.azure.com"
TENANT_ID = "72f988bf-0000-4000-8000-000000000001"  # any GUID: Azurite checks the prefix only


def _b64url(document: dict[str, Any]) -> str:
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def fake_jwt(audience: str, *, expired: bool = False, subject: str = "app") -> str:
    """An Entra-shaped access token: the claims Azurite's basic OAuth checks (iss, aud,
    iat, nbf, exp), and a signature nobody verifies."""
    now = int(time.time())
    issued = now - (7200 if expired else 60)
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{TENANT_ID}/",
        "iat": issued,
        "nbf": issued,
        "exp": issued + 3600,  # an hour after issue: long past when expired
        "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, subject)),
        "sub": subject,
        "tid": TENANT_ID,
        "ver": "1.0",
    }
    signature = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"{_b64url({'alg': 'RS256', 'typ': 'JWT'})}.{_b64url(claims)}.{signature}"


class FakeIdentityEndpoint:
    """The App Service managed identity endpoint, as azure-identity calls it.

    With ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` set (``environ()``),
    ManagedIdentityCredential (and DefaultAzureCredential through it) sends
    ``GET <endpoint>?api-version=2019-08-01&resource=<scope without /.default>
    [&client_id=<id>]`` with the header ``X-IDENTITY-HEADER: <secret>`` and expects
    ``{"access_token", "expires_on", "resource", "token_type"}``. Every request is
    recorded in ``requests`` (its query parameters). A wrong secret gets 401.
    Client ids in ``expired`` get a token whose ``exp`` has passed while the answer
    says it is good for an hour: the SDK uses it, and the storage service refuses it.
    """

    def __init__(self) -> None:
        self.secret = secrets.token_hex(16)
        self.requests: list[dict[str, str]] = []
        self.expired: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/msi/token"

    def environ(self) -> dict[str, str]:
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.secret}

    def asked(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self.requests)

    def start(self) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                params = dict(parse_qsl(urlsplit(self.path).query))
                with endpoint._lock:
                    endpoint.requests.append(params)
                if self.headers.get("X-IDENTITY-HEADER") != endpoint.secret:
                    self._answer(401, {"error": "invalid_request", "error_description": "header"})
                    return
                resource = params.get("resource", "")
                client_id = params.get("client_id", "")
                token = fake_jwt(
                    resource, expired=client_id in endpoint.expired, subject=client_id or "system"
                )
                self._answer(
                    200,
                    {
                        "access_token": token,
                        "expires_on": str(int(time.time()) + 3600),
                        "resource": resource,
                        "token_type": "Bearer",
                        "client_id": client_id or "00000000-0000-0000-0000-000000000000",
                    },
                )

            def _answer(self, status: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-identity-endpoint", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# --- a whole private stack ---------------------------------------------------------


@dataclass
class Stack:
    """PostgreSQL, Redis and Azurite of one test's own, which it may stop and start."""

    postgres: PrivatePostgres
    redis: PrivateRedis
    azurite: PrivateAzurite
    dsn: str  # the migrated `activity` database of the private PostgreSQL


@contextmanager
def private_stack() -> Iterator[Stack]:
    from shared.migrate import ensure_database, migrate

    postgres, redis_server, azurite = PrivatePostgres(), PrivateRedis(), PrivateAzurite()
    try:
        postgres.create()
        redis_server.start()
        azurite.start()
        dsn = postgres.dsn.rsplit("/", 1)[0] + "/activity"
        ensure_database(dsn)
        migrate(dsn)
        yield Stack(postgres, redis_server, azurite, dsn)
    finally:
        redis_server.stop()
        azurite.destroy()
        postgres.destroy()
