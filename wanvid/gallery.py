"""A static gallery of the videos in a directory: ``index.html`` beside them.

One card per video (the video, muted, looping, with controls; the thumbnail of its input
frame(s); the prompt and the prompt the service actually used; model, resolution,
duration, seed, date, and how long the service took), grouped by batch and, inside a
batch, by prompt, so seeds and models of one prompt sit side by side. A text box filters
the cards (a few lines of inline JavaScript).

The page is self-contained: no network, no CDN, no external file but the videos and
thumbnails it shows, by relative links, so it works from ``file://`` and in a directory
copied elsewhere. Its Content-Security-Policy forbids any other fetch.

Cards come from the sidecars (``clip.json``, see ``wanvid.sidecar``) and, for saved videos
without one, from the journal. Everything shown is HTML-escaped: sidecars and journal hold
the service's text, which is untrusted. The page is written atomically, and only ever
replaces a page wanvid wrote (``<meta name="generator" content="wanvid gallery">``).
"""

from __future__ import annotations

import datetime as _dt
import html
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from wanvid.errors import BadInputError

INDEX = "index.html"
GENERATOR = '<meta name="generator" content="wanvid gallery">'
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm")
MAX_DEPTH = 4  # subdirectories searched for sidecars
NO_BATCH = "Not in a batch"


@dataclass
class Card:
    video: Path  # absolute
    thumb: Path | None
    task_id: str
    prompt: str
    actual_prompt: str
    model: str
    resolution: str
    duration: float | None
    seed: int | None
    submitted: float | None  # epoch
    took: float | None  # seconds
    batch: str
    source: str  # "sidecar" | "journal"


def _s(value: object, limit: int = 5000) -> str:
    """An untrusted value as a bounded string ('' when it is not a string)."""
    if not isinstance(value, str):
        return ""
    return value if len(value) <= limit else value[:limit] + "…"


