"""Timestamps as Docker writes them (RFC 3339, nanoseconds, UTC).

A module of its own so that the lean log pump (monitor.pump_main) can use it
without importing the rest of the runtime.
"""

import time


def now():
    """RFC 3339 timestamp with nanoseconds, UTC: 2024-01-02T15:04:05.123456789Z."""
    t = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 10**9)) + \
        f".{t % 10**9:09d}Z"


def parse_time(text):
    """Seconds since the epoch from now()'s format, 2024-01-02T15:04:05[.frac]Z
    (ValueError for anything else).  By hand: time.strptime loads locale,
    calendar and regular expressions, milliseconds that `ps` paid."""
    base, _, frac = text.rstrip("Z").partition(".")
    digits = base[0:4] + base[5:7] + base[8:10] + base[11:13] + base[14:16] + base[17:19]
    if len(base) != 19 or base[4] + base[7] + base[10] + base[13] + base[16] != "--T::" \
            or not all(c in "0123456789" for c in digits + frac):
        raise ValueError(f"time {text!r} is not like 2024-01-02T15:04:05Z")
    y, mo, d, h, mi, s = (int(digits[i:j]) for i, j in ((0, 4), (4, 6), (6, 8), (8, 10),
                                                         (10, 12), (12, 14)))
    if not (1 <= mo <= 12 and 1 <= d <= _days_in_month(y, mo) and h < 24 and mi < 60
            and s <= 60):
        raise ValueError(f"time {text!r}: no such date or time")
    return (_days_since_epoch(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
            + float("0." + (frac or "0")))


def _days_in_month(y, mo):
    if mo == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    return 30 if mo in (4, 6, 9, 11) else 31


def _days_since_epoch(y, mo, d):
    """Days from 1970-01-01 to a date of the proleptic Gregorian calendar
    (Howard Hinnant's days_from_civil: years counted from March)."""
    y -= mo <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
