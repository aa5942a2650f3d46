"""The one place djflow reads the time: always timezone-aware, stored in UTC."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """Treat a naive value (as SQLite returns it) as UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def beijing_to_utc(value: datetime) -> datetime:
    """A time people typed or picked: without a zone it is Beijing time; returned in UTC."""
    return (value if value.tzinfo else value.replace(tzinfo=SHANGHAI)).astimezone(timezone.utc)


def local(value: datetime) -> datetime:
    return as_utc(value).astimezone(SHANGHAI)


def today() -> date:
    """Today's date in Asia/Shanghai: terms, deadlines and due dates count local calendar days."""
    return local(now()).date()