def _f(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        f = float(value)
    except ValueError:
        return None
    return f if f == f and abs(f) < 1e12 else None


def _epoch(iso: object) -> float | None:
    if not isinstance(iso, str) or not iso:
        return None
    try:
        when = _dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return when.timestamp()


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _sidecar_files(root: Path) -> Iterable[Path]:
    """``*.json`` files under ``root`` (hidden directories and symlinked ones skipped)."""
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        d, depth = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir(follow_symlinks=False):
                if depth < MAX_DEPTH:
                    stack.append((Path(e.path), depth + 1))
            elif e.name.endswith(".json") and e.is_file(follow_symlinks=False):
                yield Path(e.path)


def card_from_sidecar(path: Path, data: dict[str, Any], root: Path) -> Card | None:
    """A card from a sidecar's contents, or None when its video is not here."""
    video_info = data.get("video") if isinstance(data.get("video"), dict) else {}
    assert isinstance(video_info, dict)
    name = Path(_s(video_info.get("file"), 500)).name  # a bare name: never ../ or /abs
    if not name:
        return None
    video = path.parent / name
    if not video.is_file() or not _inside(video.resolve(), root):
        return None
    thumb = None
    tname = Path(_s(data.get("thumbnail"), 500)).name
    if tname and (path.parent / tname).is_file():
        thumb = path.parent / tname
    params = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
    assert isinstance(params, dict)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    assert isinstance(usage, dict)
    times = data.get("times") if isinstance(data.get("times"), dict) else {}
    assert isinstance(times, dict)
    seed = data.get("seed")
    return Card(
        video=video, thumb=thumb, task_id=_s(data.get("task_id"), 200),
        prompt=_s(data.get("prompt")) or _s(params.get("prompt")),
        actual_prompt=_s(data.get("actual_prompt")),
        model=_s(data.get("model"), 100),
        resolution=_s(usage.get("resolution"), 20) or _s(params.get("resolution"), 20),
        duration=_f(params.get("duration")) or _f(usage.get("billed_seconds")),
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        submitted=_epoch(times.get("submitted")) or _epoch(times.get("downloaded")),
        took=_f(times.get("took_s")),
        batch=_s(data.get("batch"), 300), source="sidecar")


def card_from_record(rec: Any, video: Path) -> Card:
    params = rec.params if isinstance(rec.params, dict) else {}
    seed = params.get("seed")
    thumb = video.with_name((video.stem if video.suffix else video.name) + ".thumb.jpg")
    took = None
    if rec.downloaded_at and rec.submitted_at:
        took = max(0.0, rec.downloaded_at - rec.submitted_at)
    return Card(
        video=video, thumb=thumb if thumb.is_file() else None, task_id=_s(rec.task_id, 200),
        prompt=_s(params.get("prompt")), actual_prompt="", model=_s(rec.model, 100),
        resolution=_s(params.get("resolution"), 20), duration=_f(params.get("duration")),
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        submitted=rec.submitted_at or None, took=took, batch="", source="journal")


def collect(root: Path, *, records: Iterable[Any] = (), since: float | None = None,
            cwd: Path | None = None) -> list[Card]:
    """Every video under ``root`` that has a sidecar, then every journaled, saved video
    under ``root`` that has none; ``since``: submitted at or after (epoch)."""
    from wanvid import sidecar

    root = root.resolve()
    cards: dict[Path, Card] = {}
    for path in _sidecar_files(root):
        data = sidecar.read(path)
        if data is None:
            continue
        card = card_from_sidecar(path, data, root)
        if card is not None:
            cards.setdefault(card.video.resolve(), card)
    base = cwd or Path.cwd()
    for rec in records:
        if not rec.path or not rec.downloaded_at:
            continue
        video = Path(rec.path)
        video = (video if video.is_absolute() else base / video).resolve()
        if video in cards or not _inside(video, root) or not video.is_file():
            continue
        cards[video] = card_from_record(rec, video)
    out = list(cards.values())
    if since is not None:
        out = [c for c in out if c.submitted is not None and c.submitted >= since]
    return out


# -- rendering ---------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _href(path: Path, root: Path) -> str:
    rel = os.path.relpath(path, root).replace(os.sep, "/")
    return _e(quote(rel, safe="/"))


def _when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    try:
        return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return ""


def _took(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(round(seconds))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def groups(cards: list[Card]) -> list[tuple[str, list[tuple[str, list[Card]]]]]:
    """Sections (a batch, or one day of videos not in a batch), newest first; inside each,
    rows by prompt (in order of first appearance); inside a row, by model, then seed."""
    def section_of(c: Card) -> str:
        if c.batch:
            return c.batch
        day = _when(c.submitted)[:10] or "undated"
        return f"{NO_BATCH} · {day}"

    sections: dict[str, list[Card]] = {}
    for c in sorted(cards, key=lambda c: (c.submitted or 0.0, c.video.name)):
        sections.setdefault(section_of(c), []).append(c)
    ordered = sorted(sections.items(), key=lambda kv: -max(c.submitted or 0.0 for c in kv[1]))
    result = []
    for name, items in ordered:
        rows: dict[str, list[Card]] = {}
        for c in items:
            rows.setdefault(c.prompt, []).append(c)
        result.append((name, [(p, sorted(cs, key=lambda c: (c.model, c.seed if c.seed is not None
                                                           else -1, c.video.name)))
                              for p, cs in rows.items()]))
    return result


def _card_html(c: Card, root: Path) -> str:
    facts = [("model", c.model), ("resolution", c.resolution),
             ("duration", f"{_num(c.duration)} s" if c.duration is not None else ""),
             ("seed", "" if c.seed is None else str(c.seed)), ("date", _when(c.submitted)),
             ("took", _took(c.took))]
    search = " ".join([c.prompt, c.actual_prompt, c.model, c.resolution, c.batch, c.task_id,
                       c.video.name, "" if c.seed is None else f"seed {c.seed}"]).lower()
    thumb = (f'<img class="thumb" src="{_href(c.thumb, root)}" alt="input frame(s)" '
             'loading="lazy">' if c.thumb else '<div class="thumb none">no thumbnail</div>')
    dl = "".join(f"<dt>{_e(k)}</dt><dd class=\"{_e(k)}\">{_e(v)}</dd>" for k, v in facts if v)
    actual = (f'<p class="actual"><span class="label">actual prompt</span> '
              f"{_e(c.actual_prompt)}</p>" if c.actual_prompt else "")
    return (
        f'<article class="card" data-search="{_e(search)}" data-task="{_e(c.task_id)}">'
        f'<video src="{_href(c.video, root)}" muted loop controls preload="metadata" '
        f'playsinline></video>'
        f'<div class="meta">{thumb}<div class="text">'
        f'<p class="prompt">{_e(c.prompt) or "<em>no prompt</em>"}</p>{actual}'
        f"<dl>{dl}</dl>"
        f'<p class="file"><a href="{_href(c.video, root)}">{_e(c.video.name)}</a></p>'
        f"</div></div></article>")


STYLE = """
:root{color-scheme:light dark;--bg:#f6f6f4;--fg:#1d1d1b;--card:#fff;--mute:#6b6b66;--line:#ddd}
@media(prefers-color-scheme:dark){:root{--bg:#161615;--fg:#ececea;--card:#222220;--mute:#9a9a94;--line:#3a3a37}}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,sans-serif;background:var(--bg);color:var(--fg)}
header{position:sticky;top:0;z-index:1;display:flex;gap:1em;align-items:center;padding:.7em 1.2em;
background:var(--bg);border-bottom:1px solid var(--line)}
header h1{font-size:1.1em;margin:0}header input{flex:1;max-width:32em;padding:.4em .6em;font:inherit}
header .count{color:var(--mute)}main{padding:0 1.2em 2em}
section>h2{font-size:1em;margin:1.4em 0 .4em;color:var(--mute);font-weight:600}
.group>h3{font-size:.95em;margin:.8em 0 .4em;font-weight:500}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:.8em}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;overflow:hidden}
.card video{display:block;width:100%;aspect-ratio:16/9;background:#000}
.meta{display:flex;gap:.6em;padding:.6em}.thumb{width:96px;height:auto;flex:none;align-self:flex-start;border-radius:3px}
.thumb.none{height:45px;font-size:.7em;color:var(--mute);border:1px dashed var(--line);
display:flex;align-items:center;justify-content:center}
.text{min-width:0}.text p{margin:0 0 .3em;overflow-wrap:anywhere}.actual{color:var(--mute);font-size:.9em}
.label{font-size:.75em;text-transform:uppercase;letter-spacing:.04em;border:1px solid var(--line);
border-radius:3px;padding:0 .3em}
dl{display:grid;grid-template-columns:auto 1fr;gap:0 .6em;margin:.3em 0;font-size:.85em}
dt{color:var(--mute)}dd{margin:0}.file{font-size:.8em}.file a{color:var(--mute)}
[hidden]{display:none!important}
"""

SCRIPT = """
(function(){
  var box=document.getElementById('filter'),count=document.getElementById('count');
  var cards=[].slice.call(document.querySelectorAll('.card'));
  function apply(){
    var terms=box.value.toLowerCase().split(/\\s+/).filter(Boolean),shown=0;
    cards.forEach(function(c){
      var t=c.getAttribute('data-search'),ok=terms.every(function(w){return t.indexOf(w)>=0;});
      c.hidden=!ok;if(ok)shown++;
    });
    [].forEach.call(document.querySelectorAll('.group,section'),function(g){
      g.hidden=!g.querySelector('.card:not([hidden])');
    });
    count.textContent=shown+' of '+cards.length+' videos';
  }
  box.addEventListener('input',apply);apply();
})();
"""

CSP = ("default-src 'none'; media-src 'self' file:; img-src 'self' file:; "
       "style-src 'unsafe-inline'; script-src 'unsafe-inline'")


def render(cards: list[Card], root: Path, *, title: str) -> str:
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">', GENERATOR,
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
        f"<header><h1>{_e(title)}</h1>"
        '<input id="filter" type="search" placeholder="Filter: prompt, model, seed, batch…" '
        'aria-label="Filter videos" autofocus>'
        f'<span id="count" class="count">{len(cards)} videos</span></header><main>',
    ]
    for section, rows in groups(cards):
        parts.append(f'<section><h2>{_e(section)}</h2>')
        for prompt, items in rows:
            parts.append(f'<div class="group"><h3>{_e(prompt) or "<em>no prompt</em>"} '
                         f'<span class="count">· {len(items)}</span></h3><div class="cards">')
            parts.extend(_card_html(c, root) for c in items)
            parts.append("</div></div>")
        parts.append("</section>")
    if not cards:
        parts.append("<p>No videos with wanvid metadata here yet.</p>")
    parts.append(f"</main><script>{SCRIPT}</script></body></html>\n")
    return "".join(parts)


def ours(index: Path) -> bool:
    """True when ``index`` is absent or is a page wanvid gallery wrote."""
    try:
        with open(index, "rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        return not index.is_symlink()
    except OSError:
        return False
    return not index.is_symlink() and GENERATOR.encode() in head


def write(root: Path, *, records: Iterable[Any] = (), since: float | None = None,
          force: bool = False, cwd: Path | None = None) -> tuple[Path, int]:
    """Write ``root/index.html``; its path and the number of cards."""
    from wanvid.sidecar import write_atomic

    if not root.is_dir():
        raise BadInputError(f"{root}: not a directory")
    index = root / INDEX
    if not force and not ours(index):
        raise BadInputError(f"{index} exists and was not written by wanvid gallery; move it "
                            "away, or pass --force to replace it")
    cards = collect(root, records=records, since=since, cwd=cwd)
    page = render(cards, root.resolve(), title=f"wanvid · {root.resolve().name or root}")
    try:
        write_atomic(index, page.encode("utf-8"))
    except OSError as e:
        from wanvid.errors import WriteError

        raise WriteError(f"{index}: cannot write the gallery ({e.strerror or e})") from None
    return index, len(cards)
