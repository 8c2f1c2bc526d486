"""Move dead-lettered messages from <queue>-poison back to <queue> once the cause is fixed.

    make replay-poison QUEUE=activity-persist [ARGS="--limit N"]
    .venv/bin/python -m scripts.replay_poison activity-persist [--limit N]

The storage account is AzureWebJobsStorage as the app reads it: from the
environment, else from local.settings.json (or --connection, a connection
string). Identity-based settings work too, e.g. against the deployed account:

    AzureWebJobsStorage__accountName=<account> .venv/bin/python -m scripts.replay_poison ...

(no AzureWebJobsStorage__credential: DefaultAzureCredential, i.e. your `az login`;
the identity needs the Storage Queue Data Contributor role). Replaying is safe:
every sink ignores events it already stored.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from shared.repositories.queue import replay_poison
from shared.settings import (
    DEV_STORAGE,
    StorageConnection,
    StorageSettingError,
    parse_storage_connection,
)

SETTING = "AzureWebJobsStorage"  # the Functions setting name, as the host and the app read it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("queue", help="the queue whose -poison queue to drain")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--connection", default=None, help="storage connection string")
    args = parser.parse_args()
    try:
        connection = (
            StorageConnection.from_string(args.connection, "--connection")
            if args.connection
            else storage_connection(os.environ, _local_values())
        )
    except StorageSettingError as exc:
        print(f"replay_poison: {exc}", file=sys.stderr)
        return 2
    moved = replay_poison(connection, args.queue, args.limit)
    print(f"moved {moved} message(s) from {args.queue}-poison to {args.queue}")
    return 0


def storage_connection(
    environ: Mapping[str, str], local_values: Mapping[str, str]
) -> StorageConnection:
    """The connection as defined by the environment, else by local.settings.json, else
    the local emulator: whichever defines it first, in either form, is used whole."""
    for values in (environ, local_values):
        connection = parse_storage_connection(SETTING, values, ("queue",))
        if connection is not None:
            return connection
    return StorageConnection.from_string(DEV_STORAGE, SETTING)


def _local_values() -> dict[str, str]:
    """The Values of local.settings.json, as the local host reads them."""
    path = Path(__file__).resolve().parent.parent / "local.settings.json"
    if not path.is_file():
        return {}
    values = json.loads(path.read_text()).get("Values", {})
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


if __name__ == "__main__":
    raise SystemExit(main())
