"""The HTTP layer: a threading server whose handler reads a request, hands it to
``Emulator.route`` and writes the answer; ``serve_forever`` runs one until stopped."""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qs, urlsplit

from wanvid.emulator.config import EmulatorConfig
from wanvid.emulator.wire import (
    ADMIN_PREFIX,
    API_PREFIX,
    INTERNAL_CODE,
    INTERNAL_MESSAGE,
    Download,
    Response,
    error,
)

if TYPE_CHECKING:
    from wanvid.emulator.service import Emulator

CHUNK = 1 << 20  # download write size
MAX_BODY = 64 << 20  # largest request body accepted
_INVERT = bytes(255 - b for b in range(256))  # corrupt_ranges: every byte inverted


class Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Emulator
    role: str = "api"  # "api", "storage" (result videos) or "upload" (the upload host)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        if self.emulator.log:
            self.emulator.log("emulator error: " + traceback.format_exc().rstrip())


class Server6(Server):
    address_family = socket.AF_INET6


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "wanvid-emulator"
    sys_version = ""
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request goes to the emulator's log callback instead

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            return None
        if n < 0 or n > MAX_BODY:
            return None
        return self.rfile.read(n)

    def _dispatch(self, method: str) -> None:
        emu = self.server.emulator
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        if self.server.role == "upload":
            self._upload(method, split.path)
            return
        body = self._read_body()
        if body is None:
            self.close_connection = True
            resp: Response | Download = error(413, "RequestEntityTooLarge",
                                              "The request body is too large.")
        else:
            try:
                resp = emu.route(method, split.path, query, self.headers, body,
                                 role=self.server.role)
            except Exception:  # an emulator bug: answer like the service would, and log it
                if emu.log:
                    emu.log("emulator error: " + traceback.format_exc().rstrip())
                resp = error(500, INTERNAL_CODE, INTERNAL_MESSAGE)
        if emu.log:
            emu.log(f"{method} {self.path[:120]} -> {resp.status}")
        if isinstance(resp, Download):
            self._send_download(method, resp)
        else:
            self._send(method, resp)

    def _upload(self, method: str, path: str) -> None:
        """The upload host reads the body itself, as a stream."""
        from wanvid.emulator.upload import FormError

        emu = self.server.emulator
        try:
            resp = emu.uploads.receive(method, path, self.headers, self.rfile)
        except FormError as e:
            self.close_connection = True
            resp = e.response
        except Exception:  # an emulator bug
            if emu.log:
                emu.log("emulator error: " + traceback.format_exc().rstrip())
            self.close_connection = True
            resp = error(500, INTERNAL_CODE, INTERNAL_MESSAGE)
        if emu.log:
            emu.log(f"upload {method} {path[:80]} -> {resp.status}")
        self._send(method, resp)

    def _send(self, method: str, resp: Response) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(resp.body)

    def _send_download(self, method: str, d: Download) -> None:
        emu = self.server.emulator
        self.send_response(d.status)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(d.end - d.start + 1))
        for k, v in d.headers.items():
            self.send_header(k, v)
        if not self._end_headers_slowly():
            return
        if method == "HEAD":
            return
        emu.count("downloads")
        stop = d.cut_at if d.cut_at is not None else d.end + 1
        pos = d.start
        pace = _Pace(emu.config.storage_rate_mb)
        while pos < stop:
            n = min(pace.chunk, stop - pos)
            pace.wait(n)
            emu.count("bytes_served", n)
            piece = d.data[pos: pos + n]
            try:
                self.wfile.write(bytes(piece).translate(_INVERT) if d.corrupt else piece)
            except OSError:
                emu.count("bytes_served", -n)
                self.close_connection = True
                return
            pos += n
        if d.cut_at is not None:
            emu.count("downloads_cut")
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


    def _end_headers_slowly(self) -> bool:
        """``end_headers``, one byte every ``slow_headers`` seconds when that fault is on (each
        read brings a byte, so no per-read timeout trips). False when the client left."""
        config = self.server.emulator.config
        if config.slow_headers <= 0:
            self.end_headers()
            return True
        self._headers_buffer.append(b"\r\n")  # type: ignore[attr-defined]
        data = b"".join(self._headers_buffer)  # type: ignore[attr-defined]
        self._headers_buffer = []  # type: ignore[attr-defined]
        pos = 0
        try:
            while pos < len(data):
                every = config.slow_headers  # turned off at run time: the rest at once
                n = 1 if every > 0 else len(data) - pos
                self.wfile.write(data[pos: pos + n])
                pos += n
                if every > 0 and pos < len(data):
                    time.sleep(every)
        except OSError:
            self.close_connection = True
            return False
        return True


