"""What a round of videos cost: billed seconds and video counts from the journal, and
money at the user's own per-second prices.

The service bills each *successful* task its duration in seconds (the API reference's
``usage.duration``; wan2.1 calls it ``video_duration``). The journal records the duration
sent with every task, so the sums need no network: a task counts once it SUCCEEDED
(EXPIRED too: it succeeded, the video was just never saved). Tasks still PENDING or
RUNNING are counted apart (``in_flight``), failed and canceled ones are not billed.

Prices are the user's, never the service's: an optional ``[prices]`` table in the config
file, seconds to money per model (``"wan2.5-i2v-preview" = 0.05``). A model without a
price has no cost; the total then says it is partial.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wanvid.errors import BadInputError

BILLED_STATUSES = frozenset({"SUCCEEDED", "EXPIRED"})
IN_FLIGHT_STATUSES = frozenset({"PENDING", "RUNNING"})
GROUPINGS = ("model", "day", "resolution")
PRICES_LABEL = "at your prices (config [prices]), not the service's bill"


def price_table(raw: object, where: str = "config [prices]") -> dict[str, float]:
    """The ``[prices]`` table as model name -> price per second. Aliases are folded into
    the canonical name; a value that is not a number >= 0 is exit 2 naming the entry."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise BadInputError(f"{where}: must be a table of model = price per second, e.g. "
                            '[prices] "wan2.2-i2v-flash" = 0.02')
    from wanvid.models import find_model

    table: dict[str, float] = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
                value) or value < 0:
            raise BadInputError(f"{where}: {name!r} = {value!r} is not a price (a number >= 0, "
                                "money per billed second)")
        m = find_model(str(name))
        table[m.name if m is not None else str(name)] = float(value)
    return table


def price_for(model: str, prices: Mapping[str, float]) -> float | None:
    from wanvid.models import find_model

    if model in prices:
        return prices[model]
    m = find_model(model) if model else None
    return prices.get(m.name) if m is not None else None


# --- the service's ``usage`` object of a finished task ----------------------------------------
# Its fields vary by model (wan-api-2026 §5): ``duration`` (billed seconds; on wan2.6,
# wan2.7 and HappyHorse the sum of ``input_video_duration``, the seconds of a first_clip, and
# ``output_video_duration``, the new video's), ``video_duration`` (wan2.1, kf2v), ``SR``
# (480/720/1080) and ``audio`` (wan2.6-i2v-flash: whether the video has sound). SDK-printed
# results show numbers as floats or strings ("720") and defaults such as
# ``video_duration: 0``: every field is read leniently and a value that is not one is None.

USAGE_NUMBERS = ("duration", "input_video_duration", "output_video_duration",
                 "video_duration", "SR", "video_count")


def lenient_number(value: object) -> int | float | None:
    """An int, a float or a numeric string ("10", "10.0", " 5 ") as a number >= 0, else
    None (booleans, NaN, infinities, negative or absurd values, anything else)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        if len(value) > 40:
            return None
        value = value.strip()
    if not isinstance(value, (int, float, str)):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(f) or f < 0 or f >= 1e12:
        return None
    return int(f) if f.is_integer() else f


def lenient_bool(value: object) -> bool | None:
    """true/false as a boolean, 0/1, or the strings "true"/"false" (any case), else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def service_usage(usage: object) -> dict[str, int | float | bool | None]:
    """The service's ``usage`` with every known field read leniently (never raises; a
    missing or garbage value is None). ``billed_seconds``: ``duration``, else
    ``input_video_duration`` + ``output_video_duration``, else a non-zero
    ``video_duration``."""
    u = usage if isinstance(usage, Mapping) else {}
    out: dict[str, int | float | bool | None] = {k: lenient_number(u.get(k))
                                                 for k in USAGE_NUMBERS}
    out["audio"] = lenient_bool(u.get("audio"))
    billed = out["duration"]
    if billed is None and (out["input_video_duration"] is not None
                           or out["output_video_duration"] is not None):
        total = (out["input_video_duration"] or 0) + (out["output_video_duration"] or 0)
        billed = int(total) if float(total).is_integer() else total
    if billed is None:
        billed = out["video_duration"] or None  # the SDK's default 0 means "not given"
    out["billed_seconds"] = billed
    return out


def usage_seconds(usage: object) -> int | float | None:
    """The seconds the service says it billed (``service_usage``), or None."""
    v = service_usage(usage)["billed_seconds"]
    return None if isinstance(v, bool) else v


def billed_seconds(params: Mapping[str, Any]) -> int | float | None:
    """The seconds a task bills, from the parameters sent (None when not journaled)."""
    d = params.get("duration")
    if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or d < 0:
        return None
    return int(d) if float(d).is_integer() else float(d)


