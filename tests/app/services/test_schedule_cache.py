"""next_fire_time and describe are cached (every item of GET /backups and every registration
asks them): a cached answer is always the one computing it afresh would give."""

from datetime import datetime, timedelta

import pytest

from app.services import schedule as schedule_module
from app.services.schedule import Schedule, describe, next_fire_time


def fresh(schedule: Schedule, after: datetime) -> datetime | None:
    return schedule_module._next_fire_time(schedule, after)


@pytest.mark.parametrize(
    "schedule",
    [
        Schedule("daily", "0 2 * * *", "UTC"),
        Schedule("hourly", "30 * * * *", "Asia/Seoul"),
        Schedule("daily", "30 2 * * *", "Europe/Berlin"),  # a DST gap and a repeated hour
        Schedule("custom", "*/15 9-17 * * 1-5", "America/New_York"),
        Schedule("once", "2030-01-31T02:00:00", "Asia/Seoul"),
    ],
)
def test_cached_fire_times_are_the_computed_ones(schedule):
    start = datetime(2030, 3, 30, 23, 0)  # the weekend Europe springs forward
    moments = [start + timedelta(minutes=7 * k) for k in range(200)]
    moments += [fire for fire in (fresh(schedule, m) for m in moments[:20]) if fire]
    moments += [fire - timedelta(microseconds=1) for fire in moments[-10:]]

    for moment in moments:  # in order, then again out of order
        assert next_fire_time(schedule, moment) == fresh(schedule, moment), moment
    for moment in reversed(moments):
        assert next_fire_time(schedule, moment) == fresh(schedule, moment), moment


def test_a_fire_time_is_strictly_after_even_when_cached():
    schedule = Schedule("daily", "0 2 * * *", "UTC")
    fire = next_fire_time(schedule, datetime(2030, 5, 1, 0, 0))

    assert fire == datetime(2030, 5, 1, 2, 0)
    assert next_fire_time(schedule, fire) == datetime(2030, 5, 2, 2, 0)
    assert next_fire_time(schedule, fire - timedelta(seconds=1)) == fire


def test_the_description_of_a_schedule_is_computed_once():
    schedule = Schedule("daily", "0 2 * * *", "UTC")
    describe.cache_clear()

    texts = {describe(schedule) for _ in range(5)}

    assert texts == {"daily at 2:00 AM"}
    assert describe.cache_info().misses == 1
