"""What the use cases that are not on every command's path return: ``wanvid.service``
re-exports each (``from wanvid.service import WaitResult`` works). They live here so that
``wanvid status ID`` and ``wanvid tasks`` do not pay for creating their dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanvid.errors import ExitStatus

if TYPE_CHECKING:
    from wanvid.intents import Decision
    from wanvid.journal import IntentRecord
    from wanvid.params import PreparedSubmit
    from wanvid.poll import Outcome


@dataclass
class Submitted:
    """A task the service created (and the journal recorded)."""

    task_id: str
    response: dict[str, Any]
    prepared: PreparedSubmit

    def to_dict(self) -> dict[str, Any]:
        return self.response


@dataclass
class WaitResult:
    outcomes: list[Outcome]
    exit_status: ExitStatus
    unrecorded: list[str] = field(default_factory=list)  # journal writes that failed
    journal_error: str | None = None


@dataclass
class DownloadResult:
    task_id: str | None
    path: Path
    size: int
    sha256: str
    skipped: bool

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "path": str(self.path), "size": self.size,
                "sha256": self.sha256, "skipped": self.skipped}


@dataclass
class CancelResult:
    task_id: str
    canceled: bool
    code: str | None = None
    message: str | None = None

    @property
    def exit_status(self) -> ExitStatus:
        return ExitStatus.OK if self.canceled else ExitStatus.REJECTED

    def to_dict(self) -> dict[str, Any]:
        if self.canceled:
            return {"task_id": self.task_id, "canceled": True, "status": "CANCELED"}
        return {"task_id": self.task_id, "canceled": False, "code": self.code,
                "message": self.message}


@dataclass
class IntentDecision:
    """What resolving one open submit intent did."""

    intent: IntentRecord
    decision: Decision
