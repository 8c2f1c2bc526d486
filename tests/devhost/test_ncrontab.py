"""NCRONTAB and TimeSpan schedules: parsing and next occurrences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from devhost.ncrontab import CronSchedule, IntervalSchedule, ScheduleError, parse_schedule


def next_after(expression: str, moment: str) -> str:
    return CronSchedule.parse(expression).next_after(datetime.fromisoformat(moment)).isoformat()


@pytest.mark.parametrize(
    ("expression", "moment", "expected"),
    [
        # every five minutes, on the minute
        ("0 */5 * * * *", "2024-01-01T00:02:30", "2024-01-01T00:05:00"),
        # strictly after: a moment on the schedule gives the following occurrence
        ("0 */5 * * * *", "2024-01-01T00:05:00", "2024-01-01T00:10:00"),
        ("*/15 * * * * *", "2024-01-01T10:00:14.900", "2024-01-01T10:00:15"),
        ("*/15 * * * * *", "2024-01-01T10:00:45", "2024-01-01T10:01:00"),
        # rolls over hour, day, month and year
        ("0 0 * * * *", "2024-12-31T23:59:59", "2025-01-01T00:00:00"),
        # weekdays at 09:30: Friday after 09:30 -> Monday
        ("0 30 9 * * 1-5", "2024-01-05T10:00:00", "2024-01-08T09:30:00"),
        # 29 February only exists in leap years
        ("0 0 0 29 2 *", "2023-03-01T00:00:00", "2024-02-29T00:00:00"),
        # month and day names, case-insensitive, abbreviated or not
        ("0 0 12 1 JAN,july *", "2024-01-02T00:00:00", "2024-07-01T12:00:00"),
        ("0 0 8 * * Sat,sunday", "2024-01-01T00:00:00", "2024-01-06T08:00:00"),
        ("0 0 8 * * sun", "2024-01-06T09:00:00", "2024-01-07T08:00:00"),
        # day-of-month AND day-of-week (NCrontab), so Friday the 13th, not "13th or Friday"
        ("0 0 0 13 * fri", "2024-01-01T00:00:00", "2024-09-13T00:00:00"),
        # five fields: seconds are 0
        ("*/10 * * * *", "2024-01-01T00:00:01", "2024-01-01T00:10:00"),
        # a/n means a, a+n, ... up to the field's maximum
        ("5/20 * * * * *", "2024-01-01T00:00:26", "2024-01-01T00:00:45"),
        # stepped range and list
        ("1-10/4,30 * * * * *", "2024-01-01T00:00:05", "2024-01-01T00:00:09"),
        ("1-10/4,30 * * * * *", "2024-01-01T00:00:09", "2024-01-01T00:00:30"),
        # month skipping keeps the hour/minute fields at their first value
        ("30 15 6 * 3 *", "2024-01-20T10:00:00", "2024-03-01T06:15:30"),
    ],
)
def test_next_occurrence(expression: str, moment: str, expected: str) -> None:
    assert next_after(expression, moment) == expected


def test_fields_expand_as_written() -> None:
    schedule = CronSchedule.parse("1-10/2 0,30 */6 1 jan-mar sun")
    assert schedule.seconds == frozenset({1, 3, 5, 7, 9})
    assert schedule.minutes == frozenset({0, 30})
    assert schedule.hours == frozenset({0, 6, 12, 18})
    assert schedule.days == frozenset({1})
    assert schedule.months == frozenset({1, 2, 3})
    assert schedule.weekdays == frozenset({0})


def test_a_sequence_of_occurrences() -> None:
    schedule = CronSchedule.parse("0 0 */8 * * *")
    moment = datetime(2024, 5, 1, 1, 0)
    seen = []
    for _ in range(4):
        moment = schedule.next_after(moment)
        seen.append(moment.strftime("%d %H:%M"))
    assert seen == ["01 08:00", "01 16:00", "02 00:00", "02 08:00"]


def test_time_zone_is_kept() -> None:
    zone = ZoneInfo("Europe/Paris")
    moment = datetime(2024, 6, 1, 8, 59, 59, tzinfo=zone)
    occurrence = CronSchedule.parse("0 0 9 * * *").next_after(moment)
    assert occurrence == datetime(2024, 6, 1, 9, 0, tzinfo=zone)
    assert occurrence.astimezone(UTC).hour == 7  # 09:00 Paris summer time


@pytest.mark.parametrize(
    "expression",
    [
        "* * * *",  # too few fields
        "* * * * * * *",  # too many
        "60 * * * * *",  # second out of range
        "* * 24 * * *",  # hour out of range
        "* * * 0 * *",  # days start at 1
        "* * * * 13 *",  # twelve months
        "* * * * * 7",  # NCrontab days of the week are 0-6
        "*/0 * * * * *",  # a zero step
        "10-5 * * * * *",  # backwards range
        "a * * * * *",  # not a number
        "* * * * ju *",  # a name needs three letters
        "* * * * * funday",
        ",5 * * * * *",
    ],
)
def test_invalid_expressions(expression: str) -> None:
    with pytest.raises(ScheduleError):
        CronSchedule.parse(expression)


def test_a_schedule_that_never_occurs_fails() -> None:
    with pytest.raises(ScheduleError, match="no occurrence"):
        CronSchedule.parse("0 0 0 30 2 *").next_after(datetime(2024, 1, 1))


def test_timespan_schedules() -> None:
    schedule = parse_schedule("00:05:00")
    assert isinstance(schedule, IntervalSchedule)
    moment = datetime(2024, 1, 1, 12, 0, 0, 250000)
    assert schedule.next_after(moment) == moment + timedelta(minutes=5)
    assert parse_schedule("1.00:00:00").next_after(moment) == moment + timedelta(days=1)


def test_parse_schedule_prefers_ncrontab() -> None:
    assert isinstance(parse_schedule(" 0 */5 * * * * "), CronSchedule)
    with pytest.raises(ScheduleError):
        parse_schedule("every-five-minutes")
    with pytest.raises(ScheduleError):
        parse_schedule("00:00:00")
