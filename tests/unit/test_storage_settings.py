"""Storage connection settings (SPEC 14): a connection string or identity-based
settings, read as the Functions host reads them; the clients and credentials built
from them (no network: building a client or credential sends nothing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devhost.settings import ConfigError, storage_connection, storage_connection_string
from scripts.replay_poison import storage_connection as replay_connection
from shared.repositories import storage
from shared.settings import (
    DEV_STORAGE,
    Settings,
    StorageConnection,
    StorageSettingError,
    get_settings,
    parse_storage_connection,
)

ACCOUNT_STRING = (
    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0;"
    "EndpointSuffix=core.windows.net"
)
CLIENT_ID = "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"


def parse(name: str, **environ: str) -> StorageConnection | None:
    return parse_storage_connection(name, environ)


# --- the two forms -------------------------------------------------------------


def test_a_connection_string_is_used_as_it_is() -> None:
    connection = parse("AzureWebJobsStorage", AzureWebJobsStorage=DEV_STORAGE)
    assert connection == StorageConnection("AzureWebJobsStorage", connection_string=DEV_STORAGE)
    assert not connection.identity_based


def test_account_name_gives_every_endpoint() -> None:
    connection = parse(
        "AzureWebJobsStorage",
        AzureWebJobsStorage__accountName="acct",
        AzureWebJobsStorage__credential="managedidentity",
        AzureWebJobsStorage__clientId=CLIENT_ID,
    )
    assert connection is not None
    assert connection.identity_based
    assert connection.service_uri("queue") == "https://acct.queue.core.windows.net"
    assert connection.service_uri("table") == "https://acct.table.core.windows.net"
    assert connection.service_uri("blob") == "https://acct.blob.core.windows.net"
    assert connection.managed_identity
    assert connection.client_id == CLIENT_ID


def test_a_service_uri_wins_over_the_account_name_for_its_service() -> None:
    connection = parse(
        "X",
        X__accountName="acct",
        X__queueServiceUri="https://queues.example.net/",
    )
    assert connection is not None
    assert connection.service_uri("queue") == "https://queues.example.net"
    assert connection.service_uri("blob") == "https://acct.blob.core.windows.net"


def test_without_credential_it_is_default_azure_credential() -> None:
    connection = parse("X", X__accountName="acct", X__clientId=CLIENT_ID)
    assert connection is not None
    assert connection.credential is None
    assert not connection.managed_identity
    assert connection.client_id == CLIENT_ID


def test_property_names_are_case_insensitive_and_values_trimmed() -> None:
    connection = parse("X", X__AccountName=" acct ", X__CREDENTIAL="ManagedIdentity")
    assert connection == StorageConnection("X", account_name="acct", credential="managedidentity")


# --- precedence ------------------------------------------------------------------


def test_the_connection_string_wins_over_identity_settings() -> None:
    """As the host: an exact match for the name wins over a prefix match."""
    connection = parse(
        "AzureWebJobsStorage",
        AzureWebJobsStorage=DEV_STORAGE,
        AzureWebJobsStorage__accountName="acct",
        AzureWebJobsStorage__credential="managedidentity",
    )
    assert connection is not None
    assert connection.connection_string == DEV_STORAGE


def test_an_empty_connection_string_counts_as_unset() -> None:
    connection = parse("X", X="  ", X__accountName="acct")
    assert connection is not None
    assert connection.account_name == "acct"


def test_a_name_is_looked_up_as_azurewebjobs_name_first() -> None:
    assert parse("Archive", AzureWebJobsArchive__accountName="acct") == StorageConnection(
        "AzureWebJobsArchive", account_name="acct"
    )
    # Both defined: the host takes the prefixed one, whatever form either has.
    both = parse("Archive", AzureWebJobsArchive__accountName="prefixed", Archive=DEV_STORAGE)
    assert both is not None
    assert both.account_name == "prefixed"
    plain = parse("Archive", Archive__accountName="plain")
    assert plain is not None
    assert plain.name == "Archive"
    assert parse("Archive", Other=DEV_STORAGE) is None


# --- missing or wrong pieces: the error names the setting -------------------------------


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"X__credential": "managedidentity"}, "X__accountName"),
        ({"X__clientId": CLIENT_ID}, "X__queueServiceUri"),
        ({"X__accountName": "acct", "X__credential": "workload"}, "X__credential"),
        ({"X__accountName": "Not_An_Account"}, "X__accountName"),
        ({"X__queueServiceUri": "http://127.0.0.1:10001/devstoreaccount1"}, "X__queueServiceUri"),
        ({"X__queueServiceUri": "not a uri"}, "X__queueServiceUri"),
        ({"X__serviceUri": "https://acct.queue.core.windows.net"}, "X__serviceUri"),
        ({"X__accountName": "acct", "X__tenantId": "t"}, "X__tenantId"),
    ],
)
def test_unusable_settings_are_refused_by_name(environ: dict[str, str], named: str) -> None:
    with pytest.raises(StorageSettingError, match=named):
        parse_storage_connection("X", environ)


def test_a_service_without_endpoint_names_both_ways_to_give_one() -> None:
    environ = {"X__queueServiceUri": "https://q.example.net", "X__credential": "managedidentity"}
    connection = parse_storage_connection("X", environ, ("queue",))
    assert connection is not None
    with pytest.raises(StorageSettingError, match="X__blobServiceUri or X__accountName"):
        parse_storage_connection("X", environ, ("queue", "blob"))
    with pytest.raises(StorageSettingError, match="X__tableServiceUri"):
        connection.service_uri("table")


def test_the_repr_never_shows_a_connection_string() -> None:
    connection = StorageConnection.from_string(ACCOUNT_STRING, "AzureWebJobsStorage")
    assert "c2VjcmV0" not in repr(connection)


# --- the app's settings ---------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    import os

    for key in list(os.environ):
        if key.startswith(("AzureWebJobsStorage", "ARCHIVE_STORAGE_CONNECTION", "AzureWebJobsA")):
            monkeypatch.delenv(key)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_locally_both_default_to_the_emulator(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env()
    assert settings.storage.connection_string == DEV_STORAGE
    assert settings.archive_storage is settings.storage
    assert settings.storage_connection == DEV_STORAGE  # what the benchmarks read
    assert settings.archive_connection == DEV_STORAGE


def test_the_deployed_settings(clean_env: pytest.MonkeyPatch) -> None:
    """What infra/ sets: accountName, credential and clientId for both connections."""
    for prefix, account in (
        ("AzureWebJobsStorage", "appstore"),
        ("ARCHIVE_STORAGE_CONNECTION", "archive"),
    ):
        clean_env.setenv(f"{prefix}__accountName", account)
        clean_env.setenv(f"{prefix}__credential", "managedidentity")
        clean_env.setenv(f"{prefix}__clientId", CLIENT_ID)
    settings = Settings.from_env()
    assert settings.storage.service_uri("queue") == "https://appstore.queue.core.windows.net"
    assert settings.archive_storage.service_uri("table") == "https://archive.table.core.windows.net"
    assert settings.archive_storage.client_id == CLIENT_ID
    with pytest.raises(StorageSettingError, match="identity-based"):
        _ = settings.storage_connection


def test_the_archive_falls_back_to_the_storage_connection(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AzureWebJobsStorage__accountName", "appstore")
    settings = Settings.from_env()
    assert (
        settings.archive_storage.service_uri("table") == "https://appstore.table.core.windows.net"
    )


def test_a_missing_endpoint_fails_at_start_naming_the_settings(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("AzureWebJobsStorage__queueServiceUri", "https://q.example.net")
    with pytest.raises(StorageSettingError, match="AzureWebJobsStorage__blobServiceUri"):
        Settings.from_env()
    clean_env.setenv("AzureWebJobsStorage__blobServiceUri", "https://b.example.net")
    with pytest.raises(
        StorageSettingError,
        match=r"ARCHIVE_STORAGE_CONNECTION is not set.*AzureWebJobsStorage__tableServiceUri",
    ):
        Settings.from_env()
    clean_env.setenv("ARCHIVE_STORAGE_CONNECTION", DEV_STORAGE)
    assert Settings.from_env().archive_storage.connection_string == DEV_STORAGE


# --- the local host and the replay script resolve it the same way -------------------------


def test_devhost_resolves_binding_connections_like_the_app() -> None:
    environ = {
        "AzureWebJobsStorage": DEV_STORAGE,
        "AzureWebJobsDhStorage__queueServiceUri": "https://q.example.net",
    }
    assert storage_connection(None, environ).connection_string == DEV_STORAGE
    assert storage_connection("DhStorage", environ) == StorageConnection(
        "AzureWebJobsDhStorage", queue_service_uri="https://q.example.net"
    )
    assert storage_connection_string(None, environ) == DEV_STORAGE
    with pytest.raises(ConfigError, match="identity-based"):
        storage_connection_string("DhStorage", environ)
    with pytest.raises(ConfigError, match="'Nowhere' is not set"):
        storage_connection("Nowhere", environ)
    with pytest.raises(ConfigError, match="Bad__accountName"):
        storage_connection("Bad", {"Bad__credential": "managedidentity"})


def test_replay_takes_the_environment_then_local_settings_then_the_emulator() -> None:
    identity = {"AzureWebJobsStorage__accountName": "prod"}
    local = {"AzureWebJobsStorage": DEV_STORAGE}
    assert replay_connection(identity, local).account_name == "prod"
    assert replay_connection({}, local).connection_string == DEV_STORAGE
    assert replay_connection({}, identity).account_name == "prod"
    assert replay_connection({}, {}).connection_string == DEV_STORAGE


# --- clients and credentials ---------------------------------------------------------------


@pytest.fixture
def credentials() -> Iterator[None]:
    storage.clear_credentials()
    yield
    storage.clear_credentials()


def test_managed_identity_gets_managed_identity_credential(credentials: None) -> None:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    managed = StorageConnection("X", account_name="acct", credential="managedidentity")
    assert isinstance(storage.credential(managed), ManagedIdentityCredential)
    default = StorageConnection("X", account_name="acct", client_id=CLIENT_ID)
    assert isinstance(storage.credential(default), DefaultAzureCredential)
    # One per identity and process, whichever connection asks.
    again = StorageConnection("Y", account_name="other", credential="managedidentity")
    assert storage.credential(again) is storage.credential(managed)
    with pytest.raises(ValueError, match="connection string"):
        storage.credential(StorageConnection.from_string(DEV_STORAGE))


def test_clients_are_built_from_either_form(credentials: None) -> None:
    identity = StorageConnection(
        "X", account_name="acct", table_service_uri="https://tables.example.net", credential=None
    )
    queue = storage.queue_service_client(identity, retry_total=0)
    table = storage.table_service_client(identity)
    blob = storage.blob_service_client(identity)
    assert queue.url.startswith("https://acct.queue.core.windows.net")
    assert table.url.startswith("https://tables.example.net")
    assert blob.url.startswith("https://acct.blob.core.windows.net")
    assert queue.credential is storage.credential(identity)
    local = storage.queue_service_client(DEV_STORAGE)  # a plain string is a connection string
    assert local.account_name == "devstoreaccount1"
    assert storage.table_service_client(ACCOUNT_STRING).url.startswith(
        "https://acct.table.core.windows.net"
    )
    for client in (queue, table, blob, local):
        client.close()
