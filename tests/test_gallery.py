"""wanvid gallery: the page's cards, grouping, escaping, journal fallback, rewriting."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.gallery_fixtures import HOSTILE, make_videos
from wanvid import gallery
from wanvid.journal import Journal


def test_one_card_per_video_grouped_by_batch_then_prompt(tmp_path: Path) -> None:
    make_videos(tmp_path, 12, batches=2)
    index, count = gallery.write(tmp_path)
    page = index.read_text()
    assert count == 12 and page.count('<article class="card"') == 12
    assert page.count("<video ") == 12 and page.count(" muted loop controls ") == 12
    assert page.count("<section>") == 2  # jobs0.jsonl, jobs1.jsonl
    # per batch, one row per prompt: 2 batches x 3 prompts
    assert page.count('<div class="group">') == 6
    assert 'src="v000.mp4"' in page and 'src="v000.thumb.jpg"' in page
    assert "wan2.5-i2v-preview" in page and "720P" in page and "1m05s" in page
    assert "rendered with soft light" in page  # the actual prompt


def test_self_contained_and_escaped(tmp_path: Path) -> None:
    make_videos(tmp_path, 3, hostile=True)
    page = (gallery.write(tmp_path)[0]).read_text()
    assert "<script>window.__xss" not in page and "onerror=\"" not in page
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # ours
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no network, no CDN
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert HOSTILE  # the fixture really is hostile


def test_sidecar_cannot_point_outside_the_directory(tmp_path: Path) -> None:
    make_videos(tmp_path, 1)
    side = tmp_path / "v000.json"
    d = json.loads(side.read_text())
    d["video"]["file"] = "../../etc/passwd"
    d["thumbnail"] = "/etc/hostname"
    side.write_text(json.dumps(d))
    page = gallery.write(tmp_path)[0].read_text()
    assert "etc" not in page.split("<main>")[1]
    assert "No videos" in page


def test_journal_fills_in_videos_without_a_sidecar_and_since_filters(tmp_path: Path) -> None:
    make_videos(tmp_path, 2)
    (tmp_path / "old.mp4").write_bytes(b"\x00")
    j = Journal(tmp_path / "j.db", now=lambda: 1_700_000_000.0)
    j.record_submit("jt", model="wan2.2-i2v-flash", base_url="https://x",
                    params={"prompt": "from the journal", "seed": 3, "duration": 5,
                            "resolution": "480P"}, inputs=[])
    j.record_download("jt", path=str(tmp_path / "old.mp4"), size=1, sha256="0" * 64)
    j.record_submit("gone", model="m", base_url="https://x", params={}, inputs=[])
    j.record_download("gone", path=str(tmp_path / "missing.mp4"), size=1, sha256="0" * 64)
    cards = gallery.collect(tmp_path, records=j.list())
    assert sorted(c.source for c in cards) == ["journal", "sidecar", "sidecar"]
    jc = next(c for c in cards if c.source == "journal")
    assert (jc.prompt, jc.seed, jc.resolution) == ("from the journal", 3, "480P")
    assert [c.source for c in gallery.collect(tmp_path, records=j.list(),
                                              since=1_750_000_000.0)] == ["sidecar"] * 2


def test_rerun_updates_and_a_users_index_is_left_alone(tmp_path: Path) -> None:
    make_videos(tmp_path, 2)
    index, _ = gallery.write(tmp_path)
    make_videos(tmp_path / "more", 1)
    os.replace(tmp_path / "more" / "v000.mp4", tmp_path / "v100.mp4")
    d = json.loads((tmp_path / "more" / "v000.json").read_text())
    d["video"]["file"] = "v100.mp4"
    (tmp_path / "v100.json").write_text(json.dumps(d))
    assert gallery.write(tmp_path)[1] == 3
    index.write_text("<html>mine</html>")
    with pytest.raises(Exception, match="not written by wanvid gallery"):
        gallery.write(tmp_path)
    assert index.read_text() == "<html>mine</html>"
    assert gallery.write(tmp_path, force=True)[1] == 3


def test_cli_gallery(run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_videos(tmp_path / "v", 2)
    opened: list[str] = []
    import webbrowser

    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    r = run(["gallery", str(tmp_path / "v"), "--open"])
    assert r.code == 0, r.err
    assert r.out == f"{tmp_path / 'v' / 'index.html'}\n"
    assert "gallery of 2 video(s)" in r.err
    q = run(["gallery", str(tmp_path / "v"), "-q"])
    assert (q.code, q.out, q.err) == (0, r.out, "")
    assert opened == [(tmp_path / "v" / "index.html").as_uri()]
    r = run(["gallery", str(tmp_path / "nope")])
    assert r.code == 2 and r.err.count("\n") == 1 and "not a directory" in r.err
    r = run(["gallery", str(tmp_path / "v"), "--since", "whenever"])
    assert r.code == 2
