"""Events as columns: how ``bulk`` hands them out, and the numpy helpers it draws them with.

A ``Table`` holds one event type's events as ``Column`` s named and ordered
like the model's fields; ``Table.events`` reads them back as the events a
client would send.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scripts.eventgen.model import Event, Weighted

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]


# Ids of what is made per event: a prefix per kind, then the running number.
ID_PREFIX = {
    "lesson_progress": "10000000",
    "quiz_attempt": "20000000",
    "attempt": "30000000",
    "forum_activity": "40000000",
    "post": "50000000",
    "thread": "c0000000",
    "content_activity": "60000000",
    "content": "70000000",
    "feedback": "80000000",
    "submission": "90000000",
    "live_class_engagement": "a0000000",
    "poll": "b0000000",
    "session": "d0000000",
}


def numbered_ids(kind: str, numbers: Sequence[int] | Ints) -> list[str]:
    """Valid UUID strings, one per number, distinct for each kind and number."""
    prefix = ID_PREFIX[kind]
    return [f"{prefix}-0000-4000-8000-{int(n):012x}" for n in numbers]


@dataclass(frozen=True)
class Column:
    """One field of a table's events.

    ``kind`` says how ``values`` hold it: ``text`` (str or None), ``time``
    (epoch seconds, NaN for null), ``int``, ``float`` (NaN for null),
    ``bool``, ``array`` (tuples of str) or ``json`` (an object as JSON text).
    """

    kind: str
    values: Any


@dataclass(frozen=True)
class Table:
    """One event type's events, as columns named and ordered like the model's fields."""

    type: str
    columns: dict[str, Column]

    def __len__(self) -> int:
        return len(self.columns["event_id"].values)

    def events(self) -> Iterator[Event]:
        """The rows as events (JSON-ready, as a client would send them)."""
        names = list(self.columns)
        readers = [_reader(self.columns[name]) for name in names]
        for i in range(len(self)):
            event: Event = {"type": self.type}
            for name, read in zip(names, readers, strict=True):
                value = read(i)
                if value is not None or name not in OPTIONAL_ABSENT:
                    event[name] = value
            yield event


# Optional fields a client leaves out rather than sends as null.
OPTIONAL_ABSENT = {"content", "parent_post_id", "changes_summary", "score"}


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _reader(column: Column) -> Any:
    values = column.values
    if column.kind == "time":
        return lambda i: None if math.isnan(values[i]) else iso(float(values[i]))
    if column.kind == "float":
        return lambda i: None if math.isnan(values[i]) else float(values[i])
    if column.kind == "int":
        return lambda i: int(values[i])
    if column.kind == "bool":
        return lambda i: bool(values[i])
    if column.kind == "array":
        return lambda i: list(values[i])
    if column.kind == "json":
        return lambda i: json.loads(values[i])
    return lambda i: values[i]


# --- helpers over groups of rows -----------------------------------------------------------


def cumulative(weighted: Weighted[Any]) -> Floats:
    """A ``Weighted``'s cumulative weights, for ``pick``."""
    return np.asarray(weighted.cumulative, dtype=np.float64)


def pick(rng: np.random.Generator, weights: Floats, size: int) -> Ints:
    """Indexes drawn with the cumulative ``weights`` (as ``Weighted.pick``, vectorised)."""
    points = rng.random(size) * weights[-1]
    picked: Ints = np.minimum(np.searchsorted(weights, points), len(weights) - 1).astype(np.int64)
    return picked


def group_starts(groups: Ints) -> tuple[Ints, Ints]:
    """For rows sorted by group: each row's group number and where each group starts."""
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    number = np.cumsum(np.r_[True, groups[1:] != groups[:-1]]) - 1
    return number.astype(np.int64), starts.astype(np.int64)


def running_max(values: Floats, number: Ints) -> Floats:
    """The maximum so far within each group (rows sorted by group, ``values`` >= 0)."""
    shift = float(values.max(initial=0.0)) + 1.0
    lifted = values + number * shift
    result: Floats = np.maximum.accumulate(lifted) - number * shift
    return result


def templated(
    rng: np.random.Generator, templates: Sequence[str], topics: Sequence[str]
) -> list[str]:
    """``World.text`` for many topics: a template each, with a number from 1 to 9."""
    chosen = rng.integers(0, len(templates), len(topics))
    numbers = rng.integers(1, 10, len(topics))
    return [
        templates[t].format(topic=topic, n=int(k))
        for t, topic, k in zip(chosen, topics, numbers, strict=True)
    ]
