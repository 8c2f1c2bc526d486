"""Request bodies over the host's limit: refused from Content-Length before they are read,
or as soon as a chunked body grows past it, with a JSON 413."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from devhost import DevHost
from devhost.settings import BODY_LIMIT_SETTING, DEFAULT_BODY_LIMIT, ConfigError
from tests.devhost.conftest import HTTP_APP, NO_KEYS

LIMIT = 1024 * 1024  # the small host's limit, 1 MiB
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def small_host() -> Iterator[DevHost]:
    environ = {**NO_KEYS, BODY_LIMIT_SETTING: str(LIMIT)}
    with DevHost(HTTP_APP, port=0, environ=environ, queues=False, timers=False) as running:
        yield running


def connect(host: DevHost) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", host.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def head(path: str, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


class Response:
    """A response read off a raw socket (times out, and so fails, after 5 s)."""

    def __init__(self, sock: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._recv(sock)
        header_block, self.body = data.split(b"\r\n\r\n", 1)
        status_line, *header_lines = header_block.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for line in header_lines:
            name, value = line.split(":", 1)
            self.headers[name.strip().lower()] = value.strip()
        length = int(self.headers.get("content-length", "0"))
        while len(self.body) < length:
            self.body += self._recv(sock)

    @staticmethod
    def _recv(sock: socket.socket) -> bytes:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def error(self) -> str:
        assert self.headers["content-type"].startswith("application/json")
        document = json.loads(self.body)
        assert list(document) == ["error"]
        return str(document["error"])


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(
    keyless_http_host: DevHost, caplog: pytest.LogCaptureFixture
) -> None:
    too_big = DEFAULT_BODY_LIMIT + 1
    with connect(keyless_http_host) as sock:
        # Headers only: the answer comes although not one byte of the body was sent.
        sock.sendall(head("/api/size", f"Content-Length: {too_big}"))
        response = Response(sock)
    assert response.status == 413
    assert response.headers["connection"] == "close"
    assert response.error() == (
        f"request body is {too_big} bytes; the limit is {DEFAULT_BODY_LIMIT} bytes "
        f"({BODY_LIMIT_SETTING})"
    )
    assert "Functions.body_size" not in caplog.text  # the function never ran


def test_routing_and_keys_still_come_first(keyless_http_host: DevHost) -> None:
    with connect(keyless_http_host) as sock:
        sock.sendall(head("/api/nothing/here", f"Content-Length: {DEFAULT_BODY_LIMIT + 1}"))
        response = Response(sock)
    assert (response.status, response.body) == (404, b"")


def test_the_limit_is_the_app_setting(small_host: DevHost) -> None:
    with httpx.Client(timeout=10) as client:
        at_limit = client.post(small_host.url("size"), content=b"x" * LIMIT)
        over = client.post(small_host.url("size"), content=b"x" * (LIMIT + 1))
    assert (at_limit.status_code, at_limit.text) == (200, str(LIMIT))
    assert over.status_code == 413
    assert over.json() == {
        "error": f"request body is {LIMIT + 1} bytes; the limit is {LIMIT} bytes "
        f"({BODY_LIMIT_SETTING})"
    }


def test_a_chunked_body_is_refused_as_soon_as_it_grows_past_the_limit(
    small_host: DevHost, caplog: pytest.LogCaptureFixture
) -> None:
    chunk = f"{CHUNK:x}\r\n".encode() + b"x" * CHUNK + b"\r\n"
    with connect(small_host) as sock:
        sock.sendall(head("/api/size", "Transfer-Encoding: chunked"))
        for _ in range(LIMIT // CHUNK + 1):
            sock.sendall(chunk)
        # No last chunk: the body has not ended, yet the answer comes.
        response = Response(sock)
    assert response.status == 413
    assert response.headers["connection"] == "close"
    assert response.error() == (
        f"request body is over the limit of {LIMIT} bytes ({BODY_LIMIT_SETTING})"
    )
    assert "Functions.body_size" not in caplog.text


def test_a_chunked_body_within_the_limit_reaches_the_function(small_host: DevHost) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(LIMIT // CHUNK):
            yield b"x" * CHUNK

    response = httpx.post(small_host.url("size"), content=chunks(), timeout=10)
    assert (response.status_code, response.text) == (200, str(LIMIT))


def test_expect_100_continue(small_host: DevHost) -> None:
    with connect(small_host) as sock:
        sock.sendall(head("/api/size", "Content-Length: 10", "Expect: 100-continue"))
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"  # before any body
        sock.sendall(b"0123456789")
        response = Response(sock)
    assert (response.status, response.body) == (200, b"10")
    # Over the limit there is no 100 Continue: the final answer comes at once.
    with connect(small_host) as sock:
        sock.sendall(head("/api/size", f"Content-Length: {LIMIT + 1}", "Expect: 100-continue"))
        assert Response(sock).status == 413


def test_an_unusable_limit_stops_the_start() -> None:
    environ = {**NO_KEYS, BODY_LIMIT_SETTING: "lots"}
    with pytest.raises(ConfigError, match=BODY_LIMIT_SETTING):
        DevHost(HTTP_APP, port=0, environ=environ, queues=False, timers=False).start()