class _Pace:
    """Caps one connection at ``rate_mb`` MiB/s (0: no cap): small writes, each sent when
    the bytes before it have had their time."""

    def __init__(self, rate_mb: float) -> None:
        self.rate = rate_mb * (1 << 20)
        self.chunk = CHUNK if self.rate <= 0 else max(4096, min(CHUNK, int(self.rate / 20)))
        self.start = time.monotonic()
        self.sent = 0

    def wait(self, n: int) -> None:
        if self.rate > 0:
            ahead = self.start + self.sent / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            self.sent += n


def serve_forever(config: EmulatorConfig, *, out: TextIO | None = None,
                  err: TextIO | None = None) -> None:
    """Run the emulator until Ctrl-C (or SIGTERM): the base URL goes to ``out`` as one line,
    human-readable notes and a line per request to ``err``. Returns normally when stopped.
    A bad config or a port that cannot be bound raises ``wanvid.errors.BadInputError``."""
    from wanvid.emulator.service import Emulator
    from wanvid.errors import BadInputError

    out = out or sys.stdout
    err = err or sys.stderr

    def log(line: str) -> None:
        print(line, file=err, flush=True)

    try:
        emu = Emulator(config, log=log)
    except ValueError as e:
        raise BadInputError(f"emulator: {e}") from None
    try:
        url = emu.start()
    except OSError as e:
        raise BadInputError(f"cannot listen on {config.host}:{config.port}: "
                            f"{e.strerror or e}") from None
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    restore: Any = None
    try:
        if threading.current_thread() is threading.main_thread():
            restore = signal.signal(signal.SIGTERM, on_term)
        print(url, file=out, flush=True)
        root = url[: -len(API_PREFIX)]
        c = config
        log(f"wanvid emulator: Wan video API at {url}")
        log(f"  result videos at {emu.storage_url}, upload host at {emu.uploads.url}"
            + ("" if c.uploads else " (uploads not offered: the policy route says so)"))
        log(f"  tasks PENDING {c.pending:g}s, RUNNING {c.running:g}s; video URLs valid "
            f"{c.url_ttl:g}s; video {f'{c.video_mb:g} MiB' if c.video_mb > 0 else 'fixture'}")
        faults = [f"{n}={v:g}" for n, v in (
            ("fail_rate", c.fail_rate), ("throttle_every", c.throttle_every),
            ("error_every", c.error_every), ("drop_download_at", c.drop_download_at),
            ("max_concurrent", c.max_concurrent), ("submit_latency", c.submit_latency),
            ("slow_headers", c.slow_headers)) if v]
        if c.model_limits and not c.max_concurrent:
            faults.append("model_limits (each model's concurrent_tasks)")
        if c.fail_with:
            faults.append(f"fail_with={c.fail_with}")
        if not c.storage_checksums:
            faults.append("no_checksums (videos without ETag and x-oss-hash-crc64ecma)")
        if c.corrupt_ranges:
            faults.append("corrupt_ranges (wrong bytes in every 206)")
        log("  faults: " + (", ".join(faults) if faults else "none"))
        log("  API key: " + ("only the configured key" if c.key is not None
                             else "any Bearer key"))
        log(f"  admin: POST {root}{ADMIN_PREFIX}/advance?seconds=N, "
            f"GET {root}{ADMIN_PREFIX}/stats, GET|POST {root}{ADMIN_PREFIX}/config")
        log("  press Ctrl-C to stop")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
        if restore is not None:
            signal.signal(signal.SIGTERM, restore)
    s = emu.stats
    log(f"wanvid emulator stopped ({s.submits} submits, {s.queries} queries, "
        f"{s.downloads} downloads)")
