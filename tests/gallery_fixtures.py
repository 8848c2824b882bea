"""Directories of videos with sidecars, for the gallery's tests and bench: copies of the
emulator's sample video, varied prompts, models, seeds and batches."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

SAMPLE = Path(__file__).resolve().parent.parent / "wanvid" / "data" / "sample.mp4"
MODELS = ["wan2.2-i2v-flash", "wan2.5-i2v-preview", "wan2.2-kf2v-flash"]
DEMO = SAMPLE.with_name("demo.jpg")
PROMPTS = ["a cat turns its head and blinks", "waves roll onto the beach at dusk",
           "the flower opens slowly"]
HOSTILE = "<script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\"> & 'q'"
T0 = 1_800_000_000.0


def make_videos(root: Path, n: int, *, batches: int = 2, thumbs: bool = True,
                link: bool = True, hostile: bool = False) -> list[dict[str, Any]]:
    """``n`` videos ``v000.mp4``... with sidecars under ``root``; their sidecar contents.
    ``hostile``: the first (oldest) video's prompt and actual prompt are HTML/JS."""
    from wanvid import sidecar

    root.mkdir(parents=True, exist_ok=True)
    data = SAMPLE.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    thumb_src = None
    if thumbs:
        thumb_src = root / ".thumb-src.jpg"
        assert sidecar.make_thumbnail([DEMO], thumb_src)
    out = []
    for i in range(n):
        video = root / f"v{i:03d}.mp4"
        if link:
            try:
                video.hardlink_to(SAMPLE)
            except OSError:
                shutil.copyfile(SAMPLE, video)
        else:
            shutil.copyfile(SAMPLE, video)
        prompt = HOSTILE if hostile and i == 0 else PROMPTS[i % len(PROMPTS)]
        model = MODELS[(i // len(PROMPTS)) % len(MODELS)]
        rec = SimpleNamespace(
            model=model, inputs=[], submitted_at=T0 + 60 * i,
            params={"prompt": prompt, "resolution": "720P", "duration": 5, "seed": i,
                    "prompt_extend": True})
        answer = {"request_id": f"r{i}", "output": {
            "submit_time": "2027-01-15 16:00:00.000", "end_time": "2027-01-15 16:01:05.000",
            "actual_prompt": f"{prompt}, rendered with soft light" if i % 5 else None},
            "usage": {"duration": 5, "SR": 720}}
        thumb = None
        if thumb_src is not None:
            thumb = sidecar.thumb_path(video)
            shutil.copyfile(thumb_src, thumb)
            thumb = thumb.name
        batch = f"jobs{i % batches}.jsonl" if batches else None
        if hostile and i == 0:
            batch = "hostile.jsonl"  # its own (oldest) section: last on the page
        d = sidecar.build(task_id=f"task-{i:03d}", record=rec, response=answer, video=video,
                          size=len(data), sha256=digest, downloaded_at=T0 + 60 * i + 70,
                          thumbnail=thumb, batch=batch)
        sidecar.sidecar_path(video).write_text(json.dumps(d))
        out.append(d)
    if thumb_src is not None:
        thumb_src.unlink()
    return out
