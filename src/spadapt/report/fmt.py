"""Numbers in human units for the report: sizes, parameter counts, durations, percentages.

Sizes are decimal (1 KB = 1000 bytes, as the report's table note says); counts use k/M/B.
A leaf module (only `math`), so the benchmarks and the command line format bytes with it too.
Functions that produce words take the language's string table from i18n.py. `None` (a
failed method, a missing field) prints as an em dash.
"""

from __future__ import annotations

import math

DASH = "—"


def sig(value: float, digits: int = 3) -> str:
    """`value` to `digits` significant figures without exponent: 0.0123, 4.56, 78.9, 320."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    places = digits - 1 - math.floor(math.log10(abs(value)))
    rounded = round(value, places)
    if math.floor(math.log10(abs(rounded))) > digits - 1 - places:  # 0.9996 rounded to 1.000
        places -= 1
        rounded = round(value, places)
    return f"{rounded:.{max(places, 0)}f}"


def size(num_bytes: int | None, digits: int = 3) -> str:
    """Bytes in decimal units (1 KB = 1000 bytes) to `digits` significant figures.

    Whole bytes below 1 KB, then KB, MB, GB, TB, one space before the unit: with the default
    3 digits 512 B, 284 KB, 90.9 MB, 1.95 GB; with `digits=4` 280.8 KB, 575.2 MB, 1.079 GB.
    A value that rounds up to 1000 of a unit is shown in the next one (999,600 -> 1.00 MB).
    `None` prints as an em dash. The one byte formatter of the project: the report, the
    benchmarks' page and the command line use it.
    """
    if num_bytes is None:
        return DASH
    value = float(num_bytes)
    if abs(value) < 1000:
        return f"{int(value)} B"
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1000
        text = sig(value, digits)
        if abs(float(text)) < 1000 or unit == "TB":
            return f"{text} {unit}"
    raise AssertionError("unreachable")


def count(n: int | None) -> str:
    """A parameter count: 950, 22.7 k, 1.23 M, 110 M, 1.30 B."""
    if n is None:
        return DASH
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{sig(n / scale)} {unit}"
    return str(n)


def percent(fraction: float | None) -> str:
    """An accuracy fraction as a percentage with one decimal: 0.9134 -> 91.3%."""
    return DASH if fraction is None else f"{100 * fraction:.1f}%"


def points(delta: float) -> str:
    """The size of an accuracy difference in percentage points, unsigned: 0.0031 -> 0.3."""
    return f"{100 * abs(delta):.1f}"


def duration(seconds: float | None, s: dict[str, str]) -> str:
    """Training time in words: 8.4 s, 42 s, 2 min 10 s, 1 h 5 min."""
    if seconds is None:
        return DASH
    if seconds < 60:
        return s["u_seconds"].format(s=sig(seconds, 2) if seconds < 10 else round(seconds))
    total = round(seconds)
    if total < 3600:
        return s["u_minutes"].format(m=total // 60, s=total % 60)
    return s["u_hours"].format(h=total // 3600, m=(total % 3600) // 60)


def step(seconds: float | None, s: dict[str, str]) -> str:
    """A step time: 120 ms below a second, else like `duration`."""
    if seconds is None:
        return DASH
    if seconds < 1:
        return s["u_ms"].format(ms=sig(1000 * seconds, 2) if seconds < 0.01
                                else round(1000 * seconds))
    return duration(seconds, s)


def ratio(value: float) -> str:
    """A ratio to two significant figures: 321.4 -> 320, 3.21 -> 3.2, 1.43 -> 1.4."""
    return sig(value, 2)
