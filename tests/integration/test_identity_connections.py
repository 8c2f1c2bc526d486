"""Identity-based storage connections (SPEC 14), for real.

The storage account is a private Azurite over HTTPS that takes OAuth bearer
tokens (``--oauth basic``: issuer, audience and lifetime checked, signature
not), with a self-signed certificate for 127.0.0.1 made by the test and
trusted through REQUESTS_CA_BUNDLE. Tokens come from azure-identity's own
ManagedIdentityCredential / DefaultAzureCredential code, talking to
``FakeIdentityEndpoint``: the App Service managed identity protocol
(IDENTITY_ENDPOINT + IDENTITY_HEADER), answering with Entra-shaped JWTs. No
connection string exists anywhere in these tests' app settings.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.identity import ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devhost import DevHost
from shared import limits
from shared.repositories import storage
from shared.repositories.archive import ArchiveRepository
from shared.repositories.queue import EventQueue, replay_poison
from shared.settings import StorageConnection, get_settings, parse_storage_connection
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.conftest import (
    FUNCTION_KEY,
    ROOT,
    fast_app_dir,
    host_environ,
    rows,
    running_host,
)
from tests.integration.services import (
    STORAGE_RESOURCE,
    FakeIdentityEndpoint,
    PrivateAzurite,
    self_signed_certificate,
)

QUEUE_APP = ROOT / "tests" / "devhost" / "sample_app_queues"
NEVER = "0 0 0 1 1 *"
# User-assigned identities (client ids) the fake endpoint hands tokens to.
APP_CLIENT = "0a1b2c3d-0000-4000-8000-00000000a001"
OTHER_CLIENT = "0a1b2c3d-0000-4000-8000-00000000a002"
EXPIRED_CLIENT = "0a1b2c3d-0000-4000-8000-00000000dead"
CONNECTION_SETTINGS = ("AzureWebJobsStorage", "ARCHIVE_STORAGE_CONNECTION")


@dataclass
class Identity:
    azurite: PrivateAzurite
    endpoint: FakeIdentityEndpoint

    def settings(
        self, client_id: str, prefix: str = "AzureWebJobsStorage", *, managed: bool = True
    ) -> dict[str, str]:
        """Identity-based settings for ``prefix``: the three service URIs, the identity."""
        settings = {
            f"{prefix}__{service}ServiceUri": self.azurite.service_uri(service)
            for service in ("queue", "table", "blob")
        }
        if managed:
            settings[f"{prefix}__credential"] = "managedidentity"
        settings[f"{prefix}__clientId"] = client_id
        return settings

    def connection(self, client_id: str, *, managed: bool = True) -> StorageConnection:
        connection = parse_storage_connection(
            "AzureWebJobsStorage", self.settings(client_id, managed=managed)
        )
        assert connection is not None
        return connection

    def asked_for(self, client_id: str) -> list[dict[str, str]]:
        return [r for r in self.endpoint.asked() if r.get("client_id") == client_id]


@pytest.fixture(scope="module")
def identity() -> Iterator[Identity]:
    workdir = Path(tempfile.mkdtemp(prefix="identity-tls-"))
    azurite = PrivateAzurite(tls=self_signed_certificate(workdir), oauth=True)
    endpoint = FakeIdentityEndpoint()
    endpoint.expired.add(EXPIRED_CLIENT)
    try:
        azurite.start()
        endpoint.start()
        assert azurite.tls is not None
        with pytest.MonkeyPatch.context() as patch:
            # The identity endpoint as App Service sets it; the certificate trusted by
            # the SDKs (requests reads REQUESTS_CA_BUNDLE; devhost hands it to aiohttp).
            for key, value in endpoint.environ().items():
                patch.setenv(key, value)
            patch.setenv("REQUESTS_CA_BUNDLE", str(azurite.tls.cert))
            # No connection string at all, not even one a session-wide host left set.
            for key in list(os.environ):
                if key.startswith(CONNECTION_SETTINGS):
                    patch.delenv(key)
            storage.clear_credentials()
            get_settings.cache_clear()
            yield Identity(azurite, endpoint)
    finally:
        storage.clear_credentials()
        get_settings.cache_clear()
        endpoint.stop()
        azurite.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


def token_queues(identity: Identity, client_id: str = APP_CLIENT) -> QueueServiceClient:
    """A queue client of the test's own, authenticated with a token (never a key)."""
    credential = ManagedIdentityCredential(client_id=client_id)
    return QueueServiceClient(identity.azurite.service_uri("queue"), credential=credential)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def app_environ(test_run: TestRun, identity: Identity, client_id: str) -> dict[str, str]:
    environ = host_environ(test_run) | identity.settings(client_id)
    for name in CONNECTION_SETTINGS:
        environ.pop(name)
    return environ


