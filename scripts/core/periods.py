"""Time zones and periods: which local day, ISO week and month a moment belongs to.

A call at 23:59 local time belongs to that local day, whatever its UTC date. Periods are
computed per 15-minute slot (every zone offset is a multiple of 15 minutes) and memoized.
"""
from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scripts.shared_io import DataError

UTC = dt.timezone.utc


def system_zone_name() -> str:
    """The IANA name of the system zone: $TZ, else /etc/localtime's target, else UTC."""
    tz = os.environ.get("TZ", "").strip().lstrip(":")
    if tz and "/" in tz or tz in ("UTC", "GMT"):
        return tz
    for path in ("/etc/localtime",):
        try:
            target = os.path.realpath(path)
        except OSError:
            continue
        marker = "zoneinfo/"
        if marker in target:
            return target.split(marker, 1)[1]
    try:
        with open("/etc/timezone", encoding="utf-8") as fh:
            name = fh.read().strip()
            if name:
                return name
    except OSError:
        pass
    return "UTC"


def resolve_zone_name(name: str | None) -> str:
    name = (name or "").strip() or system_zone_name()
    if name in ("Etc/UTC", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu", "UCT", "Etc/UCT"):
        name = "UTC"
    zone(name)  # validate
    return name


@lru_cache(maxsize=None)
def zone(name: str) -> dt.tzinfo:
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DataError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)", where="TIMEZONE") from None


class Periods:
    """Local day / ISO week / month of epoch-millisecond moments in one zone."""

    def __init__(self, zone_name: str):
        self.name = zone_name
        self.tz = zone(zone_name)
        self._slot: dict[int, tuple[str, str, str]] = {}

    def of_ms(self, ms: int) -> tuple[str, str, str]:
        """``(day, iso_week, month)`` as ``YYYY-MM-DD``, ``YYYY-Www``, ``YYYY-MM``."""
        slot = ms - ms % 900_000
        hit = self._slot.get(slot)
        if hit is None:
            local = dt.datetime.fromtimestamp(slot / 1000, tz=self.tz)
            year, week, _ = local.isocalendar()
            hit = (local.strftime("%Y-%m-%d"), f"{year}-W{week:02d}", local.strftime("%Y-%m"))
            self._slot[slot] = hit
        return hit

    def day(self, ms: int) -> str:
        return self.of_ms(ms)[0]

    def today(self, now: dt.datetime | None = None) -> str:
        now = now or dt.datetime.now(UTC)
        return now.astimezone(self.tz).strftime("%Y-%m-%d")

    def month_now(self, now: dt.datetime | None = None) -> str:
        return self.today(now)[:7]

    def day_start_ms(self, day: str) -> int:
        """Epoch ms of local midnight starting ``day`` (YYYY-MM-DD)."""
        d = parse_day(day)
        local = dt.datetime(d.year, d.month, d.day, tzinfo=self.tz)
        return int(local.timestamp() * 1000)


def parse_day(value: str, what: str = "date") -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise DataError(f"{what} {value!r} is not YYYY-MM-DD") from None


def parse_month(value: str) -> str:
    try:
        dt.date.fromisoformat(value.strip() + "-01")
    except ValueError:
        raise DataError(f"month {value!r} is not YYYY-MM", where="MONTH") from None
    return value.strip()
