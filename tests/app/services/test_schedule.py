"""The schedule rules: cron shapes, descriptions and fire times across DST."""

from datetime import datetime

import pytest

from app.services.schedule import ScheduleError, describe, next_fire_time, parse_schedule


def fires(type_, expression, zone, after, count):
    schedule = parse_schedule(type_, expression, zone, now=datetime(2000, 1, 1))
    times = []
    for _ in range(count):
        after = next_fire_time(schedule, after)
        times.append(after)
    return times


@pytest.mark.parametrize(
    ("type_", "expression", "text"),
    [
        ("daily", "0 2 * * *", "daily at 2:00 AM"),
        ("daily", "0 0 * * *", "daily at 12:00 AM"),
        ("daily", "45 12 * * *", "daily at 12:45 PM"),
        ("daily", "59 23 * * *", "daily at 11:59 PM"),
        ("hourly", "15 * * * *", "hourly at minute 15"),
        ("weekly", "0 2 * * 0", "weekly on Sunday at 2:00 AM"),
        ("weekly", "0 2 * * 7", "weekly on Sunday at 2:00 AM"),
        ("weekly", "0 2 * * MON", "weekly on Monday at 2:00 AM"),
        ("monthly", "0 2 1 * *", "monthly on day 1 at 2:00 AM"),
        ("monthly", "0 2 L * *", "monthly on the last day at 2:00 AM"),
        ("custom", "* * * * *", "every minute"),
        ("custom", "0 0 1 1 *", "at 12:00 AM on day 1 of the month in January"),
        ("custom", "0 */6 * * *", "at minute 0 of every 6 hours"),
    ],
)
def test_description(type_, expression, text):
    assert describe(parse_schedule(type_, expression, "UTC")) == text


@pytest.mark.parametrize(
    ("type_", "expression"),
    [
        ("hourly", "0 */2 * * *"),
        ("daily", "0 2,14 * * *"),
        ("daily", "0 2 * * 1-5"),
        ("weekly", "0 2 * * 1,3"),
        ("monthly", "0 2 1,15 * *"),
        ("monthly", "0 2 1 1 *"),
    ],
)
def test_shape_must_agree_with_type(type_, expression):
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(type_, expression, "UTC")
    assert caught.value.field == "description"


def test_daily_in_utc():
    assert fires("daily", "0 2 * * *", "UTC", datetime(2026, 1, 1, 2, 0), 2) == [
        datetime(2026, 1, 2, 2, 0),
        datetime(2026, 1, 3, 2, 0),
    ]


def test_spring_forward_gap_fires_at_first_instant_after_it():
    # New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC); 02:30 does not exist.
    assert fires("daily", "30 2 * * *", "America/New_York", datetime(2026, 3, 7, 12), 3) == [
        datetime(2026, 3, 8, 7, 0),  # 03:00 EDT, the first instant after the gap
        datetime(2026, 3, 9, 6, 30),  # 02:30 EDT
        datetime(2026, 3, 10, 6, 30),
    ]


def test_gap_times_collapse_into_one_fire():
    times = fires("custom", "*/15 * * * *", "America/New_York", datetime(2026, 3, 8, 6, 40), 4)

    assert times == [
        datetime(2026, 3, 8, 6, 45),  # 01:45 EST
        datetime(2026, 3, 8, 7, 0),  # 02:00..02:45 and 03:00 EDT all land here: once
        datetime(2026, 3, 8, 7, 15),
        datetime(2026, 3, 8, 7, 30),
    ]


def test_fall_back_repeated_time_fires_once():
    # New York, 2026-11-01: 01:00-02:00 happens twice (EDT, then EST).
    assert fires("daily", "30 1 * * *", "America/New_York", datetime(2026, 10, 31, 12), 3) == [
        datetime(2026, 11, 1, 5, 30),  # 01:30 EDT, the first of the two; not again at 06:30Z
        datetime(2026, 11, 2, 6, 30),  # 01:30 EST
        datetime(2026, 11, 3, 6, 30),
    ]


def test_hourly_through_fall_back_skips_the_repeated_hour_once():
    times = fires("hourly", "0 * * * *", "America/New_York", datetime(2026, 11, 1, 4, 30), 3)

    # 01:00 EDT (05:00Z) fires; 01:00 EST (06:00Z) is the same wall time and does not.
    assert times == [
        datetime(2026, 11, 1, 5, 0),
        datetime(2026, 11, 1, 7, 0),
        datetime(2026, 11, 1, 8, 0),
    ]


def test_seoul_has_no_dst():
    assert fires("daily", "0 2 * * *", "Asia/Seoul", datetime(2026, 6, 1), 1) == [
        datetime(2026, 6, 1, 17, 0)
    ]


def test_once_fires_once():
    schedule = parse_schedule("once", "2030-01-31T02:00:00", "Asia/Seoul")

    assert next_fire_time(schedule, datetime(2029, 1, 1)) == datetime(2030, 1, 30, 17, 0)
    assert next_fire_time(schedule, datetime(2030, 1, 30, 17, 0)) is None


def test_once_in_the_past_and_unknown_zone_are_refused():
    with pytest.raises(ScheduleError):
        parse_schedule("once", "2020-01-01T00:00:00Z", "UTC")
    with pytest.raises(ScheduleError) as caught:
        parse_schedule("daily", "0 2 * * *", "Not/AZone")
    assert caught.value.field == "timezone"
