"""What the emulator puts on the wire: routes, the service's codes and messages, and the
JSON (DashScope) and XML (OSS) response shapes."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

API_PREFIX = "/api/v1"
ADMIN_PREFIX = "/_emulator"
SERVICE_TZ = timezone(timedelta(hours=8))
MIB = 1 << 20

FAIL_CODE = "InternalError.Algo"
FAIL_MESSAGE = "An internal error has occured during algorithm execution."
THROTTLE_CODE = "Throttling.RateQuota"
THROTTLE_MESSAGE = "Requests rate limit exceeded, please try again later."
INTERNAL_CODE = "InternalError"
INTERNAL_MESSAGE = ("An internal error has occured, please try again later or contact service "
                    "support.")
CANCEL_MESSAGE = ("Failed to cancel the task, please confirm if the task is in PENDING status "
                  "(only PENDING tasks can be canceled).")
DATA_INSPECTION = "InvalidParameter.DataInspection"
# Over the concurrent-task limit (``max_concurrent`` / ``model_limits``): 429, as the service.
CONCURRENT_CODE = "Throttling"
CONCURRENT_MESSAGE = ("Requests rate limit exceeded, please try again later. (too many tasks "
                      "running at once for this model)")
# The failures a FAILED task can end with (``fail_with``): code -> the service's message.
TASK_FAULTS: dict[str, str] = {
    FAIL_CODE: FAIL_MESSAGE,
    "InvalidParameter": "The size is not match the model's input requirements.",
    "DataInspectionFailed": "Input or output data may contain inappropriate content.",
    "IPInfringementSuspect": "Input data is suspected of being involved in IP infringement.",
}
# Short names ``--fail-with`` also takes.
TASK_FAULT_ALIASES = {"algo": FAIL_CODE, "size": "InvalidParameter",
                      "inspection": "DataInspectionFailed", "ip": "IPInfringementSuspect"}


def task_fault(name: str) -> str | None:
    """The failure code a ``fail_with`` value names (a code or a short name), or None."""
    if name in TASK_FAULTS:
        return name
    return TASK_FAULT_ALIASES.get(name.strip().lower())

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, UNKNOWN = (
    "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")

TASK_RE = re.compile(r"^/api/v1/tasks/([^/]+)$")
CANCEL_RE = re.compile(r"^/api/v1/tasks/([^/]+)/cancel$")
FILE_RE = re.compile(r"^/api/v1/files/([^/]+)\.mp4$")


class Headers(Protocol):
    """Request headers as ``http.server`` gives them (case-insensitive ``get``)."""

    def get(self, name: str, default: None = None) -> str | None: ...


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Download:
    status: int  # 200 or 206
    data: memoryview
    start: int
    end: int  # inclusive
    cut_at: int | None  # absolute offset where the connection is cut, or None
    headers: dict[str, str]
    corrupt: bool = False  # send the wrong bytes (each inverted) in place of the right ones


class ApiError(Exception):
    """A refusal in the service's JSON shape ``{request_id, code, message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def invalid(message: str) -> ApiError:
    return ApiError(400, "InvalidParameter", message)


def model_not_found(name: str) -> ApiError:
    """An unknown model name (or one the region does not offer): 404 ``ModelNotFound``, as
    the notes' error table gives it (section 6)."""
    from wanvid.sanitize import one_line

    return ApiError(404, "ModelNotFound", f"The model {one_line(name, 100)} does not exist.")


def inspection(message: str) -> ApiError:
    return ApiError(400, DATA_INSPECTION, message)


def rid() -> str:
    return str(uuid.uuid4())


def json_response(status: int, payload: dict[str, Any]) -> Response:
    return Response(status, json.dumps(payload, ensure_ascii=False).encode())


def error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"request_id": rid(), "code": code, "message": message})


def fmt_time(epoch: float, *, millis: bool = True) -> str:
    dt = datetime.fromtimestamp(epoch, SERVICE_TZ)
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if millis else dt.strftime(
        "%Y-%m-%d %H:%M:%S")


def parse_time(value: str) -> float:
    """A list window bound: ``YYYYMMDDhhmmss`` (the documented form) or
    ``YYYY-MM-DD HH:mm:ss``, in the service's zone."""
    text = value.strip()
    fmt = "%Y%m%d%H%M%S" if text.isdigit() and len(text) == 14 else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(text, fmt).replace(tzinfo=SERVICE_TZ).timestamp()


def first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def http_date(epoch: float) -> str:
    from email.utils import formatdate

    return formatdate(epoch, usegmt=True)


def oss_error(status: int, code: str, message: str, *, extra: dict[str, str] | None = None,
              headers: dict[str, str] | None = None) -> Response:
    """An error as OSS answers it: XML with Code, Message, RequestId, HostId (+ ``extra``)."""
    from xml.sax.saxutils import escape

    request_id = uuid.uuid4().hex[:24].upper()
    parts = [f"  <Code>{escape(code)}</Code>", f"  <Message>{escape(message)}</Message>",
             f"  <RequestId>{request_id}</RequestId>",
             "  <HostId>dashscope-result.emulator.local</HostId>"]
    parts += [f"  <{k}>{escape(v)}</{k}>" for k, v in (extra or {}).items()]
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n' + "\n".join(parts)
            + "\n</Error>\n").encode()
    return Response(status, body, "application/xml",
                    {"x-oss-request-id": request_id, **(headers or {})})
