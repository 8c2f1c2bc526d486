"""Create local.settings.json from local.settings.sample.json, with names of this checkout.

Two checkouts on one machine share its Azurite, PostgreSQL and Redis. With the
sample's names they would consume each other's queue messages and write into
one database, so each checkout gets its own: the sample's queue, table,
container, Redis prefix and database names with a suffix made from the
checkout's path (the same suffix every time for the same checkout).

    .venv/bin/python -m scripts.local_settings [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "local.settings.sample.json"
TARGET = ROOT / "local.settings.json"


def checkout_suffix(root: Path = ROOT) -> str:
    """Six hex digits naming this checkout (stable for its path)."""
    return hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:6]


def with_own_names(values: dict[str, Any], suffix: str) -> dict[str, Any]:
    """The sample's values with per-checkout names for every shared resource."""
    named = dict(values)
    for setting in ("PERSIST_QUEUE", "ARCHIVE_QUEUE", "REALTIME_QUEUE", "PAYLOAD_CONTAINER"):
        base, _, kind = str(values[setting]).rpartition("-")
        named[setting] = f"{base}-{suffix}-{kind}"
    named["ARCHIVE_TABLE_PREFIX"] = f"{values['ARCHIVE_TABLE_PREFIX']}{suffix}"
    named["REDIS_PREFIX"] = f"{str(values['REDIS_PREFIX']).rstrip(':')}:{suffix}:"
    dsn, _, database = str(values["POSTGRES_DSN"]).rpartition("/")
    named["POSTGRES_DSN"] = f"{dsn}/{database}_{suffix}"
    return named


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args()
    if TARGET.exists() and not args.force:
        print(f"settings: {TARGET.name} exists; left as it is (--force to recreate it)")
        return 0
    document = json.loads(SAMPLE.read_text())
    suffix = checkout_suffix()
    document["Values"] = with_own_names(document["Values"], suffix)
    TARGET.write_text(json.dumps(document, indent=2) + "\n")
    print(
        f"settings: created {TARGET.name} from {SAMPLE.name}, with this checkout's own "
        f"queue, table, container, Redis prefix and database names (suffix {suffix})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
