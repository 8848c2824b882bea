"""Small hostile HTTP servers for tests: loopback only, one thread per connection, every
answer bounded in time (``MAX_SECONDS``) and stopped when the server closes.

An answer is a function ``(request) -> Iterable[bytes | float]`` that writes the raw HTTP
response: bytes are sent as they are, a float is a pause of that many seconds. So a server
can trickle one byte at a time (its headers too), send a chunked body that never ends, or a
body without a Content-Length that never ends, which a framework would not let it do.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

MAX_SECONDS = 30.0  # no answer runs longer, whatever it says


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    number: int  # 1 for the server's first request, 2 for the next...


Answer = Callable[[Request], Iterable[bytes | float]]


@dataclass
class StandIn:
    answer: Answer
    requests: list[Request] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0  # body bytes written, all connections

    def __post_init__(self) -> None:
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(MAX_SECONDS)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                data = sock.recv(65536)
                if not data:
                    return
                head += data
            lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            req = Request(method, path, headers, len(self.requests) + 1)
            self.requests.append(req)
            end = time.monotonic() + MAX_SECONDS
            for piece in self.answer(req):
                if self.stop.is_set() or time.monotonic() > end:
                    return
                if not isinstance(piece, bytes):
                    self.stop.wait(piece)
                    continue
                sock.sendall(piece)
                self.sent += len(piece)
        except OSError:  # the client went away (what a bounded client does)
            return
        finally:
            sock.close()


# --- answers -------------------------------------------------------------------------------


def head(status: str = "200 OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def trickle(body: bytes, every: float, *, length: bool = True,
            content_type: str = "application/json", **headers: str) -> Answer:
    """One byte every ``every`` seconds (with a Content-Length when ``length``; ``headers``
    added, ``_`` for ``-`` in their names)."""

    def answer(req: Request) -> Iterator[bytes | float]:
        extra = {"Content_Length": str(len(body))} if length else {"Connection": "close"}
        yield head(Content_Type=content_type, **extra, **headers)
        for i in range(len(body)):
            yield body[i:i + 1]
            yield every

    return answer


def slow_headers(body: bytes, every: float, *, content_type: str = "video/mp4") -> Answer:
    """The status line and headers one byte every ``every`` seconds, then ``body`` at once:
    every read brings a byte, so no read timeout trips while the headers never end."""

    def answer(req: Request) -> Iterator[bytes | float]:
        h = head(Content_Type=content_type, Content_Length=str(len(body)))
        for i in range(len(h)):
            yield h[i:i + 1]
            yield every
        yield body

    return answer


def endless_continues(every: float) -> Answer:
    """``100 Continue`` interim answers for ever, never a final status line (http.client
    skips each one and reads on)."""

    def answer(req: Request) -> Iterator[bytes | float]:
        while True:
            yield b"HTTP/1.1 100 Continue\r\n\r\n"
            yield every

    return answer


def endless_chunked_json(chunk: int = 64 << 10) -> Answer:
    """A status answer that never ends: ``{"output": "xxxx...`` in chunks, for ever."""

    def answer(req: Request) -> Iterator[bytes | float]:
        yield head(Content_Type="application/json", Transfer_Encoding="chunked")
        piece = b'{"output": "' + b"x" * chunk
        data = b"x" * chunk
        while True:
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            piece = data

    return answer


MP4_HEAD = b"\x00\x00\x00\x10ftypisom\x00\x00\x02\x00" + b"\x00\x00\x00\x00mdat"


def endless_video(chunk: int = 256 << 10) -> Answer:
    """A video body without Content-Length that never ends (an mdat box "to the end")."""

    def answer(req: Request) -> Iterator[bytes | float]:
        yield head(Content_Type="video/mp4", Connection="close")
        yield MP4_HEAD
        data = bytes(chunk)
        while True:
            yield data

    return answer


def silent(status: str = "200 OK", **headers: str) -> Answer:
    """Headers, then nothing at all (until the server closes)."""

    def answer(req: Request) -> Iterator[bytes | float]:
        yield head(status, **headers)
        while True:
            yield 0.05

    return answer


def json_answer(body: bytes, status: str = "200 OK", **headers: str) -> Answer:
    def answer(req: Request) -> Iterator[bytes | float]:
        yield head(status, Content_Type="application/json", Content_Length=str(len(body)),
                   **headers)
        yield body

    return answer


def routes(table: dict[str, Answer]) -> Answer:
    """The answer of the first path prefix that matches; 404 otherwise."""

    def answer(req: Request) -> Iterable[bytes | float]:
        for prefix, ans in table.items():
            if req.path.startswith(prefix):
                return ans(req)
        return json_answer(b'{"code": "NotFound"}', "404 Not Found")(req)

    return answer


def succeeded(video_url: str) -> bytes:
    import json

    return json.dumps({"request_id": "r-1", "output": {
        "task_id": "t-1", "task_status": "SUCCEEDED", "video_url": video_url}}).encode()


# --- the real CLI, measured ---------------------------------------------------------------


@dataclass
class Measured:
    code: int
    out: str
    err: str
    seconds: float  # wall time, start to exit
    rss_mb: float  # the process's peak resident memory (VmHWM, polled every 20 ms)


def run_measured(cmd: list[str], *, env: dict[str, str], cwd: str | None = None,
                 limit: float = 120.0) -> Measured:
    """Run ``cmd`` and report its exit code, output, wall time and peak RSS, the latter from
    /proc's VmHWM (that child alone, no psutil). Killed after ``limit`` seconds (code -9)."""
    import os
    import subprocess
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
        hwm = 0.0
        while True:
            hwm = _vm_hwm(proc.pid) or hwm  # the last reading: after exec, monotonic
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > limit:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        seconds = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
        out.seek(0)
        err.seek(0)
        return Measured(proc.returncode, out.read().decode(errors="replace"),
                        err.read().decode(errors="replace"), seconds,
                        hwm or usage.ru_maxrss / 1024)


def _vm_hwm(pid: int) -> float | None:
    """Peak RSS in MB so far from /proc (ru_maxrss of a child forked from a big process,
    such as pytest, counts that process's pages from before the exec)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None