# --- the repositories and the replay script, without a host ------------------------------


def test_repositories_and_replay_work_with_the_default_credential_chain(
    identity: Identity, test_run: TestRun
) -> None:
    """No __credential: DefaultAzureCredential, which finds the managed identity."""
    connection = identity.connection(OTHER_CLIENT, managed=False)
    queue = f"t{test_run.run_id}-replay"
    sink = EventQueue(connection, [queue], test_run.payload_container)
    archive = ArchiveRepository(connection, test_run.archive_table_prefix)
    try:
        sink.ping()
        archive.ping()
        sink.dead_letter(queue, b"dead letter")
        assert sink.poison_counts([queue]) == {f"{queue}-poison": 1}
    finally:
        sink.close()
        archive.close()
    assert replay_poison(connection, queue) == 1
    service = token_queues(identity)
    (message,) = service.get_queue_client(queue).peek_messages(max_messages=32)
    assert base64.b64decode(message.content) == b"dead letter"
    service.close()
    asked = identity.asked_for(OTHER_CLIENT)
    assert asked, identity.endpoint.asked()
    assert {r["resource"] for r in asked} == {STORAGE_RESOURCE}


# --- the app on the local host ---------------------------------------------------------------


def test_the_app_runs_on_a_managed_identity_alone(
    identity: Identity, test_run: TestRun, scratch_dir: Path
) -> None:
    environ = app_environ(test_run, identity, APP_CLIENT)
    assert not any(key in environ for key in CONNECTION_SETTINGS)
    events = f.one_of_each()
    huge = f.forum_activity(content="字" * limits.MAX_CONTENT_CHARS)  # a claim check
    with (
        running_host(fast_app_dir(scratch_dir), environ) as host,
        httpx.Client(
            base_url=host.url(""), headers={"x-functions-key": FUNCTION_KEY}, timeout=60
        ) as http,
    ):
        answer = http.post("v1/events", json={"events": [*events, huge]})
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == len(events) + 1
        host.wait_idle(timeout=90)
        health = http.get("v1/health")
        assert health.status_code == 200, health.text
        dependencies = health.json()["dependencies"]
        assert dependencies["queue"]["status"] == dependencies["archive"]["status"] == "up"

    ids = sorted(event["event_id"] for event in [*events, huge])
    stored = rows(
        test_run.postgres_dsn,
        "SELECT event_id::text FROM event_ledger WHERE event_id = ANY(%s::uuid[])",
        ids,
    )
    assert sorted(row[0] for row in stored) == ids
    # Archived in that Azurite's tables, read back with a token of the test's own.
    tables = TableServiceClient(
        identity.azurite.service_uri("table"),
        credential=ManagedIdentityCredential(client_id=APP_CLIENT),
    )
    archived = sorted(
        entity["event_id"]
        for table in tables.list_tables()
        if table.name.startswith(test_run.archive_table_prefix)
        for entity in tables.get_table_client(table.name).list_entities()
        if "ref_row" not in entity  # the event's own entity, not a reference to it
    )
    tables.close()
    assert archived == ids
    archive = ArchiveRepository(identity.connection(APP_CLIENT), test_run.archive_table_prefix)
    (record,) = [r for r in archive.read_user(huge["user_id"]) if r["role"] == "actor"]
    archive.close()
    assert record["event"]["content"] == huge["content"]
    # The large event went through the payload container.
    blobs = BlobServiceClient(
        identity.azurite.service_uri("blob"),
        credential=ManagedIdentityCredential(client_id=APP_CLIENT),
    )
    assert list(blobs.get_container_client(test_run.payload_container).list_blobs())
    blobs.close()
    # Nothing was dead-lettered.
    service = token_queues(identity)
    for queue in (test_run.persist_queue, test_run.archive_queue, test_run.realtime_queue):
        with contextlib.suppress(ResourceNotFoundError):  # never created: nothing in it
            assert not service.get_queue_client(f"{queue}-poison").peek_messages()
    service.close()
    # Tokens for storage, for the user-assigned identity; asked by the app's clients
    # and by the host's queue pollers (each process-wide or per host, not per call).
    asked = identity.asked_for(APP_CLIENT)
    assert len(asked) >= 2, identity.endpoint.asked()
    assert {r["resource"] for r in asked} == {STORAGE_RESOURCE}
    assert all(r["api-version"] == "2019-08-01" for r in asked)


