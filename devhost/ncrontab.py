"""Timer schedules as the Functions host reads them: NCRONTAB expressions or TimeSpans.

NCRONTAB is cron with an optional leading seconds field
(`sec min hour day month day-of-week`; five fields mean seconds = 0). As in the
NCrontab library the host uses, day-of-month and day-of-week must *both* match
(unlike Vixie cron, which matches either), `a/n` means `a-max/n`, days of the
week run 0-6 from Sunday, and month/day names may be abbreviated.
A schedule without spaces is a TimeSpan (`hh:mm:ss`): run every interval.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from devhost.timespan import parse_timespan

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")

# A schedule that matches nothing (say, 30 February) must fail rather than loop for ever.
_SEARCH_YEARS = 50


class ScheduleError(ValueError):
    """The schedule text is neither a valid NCRONTAB expression nor a TimeSpan."""


class Schedule(Protocol):
    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (same tzinfo as `moment`)."""
        ...


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()

    def parse(self, text: str) -> frozenset[int]:
        values: set[int] = set()
        for part in text.split(","):
            values.update(self._parse_part(part))
        return frozenset(values)

    def _parse_part(self, part: str) -> range:
        if not part:
            raise ScheduleError(f"empty value in the {self.name} field")
        step = 1
        stepped = "/" in part
        if stepped:
            part, step_text = part.split("/", 1)
            step = self._number(step_text)
            if step < 1:
                raise ScheduleError(f"step must be at least 1 in the {self.name} field")
        if part == "*":
            first, last = self.low, self.high
        elif "-" in part:
            first_text, last_text = part.split("-", 1)
            first, last = self._value(first_text), self._value(last_text)
        else:
            first = self._value(part)
            last = self.high if stepped else first
        if first > last:
            raise ScheduleError(f"range {first}-{last} is backwards in the {self.name} field")
        return range(first, last + 1, step)

    def _value(self, text: str) -> int:
        value = self._number(text) if text[:1].isdigit() else self._named(text)
        if not self.low <= value <= self.high:
            raise ScheduleError(
                f"{value} is outside {self.low}-{self.high} in the {self.name} field"
            )
        return value

    def _named(self, text: str) -> int:
        lowered = text.lower()
        if len(lowered) >= 3:
            for index, name in enumerate(self.names):
                if name.startswith(lowered):
                    return self.low + index
        raise ScheduleError(f"{text!r} is not a valid {self.name} value")

    def _number(self, text: str) -> int:
        if not text.isdigit():
            raise ScheduleError(f"{text!r} is not a number in the {self.name} field")
        return int(text)


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DAY = _Field("day", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS)
_WEEKDAY = _Field("day-of-week", 0, 6, _DAYS)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed NCRONTAB expression."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        fields = expression.split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            raise ScheduleError(
                f"{expression!r} must have 6 fields (sec min hour day month day-of-week) or 5"
            )
        parsers = (_SECOND, _MINUTE, _HOUR, _DAY, _MONTH, _WEEKDAY)
        sec, minute, hour, day, month, weekday = (
            p.parse(text) for p, text in zip(parsers, fields, strict=True)
        )
        return cls(expression, sec, minute, hour, day, month, weekday)

    def next_after(self, moment: datetime) -> datetime:
        candidate = moment.replace(microsecond=0) + timedelta(seconds=1)
        give_up = candidate.year + _SEARCH_YEARS
        # Each step jumps to the start of the next unit that could still match,
        # so the loop runs at most a few hundred times per year searched.
        while candidate.year <= give_up:
            if candidate.month not in self.months:
                candidate = _start_of_next_month(candidate)
            elif not self._day_matches(candidate):
                candidate = candidate.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0, second=0) + timedelta(hours=1)
            elif candidate.minute not in self.minutes:
                candidate = candidate.replace(second=0) + timedelta(minutes=1)
            elif candidate.second not in self.seconds:
                candidate += timedelta(seconds=1)
            else:
                return candidate
        raise ScheduleError(f"{self.expression!r} has no occurrence after {moment.isoformat()}")

    def _day_matches(self, moment: datetime) -> bool:
        cron_weekday = (moment.weekday() + 1) % 7  # Python's Monday=0 to cron's Sunday=0
        return moment.day in self.days and cron_weekday in self.weekdays


@dataclass(frozen=True)
class IntervalSchedule:
    """A TimeSpan schedule: every `interval`, counted from the last occurrence."""

    expression: str
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


def parse_schedule(expression: str) -> CronSchedule | IntervalSchedule:
    """Parse a timer trigger's schedule the way the host does: NCRONTAB, else TimeSpan."""
    text = expression.strip()
    if " " in text:
        return CronSchedule.parse(text)
    try:
        interval = parse_timespan(text)
    except ValueError as exc:
        raise ScheduleError(f"{expression!r} is neither NCRONTAB nor a TimeSpan") from exc
    if interval <= timedelta(0):
        raise ScheduleError(f"{expression!r}: a TimeSpan schedule must be positive")
    return IntervalSchedule(text, interval)


def _start_of_next_month(moment: datetime) -> datetime:
    days_left = calendar.monthrange(moment.year, moment.month)[1] - moment.day + 1
    return moment.replace(hour=0, minute=0, second=0) + timedelta(days=days_left)
