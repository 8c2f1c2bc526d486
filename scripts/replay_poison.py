"""Move dead-lettered messages from <queue>-poison back to <queue> once the cause is fixed.

    make replay-poison QUEUE=activity-persist [ARGS="--limit N"]
    .venv/bin/python scripts/replay_poison.py activity-persist [--limit N]

Reads AzureWebJobsStorage from the environment, else local.settings.json (or
--connection). Replaying is safe: every sink ignores events it already stored.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.repositories.queue import replay_poison
from shared.settings import get_settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("queue", help="the queue whose -poison queue to drain")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--connection", default=None, help="storage connection string")
    args = parser.parse_args()
    # The Functions setting name, as the host and the app read it.
    connection = args.connection or os.environ.get("AzureWebJobsStorage") or _local_storage()  # noqa: SIM112
    moved = replay_poison(connection or get_settings().storage_connection, args.queue, args.limit)
    print(f"moved {moved} message(s) from {args.queue}-poison to {args.queue}")
    return 0


def _local_storage() -> str | None:
    """AzureWebJobsStorage from local.settings.json, as the local host reads it."""
    path = Path(__file__).resolve().parent.parent / "local.settings.json"
    if not path.is_file():
        return None
    value = json.loads(path.read_text()).get("Values", {}).get("AzureWebJobsStorage")
    return str(value) if value else None


if __name__ == "__main__":
    raise SystemExit(main())
