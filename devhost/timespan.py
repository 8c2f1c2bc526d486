""".NET TimeSpan strings, the duration format of host.json (`[d.]hh:mm[:ss[.fffffff]]`)."""

from __future__ import annotations

import re
from datetime import timedelta

_TIMESPAN = re.compile(
    r"^(?P<sign>-)?(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{1,2})"
    r"(?::(?P<seconds>\d{1,2})(?:\.(?P<fraction>\d{1,7}))?)?$"
)


def parse_timespan(text: str) -> timedelta:
    """Parse `hh:mm:ss`, `hh:mm`, `d.hh:mm:ss.fff` or a bare number of days."""
    stripped = text.strip()
    if stripped.isdigit():
        return timedelta(days=int(stripped))
    match = _TIMESPAN.match(stripped)
    if match is None:
        raise ValueError(f"{text!r} is not a TimeSpan (expected hh:mm:ss)")
    hours, minutes = int(match["hours"]), int(match["minutes"])
    seconds = int(match["seconds"] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"{text!r} is not a TimeSpan (a component is out of range)")
    fraction = float(f"0.{match['fraction']}") if match["fraction"] else 0.0
    span = timedelta(
        days=int(match["days"] or 0), hours=hours, minutes=minutes, seconds=seconds + fraction
    )
    return -span if match["sign"] else span


def format_timespan(span: timedelta) -> str:
    """`hh:mm:ss[.fffffff]`, as .NET writes a TimeSpan (days folded into hours)."""
    whole = int(span.total_seconds())
    hours, rest = divmod(whole, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{hours:02}:{minutes:02}:{seconds:02}"
    return f"{text}.{span.microseconds:06}0" if span.microseconds else text
