"""Schedules: the one place that turns cron into text and into fire times.

Validation (`parse_schedule`), the plain-English description (`describe`) and the fire
times beat uses (`next_fire_time`) all go through croniter, so what the API accepts is
exactly what beat later computes.

Fire times follow the job's time zone. A wall-clock time that does not exist that day
(spring forward) fires at the first instant after the gap; one that occurs twice (fall
back) fires once, at its first occurrence.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from app.i18n import t
from app.timeutil import as_naive_utc, utcnow

ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
}
WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip

# How many cron candidates next_fire_time examines before giving up (bounded loop).
_MAX_CANDIDATES = 10_000
# How many schedules the pure functions below remember (descriptions, fields, fire times).
_CACHED_SCHEDULES = 4096


class ScheduleError(ValueError):
    """A schedule that cannot be accepted; `field` is the schedule's field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Schedule:
    type: str
    expression: str  # as the user gave it: shown back as `schedule.basic`
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def cron(self) -> str:
        return ALIASES.get(self.expression.strip(), " ".join(self.expression.split()))

    @property
    def once_at(self) -> datetime:
        """For a `once` schedule: its instant, as naive UTC."""
        moment = datetime.fromisoformat(self.expression.strip().replace("z", "Z"))
        if moment.tzinfo is None:
            return wall_time_to_utc(moment, self.zone)
        return as_naive_utc(moment)


def parse_schedule(
    type_: str, expression: str, timezone: str, now: datetime | None = None
) -> Schedule:
    """A validated Schedule, or ScheduleError naming the field at fault."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError("timezone", t("timezone_invalid", tz=timezone)) from None
    schedule = Schedule(type_, expression, timezone)
    if type_ == "once":
        _check_once(schedule, now or utcnow())
    else:
        _check_shape(type_, _expand(expression))
        try:
            fires = next_fire_time(schedule, now or utcnow()) is not None
        except CroniterError:
            fires = False
        if not fires:  # e.g. "0 0 30 2 *": valid fields, but February has no 30th
            raise ScheduleError("description", t("cron_never_fires"))
    return schedule


def _check_once(schedule: Schedule, now: datetime) -> None:
    try:
        at = schedule.once_at
    except ValueError:
        raise ScheduleError("description", t("once_invalid")) from None
    if at <= as_naive_utc(now):
        raise ScheduleError("description", t("once_in_past"))


@functools.lru_cache(maxsize=_CACHED_SCHEDULES)
def _expand(expression: str) -> list[list]:
    """croniter's fields of `expression` (cached: callers must not change them)."""
    text = expression.strip()
    if text.startswith("@"):
        if text not in ALIASES:
            raise ScheduleError("description", t("cron_unknown_alias", alias=text))
        text = ALIASES[text]
    if len(text.split()) != 5:
        raise ScheduleError("description", t("cron_field_count"))
    try:
        expanded, _nth = croniter.expand(text)
    except (CroniterError, ValueError):
        raise _field_at_fault(text.split()) from None
    return expanded


# The five fields: (message key of the field's name, lowest, highest, what names it takes).
CRON_FIELDS = (
    ("cron_field_minute", 0, 59, ""),
    ("cron_field_hour", 0, 23, ""),
    ("cron_field_day", 1, 31, ", L"),
    ("cron_field_month", 1, 12, ", JAN-DEC"),
    ("cron_field_weekday", 0, 7, ", SUN-SAT"),
)


def _field_at_fault(fields: list[str]) -> ScheduleError:
    """Which field, which value and which range, in the request's language: croniter's
    own message is English and names neither the field nor the range. Each field is tried
    alone (the others `*`), then each comma-separated item of the failing field."""
    for index, field in enumerate(fields):
        if _accepted(fields, index, field):
            continue
        key, low, high, names = CRON_FIELDS[index]
        items = [item for item in field.split(",") if not _accepted(fields, index, item)]
        value = items[0] if items else field
        params = {"field": t(key), "value": value, "range": f"{low}-{high}{names}"}
        numbers = [int(n) for n in re.findall(r"\d+", value.split("/")[0])]
        if any(n < low or n > high for n in numbers):
            return ScheduleError("description", t("cron_out_of_range", **params))
        return ScheduleError("description", t("cron_bad_value", **params))
    return ScheduleError("description", t("cron_invalid", expression=" ".join(fields)))


def _accepted(fields: list[str], index: int, value: str) -> bool:
    alone = ["*"] * 5
    alone[index] = value
    try:
        croniter.expand(" ".join(alone))
    except (CroniterError, ValueError):
        return False
    return True


def _single(values: list) -> bool:
    return len(values) == 1 and values[0] != "*"


_SHAPES = {
    # type: (test on [minute, hour, day, month, weekday], message key of the rule in words)
    "hourly": (
        lambda m, h, d, mo, w: _single(m) and h == d == mo == w == ["*"],
        "cron_rule_hourly",
    ),
    "daily": (
        lambda m, h, d, mo, w: _single(m) and _single(h) and d == mo == w == ["*"],
        "cron_rule_daily",
    ),
    "weekly": (
        lambda m, h, d, mo, w: _single(m) and _single(h) and d == mo == ["*"] and _single(w),
        "cron_rule_weekly",
    ),
    "monthly": (
        lambda m, h, d, mo, w: _single(m) and _single(h) and _single(d) and mo == w == ["*"],
        "cron_rule_monthly",
    ),
}


