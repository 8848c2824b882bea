"""README's models table is the shipped catalogue: each row is generated here from
wanvid/data/models.toml and must match README.md (fix README, or the catalogue, until the
generated table and README's are the same; the assertion prints the expected table)."""

from __future__ import annotations

from pathlib import Path

from wanvid.models import Model, model_names

README = Path(__file__).resolve().parent.parent / "README.md"
HEADER = "| model | input | resolutions (default) | seconds | audio |"
MEDIA = {"first_frame": "first frame", "last_frame": "first+last",
         "driving_audio": "driving audio", "first_clip": "first clip"}


def _shipped() -> list[Model]:
    from importlib.resources import files

    from wanvid.models import load_catalogue

    text = files("wanvid").joinpath("data/models.toml").read_text(encoding="utf-8")
    return list(load_catalogue(text, "models.toml"))


def row(m: Model) -> str:
    extra = [f"snapshot {s}" for s in m.snapshots] + list(m.aliases)
    name = m.name + (f" ({', '.join(extra)})" if extra else "")
    inp = (f"media: {', '.join(MEDIA[t] for t in m.media)}" if m.protocol == "media"
           else m.protocol)
    res = ", ".join(m.resolutions)
    if len(m.resolutions) > 1:
        res += f" ({m.default_resolution})"
    d = list(m.durations)
    secs = (f"{d[0]}-{d[-1]}" if len(d) > 2 and d == list(range(d[0], d[-1] + 1))
            else ", ".join(str(x) for x in d))
    audio = {"silent": "no", "optional_flag": "on/off (`--no-audio`)", "always": "yes (always)"}
    sound = audio.get(m.audio_mode) or (
        "yes (driving audio, or its own)" if m.protocol == "media" and m.takes("driving_audio")
        else "yes")
    return f"| {name} | {inp} | {res} | {secs} | {sound} |"


def table() -> list[str]:
    return [HEADER, "|---|---|---|---|---|", *(row(m) for m in _shipped())]


def readme_table() -> list[str]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADER)
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return lines[start:end]


def test_readme_models_table_is_the_catalogue() -> None:
    want = table()
    assert readme_table() == want, "README's models table should be:\n" + "\n".join(want)


def test_every_shipped_model_has_a_row() -> None:
    rows = "\n".join(readme_table())
    assert all(f"| {n} " in rows or f"| {n} (" in rows for n in model_names())
