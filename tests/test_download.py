"""wanvid.download: resumable, atomic, flat-memory downloads, and output paths."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import responses

from wanvid import download as dl
from wanvid import outputs
from wanvid.crc64 import crc64
from wanvid.download import DownloadResult, download
from wanvid.errors import BadInputError, ExitStatus, NetworkError, URLExpiredError
from wanvid.outputs import output_path, sanitize

URL = ("https://dashscope-result-sh.oss-cn-shanghai.aliyuncs.com/1d/ab/task.mp4"
       "?Expires=4102444800&OSSAccessKeyId=LTAIxxx&Signature=abc%3D")  # expires in 2100
EXPIRED_URL = URL.replace("4102444800", "1000000000")  # expired in 2001
OTHER_URL = URL.replace("task.mp4", "other.mp4")

def mp4(brand: bytes, payload: bytes) -> bytes:
    """A well-formed MP4: an ``ftyp`` box, then an ``mdat`` box holding ``payload``."""
    ftyp = b"\x00\x00\x00\x10ftyp" + brand + b"\x00\x00\x02\x00"
    return ftyp + (8 + len(payload)).to_bytes(4, "big") + b"mdat" + payload


VIDEO = mp4(b"isom", random.Random(7).randbytes(300_000))
OTHER_VIDEO = mp4(b"mp42", random.Random(8).randbytes(200_000))
HALF = len(VIDEO) // 2


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class CutBody(io.RawIOBase):
    """A response body that breaks with a ChunkedEncodingError after `cut_after` bytes."""

    def __init__(self, data: bytes | memoryview, cut_after: int | None) -> None:
        self._chunks: Iterator[bytes] = self._gen(data, cut_after)
        self._pending = b""

    @staticmethod
    def _gen(data: bytes | memoryview, cut_after: int | None) -> Iterator[bytes]:
        limit = len(data) if cut_after is None else cut_after
        for i in range(0, limit, 4096):
            yield bytes(data[i:min(i + 4096, limit)])
        if cut_after is not None:
            raise requests.exceptions.ChunkedEncodingError("Connection broken: cut")

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
        if not self._pending:
            self._pending = next(self._chunks, b"")
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def header(request: requests.PreparedRequest, name: str) -> str | None:
    value = request.headers.get(name)
    return value.decode() if isinstance(value, bytes) else value


class Server:
    """A storage host stand-in that serves `data` with Range support and records what
    each request asked for. Like OSS it sends the whole object's CRC-64
    (``x-oss-hash-crc64ecma``) on every answer unless `crc` is false, and an opaque ETag."""

    def __init__(self, data: bytes, *, honour_range: bool = True,
                 cut_after: Callable[[int], int | None] = lambda call: None,
                 status: int | None = None, extra_headers: dict[str, str] | None = None,
                 crc: bool = True, etag: str | None = '"etag-1"',
                 corrupt_ranges: bool = False) -> None:
        self.data = data
        self.etag = etag
        self.corrupt_ranges = corrupt_ranges  # a 206's bytes are the wrong ones
        self.crc = str(crc64(data)) if crc else None
        self.honour_range = honour_range
        self.cut_after = cut_after
        self.status = status
        self.extra = extra_headers or {}
        self.ranges: list[str | None] = []
        self.auth: list[str | None] = []

    def __call__(self, request: requests.PreparedRequest
                 ) -> tuple[int, dict[str, str], io.BufferedReader | bytes]:
        call = len(self.ranges)
        rng = header(request, "Range")
        self.ranges.append(rng)
        self.auth.append(header(request, "Authorization"))
        if self.status is not None:
            return self.status, {}, b"<Error><Code>AccessDenied</Code></Error>"
        start, status = 0, 200
        headers = {"Content-Type": "video/mp4"}
        if self.etag is not None:
            headers["ETag"] = self.etag
        if self.crc is not None:
            headers["x-oss-hash-crc64ecma"] = self.crc
        headers.update(self.extra)
        if rng and self.honour_range:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            assert m, rng
            start = int(m.group(1))
            if start >= len(self.data):
                headers["Content-Range"] = f"bytes */{len(self.data)}"
                return 416, headers, b""
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(self.data) - 1}/{len(self.data)}"
        body = memoryview(self.data)[start:]  # no copy: keeps memory measurements honest
        if status == 206 and self.corrupt_ranges:  # the right range, the wrong data
            body = memoryview(random.Random(start).randbytes(len(body)))
        headers["Content-Length"] = str(len(body))
        return status, headers, io.BufferedReader(CutBody(body, self.cut_after(call)))


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as r:
        yield r


def serve(mock: responses.RequestsMock, server: Server, url: str = URL) -> Server:
    mock.add_callback(responses.GET, url.split("?")[0], callback=server)
    return server


def part_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- the happy path -----------------------------------------------------------------


def test_full_download_is_byte_identical_and_leaves_no_part(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    server = serve(mock, Server(VIDEO))
    progress: list[tuple[int, int | None]] = []
    dest = tmp_path / "out" / "v.mp4"  # the directory is created

    result = download(URL, dest, on_progress=lambda d, t: progress.append((d, t)),
                      chunk_size=64 * 1024)

    assert dest.read_bytes() == VIDEO
    assert result == DownloadResult(dest, len(VIDEO), sha(VIDEO), len(VIDEO), False, False)
    assert server.ranges == [None]
    assert not part_of(dest).exists()
    assert not dest.with_name("v.mp4.part.json").exists()
    assert progress[-1] == (len(VIDEO), len(VIDEO))
    assert len(progress) > 2  # reported while streaming, not just at the end


def test_progress_is_reported_before_the_storage_host_answers(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    # So a display says "downloading" (not the task's earlier status) while a slow host
    # has not sent its headers; a resume says how much is already there.
    progress: list[tuple[int, int | None]] = []
    seen_at_request: list[list[tuple[int, int | None]]] = []
    inner = Server(VIDEO, cut_after=lambda call: HALF if call == 0 else None)

    def server(request: requests.PreparedRequest
               ) -> tuple[int, dict[str, str], io.BufferedReader | bytes]:
        seen_at_request.append(list(progress))
        return inner(request)

    mock.add_callback(responses.GET, URL.split("?")[0], callback=server)
    download(URL, tmp_path / "v.mp4", on_progress=lambda d, t: progress.append((d, t)),
             sleep=lambda s: None)
    assert seen_at_request[0] == [(0, None)]
    assert seen_at_request[1][-1] == (HALF, len(VIDEO))  # the resume: what is on disk
    assert progress[-1] == (len(VIDEO), len(VIDEO))


def test_memory_stays_flat_whatever_the_size(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    big = mp4(b"isom", bytes(16 * 1024 * 1024))
    serve(mock, Server(big))
    tracemalloc.start()
    try:
        result = download(URL, tmp_path / "v.mp4", chunk_size=64 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.size == len(big) and result.sha256 == sha(big)
    assert peak < 2 * 1024 * 1024  # a 16 MiB body never sits in memory


# --- resuming -----------------------------------------------------------------------


def test_resumes_a_half_finished_part_asking_only_for_the_missing_bytes(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    server = serve(mock, Server(VIDEO))
    dest = tmp_path / "v.mp4"
    part_of(dest).write_bytes(VIDEO[:HALF])

    result = download(URL, dest)

    assert server.ranges == [f"bytes={HALF}-"]
    assert sha(dest.read_bytes()) == sha(VIDEO)
    assert result.sha256 == sha(VIDEO)  # the hash covers the resumed prefix too
    assert result.fetched == len(VIDEO) - HALF
    assert result.resumed is True
    assert not part_of(dest).exists()


@pytest.mark.parametrize("leftover", [VIDEO[:HALF], VIDEO + b"x" * 100])
def test_server_ignoring_range_restarts_from_zero(
        leftover: bytes, mock: responses.RequestsMock, tmp_path: Path) -> None:
    server = serve(mock, Server(VIDEO, honour_range=False))
    dest = tmp_path / "v.mp4"
    part_of(dest).write_bytes(leftover)

    result = download(URL, dest)

    assert server.ranges == [f"bytes={len(leftover)}-"]  # asked, got a 200 with everything
    assert dest.read_bytes() == VIDEO  # nothing of the leftover survives, not even a tail
    assert result.fetched == len(VIDEO)
    assert result.resumed is False


def test_206_for_the_wrong_offset_restarts_without_range(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    calls: list[str | None] = []

    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        calls.append(header(request, "Range"))
        if header(request, "Range"):  # answers from byte 0 while claiming 206
            return 206, {"Content-Range": f"bytes 0-{len(VIDEO) - 1}/{len(VIDEO)}"}, VIDEO
        return 200, {"Content-Length": str(len(VIDEO))}, VIDEO

    mock.add_callback(responses.GET, URL.split("?")[0], callback=callback)
    dest = tmp_path / "v.mp4"
    part_of(dest).write_bytes(VIDEO[:HALF])

    download(URL, dest)

    assert calls == [f"bytes={HALF}-", None]
    assert dest.read_bytes() == VIDEO


def test_416_on_a_complete_part_counts_as_done(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    server = serve(mock, Server(VIDEO))
    dest = tmp_path / "v.mp4"
    part_of(dest).write_bytes(VIDEO)

    result = download(URL, dest)

    assert server.ranges == [f"bytes={len(VIDEO)}-"]
    assert dest.read_bytes() == VIDEO
    assert (result.fetched, result.sha256, result.size) == (0, sha(VIDEO), len(VIDEO))
    assert not part_of(dest).exists()


def test_416_with_a_different_total_restarts(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    server = serve(mock, Server(VIDEO))
    dest = tmp_path / "v.mp4"
    part_of(dest).write_bytes(VIDEO + b"junk from something else")

    download(URL, dest)

    assert server.ranges == [f"bytes={len(VIDEO) + 24}-", None]
    assert dest.read_bytes() == VIDEO


def test_connection_cut_mid_stream_is_resumed_automatically(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    server = serve(mock, Server(VIDEO, cut_after=lambda call: 100_000 if call == 0 else None))
    sleeps = Sleeps()
    dest = tmp_path / "v.mp4"

    result = download(URL, dest, sleep=sleeps, chunk_size=4096)

    assert server.ranges == [None, "bytes=100000-"]
    assert dest.read_bytes() == VIDEO
    assert result.sha256 == sha(VIDEO)
    assert result.resumed is True and result.fetched == len(VIDEO)
    assert len(sleeps) == 1  # backed off once, through the injected sleep


def test_short_body_without_an_error_is_resumed(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    calls: list[str | None] = []

    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        rng = header(request, "Range")
        calls.append(rng)
        crc = {"x-oss-hash-crc64ecma": str(crc64(VIDEO))}
        if rng is None:  # announces the whole file, sends a third of it, closes cleanly
            return 200, {"Content-Length": str(len(VIDEO)), **crc}, VIDEO[:100_000]
        start = int(rng[6:-1])
        return 206, {"Content-Range": f"bytes {start}-{len(VIDEO) - 1}/{len(VIDEO)}",
                     "Content-Length": str(len(VIDEO) - start), **crc}, VIDEO[start:]

    mock.add_callback(responses.GET, URL.split("?")[0], callback=callback)
    dest = tmp_path / "v.mp4"
    result = download(URL, dest, sleep=Sleeps())
    assert calls == [None, "bytes=100000-"]
    assert dest.read_bytes() == VIDEO and result.sha256 == sha(VIDEO)


def test_gives_up_after_max_resumes_and_keeps_the_part(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    server = serve(mock, Server(VIDEO, cut_after=lambda call: 10_000))
    sleeps = Sleeps()
    dest = tmp_path / "v.mp4"

    with pytest.raises(NetworkError) as err:
        download(URL, dest, max_resumes=2, sleep=sleeps, chunk_size=4096)

    assert err.value.status == ExitStatus.NETWORK and int(err.value.status) == 7
    assert len(server.ranges) == 3 and len(sleeps) == 2
    assert sleeps == sorted(sleeps)  # backs off, never faster
    assert not dest.exists()
    assert part_of(dest).read_bytes() == VIDEO[:30_000]  # kept for a later resume
    assert str(part_of(dest)) in err.value.message


def test_connection_refused_counts_against_max_resumes(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    mock.add(responses.GET, URL.split("?")[0],
             body=requests.exceptions.ConnectionError("refused"))
    sleeps = Sleeps()
    with pytest.raises(NetworkError):
        download(URL, tmp_path / "v.mp4", max_resumes=3, sleep=sleeps)
    assert len(mock.calls) == 4 and len(sleeps) == 3
    assert not part_of(tmp_path / "v.mp4").exists()  # an empty .part is not left behind


def test_keyboard_interrupt_keeps_the_part_and_a_later_call_resumes(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    server = serve(mock, Server(VIDEO))
    dest = tmp_path / "v.mp4"

    def interrupt(done: int, total: int | None) -> None:
        if done >= 64 * 1024:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download(URL, dest, on_progress=interrupt, chunk_size=64 * 1024)
    assert not dest.exists()
    kept = part_of(dest).read_bytes()
    assert kept == VIDEO[:len(kept)] and len(kept) >= 64 * 1024

    result = download(URL, dest)
    assert server.ranges == [None, f"bytes={len(kept)}-"]
    assert dest.read_bytes() == VIDEO and result.resumed


def test_a_part_left_by_a_different_video_is_not_spliced_in(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    serve(mock, Server(OTHER_VIDEO), OTHER_URL)
    server = serve(mock, Server(VIDEO))
    dest = tmp_path / "v.mp4"
    with pytest.raises(KeyboardInterrupt):
        download(OTHER_URL, dest, chunk_size=4096,
                 on_progress=lambda d, t: (_ for _ in ()).throw(KeyboardInterrupt) if d else None)
    assert part_of(dest).stat().st_size > 0
    assert json.loads(dest.with_name("v.mp4.part.json").read_text())["source"].endswith(
        "/other.mp4")

    download(URL, dest)
    assert server.ranges == [None]
    assert dest.read_bytes() == VIDEO


def test_a_changed_object_restarts_instead_of_resuming(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    part_of(dest).write_bytes(VIDEO[:HALF])
    dest.with_name("v.mp4.part.json").write_text(json.dumps(
        {"source": dl._source(URL), "etag": '"etag-0"', "total": len(VIDEO)}))
    server = serve(mock, Server(VIDEO))  # now serves ETag "etag-1"

    download(URL, dest)

    assert server.ranges == [f"bytes={HALF}-", None]
    assert dest.read_bytes() == VIDEO


# --- verification against the whole object's checksum (review 2026-12-03, finding 4) ---

CRC = str(crc64(VIDEO))
MD5_ETAG = '"' + hashlib.md5(VIDEO).hexdigest().upper() + '"'


def test_crc64_is_crc64_xz_as_oss_computes_it() -> None:
    """CRC-64/XZ (ECMA-182, reflected, all-ones init and xorout): the check value of
    "123456789" is 11051210869376104954 (0x995DC9BBDF1939FA), for liblzma and the
    pure-Python table alike; fed in pieces it is the CRC of the whole."""
    from wanvid import crc64 as c

    assert c.crc64(b"123456789") == c.crc64_python(b"123456789") == 11051210869376104954
    assert c.crc64(b"") == c.crc64_python(b"") == 0
    data = random.Random(3).randbytes(100_003)
    assert c.crc64(data) == c.crc64_python(data)
    whole = c.Crc64()
    for piece in (data[:1], bytearray(data[1:4097]), memoryview(data)[4097:]):
        whole.update(piece)
    assert whole.digest() == str(c.crc64_python(data))
    assert c.fast()  # liblzma is where Python's lzma module is (CI's Linux)


@pytest.mark.parametrize("etag", [None, '"etag-1"', 'W/"' + "a" * 32 + '"'],
                         ids=["no-etag", "opaque-etag", "weak-etag"])
def test_without_any_checksum_a_cut_download_is_fetched_whole_again(
        etag: str | None, mock: responses.RequestsMock, tmp_path: Path) -> None:
    """No CRC-64, no MD5 ETag: nothing could show that a 206's bytes are wrong, so the cut
    download is never resumed with Range; the second body is the whole object."""
    server = serve(mock, Server(VIDEO, crc=False, etag=etag, corrupt_ranges=True,
                                cut_after=lambda call: HALF if call == 0 else None))
    dest = tmp_path / "v.mp4"
    result = download(URL, dest, sleep=lambda s: None)
    assert server.ranges == [None, None]
    assert dest.read_bytes() == VIDEO and result.sha256 == sha(VIDEO)
    assert result.resumed is False and result.fetched == HALF + len(VIDEO)


def test_without_any_checksum_giving_up_says_the_next_attempt_starts_over(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    server = serve(mock, Server(VIDEO, crc=False, cut_after=lambda call: HALF))
    with pytest.raises(NetworkError) as err:
        download(URL, tmp_path / "v.mp4", sleep=lambda s: None, max_resumes=2)
    assert server.ranges == [None, None, None]
    assert err.value.message.endswith(
        f"after 2 resumes; {HALF} bytes had arrived, but the storage host sends no checksum "
        "of the whole video to verify a resumed file with, so the next attempt starts again "
        "from byte 0"), err.value.message


def test_without_any_checksum_a_part_left_by_an_earlier_run_is_not_resumed(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    part_of(dest).write_bytes(VIDEO[:HALF])
    dest.with_name("v.mp4.part.json").write_text(json.dumps(
        {"source": dl._source(URL), "etag": '"etag-1"', "total": len(VIDEO), "crc64": None}))
    server = serve(mock, Server(VIDEO, crc=False, corrupt_ranges=True))
    download(URL, dest)
    assert server.ranges == [None]
    assert dest.read_bytes() == VIDEO


def test_a_206_that_brings_no_checksum_for_a_part_without_record_restarts(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    part_of(dest).write_bytes(VIDEO[:HALF])  # no .part.json: an older wanvid's, or lost
    server = serve(mock, Server(VIDEO, crc=False, corrupt_ranges=True))
    download(URL, dest)
    assert server.ranges == [f"bytes={HALF}-", None]
    assert dest.read_bytes() == VIDEO


def test_a_resume_with_wrong_bytes_is_caught_by_the_crc_and_fetched_again(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    server = serve(mock, Server(VIDEO, corrupt_ranges=True,
                                cut_after=lambda call: HALF if call == 0 else None))
    dest = tmp_path / "v.mp4"
    result = download(URL, dest, sleep=lambda s: None)
    assert server.ranges == [None, f"bytes={HALF}-", None]
    assert dest.read_bytes() == VIDEO and result.sha256 == sha(VIDEO)


def test_an_honest_resume_with_a_crc_fetches_only_the_missing_bytes(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    server = serve(mock, Server(VIDEO, etag=None))
    dest = tmp_path / "v.mp4"
    part_of(dest).write_bytes(VIDEO[:HALF])
    dest.with_name("v.mp4.part.json").write_text(json.dumps(
        {"source": dl._source(URL), "etag": None, "total": len(VIDEO), "crc64": CRC}))
    result = download(URL, dest)
    assert server.ranges == [f"bytes={HALF}-"]
    assert result.fetched == len(VIDEO) - HALF and dest.read_bytes() == VIDEO


def test_a_wrong_crc_on_every_try_fails_clearly_and_saves_nothing(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    serve(mock, Server(VIDEO, extra_headers={"x-oss-hash-crc64ecma": "12345"}))
    dest = tmp_path / "v.mp4"
    with pytest.raises(NetworkError, match=r"verification twice \(its CRC-64 \d+ does not "
                       r"match the storage host's x-oss-hash-crc64ecma 12345\)"):
        download(URL, dest)
    assert not dest.exists() and not part_of(dest).exists()


def test_a_crc_that_changed_since_the_part_was_started_restarts(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    part_of(dest).write_bytes(VIDEO[:HALF])
    dest.with_name("v.mp4.part.json").write_text(json.dumps(
        {"source": dl._source(URL), "etag": '"etag-1"', "total": len(VIDEO), "crc64": "7"}))
    server = serve(mock, Server(VIDEO))
    download(URL, dest)
    assert server.ranges == [f"bytes={HALF}-", None]
    assert dest.read_bytes() == VIDEO


@pytest.mark.parametrize("fast", [True, False], ids=["liblzma", "pure-python"])
def test_the_crc_is_preferred_unless_only_the_slow_one_is_at_hand(
        fast: bool, mock: responses.RequestsMock, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With both an MD5 ETag and a CRC, one check is made: the CRC when liblzma computes
    it (cheaper than MD5), else the MD5 (the pure-Python CRC is ~16 MiB/s)."""
    from wanvid import crc64 as c

    if not fast:
        monkeypatch.setattr(c, "_BACKEND", [None])
    wrong = "12345"  # a CRC that does not match: seen only when the CRC is the check
    serve(mock, Server(VIDEO, etag=MD5_ETAG, extra_headers={"x-oss-hash-crc64ecma": wrong}))
    dest = tmp_path / "v.mp4"
    if fast:
        with pytest.raises(NetworkError, match="CRC-64"):
            download(URL, dest)
    else:
        assert download(URL, dest).sha256 == sha(VIDEO)


