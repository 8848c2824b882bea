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

* ``POST /services/aigc/video-generation/video-synthesis``: submit an i2v task: the legacy
  ``input.img_url`` (+ ``audio_url``), or the ``input.media`` array for the models whose
  catalogue ``protocol`` is ``media`` (wan2.7-i2v, HappyHorse): ``{type, url}`` items of the
  model's ``media`` types, in one of its ``media_combinations`` only (anything else is 400
  ``InvalidParameter``; so is ``img_url`` sent to a media model, or ``media`` to another).
* A model name no catalogue entry has (a dated snapshot: a real date, one of the entry's
  ``snapshots`` when it lists any) is 404 ``ModelNotFound``, on a submit and on a policy.
* ``POST /services/aigc/image2video/video-synthesis``: submit a kf2v task (first + last frame;
  the first frame alone with ``input.template``).
* ``GET /tasks/{task_id}``: query one task. Unknown ids, and tasks older than 24 h on the
  emulator's clock, answer 200 with ``task_status: UNKNOWN``, like the service.
* ``POST /tasks/{task_id}/cancel``: only PENDING tasks cancel (then CANCELED); anything else
  is 400 ``UnsupportedOperation``.
* ``GET /tasks``: task list (``start_time``, ``end_time`` as ``YYYYMMDDhhmmss`` as
  documented, or ``YYYY-MM-DD HH:mm:ss``, Beijing time; ``model_name``, ``status``,
  ``page_no``, ``page_size`` <= 100). Without a time window it lists the last 24 h. Answer:
  ``{request_id, data: [...], total, total_page, page_no, page_size}``, newest first; each
  row has ``task_id``, ``status`` (also as ``task_status``), ``model_name``, ``request_id``,
  ``gmt_create`` (epoch ms) and ``submit_time``. A finished task's ``GET /tasks/{id}``
  carries ``orig_prompt``.
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
* ``GET /_emulator/config``: the switches that can change at run time; ``POST
  /_emulator/config?max_concurrent=N&model_limits=true|false&fail_with=CODE&fail_rate=R``
  (and ``submit_latency=S``, ``slow_headers=S``, ``storage_checksums=true|false``,
  ``corrupt_ranges=true|false``) changes them (all or nothing: a bad value
  is 400 and changes none) and answers the result.
* ``GET /_emulator/tasks``: every task created, oldest first (``task_id``, ``seq``,
  ``model_name``, ``prompt``, ``status``, ``submit_time`` epoch), so a test can count the
  tasks each job made.

Behaviour and its limits:

* Every API request needs ``Authorization: Bearer <key>`` (any non-empty key, or exactly
  ``EmulatorConfig.key`` when set), else 401 ``InvalidApiKey``. Submits need
  ``X-DashScope-Async: enable``, else 403 ``AccessDenied``.
* Submits are validated against the catalogue, ``wanvid.models`` (model, endpoint, protocol
  and media combinations, resolution, duration, audio support, ``parameters.shot_type``
  among the model's ``shot_types``, ``input.template`` among its ``templates``, seed range,
  field types); errors use the service's JSON shape ``{request_id, code, message}``.
  Prompts longer than the model's limit (HappyHorse: its lower limit for Chinese text) are
  truncated, not refused (as the service does); the truncated text is the task's
  ``orig_prompt``. A model the catalogue gains is emulated with no change here.
* ``data:`` image URIs are decoded and inspected with ``wanvid.media.probe_image`` against
  the model's catalogue limits (``Model.image_limits``: formats, so no BMP on HappyHorse;
  240..8000 px per side on today's models, >= 300 px and aspect 1:2.5..2.5:1 on HappyHorse;
  10 or 20 MB; values the catalogue marks unconfirmed are not enforced), the declared MIME
  type matching the data, no PNG alpha; failures are 400 ``InvalidParameter.DataInspection``.
  ``http(s)://`` and ``oss://`` URLs are accepted as given: the emulator never fetches
  anything, so a bad remote image only fails on the real service. Audio ``data:`` URIs
  (``audio_url`` or a ``driving_audio`` item) are checked with ``wanvid.media.probe_audio``
  against the model's audio limits. A ``first_clip`` must be an http(s) or ``oss://`` URL;
  an ``oss://`` clip from the upload host is inspected from its first MiB (MP4/MOV,
  duration, sides, aspect, size per ``Model.clip_limits``; 400 ``InvalidFile.Format``,
  ``.Duration``, ``.Resolution``, ``.AspectRatio``, ``.Size``), an http(s) one is taken as
  given and counted as ``clip_min_s`` seconds long.
