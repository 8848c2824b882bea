"""One size convention for everything wanvid prints: binary units, spelled as such.

1 KiB = 1024 bytes, 1 MiB = 1024 KiB, 1 GiB = 1024 MiB. The service's documents write
"10 MB" for limits that wanvid checks as 10 MiB (10485760 bytes); wanvid says MiB.
"""

from __future__ import annotations

UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def _scale(n: float) -> tuple[float, str]:
    size = float(n)
    for unit in UNITS[:-1]:
        if abs(size) < 1024:
            return size, unit
        size /= 1024
    return size, UNITS[-1]


def human_size(n: int | float | None) -> str:
    """``512 B``, ``19.5 KiB``, ``200.0 MiB``; ``?`` when unknown."""
    if n is None:
        return "?"
    size, unit = _scale(n)
    return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"


def human_rate(bytes_per_second: float | None) -> str:
    """``3.2 MiB/s``; ``?`` when unknown."""
    if bytes_per_second is None:
        return "?/s"
    return human_size(max(0.0, bytes_per_second)) + "/s"


def human_pair(done: int, total: int | None) -> str:
    """``12.3/200.0 MiB``: both in the total's unit (``12.3 MiB`` when the total is unknown)."""
    if total is None:
        return human_size(done)
    _, unit = _scale(total)
    if unit == "B":
        return f"{done}/{total} B"
    div = 1024 ** UNITS.index(unit)
    return f"{done / div:.1f}/{total / div:.1f} {unit}"
