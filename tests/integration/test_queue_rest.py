"""Put Message straight over HTTP (shared/repositories/queue_rest.py), against Azurite
(which checks every Shared Key signature) and a scripted server for the retries."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
)
from azure.storage.queue import QueueClient, QueueServiceClient

from shared.repositories.queue_rest import RETRIES, QueueSender
from tests.conftest import TestRun
from tests.devhost.conftest import free_port
from tests.integration.services import DEV_ACCOUNT, DEV_KEY

CREATED = (
    b'<?xml version="1.0" encoding="utf-8"?><QueueMessagesList><QueueMessage>'
    b"<MessageId>m-1</MessageId><PopReceipt>p-1</PopReceipt></QueueMessage></QueueMessagesList>"
)


def connection_to(port: int, key: str = DEV_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={key};"
        f"QueueEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
    )


@pytest.fixture
def queue(test_run: TestRun) -> Iterator[QueueClient]:
    client = QueueClient.from_connection_string(
        test_run.storage_connection, f"{test_run.persist_queue}-rest"
    )
    client.create_queue()
    yield client
    client.delete_queue()
    client.close()


def sender_for(connection: str) -> QueueSender:
    return QueueSender(QueueServiceClient.from_connection_string(connection), read_timeout=5)


def test_a_sent_message_is_stored_as_given_and_can_be_taken_back(
    test_run: TestRun, queue: QueueClient
) -> None:
    sender = sender_for(test_run.storage_connection)
    texts = ["aGVsbG8=", "x" * 60_000]  # base64 as ingest sends it; near the size limit
    sent = [sender.send(queue.queue_name, text) for text in texts]
    assert [m.content for m in queue.peek_messages(max_messages=5)] == texts
    for message in sent:  # what a rollback does with the answer
        queue.delete_message(message.id, message.pop_receipt)
    assert queue.peek_messages() == []
    sender.close()


def test_a_wrong_account_key_is_an_authentication_error(
    test_run: TestRun, queue: QueueClient
) -> None:
    port = int(queue.url.split(":")[2].split("/")[0])
    other_key = base64.b64encode(b"not the account's key").decode()
    wrong = sender_for(connection_to(port, key=other_key))
    with pytest.raises(ClientAuthenticationError) as refused:
        wrong.send(queue.queue_name, "aGk=")
    assert refused.value.status_code == 403
    assert queue.peek_messages() == []


def test_a_missing_queue_is_a_404_naming_it(test_run: TestRun) -> None:
    sender = sender_for(test_run.storage_connection)
    with pytest.raises(HttpResponseError, match="QueueNotFound") as missing:
        sender.send(f"{test_run.persist_queue}-never-made", "aGk=")
    assert missing.value.status_code == 404


def test_nobody_listening_is_a_service_request_error() -> None:
    with pytest.raises(ServiceRequestError):
        sender_for(connection_to(free_port())).send("q", "aGk=")


class Scripted(BaseHTTPRequestHandler):
    """Answers each POST with the next status of ``script`` (201 when it runs out)."""

    script: ClassVar[list[int]] = []
    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        Scripted.seen.append(self.headers["Authorization"])
        status = Scripted.script.pop(0) if Scripted.script else 201
        body = CREATED if status == 201 else b"<Error><Code>ServerBusy</Code></Error>"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    Scripted.script, Scripted.seen = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_busy_answers_are_tried_again_then_reported(scripted: int) -> None:
    sender = sender_for(connection_to(scripted))
    Scripted.script = [503, 500]
    assert sender.send("q", "aGk=").id == "m-1"
    assert len(Scripted.seen) == 3
    assert all(auth.startswith(f"SharedKey {DEV_ACCOUNT}:") for auth in Scripted.seen)
    Scripted.script, Scripted.seen = [503] * (RETRIES + 1), []
    with pytest.raises(HttpResponseError, match="503 ServerBusy") as busy:
        sender.send("q", "aGk=")
    assert busy.value.status_code == 503
    assert len(Scripted.seen) == RETRIES + 1
