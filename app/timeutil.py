"""UTC time helpers. The database stores naive UTC datetimes; the API shows ISO 8601 with Z."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as the naive UTC datetime the database stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def as_naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def iso_utc(moment: datetime | None) -> str | None:
    """`2024-01-31T10:30:45.123Z`: UTC, milliseconds, Z, as the seed shows."""
    if moment is None:
        return None
    moment = as_naive_utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
