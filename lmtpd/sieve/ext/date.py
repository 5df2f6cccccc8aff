"""RFC 5260 date: the date and currentdate tests, with :zone and :originalzone.

Dates are read from the first value of the named header (after ``:index``), from the text
after its last ';' when there is one (a Received field). Without a zone tag a date is shown
in the server's local zone, as of the time the run started.
"""

from __future__ import annotations

import email.utils
import re
import time

from ..ast import Test
from ..runtime import Runtime
from ..spec import Extension, Spec, TagDef
from ..validator import Checker
from . import headers
from .core import MATCHING, check_header_names
from .index import INDEX_TAGS

_ZONE = re.compile(r"[+-][0-9]{4}\Z")
_WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
PARTS = ("year", "month", "day", "date", "julian", "hour", "minute", "second", "time",
         "iso8601", "std11", "zone", "weekday")


def parse_zone(zone: str) -> int | None:
    """Minutes east of UTC for "+hhmm"/"-hhmm", or None."""
    if not _ZONE.match(zone):
        return None
    minutes = int(zone[1:3]) * 60 + int(zone[3:5])
    return minutes if zone[0] == "+" else -minutes


def local_offset(now: float) -> int:
    """Minutes east of UTC of the local zone at ``now``."""
    return (time.localtime(now).tm_gmtoff or 0) // 60


def _zone_text(offset: int) -> str:
    sign = "-" if offset < 0 else "+"
    return f"{sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"


def _julian(year: int, month: int, day: int) -> int:
    """Modified Julian Day (RFC 5260 appendix A, with its erratum)."""
    if month > 2:
        month -= 3
    else:
        month += 9
        year -= 1
    century, year_of_century = divmod(year, 100)
    jd = (century * 146097 // 4 + year_of_century * 1461 // 4 + (month * 153 + 2) // 5
          + day + 1721119)
    return jd - 2400001


def date_part(timestamp: int, offset: int, part: str) -> str:
    """``part`` of the moment ``timestamp`` seen in the zone ``offset`` (minutes)."""
    tm = time.gmtime(timestamp + offset * 60)
    if part == "year":
        return f"{tm.tm_year:04d}"
    if part == "month":
        return f"{tm.tm_mon:02d}"
    if part == "day":
        return f"{tm.tm_mday:02d}"
    if part == "date":
        return f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}"
    if part == "julian":
        return str(_julian(tm.tm_year, tm.tm_mon, tm.tm_mday))
    if part == "hour":
        return f"{tm.tm_hour:02d}"
    if part == "minute":
        return f"{tm.tm_min:02d}"
    if part == "second":
        return f"{tm.tm_sec:02d}"
    clock = f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
    if part == "time":
        return clock
    if part == "iso8601":
        sign = "-" if offset < 0 else "+"
        zone = "Z" if offset == 0 else f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
        return f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}T{clock}{zone}"
    if part == "std11":
        weekday = _WEEKDAYS[(tm.tm_wday + 1) % 7]
        return (f"{weekday}, {tm.tm_mday:02d} {_MONTHS[tm.tm_mon - 1]} {tm.tm_year:04d} "
                f"{clock} {_zone_text(offset)}")
    if part == "zone":
        return _zone_text(offset)
    return str((tm.tm_wday + 1) % 7)  # weekday: 0 is Sunday


def parse_date(value: str) -> tuple[int, int] | None:
    """(UTC timestamp, zone offset in minutes) of an RFC 5322 date, or None."""
    text = value.rpartition(";")[2] if ";" in value else value
    parsed = email.utils.parsedate_tz(text.strip())
    if parsed is None:
        return None
    try:
        timestamp = int(email.utils.mktime_tz(parsed))
    except (OverflowError, ValueError):
        return None
    return timestamp, (parsed[9] or 0) // 60


def _check(checker: Checker, t: Test) -> None:
    zone = t.tags.get("zone")
    if isinstance(zone, tuple) and zone[0] == "zone":
        value = str(zone[1])
        if checker.constant(value) and parse_zone(value) is None:
            checker.warn(f"specified :zone argument '{value}' is not a valid timezone", t)
    part = t.positional[-2]
    assert isinstance(part, str)
    if checker.constant(part) and part.lower() not in PARTS:
        checker.warn(f"specified date part `{part}' is not known", t)
    if t.name == "date":
        check_header_names(checker, t, [t.positional[0]])
        headers.check(checker, t)


def _zone(rt: Runtime, t: Test, original: int) -> int:
    zone = t.tags.get("zone")
    if zone == "originalzone":
        return original
    if isinstance(zone, tuple):
        offset = parse_zone(rt.s(zone[1]))
        if offset is not None:
            return offset
    return local_offset(rt.now)


def _run_date(rt: Runtime, t: Test) -> bool:
    part = rt.s(t.positional[1]).lower()
    if part not in PARTS:
        return False
    values: list[str] = []
    found = headers.values(rt, t, [rt.s(t.positional[0])], decoded=False)
    if found:
        parsed = parse_date(found[0])  # only the first field counts (as in Pigeonhole)
        if parsed is not None:
            timestamp, original = parsed
            values.append(date_part(timestamp, _zone(rt, t, original), part))
    return rt.match(t, values, rt.sl(t.positional[2]))


def _run_currentdate(rt: Runtime, t: Test) -> bool:
    part = rt.s(t.positional[0]).lower()
    if part not in PARTS:
        return False
    now = int(rt.now)
    value = date_part(now, _zone(rt, t, local_offset(rt.now)), part)
    return rt.match(t, [value], rt.sl(t.positional[1]))


_ZONE_TAG = {"zone": TagDef("string", slot="zone")}
DATE = Extension(
    "date",
    tests=(
        Spec("date", "test", ext="date",
             tags={**MATCHING, **INDEX_TAGS, **_ZONE_TAG, "originalzone": TagDef(slot="zone")},
             positional=("string", "string", "stringlist"), check=_check, run=_run_date),
        Spec("currentdate", "test", ext="date", tags={**MATCHING, **_ZONE_TAG},
             positional=("string", "stringlist"), check=_check, run=_run_currentdate),
    ),
)
