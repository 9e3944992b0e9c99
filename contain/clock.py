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
    """Seconds since the epoch from now()'s format."""
    import calendar
    base, _, frac = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))
