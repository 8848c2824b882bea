"""The emulator's switches (``EmulatorConfig``) and counters (``EmulatorStats``)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    pending: float = 1.0  # seconds a task stays PENDING
    running: float = 3.0  # seconds RUNNING before SUCCEEDED/FAILED
    url_ttl: float = 86400.0  # validity of the signed video URL
    fail_rate: float = 0.0  # share of tasks that end FAILED (deterministic)
    throttle_every: int = 0  # every Nth API request gets 429 Throttling.RateQuota
    error_every: int = 0  # every Nth task query gets 500 InternalError
    drop_download_at: float = 0.0  # cut the first download per (task, range start) here
    video_mb: float = 0.0  # pad the served MP4 to this many MiB (0: the bare fixture)
    storage_rate_mb: float = 0.0  # MiB/s each download connection is served at (0: no cap)
    # seconds between the bytes of a video download's status line and headers (0: off; set
    # to 0 at run time, a download in progress gets the rest at once)
    slow_headers: float = 0.0
    key: str | None = None  # if set, only "Bearer KEY" is accepted
    uploads: bool = True  # False: the policy route answers that uploads are not offered
    upload_max_mb: float = 100.0  # the policy's max_file_size_mb
    policy_ttl: float = 300.0  # the policy's expire_in_seconds
    storage_port: int = 0  # result videos are served here (0: any free port)
    upload_port: int = 0  # the upload host (0: any free port)
    # At most this many tasks PENDING/RUNNING per model (the account limit; 0: off); a submit
    # over it is 429 Throttling and counts in stats.concurrent_throttled.
    max_concurrent: int = 0
    model_limits: bool = False  # with max_concurrent 0: each model's concurrent_tasks
    # Failed tasks end with this code (wire.TASK_FAULTS, or a short name: size, inspection,
    # ip); set with fail_rate 0, every task fails with it.
    fail_with: str = ""
    submit_latency: float = 0.0  # a submit creates its task, then answers this many s later
    # False: video downloads carry neither an ETag nor x-oss-hash-crc64ecma (an object with
    # nothing to verify a download against); also at run time
    storage_checksums: bool = True
    corrupt_ranges: bool = False  # every 206 answer's body is the wrong bytes; also at run time
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep  # how the submit latency is spent

    def check(self) -> None:
        """Raise ValueError naming the first field out of range."""
        for name in ("pending", "running", "url_ttl", "video_mb", "upload_max_mb", "policy_ttl",
                     "storage_rate_mb", "submit_latency", "slow_headers"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        for name in ("fail_rate", "drop_download_at"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {v!r}")
        if self.fail_with:
            from wanvid.emulator.wire import TASK_FAULTS, task_fault

            if task_fault(self.fail_with) is None:
                raise ValueError(f"fail_with must be one of {', '.join(TASK_FAULTS)} (or size, "
                                 f"inspection, ip), got {self.fail_with!r}")
        for name in ("throttle_every", "error_every", "max_concurrent"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 = off)")
        for name in ("port", "storage_port", "upload_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ValueError(f"{name} must be 0..65535, got {getattr(self, name)}")
        if self.key is not None and not self.key.strip():
            raise ValueError("key must not be empty (leave it unset to accept any key)")


@dataclass
class EmulatorStats:
    """Counters. ``submits``/``queries``/``cancels``/``lists`` count answered (2xx) calls;
    ``throttled``/``errors`` count injected 429/500s (``throttled`` includes the submits
    over the concurrent-task limit, also counted alone in ``concurrent_throttled``);
    ``rejected`` other 4xx API answers;
    ``downloads`` video bodies started (200/206), ``downloads_cut`` those cut on purpose;
    ``paths`` counts every request by ``"METHOD /route/{template}"``; ``download_auth`` is
    the ``Authorization`` header (None when absent) of every download request.
    Uploads: ``policies`` answered, ``uploads`` accepted (``upload_bytes`` in all),
    ``upload_rejected`` refused forms, ``upload_auth`` the ``Authorization`` header of
    every request to the upload host, ``upload_seconds`` the time the host spent reading
    each accepted body."""

    requests: int = 0
    submits: int = 0
    queries: int = 0
    cancels: int = 0
    lists: int = 0
    downloads: int = 0
    downloads_cut: int = 0
    bytes_served: int = 0
    throttled: int = 0
    errors: int = 0
    rejected: int = 0
    max_in_flight: int = 0
    paths: dict[str, int] = field(default_factory=dict)
    download_auth: list[str | None] = field(default_factory=list)
    policies: int = 0
    uploads: int = 0
    upload_bytes: int = 0
    upload_rejected: int = 0
    upload_auth: list[str | None] = field(default_factory=list)
    upload_seconds: list[float] = field(default_factory=list)
    concurrent_throttled: int = 0  # submits refused over the concurrent-task limit (429)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