def test_a_token_the_storage_refuses_is_a_503_not_a_500(
    identity: Identity, test_run: TestRun, scratch_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The account refuses requests without a token, and with this identity's (expired) one.
    assert identity.azurite.tls is not None
    anonymous = httpx.get(
        identity.azurite.service_uri("queue"),
        params={"comp": "list"},
        verify=ssl.create_default_context(cafile=identity.azurite.tls.cert),
    )
    assert anonymous.status_code in (401, 403), anonymous.text
    with pytest.raises(ClientAuthenticationError):
        EventQueue(identity.connection(EXPIRED_CLIENT), [], test_run.payload_container).ping()

    environ = app_environ(test_run, identity, EXPIRED_CLIENT)
    app_dir = fast_app_dir(scratch_dir)
    # No queue triggers: their pollers could not start with this identity either.
    with (
        caplog.at_level(logging.ERROR),
        running_host(app_dir, environ, queues=False, timers=False) as host,
    ):
        answer = httpx.post(
            host.url("v1/events"),
            json=f.lesson_progress(),
            headers={"x-functions-key": FUNCTION_KEY},
        )
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) > 0
    # Refused by the storage service (Azurite's "Server failed to authenticate"), not a bug.
    refusals = [r.getMessage() for r in caplog.records if "queue unavailable" in r.getMessage()]
    assert refusals
    assert "authenticate" in refusals[0], refusals
    assert identity.asked_for(EXPIRED_CLIENT)


# --- the local host's own queue clients: triggers, outputs, the AzureWebJobs prefix ---------


def test_devhost_queue_triggers_and_outputs_use_the_identities(
    identity: Identity, test_run: TestRun
) -> None:
    names = {role: f"t{test_run.run_id}-dh-{role}" for role in ("work", "slow", "forward", "sink")}
    environ = (
        identity.settings(APP_CLIENT)
        # The sample app's "DhStorage" connection, found as AzureWebJobsDhStorage,
        # with DefaultAzureCredential (no __credential) and another identity.
        | identity.settings(OTHER_CLIENT, "AzureWebJobsDhStorage", managed=False)
        | {f"DH_QUEUE_{role.upper()}": name for role, name in names.items()}
        | {"DH_TICK_SCHEDULE": NEVER, "DH_FAILING_SCHEDULE": NEVER}
        | {"LOCAL_FUNCTION_KEY": "", "LOCAL_MASTER_KEY": "", "DH_SLOW_SECONDS": "0"}
    )
    before = len(identity.asked_for(OTHER_CLIENT))
    with DevHost(QUEUE_APP, port=0, environ=environ, timers=False) as host:
        service = token_queues(identity)
        service.get_queue_client(names["forward"]).send_message(b64("Hello"))
        service.get_queue_client(names["slow"]).send_message(b64("slow one"))
        host.wait_idle(timeout=30)
        service.close()
        records: dict[str, list[dict[str, Any]]] = host.app_module.RECORDS
        assert sorted(r["body"] for r in records["sink"]) == [b"HELLO", b"hello"]
        assert [r["body"] for r in records["slow"]] == [b"slow one"]
    assert len(identity.asked_for(OTHER_CLIENT)) > before
