"""Text helpers for results on stdout (durations, the model table). JSON output is
``wanvid.envelope``'s: one envelope shape for every command (README "JSON output")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wanvid.context import Environment

if TYPE_CHECKING:
    from wanvid.envelope import JsonOut


def fmt_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


def emit_models(env: Environment, *, json_out: JsonOut | None) -> None:
    """The model catalogue as a table, or as the data of the envelope (``wanvid models``)."""
    from wanvid.models import MODELS
    from wanvid.sanitize import one_line

    if json_out is not None:
        json_out.result([m.to_dict() for m in MODELS])
        return

    def text(_: Any) -> list[str]:
        audio = {"silent": "no", "optional_flag": "on/off", "auto": "yes", "always": "yes"}
        w = max([19, *(len(m.name) for m in MODELS)])
        lines = [f"{'MODEL':<{w}} {'INPUT':<6} {'RESOLUTIONS':<17} {'SECONDS':<8} "
                 f"{'AUDIO':<6} {'FPS':<3} FROM"]
        for m in MODELS:
            res = ",".join(r + ("*" if r == m.default_resolution else "") for r in m.resolutions)
            d = m.durations
            dur = (f"{d[0]}-{d[-1]}" if len(d) > 2 and list(d) == list(range(d[0], d[-1] + 1))
                   else ",".join(str(x) for x in d))
            lines.append(one_line(
                f"{m.name:<{w}} {m.protocol:<6} {res:<17} {dur:<8} "
                f"{audio.get(m.audio_mode, m.audio_mode):<6} {m.fps:<3} {m.origin}", 300))
        lines.append(one_line("(* default resolution; aliases: "
                     + ", ".join(a for m in MODELS for a in m.aliases) + "; FROM: shipped, "
                     "user (your models.toml: wanvid models --path) or user-override; limits, "
                     "shot types, templates and sources: --json)", 1000))
        return lines

    for line in text(None):
        env.out(line)


def remote_task_lines(rows: list[dict[str, Any]]) -> list[str]:
    """``tasks --remote`` as text: one sanitised line per task of the service's list."""
    from wanvid.sanitize import one_line

    def when(t: dict[str, Any]) -> object:
        """``submit_time`` (Beijing time, as the service writes it), else the list's
        ``gmt_create`` (epoch milliseconds), shown in UTC as ``tasks --remote --json``
        shows it."""
        if t.get("submit_time"):
            from wanvid.envelope import service_time

            return service_time(t["submit_time"]) or ""
        ms = t.get("gmt_create")
        if isinstance(ms, (int, float)) and not isinstance(ms, bool) and 0 < ms < 1e14:
            import datetime

            return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
        return ""

    return [" ".join(one_line(v or "", 100) for v in (
        t.get("task_id"), t.get("task_status") or t.get("status"), t.get("model_name"),
        when(t))).rstrip() for t in rows]


def journal_task_lines(rows: list[dict[str, Any]], now: float) -> list[str]:
    """``tasks`` as text: one line per journaled task (``Service.local_tasks`` rows): id,
    status, model, age, then where its video is, how long its URL lives, or why it failed."""
    out = []
    for d in rows:
        extra = d["path"] or ""
        if d["expires_in"] is not None and d["status"] == "SUCCEEDED":
            extra = ("not downloaded, expires in " + fmt_duration(d["expires_in"])
                     if d["expires_in"] > 0 else "not downloaded, URL expired")
        elif d["code"]:
            extra = f"{d['code']}: {d['message'] or ''}"
        age = fmt_duration(now - d["submitted_at"]) if d["submitted_at"] else "?"
        out.append(f"{d['task_id']} {d['status']:<9} {d['model'] or '-':<18} {age:>7} ago "
                   f"{extra}".rstrip())
    return out


def emit_models_path(env: Environment, *, json_out: JsonOut | None) -> None:
    """``wanvid models --path``: where the user's catalogue is read from (it may not exist)."""
    from wanvid.catalogue import USER_FILE
    from wanvid.models import user_catalogue_path

    path = user_catalogue_path() or env.config_dir / USER_FILE
    exists = path.exists()
    if json_out is not None:
        json_out.result({"path": str(path), "exists": exists,
                         "symlink": path.is_symlink()})
        return
    env.out(str(path))
    if not exists:
        env.note(f"{path.name} does not exist yet; create it to add or change models "
                 "(README \"Your own models\")")
