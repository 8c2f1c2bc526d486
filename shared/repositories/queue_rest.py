"""Put Message on Azure Storage queues straight over HTTP: ingest's hot path.

Every accepted request sends each envelope to two queues. Through the SDK's
``QueueClient.send_message`` one send cost about 3.9 ms of CPU here (the
policy pipeline, ``requests``, XML models), more than validating 100 events;
this sends the same REST call (``POST {queue}/messages``, 2018-03-28 and
later) over a shared urllib3 connection pool for a fraction of that
(docs/benchmarks.md). It does only that one call; everything else (creating
queues, deleting a message on rollback, receiving) stays with the SDK.

Authentication is the account's, taken from the SDK client built for the same
connection (shared/repositories/storage.py), so both always agree:

- a connection string: Shared Key (HMAC-SHA256 of the canonical request);
- an identity: a bearer token for ``https://storage.azure.com/.default`` from
  the same credential, renewed five minutes before it expires.

Failures keep the SDK's types, so callers treat them alike: unreachable or a
time-out is ``ServiceRequestError`` / ``ServiceResponseError``, a refusal
``HttpResponseError`` (``ClientAuthenticationError`` for 401/403). 408, 429
and 5xx answers and connection failures are tried again at once, twice, as the
SDK client of ``queue.py`` was configured to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import urllib3
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

STORAGE_SCOPE = "https://storage.azure.com/.default"
TOKEN_RENEWAL_SECONDS = 300
RETRIES = 2
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_MESSAGE_ID = re.compile(rb"<MessageId>([^<]+)</MessageId>")
_POP_RECEIPT = re.compile(rb"<PopReceipt>([^<]+)</PopReceipt>")
_ERROR_CODE = re.compile(rb"<Code>([^<]+)</Code>")


@dataclass(frozen=True)
class SentMessage:
    """What a rollback needs to take a message back."""

    id: str
    pop_receipt: str


class SharedKey:
    """An account's key: signs the canonical text of a request, each service's own."""

    def __init__(self, account_name: str, account_key: str) -> None:
        self.account_name = account_name
        self._key = base64.b64decode(account_key)

    def authorization(self, to_sign: str) -> str:
        digest = hmac.new(self._key, to_sign.encode("utf-8"), hashlib.sha256).digest()
        return f"SharedKey {self.account_name}:{base64.b64encode(digest).decode()}"


def _queue_text(account: str, method: str, path: str, headers: dict[str, str]) -> str:
    """What the Queue service signs for a request without query parameters."""
    canonical_headers = "".join(
        f"{name}:{headers[name]}\n" for name in sorted(headers) if name.startswith("x-ms-")
    )
    return "\n".join(
        [
            method,
            "",  # Content-Encoding
            "",  # Content-Language
            headers.get("content-length", ""),
            "",  # Content-MD5
            headers.get("content-type", ""),
            "",  # Date (x-ms-date is sent instead)
            "",  # If-Modified-Since
            "",  # If-Match
            "",  # If-None-Match
            "",  # If-Unmodified-Since
            "",  # Range
            canonical_headers + f"/{account}{path}",
        ]
    )


class TokenHeader:
    """A bearer token from a credential, renewed five minutes before it expires."""

    def __init__(self, credential: TokenCredential) -> None:
        self._credential = credential
        self._lock = threading.Lock()
        self._token = ""
        self._renew_at = 0.0

    def header(self) -> str:
        with self._lock:
            if time.time() >= self._renew_at:
                token = self._credential.get_token(STORAGE_SCOPE)
                self._token = token.token
                self._renew_at = token.expires_on - TOKEN_RENEWAL_SECONDS
            return f"Bearer {self._token}"


def _ssl_context() -> ssl.SSLContext:
    """The system's trust store, or the bundle the SDK's requests would read."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    return ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()


def pool_manager(
    scheme: str, connect_timeout: float, read_timeout: float, max_connections: int
) -> urllib3.PoolManager:
    """Keep-alive connections to one account, no retries of urllib3's own."""
    return urllib3.PoolManager(
        maxsize=max_connections,
        block=False,
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        retries=False,
        ssl_context=_ssl_context() if scheme == "https" else None,
    )


