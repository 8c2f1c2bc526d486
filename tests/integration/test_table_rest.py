"""Insert transactions straight over HTTP (shared/repositories/table_rest.py), against
Azurite, which checks every signature and answers as the Table service does."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
from azure.data.tables import TableClient, TableServiceClient

from shared.repositories.table_rest import TransactionSender, odata_json
from tests.conftest import TestRun
from tests.devhost.conftest import free_port
from tests.integration.test_queue_rest import connection_to

MOMENT = datetime(2026, 11, 3, 14, 25, 1, 123456, tzinfo=UTC)


def entity(row: str, **extra: object) -> dict[str, object]:
    return {"PartitionKey": "p000", "RowKey": row, **extra}


@pytest.fixture
def table(test_run: TestRun) -> Iterator[TableClient]:
    service = TableServiceClient.from_connection_string(test_run.storage_connection)
    name = f"{test_run.archive_table_prefix}rest{secrets.token_hex(3)}"
    client = service.create_table(name)
    yield client
    service.delete_table(name)
    service.close()


def sender_for(connection: str) -> TransactionSender:
    return TransactionSender(TableServiceClient.from_connection_string(connection), read_timeout=5)


def test_entities_are_inserted_with_their_types(test_run: TestRun, table: TableClient) -> None:
    sender = sender_for(test_run.storage_connection)
    rows = [
        entity(f"r{n}", text='é😀"\\\n', small=3, large=2**40, at=MOMENT, ok=True, ratio=0.5)
        for n in range(100)  # the most one transaction may hold
    ]
    sender.insert(table.table_name, rows)
    stored = sorted(table.list_entities(), key=lambda e: e["RowKey"])
    assert [e["RowKey"] for e in stored] == sorted(f"r{n}" for n in range(100))
    first = stored[0]
    assert first["text"] == 'é😀"\\\n'
    assert (first["small"], first["large"].value, first["ok"], first["ratio"]) == (
        3,
        2**40,
        True,
        0.5,
    )
    assert first["at"] == MOMENT
    sender.close()


def test_an_existing_entity_fails_the_whole_transaction_naming_it(
    test_run: TestRun, table: TableClient
) -> None:
    sender = sender_for(test_run.storage_connection)
    sender.insert(table.table_name, [entity("a"), entity("b")])
    with pytest.raises(HttpResponseError) as refused:
        sender.insert(table.table_name, [entity("c"), entity("b", other="x")])
    assert (refused.value.status_code, refused.value.error_code) == (409, "EntityAlreadyExists")  # type: ignore[attr-defined]
    assert "(operation 1)" in str(refused.value)
    assert refused.value.operation_index == 1  # type: ignore[attr-defined]
    assert sorted(e["RowKey"] for e in table.list_entities()) == ["a", "b"]  # atomic: no "c"


def test_a_missing_table_is_table_not_found(test_run: TestRun) -> None:
    sender = sender_for(test_run.storage_connection)
    with pytest.raises(HttpResponseError) as missing:
        sender.insert(f"{test_run.archive_table_prefix}never", [entity("a"), entity("b")])
    assert (missing.value.status_code, missing.value.error_code) == (404, "TableNotFound")  # type: ignore[attr-defined]


def test_a_wrong_key_is_refused_and_nobody_listening_is_unreachable(
    test_run: TestRun, table: TableClient
) -> None:
    port = int(table.url.split(":")[2].split("/")[0])
    wrong = base64.b64encode(b"not the account's key").decode()
    connection = connection_to(port, key=wrong).replace("QueueEndpoint", "TableEndpoint")
    with pytest.raises(ClientAuthenticationError):
        sender_for(connection).insert(table.table_name, [entity("a"), entity("b")])
    nobody = connection_to(free_port()).replace("QueueEndpoint", "TableEndpoint")
    with pytest.raises(ServiceRequestError):
        sender_for(nobody).insert(table.table_name, [entity("a"), entity("b")])


def test_odata_json_types_what_the_archive_stores_and_refuses_the_rest() -> None:
    assert odata_json({"n": 2**31}) == '{"n": "2147483648", "n@odata.type": "Edm.Int64"}'
    assert odata_json({"n": 2**31 - 1}) == '{"n": 2147483647}'
    with pytest.raises(TypeError, match="'blob': bytes"):
        odata_json({"blob": b"x"})
