"""Entity-group transactions of inserts straight over HTTP: the archive's hot path.

Through the SDK, ``TableClient.submit_transaction`` builds its multipart body
and parses the answer with the standard ``email`` package: about two thirds of
the local host's CPU in an end-to-end run went there (docs/benchmarks.md).
This sends the same ``POST /$batch`` (one changeset of ``Insert Entity``
operations, the format the SDK sends, OData JSON with ``@odata.type`` for
strings, dates, and 64-bit integers) from plain strings over a shared urllib3
pool, and reads only what the archive needs from the answer: every operation
succeeded, or the status, error code and failing operation of the first that
did not. Everything else (queries, deletes, single entities, tables) stays
with the SDK.

Authentication and transport follow shared/repositories/queue_rest.py (the
account's Shared Key, in the Table service's form, or the same credential's
bearer token); failures keep the SDK's types: ``ServiceRequestError`` /
``ServiceResponseError`` when the service is unreachable or slow,
``HttpResponseError`` with ``status_code`` and ``error_code`` (e.g.
``EntityAlreadyExists``, ``TableNotFound``) when it refuses, 408/429/5xx and
connection failures tried again at once, twice.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from azure.core.exceptions import HttpResponseError

from shared.repositories.queue_rest import RestClient, post, refusal

if TYPE_CHECKING:
    pass

_STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3})")
_ERROR_CODE = re.compile(rb'"code"\s*:\s*"([^"]+)"')
_INDEX = re.compile(rb'"value"\s*:\s*"(\d+):')
_INT32 = range(-(2**31), 2**31)


def odata_json(entity: Mapping[str, Any]) -> str:
    """An entity as the Table service's JSON, typed as the SDK types it."""
    document: dict[str, Any] = {}
    for name, value in entity.items():
        if isinstance(value, str):
            document[name] = value
            document[f"{name}@odata.type"] = "Edm.String"
        elif isinstance(value, bool):
            document[name] = value
        elif isinstance(value, datetime):
            moment = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            document[name] = moment
            document[f"{name}@odata.type"] = "Edm.DateTime"
        elif isinstance(value, int):
            if value in _INT32:
                document[name] = value
            else:
                document[name] = str(value)
                document[f"{name}@odata.type"] = "Edm.Int64"
        elif isinstance(value, float):
            document[name] = value
            document[f"{name}@odata.type"] = "Edm.Double"
        else:
            raise TypeError(f"property {name!r}: {type(value).__name__} is not archived")
    return json.dumps(document)


def _table_text(account: str, path: str, headers: Mapping[str, str]) -> str:
    """What the Table service signs: verb, MD5, type, date, resource."""
    resource = f"/{account}{path}"
    return "\n".join(["POST", "", headers["content-type"], headers["x-ms-date"], resource])


class TransactionSender(RestClient):
    """Sends insert transactions to the tables of one account (thread-safe)."""

    def insert(self, table: str, entities: Sequence[Mapping[str, Any]]) -> None:
        """Insert the entities (one partition, at most 100) in one transaction, or raise."""
        path = f"{self._base_path}/$batch"
        body, boundary = self._body(table, entities)

        def headers() -> dict[str, str]:
            values = {
                "content-type": f"multipart/mixed; boundary={boundary}",
                "accept": "application/json",
                "dataserviceversion": "3.0",
                "maxdataserviceversion": "3.0;NetFx",
                "x-ms-date": formatdate(usegmt=True),
                "x-ms-version": self._version,
            }
            values["authorization"] = self._authorization(
                lambda account: _table_text(account, path, values)
            )
            return values

        what = f"table {table}"
        response = post(self._http, self._origin + path, body, headers, what)
        failure = _failure(what, response.status, response.data)
        if failure is not None:
            raise failure

    def _body(self, table: str, entities: Sequence[Mapping[str, Any]]) -> tuple[bytes, str]:
        batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
        target = f"{self._origin}{self._base_path}/{quote(table)}"
        parts = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"]
        for index, entity in enumerate(entities):
            document = odata_json(entity).encode()
            parts.append(
                f"--{changeset}\r\n"
                "Content-Type: application/http\r\n"
                "Content-Transfer-Encoding: binary\r\n"
                f"Content-ID: {index}\r\n\r\n"
                f"POST {target} HTTP/1.1\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(document)}\r\n"
                "DataServiceVersion: 3.0\r\n"
                "Accept: application/json;odata=minimalmetadata\r\n"
                "Prefer: return-no-content\r\n\r\n"
            )
            parts.append(document.decode())
            parts.append("\r\n")
        parts.append(f"--{changeset}--\r\n\r\n--{batch}--\r\n")
        return "".join(parts).encode(), batch


def _failure(what: str, status: int, data: bytes) -> HttpResponseError | None:
    """None when every operation succeeded, else the error the SDK would raise: the
    status and code of the first operation that failed, and its index."""
    if status == 202:
        statuses = [int(code) for code in _STATUS_LINE.findall(data)]
        failed = next((code for code in statuses if not 200 <= code < 300), None)
        if statuses and failed is None:
            return None
        status = failed or 500
    code = _ERROR_CODE.search(data or b"")
    index = _INDEX.search(data or b"")
    where = f" (operation {index.group(1).decode()})" if index else ""
    error = refusal(
        f"{what}: transaction refused{where}", status, code.group(1).decode() if code else ""
    )
    error.operation_index = int(index.group(1)) if index else None  # type: ignore[attr-defined]
    return error
