"""The gallery in a real browser: headless Chromium, driven by chromedriver over the
WebDriver protocol (plain HTTP with requests: no new dependency), opens the generated page
from disk and checks that every <video> loads its metadata (duration > 0), that each card
shows its prompt and model, that the filter hides the cards that do not match, and that
no script from the service's text ran. It also takes the README's screenshot
(``docs/gallery.png``) when GALLERY_SCREENSHOT names where to write it.

Skipped, saying why, only where Chromium or chromedriver is not installed; ``.ci/run``
installs both (Debian: ``apt-get install chromium chromium-driver``) and sets
CI_REQUIRE_BROWSER=1, which turns the skip into a failure.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.gallery_fixtures import MODELS, PROMPTS, make_videos
from wanvid import gallery

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _find() -> tuple[str, str] | None:
    browser = next((p for b in BROWSERS if (p := shutil.which(b))), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


class Driver:
    """The few WebDriver commands the test needs."""

    def __init__(self, base: str, session: str) -> None:
        self.url = f"{base}/session/{session}"

    def cmd(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = requests.request(method, self.url + path, json=body, timeout=60)
        value = r.json().get("value")
        if r.status_code != 200:
            raise AssertionError(f"webdriver {path}: {value}")
        return value

    def js(self, script: str, *args: Any) -> Any:
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script: str) -> Any:
        return self.cmd("POST", "/execute/async", {"script": script, "args": []})


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Driver]:
    found = _find()
    if found is None:
        if os.environ.get("CI_REQUIRE_BROWSER"):
            pytest.fail("CI_REQUIRE_BROWSER is set but chromium/chromedriver are missing")
        pytest.skip("no Chromium + chromedriver on this machine (Debian: apt-get install "
                    "chromium chromium-driver; .ci/run installs them)")
    browser, chromedriver = found
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([chromedriver, f"--port={port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(base + "/status", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("chromedriver did not start")
            time.sleep(0.05)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": browser, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--mute-audio",
                f"--user-data-dir={tmp_path / 'profile'}"]}}}}
        r = requests.post(base + "/session", json=caps, timeout=120).json()
        session = (r.get("value") or {}).get("sessionId")
        if not session:
            pytest.fail(f"chromium did not start: {r.get('value')}")
        d = Driver(base, session)
        d.cmd("POST", "/timeouts", {"script": 30_000})
        try:
            yield d
        finally:
            requests.delete(d.url, timeout=30)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


WAIT_METADATA = """
var done = arguments[arguments.length - 1];
var vs = [].slice.call(document.querySelectorAll('video'));
(function check() {
  if (vs.every(function (v) { return v.readyState >= 1 || v.error; })) {
    done(vs.map(function (v) {
      return {src: v.getAttribute('src'), duration: v.duration, error: v.error && v.error.code};
    }));
  } else { setTimeout(check, 50); }
})();
"""

CARDS = """
return [].slice.call(document.querySelectorAll('.card')).map(function (c) {
  return {prompt: c.querySelector('.prompt').textContent,
          model: (c.querySelector('dd.model') || {}).textContent,
          visible: c.offsetParent !== null, task: c.getAttribute('data-task')};
});
"""

TYPE = """
var box = document.getElementById('filter');
box.value = arguments[0];
box.dispatchEvent(new Event('input'));
return document.getElementById('count').textContent;
"""


def test_gallery_in_headless_chromium(driver: Driver, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    sidecars = make_videos(videos, 9, batches=2, hostile=True)
    index, count = gallery.write(videos)
    assert count == 9
    driver.cmd("POST", "/url", {"url": index.resolve().as_uri()})

    loaded = driver.js_async(WAIT_METADATA)
    assert len(loaded) == 9
    for v in loaded:  # every video really loads from disk: metadata, duration > 0
        assert v["error"] is None and v["duration"] > 0, v

    cards = driver.js(CARDS)
    by_task = {c["task"]: c for c in cards}
    assert len(by_task) == 9 and all(c["visible"] for c in cards)
    for d in sidecars:  # each card shows its prompt and model
        c = by_task[d["task_id"]]
        assert c["prompt"] == d["prompt"] and c["model"] == d["model"]
    assert driver.js("return window.__xss === undefined")  # the hostile prompt stayed text

    # the filter: every word must match; non-matching cards (and empty groups) are hidden
    words = f"{PROMPTS[1].split()[0]} {MODELS[1]}"
    shown = driver.js(TYPE, words.upper())
    cards = driver.js(CARDS)
    expect = {d["task_id"] for d in sidecars
              if PROMPTS[1].split()[0] in d["prompt"] and d["model"] == MODELS[1]}
    assert expect and {c["task"] for c in cards if c["visible"]} == expect
    assert shown == f"{len(expect)} of 9 videos"
    assert driver.js("return [].slice.call(document.querySelectorAll('section'))"
                     ".filter(function (s) { return !s.hidden; }).length") >= 1
    assert driver.js(TYPE, "no-such-thing") == "0 of 9 videos"
    assert not [c for c in driver.js(CARDS) if c["visible"]]
    assert driver.js(TYPE, "") == "9 of 9 videos"

    shot = os.environ.get("GALLERY_SCREENSHOT")
    if shot:
        png = base64.b64decode(driver.cmd("GET", "/screenshot"))
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        Path(shot).write_bytes(png)