* Task lifecycle runs on the emulator clock (``config.clock()`` plus everything ``advance``
  added): PENDING for ``pending`` s, RUNNING for ``running`` s, then SUCCEEDED (or FAILED
  with ``InternalError.Algo`` for the ``fail_rate`` share, deterministically: task n fails
  when ``floor(n * fail_rate)`` steps up). Wall-clock fields (``submit_time`` ...,
  ``Expires``) are the real time at start plus emulator-clock elapsed time, formatted like
  the service (``YYYY-MM-DD HH:MM:SS.mmm``) in UTC+8 (Beijing time, the service's zone).
* Each task's video is the bundled fixture ``wanvid/data/sample.mp4`` (real H.264, 1.2 s)
  with a trailing top-level ``free`` box naming the task (``task_video``): still a valid
  MP4, byte-identical on every fetch, and different from every other task's, so a video
  saved under the wrong task's name is seen. Padded to ``video_mb`` MiB (a trailing
  ``free`` box of zeros), one video is shared by every task (a copy per task would not fit).
* ``usage`` follows the model (wan-api-2026 §5): wan2.1 ``video_duration``/``video_ratio``;
  wan2.2/2.5 ``duration`` + ``SR``; newer models (wan2.6, wan2.7, HappyHorse, any added one)
  also ``input_video_duration`` (the clip's seconds, 0 without) and
  ``output_video_duration`` (``duration`` is their sum, the billed seconds), and ``audio``
  (false when ``parameters.audio`` was false) on wan2.6-i2v-flash. wan2.6 tasks carry no
  ``actual_prompt``, nor do template tasks.
* Account limits: ``max_concurrent`` N (``--max-concurrent``) allows at most N tasks
  PENDING or RUNNING per model at once (``model_limits``: each model's catalogue
  ``concurrent_tasks`` instead); a submit over it is 429 ``Throttling`` ("Requests rate limit
  exceeded, please try again later. ..."), creates nothing and counts in
  ``stats.concurrent_throttled`` (and ``throttled``).
* Task failures (``fail_with``, ``--fail-with CODE``): failing tasks end FAILED with
  ``InvalidParameter`` "The size is not match ...", ``DataInspectionFailed`` "Input or output
  data may contain inappropriate content.", ``IPInfringementSuspect`` "Input data is
  suspected of being involved in IP infringement." or ``InternalError.Algo`` (the default);
  with ``fail_rate`` 0 every task fails so, else the ``fail_rate`` share does.
* ``submit_latency``: a submit creates its task at once and answers S seconds later, so a
  client killed in that window leaves a task it never heard of (the crash window a
  write-ahead submit intent closes).
* Fault injection: ``throttle_every`` (429 ``Throttling.RateQuota`` on every Nth API
  request, no ``Retry-After``, as the service documents none), ``error_every`` (500
  ``InternalError`` on every Nth task query), ``drop_download_at`` (the first download of
  each (task, range start) is cut at that fraction of the file, so resuming with Range
  completes), ``slow_headers`` (``--slow-headers S``: each video download's status line
  and headers go out one byte every S seconds, so only a bound on the time to the headers
  ends the wait; also at run time, and turning it off sends the rest at once),
  ``storage_checksums`` false (``--no-checksums``: videos are served without an ETag and
  without ``x-oss-hash-crc64ecma``, like an object nothing can verify a download against),
  ``corrupt_ranges`` (``--corrupt-ranges``: every 206 answer's body is the wrong bytes,
  each byte inverted, under the right headers). Both also at run time.
* Every video answer carries the whole object's ETag (the upper-case MD5, quoted, as OSS
  gives a simply uploaded object) and ``x-oss-hash-crc64ecma`` (its CRC-64/XZ in decimal,
  on ranged answers too, as OSS sends it).
"""

from wanvid.emulator.config import EmulatorConfig, EmulatorStats
from wanvid.emulator.server import serve_forever
from wanvid.emulator.service import Emulator
from wanvid.emulator.storage import (
    OSS_ACCESS_KEY_ID,
    load_fixture,
    padded_video,
    parse_range,
    task_video,
)
from wanvid.emulator.tasks import TASK_TTL
from wanvid.emulator.wire import (
    ADMIN_PREFIX,
    API_PREFIX,
    CONCURRENT_CODE,
    DATA_INSPECTION,
    FAIL_CODE,
    FAIL_MESSAGE,
    INTERNAL_CODE,
    INTERNAL_MESSAGE,
    MIB,
    TASK_FAULTS,
    THROTTLE_CODE,
    THROTTLE_MESSAGE,
)

__all__ = [
    "ADMIN_PREFIX", "API_PREFIX", "CONCURRENT_CODE", "DATA_INSPECTION", "FAIL_CODE", "FAIL_MESSAGE",
    "INTERNAL_CODE", "INTERNAL_MESSAGE", "MIB", "OSS_ACCESS_KEY_ID", "TASK_FAULTS", "TASK_TTL",
    "THROTTLE_CODE", "THROTTLE_MESSAGE", "Emulator", "EmulatorConfig", "EmulatorStats",
    "load_fixture", "padded_video", "parse_range", "serve_forever", "task_video",
]
