"""Output files never follow links: a symlink (or a hard link) planted where wanvid keeps
``NAME.part``, its resume record ``NAME.part.json`` or the final ``NAME`` is refused with one
line naming it (``WriteError``, exit 9: the task stays pending), and the file it points at
is left byte for byte as it was. In a shared, group-writable output directory anyone may
plant one; before, wanvid truncated or appended to the link's target and exited 0."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import responses

from tests.test_download import URL, VIDEO, Server, mock, part_of, serve  # noqa: F401
from wanvid.download import download
from wanvid.errors import ExitStatus, WriteError

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX links")

LARGER = random.Random(1).randbytes(len(VIDEO) * 2)
SMALLER = random.Random(2).randbytes(1000)


def _victim(tmp_path: Path, data: bytes) -> Path:
    """Someone else's file, outside the output directory."""
    other = tmp_path / "elsewhere"
    other.mkdir(exist_ok=True)
    victim = other / "precious.bin"
    victim.write_bytes(data)
    return victim


def _out(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir(exist_ok=True)
    return d


@pytest.mark.parametrize("data", [LARGER, SMALLER], ids=["larger", "smaller"])
def test_part_symlink_is_refused_and_its_target_untouched(
        data: bytes, mock: responses.RequestsMock, tmp_path: Path) -> None:  # noqa: F811
    server = serve(mock, Server(VIDEO))
    victim = _victim(tmp_path, data)
    dest = _out(tmp_path) / "v.mp4"
    part_of(dest).symlink_to(victim)

    with pytest.raises(WriteError) as e:
        download(URL, dest)

    assert e.value.status == ExitStatus.OUTPUT
    assert e.value.message.startswith(f"{part_of(dest)}: is a symbolic link")
    assert "\n" not in e.value.message
    assert victim.read_bytes() == data
    assert not dest.exists() and not dest.is_symlink()
    assert part_of(dest).is_symlink()  # left for its owner to look at
    assert server.ranges == []  # refused before anything was fetched


def test_dangling_part_symlink_is_refused_and_creates_nothing(
        mock: responses.RequestsMock, tmp_path: Path) -> None:  # noqa: F811
    serve(mock, Server(VIDEO))
    target = tmp_path / "elsewhere" / "new.bin"
    target.parent.mkdir()
    dest = _out(tmp_path) / "v.mp4"
    part_of(dest).symlink_to(target)
    with pytest.raises(WriteError, match="is a symbolic link"):
        download(URL, dest)
    assert not target.exists() and not dest.exists()


def test_part_hard_linked_to_another_file_is_refused(
        mock: responses.RequestsMock, tmp_path: Path) -> None:  # noqa: F811
    serve(mock, Server(VIDEO))
    victim = _victim(tmp_path, SMALLER)
    dest = _out(tmp_path) / "v.mp4"
    os.link(victim, part_of(dest))
    with pytest.raises(WriteError, match="other hard link"):
        download(URL, dest)
    assert victim.read_bytes() == SMALLER
    assert not dest.exists()


def test_symlinked_resume_record_is_refused_and_its_target_untouched(
        mock: responses.RequestsMock, tmp_path: Path) -> None:  # noqa: F811
    server = serve(mock, Server(VIDEO))
    victim = _victim(tmp_path, b'{"mine": true}')
    dest = _out(tmp_path) / "v.mp4"
    record = dest.with_name("v.mp4.part.json")
    record.symlink_to(victim)

    with pytest.raises(WriteError) as e:
        download(URL, dest)

    assert e.value.message.startswith(f"{record}: is a symbolic link where wanvid keeps "
                                      "its resume record")
    assert victim.read_bytes() == b'{"mine": true}'
    assert not dest.exists() and not part_of(dest).exists()
    assert server.ranges == []


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("existing", [True, False], ids=["to-a-file", "dangling"])
def test_symlink_at_the_final_name_is_refused(
        force: bool, existing: bool, mock: responses.RequestsMock,  # noqa: F811
        tmp_path: Path) -> None:
    server = serve(mock, Server(VIDEO))
    victim = tmp_path / "elsewhere" / "precious.bin"
    victim.parent.mkdir()
    if existing:
        victim.write_bytes(SMALLER)
    dest = _out(tmp_path) / "v.mp4"
    dest.symlink_to(victim)

    with pytest.raises(WriteError) as e:
        download(URL, dest, force=force)

    assert e.value.message.startswith(f"{dest}: is a symbolic link where wanvid keeps "
                                      "the video's name")
    assert dest.is_symlink() and os.readlink(dest) == str(victim)
    assert victim.read_bytes() == SMALLER if existing else not victim.exists()
    assert server.ranges == []
    assert not part_of(dest).exists()


def test_symlink_planted_at_the_final_name_during_the_download_is_refused(
        mock: responses.RequestsMock, tmp_path: Path) -> None:  # noqa: F811
    serve(mock, Server(VIDEO))
    victim = _victim(tmp_path, SMALLER)
    dest = _out(tmp_path) / "v.mp4"

    def plant(done: int, total: int | None) -> None:
        if done == total and not dest.is_symlink():
            dest.symlink_to(victim)

    with pytest.raises(WriteError, match="is a symbolic link"):
        download(URL, dest, on_progress=plant)
    assert victim.read_bytes() == SMALLER
    assert dest.is_symlink()
    assert part_of(dest).read_bytes() == VIDEO  # kept: remove the link and run again

    dest.unlink()
    result = download(URL, dest)  # the complete .part is used as it is
    assert dest.read_bytes() == VIDEO and not dest.is_symlink()
    assert result.fetched == 0


def test_a_symlinked_output_directory_is_fine(
        mock: responses.RequestsMock, tmp_path: Path) -> None:  # noqa: F811
    serve(mock, Server(VIDEO))
    real = _out(tmp_path)
    (tmp_path / "videos").symlink_to(real, target_is_directory=True)
    download(URL, tmp_path / "videos" / "v.mp4")
    assert (real / "v.mp4").read_bytes() == VIDEO
