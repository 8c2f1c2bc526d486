"""The one place that turns a storage connection into SDK clients (SPEC 14).

A ``StorageConnection`` (shared/settings.py) is a connection string (local use:
``UseDevelopmentStorage=true``) or identity-based settings. For a connection
string the clients are built from it, exactly as before; for an identity the
client gets the service endpoint and a token credential:

- ``X__credential=managedidentity``: ``ManagedIdentityCredential(client_id=X__clientId)``;
- no ``X__credential``: ``DefaultAzureCredential(managed_identity_client_id=X__clientId)``.

Credentials are cached per process (one per kind and client id), so every
client of one identity shares its token cache. The async credentials the local
host's pollers use belong to an event loop, so their owner creates and closes
them (``new_async_credential``).

Options (timeouts, retry policy) are passed through to the SDK client unchanged.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from shared.settings import StorageConnection

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.storage.queue.aio import QueueClient as AsyncQueueClient

# What a caller may pass: a typed connection, or a plain connection string.
Connection = StorageConnection | str


def as_connection(connection: Connection) -> StorageConnection:
    """A plain string is a connection string."""
    if isinstance(connection, str):
        return StorageConnection.from_string(connection)
    return connection


@lru_cache(maxsize=8)
def _credential(managed_identity: bool, client_id: str | None) -> TokenCredential:
    # Imported here: azure.identity (and MSAL) cost start-up time that
    # connection strings never need.
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if managed_identity:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential(managed_identity_client_id=client_id)


def credential(connection: StorageConnection) -> TokenCredential:
    """The process-wide credential of an identity-based connection."""
    if not connection.identity_based:
        raise ValueError(f"{connection.name} is a connection string: it needs no credential")
    return _credential(connection.managed_identity, connection.client_id)


def clear_credentials() -> None:
    """Forget the cached credentials (tests that change the identity environment)."""
    _credential.cache_clear()


def new_async_credential(connection: StorageConnection) -> AsyncTokenCredential:
    """A new async credential for an identity-based connection; the caller closes it."""
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    if not connection.identity_based:
        raise ValueError(f"{connection.name} is a connection string: it needs no credential")
    if connection.managed_identity:
        return ManagedIdentityCredential(client_id=connection.client_id)
    return DefaultAzureCredential(managed_identity_client_id=connection.client_id)


def queue_service_client(connection: Connection, **options: Any) -> QueueServiceClient:
    conn = as_connection(connection)
    if conn.connection_string is not None:
        return QueueServiceClient.from_connection_string(conn.connection_string, **options)
    return QueueServiceClient(conn.service_uri("queue"), credential=credential(conn), **options)


def blob_service_client(connection: Connection, **options: Any) -> BlobServiceClient:
    conn = as_connection(connection)
    if conn.connection_string is not None:
        return BlobServiceClient.from_connection_string(conn.connection_string, **options)
    return BlobServiceClient(conn.service_uri("blob"), credential=credential(conn), **options)


def table_service_client(connection: Connection, **options: Any) -> TableServiceClient:
    conn = as_connection(connection)
    if conn.connection_string is not None:
        # azure-data-tables 12.7 expands UseDevelopmentStorage=true to Azurite's
        # well-known account itself.
        return TableServiceClient.from_connection_string(conn.connection_string, **options)
    return TableServiceClient(conn.service_uri("table"), credential=credential(conn), **options)


def async_queue_client(
    connection: Connection,
    queue_name: str,
    async_credential: AsyncTokenCredential | None = None,
    **options: Any,
) -> AsyncQueueClient:
    """An asyncio queue client; an identity-based connection needs ``async_credential``
    (from ``new_async_credential``, owned by the caller)."""
    from azure.storage.queue.aio import QueueClient

    conn = as_connection(connection)
    if conn.connection_string is not None:
        return QueueClient.from_connection_string(conn.connection_string, queue_name, **options)
    if async_credential is None:
        raise ValueError(f"{conn.name} is identity-based: an async credential is needed")
    return QueueClient(
        conn.service_uri("queue"), queue_name, credential=async_credential, **options
    )