def test_an_existing_file_is_recognised_by_its_crc_without_fetching_the_body(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    served: list[int] = []

    class Counted(Server):
        def __call__(self, request: requests.PreparedRequest
                     ) -> tuple[int, dict[str, str], io.BufferedReader | bytes]:
            status, headers, body = super().__call__(request)
            served.append(status)
            return status, headers, b"x" * 64  # not the video: must not be compared
    serve(mock, Counted(VIDEO))
    dest = tmp_path / "v.mp4"
    dest.write_bytes(VIDEO)
    assert dl.same_as_remote(URL, dest) == (len(VIDEO), sha(VIDEO))
    dest.write_bytes(VIDEO[:-1] + b"\x00")
    assert dl.same_as_remote(URL, dest) is None


# --- HTTP errors ---------------------------------------------------------------------


def test_403_means_the_url_expired(mock: responses.RequestsMock, tmp_path: Path) -> None:
    serve(mock, Server(VIDEO, status=403))
    dest = tmp_path / "v.mp4"
    with pytest.raises(URLExpiredError) as err:
        download(URL, dest)
    assert err.value.status == ExitStatus.TASK_FAILED and int(err.value.status) == 5
    assert "24-hour" in err.value.message and "generated again" in err.value.message
    assert not dest.exists() and not part_of(dest).exists()


def test_404_after_expires_means_expired_but_not_before(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    mock.add(responses.GET, EXPIRED_URL.split("?")[0], status=404)
    with pytest.raises(URLExpiredError) as err:
        download(EXPIRED_URL, tmp_path / "a.mp4")
    assert "expired at 2001-09-09" in err.value.message

    with pytest.raises(NetworkError) as err2:
        download(URL, tmp_path / "b.mp4")  # same 404, Expires still in the future
    assert not isinstance(err2.value, URLExpiredError)
    assert "404" in err2.value.message


def test_expiry_is_judged_by_the_injected_clock(mock: responses.RequestsMock,
                                                 tmp_path: Path) -> None:
    # URL expires 2100-01-01 (4102444800); a clock standing after that makes a 404 "expired"
    mock.add(responses.GET, URL.split("?")[0], status=404)
    with pytest.raises(URLExpiredError) as err:
        download(URL, tmp_path / "a.mp4", now=lambda: 4102444801.0)
    assert "expired at 2100-01-01" in err.value.message


def test_abandoning_the_hash_thread_never_blocks_on_a_held_queue_lock() -> None:
    # A Ctrl-C inside Queue.put can leave the queue's lock held; abandon() must not wait.
    import threading

    pipe = dl._HashPipe(hashlib.sha256())
    assert pipe._q.mutex.acquire(timeout=1)
    done = threading.Event()
    t = threading.Thread(target=lambda: (pipe.abandon(), done.set()), daemon=True)
    t.start()
    finished = done.wait(timeout=5)
    pipe._q.mutex.release()
    assert finished, "abandon() blocked on the queue's lock"
    pipe.abandon()  # with the lock free it stops the thread
    pipe._t.join(timeout=5)
    assert not pipe._t.is_alive()


def test_5xx_is_retried_then_succeeds(mock: responses.RequestsMock, tmp_path: Path) -> None:
    mock.add(responses.GET, URL.split("?")[0], status=503, headers={"Retry-After": "2"})
    mock.add(responses.GET, URL.split("?")[0], status=500)
    serve(mock, Server(VIDEO))
    sleeps = Sleeps()
    download(URL, tmp_path / "v.mp4", sleep=sleeps)
    assert (tmp_path / "v.mp4").read_bytes() == VIDEO
    assert sleeps[0] == 2.0 and len(sleeps) == 2  # Retry-After honoured


def test_persistent_5xx_gives_up_with_network_error(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    mock.add(responses.GET, URL.split("?")[0], status=502)
    sleeps = Sleeps()
    with pytest.raises(NetworkError) as err:
        download(URL, tmp_path / "v.mp4", sleep=sleeps)
    assert "502" in err.value.message
    assert len(mock.calls) == dl.HTTP_RETRIES + 1 and len(sleeps) == dl.HTTP_RETRIES


def test_a_body_that_is_not_an_mp4_is_refused(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    mock.add(responses.GET, URL.split("?")[0], body=b"<html>captive portal</html>" * 100,
             content_type="text/html")
    dest = tmp_path / "v.mp4"
    with pytest.raises(NetworkError) as err:
        download(URL, dest)
    assert "MP4" in err.value.message
    assert not dest.exists() and not part_of(dest).exists()


def test_expected_sha256_mismatch_after_download_is_refused(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    serve(mock, Server(VIDEO))
    dest = tmp_path / "v.mp4"
    with pytest.raises(NetworkError, match="sha256"):
        download(URL, dest, expected_sha256="0" * 64)
    assert not dest.exists()


# --- existing files ------------------------------------------------------------------


def test_existing_file_without_force_is_refused_naming_force(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    dest.write_bytes(b"precious")
    with pytest.raises(BadInputError) as err:
        download(URL, dest)
    assert err.value.message == (
        f"{dest}: file exists; pass --force to overwrite it, or choose another -o")
    assert err.value.status == 2
    assert dest.read_bytes() == b"precious" and len(mock.calls) == 0


def test_existing_file_with_force_is_overwritten(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    serve(mock, Server(VIDEO))
    dest = tmp_path / "v.mp4"
    dest.write_bytes(b"old")
    result = download(URL, dest, force=True)
    assert dest.read_bytes() == VIDEO and not result.skipped


def test_identical_existing_file_is_skipped_without_fetching(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    dest.write_bytes(VIDEO)
    result = download(URL, dest, expected_sha256=sha(VIDEO).upper())
    assert result == DownloadResult(dest, len(VIDEO), sha(VIDEO), 0, False, True)
    assert len(mock.calls) == 0


def test_different_existing_file_with_expected_sha256_is_still_refused(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    dest.write_bytes(b"something else")
    with pytest.raises(BadInputError, match="--force"):
        download(URL, dest, expected_sha256=sha(VIDEO))
    assert len(mock.calls) == 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file locks")
def test_a_second_download_to_the_same_file_is_refused_while_one_runs(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    holder = dl._Part(dest)  # what a concurrent wanvid process holds
    try:
        with pytest.raises(BadInputError, match="another wanvid process"):
            download(URL, dest)
    finally:
        holder.close()
    assert len(mock.calls) == 0


# --- credentials ---------------------------------------------------------------------


def test_no_authorization_header_reaches_the_storage_host(
        mock: responses.RequestsMock, tmp_path: Path) -> None:
    server = serve(mock, Server(VIDEO, cut_after=lambda call: 50_000 if call == 0 else None))
    api = requests.Session()  # a session someone configured for the DashScope API
    api.headers["Authorization"] = "Bearer sk-secret"
    api.auth = ("user", "sk-secret")

    download(URL, tmp_path / "a.mp4", session=api, sleep=Sleeps(), chunk_size=4096)
    download(URL, tmp_path / "b.mp4")  # and the default fresh session

    assert len(server.auth) == 3
    assert server.auth == [None, None, None]
    assert all("sk-secret" not in str(c.request.headers) for c in mock.calls)


# --- output paths --------------------------------------------------------------------

TID = "9ddebba6-f784-4f55-b845-0123456789ab"


@pytest.mark.parametrize(("template", "kwargs", "expected"), [
    (None, {}, f"{TID}.mp4"),
    ("", {}, f"{TID}.mp4"),
    ("clip.mp4", {}, "clip.mp4"),
    ("clip", {}, "clip.mp4"),
    ("clip.mov", {}, "clip.mov"),
    ("clips/", {}, f"clips/{TID}.mp4"),
    ("{task_id}", {}, f"{TID}.mp4"),
    ("{model}/{task_id}.mp4", {"model": "wan2.2-i2v-flash"}, f"wan2.2-i2v-flash/{TID}.mp4"),
    ("{model}", {"model": "wan2.2-i2v-flash"}, "wan2.2-i2v-flash.mp4"),  # not ".2-i2v-flash"
    ("{stem}-{seed}.mp4", {"stem": "cat", "seed": 42}, "cat-42.mp4"),
    ("{stem}-{seed}", {"stem": "cat"}, "cat-noseed.mp4"),
    ("{date}_{stem}", {"date": "2025-11-23", "stem": "cat"}, "2025-11-23_cat.mp4"),
    ("out.{model}", {"model": "wan2.5-i2v-preview"}, "out.wan2.5-i2v-preview.mp4"),
    ("{model}/", {"model": "m"}, f"m/{TID}.mp4"),
])
def test_output_path_table(template: str | None, kwargs: dict[str, object],
                           expected: str) -> None:
    assert output_path(template, task_id=TID, **kwargs) == Path(expected)  # type: ignore[arg-type]


def test_output_path_uses_output_dir_and_existing_directories(tmp_path: Path) -> None:
    assert output_path(None, task_id=TID, output_dir=tmp_path) == tmp_path / f"{TID}.mp4"
    assert output_path("x", task_id=TID, output_dir=tmp_path) == tmp_path / "x.mp4"
    (tmp_path / "videos").mkdir()
    assert output_path(str(tmp_path / "videos"), task_id=TID) == (
        tmp_path / "videos" / f"{TID}.mp4")
    assert output_path("videos", task_id=TID, output_dir=tmp_path) == (
        tmp_path / "videos" / f"{TID}.mp4")


@pytest.mark.parametrize("hostile", [
    "../../etc/passwd", "/etc/passwd", "..\\..\\windows\\system32", "a/../../b", "..",
    "-rf", ".bashrc", "a\nb\x00c\x1b[31m", "C:evil", "x" * 1000, "", "   ", "NUL",
])
def test_values_from_the_service_cannot_escape_the_output_directory(
        hostile: str, tmp_path: Path) -> None:
    for template in (None, "{task_id}", "{model}/{task_id}.mp4"):
        p = output_path(template, task_id=hostile, model=hostile, output_dir=tmp_path)
        rel = p.relative_to(tmp_path)  # raises if it escaped
        assert len(rel.parts) == (2 if template and "/" in template else 1)
        for part in rel.parts:
            assert ".." not in part and "/" not in part and "\\" not in part
            assert not part.startswith((".", "-")) and part.strip() == part
            assert part.isprintable() and len(part) <= outputs.SANITIZE_MAX + 4
            assert part.split(".")[0].upper() != "NUL"


@pytest.mark.parametrize(("raw", "clean"), [
    ("abc-123", "abc-123"),
    ("../../etc/passwd", "_._etc_passwd"),
    ("a/b\\c:d", "a_b_c_d"),
    ("..hidden", "hidden"),
    ("--force", "force"),
    ("tab\there", "tab_here"),
    ("", "_"),
    ("wan2.5-i2v-preview", "wan2.5-i2v-preview"),
])
def test_sanitize(raw: str, clean: str) -> None:
    assert sanitize(raw) == clean


def test_sanitize_caps_length() -> None:
    assert len(sanitize("é" * 500)) == outputs.SANITIZE_MAX
    assert len(sanitize("é" * 500).encode()) <= 2 * outputs.SANITIZE_MAX


@pytest.mark.parametrize("template", ["{foo}.mp4", "{}", "{0}", "{task_id.x}"])
def test_unknown_placeholders_name_the_allowed_ones(template: str) -> None:
    with pytest.raises(BadInputError) as err:
        output_path(template, task_id=TID)
    for name in ("{task_id}", "{model}", "{stem}", "{seed}", "{date}"):
        assert name in err.value.message


def test_malformed_template_is_bad_input() -> None:
    with pytest.raises(BadInputError):
        output_path("{task_id", task_id=TID)


def test_download_refuses_a_directory_as_destination(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="directory"):
        download(URL, tmp_path)


def test_part_and_final_file_live_in_the_same_directory(
        mock: responses.RequestsMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serve(mock, Server(VIDEO))
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        renames.append((os.fspath(src), os.fspath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    dest = tmp_path / "v.mp4"
    download(URL, dest)
    videos = [r for r in renames if not r[1].endswith(".part.json")]  # resume records too
    assert videos == [(str(part_of(dest)), str(dest))]
    assert all(Path(a).parent == Path(b).parent == tmp_path for a, b in renames)


def test_fsyncs_before_the_atomic_rename(
        mock: responses.RequestsMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serve(mock, Server(VIDEO))
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        if os.fstat(fd).st_size == len(VIDEO):
            events.append("fsync")
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if os.fspath(dst).endswith(".part.json"):  # the resume record, written on the way
            real_replace(src, dst)
            return
        events.append("replace")
        assert Path(dst).exists() is False  # nothing sat under the final name before
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    download(URL, tmp_path / "v.mp4")
    assert events[:2] == ["fsync", "replace"]
