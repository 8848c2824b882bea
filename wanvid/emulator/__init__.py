"""A faithful local emulator of the Wan image-to-video API (DashScope async tasks + OSS result).

Standard library only: ``http.server.ThreadingHTTPServer``. Start it in-process
(``Emulator(EmulatorConfig()).start()`` returns the base URL) or as a process
(``wanvid emulator``, which calls ``serve_forever``), then point a client at the base URL,
e.g. ``http://127.0.0.1:8765/api/v1``.

Modules: ``config`` (switches and counters), ``wire`` (routes, codes, response shapes),
``checks`` (request checks), ``upload`` (policies, the upload host, ``oss://``),
``tasks`` (task lifecycle and list), ``storage`` (the video, signed URLs, downloads),
``service`` (the ``Emulator``: clock, state, routing), ``server`` (HTTP layer and
``serve_forever``).

Routes (all under ``/api/v1``, as on the service):

* ``POST /services/aigc/video-generation/video-synthesis``: submit an i2v task (first frame).
* ``POST /services/aigc/image2video/video-synthesis``: submit a kf2v task (first + last frame).
* ``GET /tasks/{task_id}``: query one task. Unknown ids, and tasks older than 24 h on the
  emulator's clock, answer 200 with ``task_status: UNKNOWN``, like the service.
* ``POST /tasks/{task_id}/cancel``: only PENDING tasks cancel (then CANCELED); anything else
  is 400 ``UnsupportedOperation``.
* ``GET /tasks``: task list (``start_time``, ``end_time`` as ``YYYY-MM-DD HH:mm:ss``,
  ``model_name``, ``status``, ``page_no``, ``page_size`` <= 100). Without a time window it
  lists the last 24 h. Answer: ``{request_id, data: [...], total, total_page, page_no,
  page_size}``, newest first.
* ``GET /uploads?action=getPolicy&model=M``: a temporary-upload policy for model M (see
  ``upload``); with ``uploads=False``, 404 ``NotFound`` (uploads not offered here).
* The upload host, on its own port (``Emulator.uploads.url``): ``POST /`` of the policy's
  form with the file last, checked like OSS (signature, expiry, key prefix, file last,
  size, no overwriting). A submit with ``oss://`` URLs needs
  ``X-DashScope-OssResourceResolve: enable`` and an object uploaded for that model.
* On the storage port (``Emulator.storage_url``, never the API's):
  ``GET|HEAD /api/v1/files/{task_id}.mp4?Expires=EPOCH&OSSAccessKeyId=...&Signature=...``: the
  result video, standing in for the OSS bucket. The URL is signed (HMAC with a per-process
  secret) and expires ``url_ttl`` seconds after the task ends; errors answer OSS-style XML
  (403 ``AccessDenied`` "Request has expired.", 403 ``SignatureDoesNotMatch``, 404
  ``NoSuchKey``). No API key is needed (or checked) here, as on OSS; the ``Authorization``
  header of every download request is recorded in ``stats.download_auth`` so tests can check
  that a client never sends the key to storage. Single ranges (``bytes=N-``, ``bytes=N-M``,
  ``bytes=-N``) answer 206; ``N`` >= size answers 416 with ``Content-Range: bytes */SIZE``.

Emulator-only admin routes (no key, not under ``/api/v1``), for driving a subprocess
emulator from end-to-end tests without sleeping:

* ``POST /_emulator/advance?seconds=N``: move the emulator's clock forward N seconds.
  Answers ``{"advanced": N, "offset": TOTAL}``.
* ``GET /_emulator/stats``: the counters of ``EmulatorStats`` as JSON.
* ``GET /_emulator/hosts``: ``{"api", "storage", "upload"}`` roots (``http://host:port``).

Behaviour and its limits:

* Every API request needs ``Authorization: Bearer <key>`` (any non-empty key, or exactly
  ``EmulatorConfig.key`` when set), else 401 ``InvalidApiKey``. Submits need
  ``X-DashScope-Async: enable``, else 403 ``AccessDenied``.
* Submits are validated against ``wanvid.models`` (model, endpoint, resolution, duration,
  audio support, seed range, field types); errors use the service's JSON shape
  ``{request_id, code, message}``. Prompts longer than the model's limit are truncated, not
  refused (as the service does); the truncated text is the task's ``orig_prompt``.
* ``data:`` image URIs are decoded and inspected with ``wanvid.media.probe_image`` (format
  JPEG/PNG/BMP/WEBP by magic bytes and matching the declared MIME type, 360..2000 px per side,
  <= 10 MB, no PNG alpha); failures are 400 ``InvalidParameter.DataInspection``. ``http(s)://``
  and ``oss://`` URLs are accepted as given: the emulator never fetches anything, so a bad
  remote image only fails on the real service. Audio ``data:`` URIs are checked with
  ``wanvid.media.probe_audio`` (WAV/MP3, 3..30 s, <= 15 MB).
* Task lifecycle runs on the emulator clock (``config.clock()`` plus everything ``advance``
  added): PENDING for ``pending`` s, RUNNING for ``running`` s, then SUCCEEDED (or FAILED
  with ``InternalError.Algo`` for the ``fail_rate`` share, deterministically: task n fails
  when ``floor(n * fail_rate)`` steps up). Wall-clock fields (``submit_time`` ...,
  ``Expires``) are the real time at start plus emulator-clock elapsed time, formatted like
  the service (``YYYY-MM-DD HH:MM:SS.mmm``) in UTC+8 (Beijing time, the service's zone).
* Every video is the bundled fixture ``wanvid/data/sample.mp4`` (real H.264, 1.2 s),
  optionally padded to ``video_mb`` MiB with a trailing top-level ``free`` box (still a
  valid MP4, byte-identical on every fetch).
* Fault injection: ``throttle_every`` (429 ``Throttling.RateQuota`` on every Nth API
  request, no ``Retry-After``, as the service documents none), ``error_every`` (500
  ``InternalError`` on every Nth task query), ``drop_download_at`` (the first download of
  each (task, range start) is cut at that fraction of the file, so resuming with Range
  completes).
"""

from wanvid.emulator.config import EmulatorConfig, EmulatorStats
from wanvid.emulator.server import serve_forever
from wanvid.emulator.service import Emulator
from wanvid.emulator.storage import OSS_ACCESS_KEY_ID, load_fixture, padded_video, parse_range
from wanvid.emulator.tasks import TASK_TTL
from wanvid.emulator.wire import (
    ADMIN_PREFIX,
    API_PREFIX,
    DATA_INSPECTION,
    FAIL_CODE,
    FAIL_MESSAGE,
    INTERNAL_CODE,
    INTERNAL_MESSAGE,
    MIB,
    THROTTLE_CODE,
    THROTTLE_MESSAGE,
)

__all__ = [
    "ADMIN_PREFIX", "API_PREFIX", "DATA_INSPECTION", "FAIL_CODE", "FAIL_MESSAGE",
    "INTERNAL_CODE", "INTERNAL_MESSAGE", "MIB", "OSS_ACCESS_KEY_ID", "TASK_TTL",
    "THROTTLE_CODE", "THROTTLE_MESSAGE", "Emulator", "EmulatorConfig", "EmulatorStats",
    "load_fixture", "padded_video", "parse_range", "serve_forever",
]