def _check_shape(type_: str, expanded: list[list]) -> None:
    if type_ == "custom":
        return
    test, rule = _SHAPES[type_]
    if not test(*expanded):
        raise ScheduleError("description", t("cron_shape", type=type_, rule=t(rule)))


def _shape_of(expanded: list[list]) -> str | None:
    for name, (test, _rule) in _SHAPES.items():
        if test(*expanded):
            return name
    return None


# ---- description -------------------------------------------------------------------


def clock(hour: int, minute: int) -> str:
    """`2:00 AM`, `12:30 PM`, `12:00 AM` (midnight)."""
    suffix = "AM" if hour < 12 else "PM"
    return f"{(hour % 12) or 12}:{minute:02d} {suffix}"


@functools.lru_cache(maxsize=_CACHED_SCHEDULES)
def describe(schedule: Schedule) -> str:
    """Plain English: `0 2 * * *` -> `daily at 2:00 AM`. Pure, so cached per schedule
    (every item of GET /backups shows it)."""
    if schedule.type == "once":
        local = schedule.once_at.replace(tzinfo=UTC).astimezone(schedule.zone)
        return (
            f"once on {local:%Y-%m-%d} at {clock(local.hour, local.minute)} ({schedule.timezone})"
        )
    expanded = _expand(schedule.expression)
    minute, hour, day, month, weekday = expanded
    shape = _shape_of(expanded)
    if shape == "hourly":
        return f"hourly at minute {minute[0]}"
    if shape == "daily":
        return f"daily at {clock(hour[0], minute[0])}"
    if shape == "weekly":
        return f"weekly on {WEEKDAYS[weekday[0] % 7]} at {clock(hour[0], minute[0])}"
    if shape == "monthly":
        return f"monthly on {_day_name(day[0])} at {clock(hour[0], minute[0])}"
    return _describe_generic(schedule.cron.split(), expanded)


def _day_name(day) -> str:
    return "the last day" if day == "l" else f"day {day}"


def _list(values: list, names: list[str] | None = None) -> str:
    return ", ".join(names[v % len(names)] if names else str(v) for v in values)


def _describe_generic(raw: list[str], expanded: list[list]) -> str:
    minute, hour, day, month, weekday = expanded
    if _single(minute) and _single(hour):
        parts = [f"at {clock(hour[0], minute[0])}"]
    else:
        if raw[0] == "*":
            parts = ["every minute"]
        elif raw[0].startswith("*/"):
            parts = [f"every {raw[0][2:]} minutes"]
        else:
            parts = [f"at minute {_list(minute)}"]
        if raw[1].startswith("*/"):
            parts.append(f"of every {raw[1][2:]} hours")
        elif hour != ["*"]:
            parts.append(f"past hour {_list(hour)}")
    if day != ["*"]:
        parts.append("on " + ", ".join(_day_name(d) for d in day) + " of the month")
    if month != ["*"]:
        parts.append("in " + _list([m - 1 for m in month], MONTHS))
    if weekday != ["*"]:
        parts.append("on " + _list(weekday, WEEKDAYS))
    return " ".join(parts)


# ---- fire times ---------------------------------------------------------------------


def wall_time_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """The naive UTC instant of a naive wall-clock time in `zone`.

    Twice-occurring times give their first occurrence; times inside a spring-forward
    gap give the first instant after the gap.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first.replace(tzinfo=None)
    # Inside a gap: fold=1 reads the wall time with the offset after the transition,
    # which lands before the gap; fold=0 lands after it. Bisect for the transition.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first
    for _ in range(64):
        if high - low <= timedelta(seconds=1):
            break
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(tzinfo=None, microsecond=0)


def next_fire_time(schedule: Schedule, after: datetime) -> datetime | None:
    """The first fire time strictly after `after`, as naive UTC; None when there is none.

    Cached per schedule as (after, fire): the answer holds for every later `after` before
    that fire time, since no fire time lies between."""
    after = as_naive_utc(after)
    known = _next_fires.get(schedule)
    if known is not None and known[0] <= after < known[1]:
        return known[1]
    fire = _next_fire_time(schedule, after)
    if fire is not None:
        if len(_next_fires) >= _CACHED_SCHEDULES and schedule not in _next_fires:
            _next_fires.pop(next(iter(_next_fires)))  # the oldest entry
        _next_fires[schedule] = (after, fire)
    return fire


_next_fires: dict[Schedule, tuple[datetime, datetime]] = {}


def _next_fire_time(schedule: Schedule, after: datetime) -> datetime | None:
    if schedule.type == "once":
        at = schedule.once_at
        return at if at > after else None
    zone = schedule.zone
    local_after = after.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
    candidates = croniter(schedule.cron, local_after)
    for _ in range(_MAX_CANDIDATES):
        fire = wall_time_to_utc(candidates.get_next(datetime), zone)
        # A candidate can map to an instant not after `after`: the second pass through a
        # repeated hour, or several gap times that all collapse onto the gap's end.
        if fire > after:
            return fire
    return None


def previous_fire_time(schedule: Schedule, before: datetime) -> datetime | None:
    """The last fire time strictly before `before`, as naive UTC; None when there is none
    (a `once` schedule not yet due, or none within the bounded search)."""
    before = as_naive_utc(before)
    if schedule.type == "once":
        at = schedule.once_at
        return at if at < before else None
    zone = schedule.zone
    local_before = before.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
    candidates = croniter(schedule.cron, local_before)
    for _ in range(_MAX_CANDIDATES):
        fire = wall_time_to_utc(candidates.get_prev(datetime), zone)
        if fire < before:  # a repeated or skipped wall hour can map to `before` or later
            return fire
    return None
