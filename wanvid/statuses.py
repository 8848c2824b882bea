"""Task statuses: the service's vocabulary, and wanvid's one addition (EXPIRED), in one
place."""

from __future__ import annotations

PENDING = "PENDING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELED = "CANCELED"
UNKNOWN = "UNKNOWN"  # the service no longer knows the task (after 24 h), or never did
EXPIRED = "EXPIRED"  # wanvid's: SUCCEEDED, never saved, and its video URL has expired

ACTIVE = frozenset({PENDING, RUNNING})
FAILED_STATES = frozenset({FAILED, CANCELED, UNKNOWN, EXPIRED})
TERMINAL = FAILED_STATES | {SUCCEEDED}
ALL = (PENDING, RUNNING, CANCELED, EXPIRED, FAILED, SUCCEEDED, UNKNOWN)


def is_running(status: str) -> bool:
    """Still queued or running at the service."""
    return status in ACTIVE