def post(
    http: urllib3.PoolManager,
    url: str,
    body: bytes,
    headers: Callable[[], dict[str, str]],
    what: str,
) -> urllib3.BaseHTTPResponse:
    """POST with the retries of this module: a connection failure, a time-out or a
    408/429/5xx answer is tried again at once, ``RETRIES`` times; ``headers`` is
    called for each try (a fresh date and signature)."""
    for attempt in range(RETRIES + 1):
        last = attempt == RETRIES
        try:
            response = http.request("POST", url, body=body, headers=headers(), retries=False)
        except urllib3.exceptions.ReadTimeoutError as exc:
            if last:
                raise ServiceResponseError(f"{what}: {exc}", error=exc) from exc
            continue
        except urllib3.exceptions.HTTPError as exc:
            if last:
                raise ServiceRequestError(f"{what}: {exc}", error=exc) from exc
            continue
        if response.status not in RETRY_STATUS or last:
            return response
    raise AssertionError("unreachable")  # pragma: no cover


def refusal(what: str, status: int, code: str) -> HttpResponseError:
    """The SDK's error type for an answer: authentication failures apart."""
    kind = ClientAuthenticationError if status in (401, 403) else HttpResponseError
    error = kind(message=f"{what}: {status} {code}".rstrip())
    error.status_code = status
    error.error_code = code  # type: ignore[attr-defined]
    return error


class RestClient:
    """One account's endpoint, authentication and connections, from the SDK client
    built for the same connection (so both always agree)."""

    def __init__(
        self,
        service: Any,
        *,
        connect_timeout: float = 3,
        read_timeout: float = 10,
        max_connections: int = 16,
    ) -> None:
        """``service``: the SDK's QueueServiceClient or TableServiceClient."""
        url = urlsplit(service.url)
        self._origin = f"{url.scheme}://{url.netloc}"
        self._base_path = url.path.rstrip("/")
        self._version: str = service.api_version
        credential: Any = service.credential
        named = getattr(credential, "named_key", None)  # tables: AzureNamedKeyCredential
        if hasattr(credential, "account_key"):  # queues: StorageSharedKeyCredential
            self._key: SharedKey | None = SharedKey(credential.account_name, credential.account_key)
        elif named is not None:
            self._key = SharedKey(named.name, named.key)
        else:
            self._key = None
        self._token = TokenHeader(credential) if hasattr(credential, "get_token") else None
        if self._key is None and self._token is None:
            raise ValueError("the client has neither an account key nor a token credential")
        self._http = pool_manager(url.scheme, connect_timeout, read_timeout, max_connections)

    def _authorization(self, to_sign: Callable[[str], str]) -> str:
        """Shared Key over the service's text (``to_sign(account)``), else the bearer token."""
        if self._key is not None:
            return self._key.authorization(to_sign(self._key.account_name))
        assert self._token is not None
        return self._token.header()

    def close(self) -> None:
        self._http.clear()


class QueueSender(RestClient):
    """Sends messages to the queues of one account (thread-safe; one pool per sender)."""

    def send(self, queue_name: str, text: str) -> SentMessage:
        """Put one message (its text as stored, e.g. base64) on ``queue_name``."""
        body = f"<QueueMessage><MessageText>{text}</MessageText></QueueMessage>".encode()
        path = f"{self._base_path}/{quote(queue_name)}/messages"

        def headers() -> dict[str, str]:
            values = {
                "content-length": str(len(body)),
                "content-type": "application/xml",
                "x-ms-date": formatdate(usegmt=True),
                "x-ms-version": self._version,
            }
            values["authorization"] = self._authorization(
                lambda account: _queue_text(account, "POST", path, values)
            )
            return values

        what = f"queue {queue_name}"
        response = post(self._http, self._origin + path, body, headers, what)
        if response.status == 201:
            return _sent(response.data)
        code = _ERROR_CODE.search(response.data or b"")
        raise refusal(what, response.status, code.group(1).decode() if code else "")


def _sent(data: bytes) -> SentMessage:
    message_id, pop_receipt = _MESSAGE_ID.search(data), _POP_RECEIPT.search(data)
    if message_id is None or pop_receipt is None:
        raise ServiceResponseError(f"unexpected Put Message answer: {data[:200]!r}")
    return SentMessage(message_id.group(1).decode(), pop_receipt.group(1).decode())
