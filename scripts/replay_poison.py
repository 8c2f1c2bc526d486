"""Move dead-lettered messages from <queue>-poison back to <queue> once the cause is fixed.

    python scripts/replay_poison.py activity-persist [--limit N]

Reads AzureWebJobsStorage (or --connection). Replaying is safe: every sink
ignores events it already stored.
"""

from __future__ import annotations

import argparse
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
    connection = args.connection or get_settings().storage_connection
    moved = replay_poison(connection, args.queue, args.limit)
    print(f"moved {moved} message(s) from {args.queue}-poison to {args.queue}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
