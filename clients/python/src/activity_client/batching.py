"""Encoding events and cutting them into requests the API accepts (pure functions)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any, TypeVar
from uuid import UUID

T = TypeVar("T")

# The API's limits per request (SPEC 3; published under x-limits in the OpenAPI document).
MAX_EVENTS_PER_REQUEST = 500
MAX_REQUEST_BYTES = 1024 * 1024

_PREFIX = b'{"events":['
_SUFFIX = b"]}"
_SEPARATOR = b","
# The largest single event that still fits one request, envelope included.
MAX_EVENT_BYTES = MAX_REQUEST_BYTES - len(_PREFIX) - len(_SUFFIX)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(
                f"datetime {value.isoformat()} has no time zone; the API rejects timestamps "
                "without one (use e.g. datetime.now(UTC))"
            )
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode_event(event: Mapping[str, Any]) -> bytes:
    """One event as compact UTF-8 JSON.

    datetimes (with a time zone) and UUIDs become strings. NaN and infinity
    raise ValueError here: they are not JSON, and the server would refuse the
    whole request they travel in, sinking the other events with it.
    """
    text = json.dumps(
        event, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
    )
    return text.encode("utf-8")


def request_body(encoded: Iterable[bytes]) -> bytes:
    """``{"events": [...]}`` from events already encoded by ``encode_event``."""
    return _PREFIX + _SEPARATOR.join(encoded) + _SUFFIX


def body_size(sizes: Iterable[int]) -> int:
    """Bytes of the request body that carries events of these encoded sizes."""
    count = 0
    total = len(_PREFIX) + len(_SUFFIX)
    for size in sizes:
        total += size
        count += 1
    return total + max(0, count - 1) * len(_SEPARATOR)


def batch_length(sizes: Iterable[int], max_events: int, max_bytes: int = MAX_REQUEST_BYTES) -> int:
    """How many of the leading events (by encoded size) go in the next request.

    At most ``max_events``, and as many as keep the body within ``max_bytes``;
    always at least one, so an oversized event still leaves the queue (the
    client refuses those at ``send``, so it never happens there).
    """
    if max_events < 1:
        raise ValueError("max_events must be at least 1")
    total = len(_PREFIX) + len(_SUFFIX)
    count = 0
    for size in sizes:
        if count == max_events:
            break
        grown = total + size + (len(_SEPARATOR) if count else 0)
        if count and grown > max_bytes:
            break
        total = grown
        count += 1
    return count


def split_in_half(items: Sequence[T]) -> tuple[list[T], list[T]]:
    """The two halves of a request the server found too large (413), first half first."""
    if len(items) < 2:
        raise ValueError("a request of one event cannot be split")
    middle = (len(items) + 1) // 2
    return list(items[:middle]), list(items[middle:])