@dataclass
class Group:
    key: str
    videos: int = 0  # billed tasks
    billed_seconds: float = 0
    unknown: int = 0  # billed tasks whose duration the journal lacks
    saved: int = 0  # videos on disk
    in_flight: int = 0
    in_flight_seconds: float = 0
    cost: float | None = None
    unpriced: int = 0  # billed tasks with no price

    def add(self, status: str, seconds: int | float | None, downloaded: bool,
            price: float | None) -> None:
        if status in IN_FLIGHT_STATUSES:
            self.in_flight += 1
            self.in_flight_seconds += seconds or 0
            return
        if status not in BILLED_STATUSES:
            return
        self.videos += 1
        self.saved += int(downloaded)
        if seconds is None:
            self.unknown += 1
            return
        self.billed_seconds += seconds
        if price is None:
            self.unpriced += 1
        else:
            self.cost = (self.cost or 0.0) + seconds * price

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "videos": self.videos, "saved": self.saved,
                "billed_seconds": _num(self.billed_seconds),
                "unknown_duration": self.unknown, "in_flight": self.in_flight,
                "in_flight_seconds": _num(self.in_flight_seconds),
                "cost": None if self.cost is None else round(self.cost, 6),
                "unpriced": self.unpriced}


@dataclass
class Report:
    by: str | None
    since: float | None
    groups: list[Group]
    total: Group
    prices: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "since": _iso(self.since),
                "groups": [g.to_dict() for g in self.groups],
                "total": self.total.to_dict(),
                "prices": self.prices or None,
                "prices_note": PRICES_LABEL if self.prices else None}


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() else round(x, 3)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def group_key(record: Any, by: str, tz: _dt.tzinfo | None = None) -> str:
    if by == "model":
        return record.model or "(unknown)"
    if by == "resolution":
        r = record.params.get("resolution") if isinstance(record.params, dict) else None
        return r if isinstance(r, str) and r else "(unknown)"
    if by == "day":
        try:
            when = _dt.datetime.fromtimestamp(record.submitted_at, tz or _local())
        except (OverflowError, OSError, ValueError):
            return "(unknown)"
        return when.strftime("%Y-%m-%d")
    raise BadInputError(f"--by {by!r}: use one of {', '.join(GROUPINGS)}")


def _local() -> _dt.tzinfo:
    tz = _dt.datetime.now().astimezone().tzinfo
    assert tz is not None
    return tz


def summarize(records: Iterable[Any], *, by: str | None = None,
              prices: Mapping[str, float] | None = None, since: float | None = None,
              tz: _dt.tzinfo | None = None) -> Report:
    """Sum journal records (``TaskRecord``-like: model, params, status, downloaded,
    submitted_at) into groups and a total."""
    if by is not None and by not in GROUPINGS:
        raise BadInputError(f"--by {by!r}: use one of {', '.join(GROUPINGS)}")
    prices = dict(prices or {})
    total = Group("total")
    groups: dict[str, Group] = {}
    for r in records:
        params = r.params if isinstance(r.params, dict) else {}
        args = (r.status, billed_seconds(params), bool(r.downloaded),
                price_for(r.model, prices) if prices else None)
        total.add(*args)
        if by is not None:
            key = group_key(r, by, tz)
            groups.setdefault(key, Group(key)).add(*args)
    ordered = sorted(groups.values(), key=lambda g: g.key)
    return Report(by=by, since=since, groups=ordered, total=total, prices=prices)


def parse_since(value: str, now: float, tz: _dt.tzinfo | None = None) -> float:
    """``--since``: a duration back from now (``30m``, ``2h``, ``7d``) or a local date
    (``2026-12-01``) or date and time (``2026-12-01T09:00``); the epoch it names."""
    from wanvid.service import parse_since as duration

    try:
        return now - duration(value)
    except BadInputError:
        pass
    try:
        when = _dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInputError(f"--since {value!r}: use a duration like 2h or 7d, or a date like "
                            "2026-12-01") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz or _local())
    return when.timestamp()


def money(x: float) -> str:
    """Two decimals, or four when two would hide a small price's effect."""
    return f"{x:.2f}" if abs(x - round(x, 2)) < 1e-9 else f"{x:.4f}"


def text_lines(report: Report) -> list[str]:
    """The report as a table for humans (stdout: it is the command's result)."""
    priced = bool(report.prices)
    head = (report.by or "").upper() or "ALL"
    rows = report.groups + [report.total] if report.by else [report.total]
    width = max([len(head), 5] + [len(g.key) for g in rows])
    cols = f"{head:<{width}}  {'VIDEOS':>6}  {'SAVED':>5}  {'BILLED_S':>8}"
    if priced:
        cols += f"  {'COST*':>10}"
    lines = [cols]
    for g in rows:
        line = f"{g.key:<{width}}  {g.videos:>6}  {g.saved:>5}  {_num(g.billed_seconds):>8}"
        if priced:
            cost = "-" if g.cost is None else money(g.cost)
            if g.cost is not None and g.unpriced:
                cost += "+"
            line += f"  {cost:>10}"
        lines.append(line)
    t = report.total
    if t.in_flight:
        lines.append(f"# {t.in_flight} task(s) still in flight ({_num(t.in_flight_seconds)} s "
                     "if they succeed)")
    if t.unknown:
        lines.append(f"# {t.unknown} video(s) with no duration in the journal (not summed)")
    if priced:
        lines.append(f"# * cost {PRICES_LABEL}")
        if t.unpriced:
            lines.append(f"# + partial: {t.unpriced} video(s) of models with no price")
    return lines
