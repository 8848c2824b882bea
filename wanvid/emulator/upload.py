"""The temporary-upload flow: the policy route's answer, the upload host (an OSS bucket
taking browser-style POST forms, on its own port) and the ``oss://`` URLs a submit may use.

* ``UploadHost.policy(model)``: what ``GET /api/v1/uploads?action=getPolicy&model=M``
  answers: a base64 POST policy (expiry, key prefix, size range) signed with a per-process
  secret, an upload directory bound to the model, the host's URL.
* ``UploadHost.receive(...)``: a ``POST /`` to the upload host, read as a stream (never
  held in memory): the form must carry ``OSSAccessKeyId``, ``policy``, ``Signature`` and
  ``key`` before ``file``, and ``file`` must be the last field. Checked like OSS: the
  access key id (403 ``InvalidAccessKeyId``), the signature (403
  ``SignatureDoesNotMatch``), the policy's expiry (403 ``AccessDenied`` "Invalid according
  to Policy: Policy expired."), the key prefix (403 ``AccessDenied`` "Policy Condition
  failed"), overwriting (409 ``FileAlreadyExists``), the size (400 ``EntityTooLarge``).
  Success is 200 with an empty body. The ``Authorization`` header of every request is
  recorded in ``stats.upload_auth`` (a client must never send the key here), and the time
  the host spent reading each accepted body in ``stats.upload_seconds``.
* ``UploadHost.resolve(url, model, header)``: an ``oss://`` URL in a submit. Without
  ``X-DashScope-OssResourceResolve: enable`` it is 400 ``invalid_parameter_error``
  "InternalError.Algo.InvalidParameter: The provided URL does not appear to be valid..."
  (the service's answer); an unknown object, one uploaded for another model or older than
  48 h is 400 ``InvalidParameter.DataInspection``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from wanvid.emulator.config import EmulatorStats
from wanvid.emulator.wire import ApiError, Headers, Response, oss_error

OSS_VALIDITY = 48 * 3600.0
READ = 1 << 20
HEAD_KEEP = 1 << 20  # bytes of each upload kept, for inspecting a clip at submit
RESOLVE_HEADER = "X-DashScope-OssResourceResolve"
NOT_VALID_URL = ("InternalError.Algo.InvalidParameter: The provided URL does not appear to be "
                 "valid. Ensure it is correctly formatted.")
INSPECTION_MESSAGE = "The media format is not supported or incorrect for the data inspection."


@dataclass
class StoredObject:
    key: str
    model: str
    size: int
    md5: str
    uploaded_at: float  # wall
    head: bytes = b""  # the first HEAD_KEEP bytes (a clip's boxes are inspected from them)


class FormError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse_iso(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


class UploadHost:
    """The bucket behind temporary uploads (state only; the HTTP layer feeds it)."""

    def __init__(self, *, wall: Callable[[], float], max_mb: float, policy_ttl: float,
                 stats: EmulatorStats, stats_lock: threading.Lock) -> None:
        self.wall = wall
        self.max_mb = max_mb
        self.policy_ttl = policy_ttl
        self.stats = stats
        self._stats_lock = stats_lock
        self.access_key_id = "LTAIemu" + os.urandom(6).hex()
        self._secret = os.urandom(32)
        self._lock = threading.Lock()
        self._dirs: dict[str, str] = {}  # upload_dir -> model
        self.objects: dict[str, StoredObject] = {}
        self.url = ""  # http://host:port, set when the server starts

    def count(self, name: str, n: int) -> None:
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + n)

    # ----------------------------------------------------------------- policy
    def sign(self, policy_b64: str) -> str:
        return base64.b64encode(hmac.new(self._secret, policy_b64.encode(),
                                         hashlib.sha1).digest()).decode()

    def policy(self, model: str) -> dict[str, object]:
        now = self.wall()
        upload_dir = (f"dashscope-instant/{uuid.uuid4().hex[:16]}/"
                      f"{time.strftime('%Y-%m-%d', time.gmtime(now))}/{uuid.uuid4().hex[:12]}")
        max_bytes = int(self.max_mb * (1 << 20))
        doc = {"expiration": _iso(now + self.policy_ttl),
               "conditions": [["content-length-range", 0, max_bytes],
                              ["starts-with", "$key", upload_dir],
                              {"bucket": "dashscope-file-emulator"},
                              {"x-oss-object-acl": "private"},
                              {"x-oss-forbid-overwrite": "true"}]}
        policy_b64 = base64.b64encode(json.dumps(doc).encode()).decode()
        with self._lock:
            self._dirs[upload_dir] = model
        self.count("policies", 1)
        return {"policy": policy_b64, "signature": self.sign(policy_b64),
                "upload_dir": upload_dir, "upload_host": self.url,
                "expire_in_seconds": int(self.policy_ttl), "max_file_size_mb": self.max_mb,
                "capacity_limit_mb": 999999999, "oss_access_key_id": self.access_key_id,
                "x_oss_object_acl": "private", "x_oss_forbid_overwrite": "true"}

    # ----------------------------------------------------------------- upload
    def receive(self, method: str, path: str, headers: Headers, rfile: BinaryIO) -> Response:
        """One request to the upload host; the body is read from ``rfile`` as it comes.
        Raises ``FormError`` when the request has no usable length or type (the body is
        left unread: close the connection)."""
        with self._stats_lock:
            self.stats.upload_auth.append(headers.get("Authorization"))
        if method != "POST" or path not in ("", "/"):
            return oss_error(405, "MethodNotAllowed",
                             "The specified method is not allowed against this resource.")
        ctype = headers.get("Content-Type") or ""
        m = re.search(r'boundary="?([^";]+)"?', ctype)
        length_s = headers.get("Content-Length") or ""
        if not ctype.lower().startswith("multipart/form-data") or m is None:
            raise FormError(oss_error(400, "InvalidArgument",
                                      "The body of your POST request is not well-formed "
                                      "multipart/form-data."))
        if not length_s.isdigit():
            raise FormError(oss_error(411, "MissingContentLength",
                                      "You must provide the Content-Length HTTP header."))
        started = time.perf_counter()
        resp = self._read_form(rfile, int(length_s), m.group(1).encode())
        if resp.status == 200:
            with self._stats_lock:
                self.stats.upload_seconds.append(time.perf_counter() - started)
        else:
            self.count("upload_rejected", 1)
        return resp

    def _read_form(self, rfile: BinaryIO, length: int, boundary: bytes) -> Response:
        """Read the whole body (a refused form too, so the client reads the answer)."""
        state = {"left": length}
        try:
            return self._parse_form(rfile, state, boundary)
        except FormError as e:
            while state["left"] > 0:
                chunk = rfile.read(min(READ, state["left"]))
                if not chunk:
                    break
                state["left"] -= len(chunk)
            return e.response

    def _parse_form(self, rfile: BinaryIO, state: dict[str, int], boundary: bytes) -> Response:
        left = state["left"]

        def more() -> bytes:
            nonlocal left
            if left <= 0:
                return b""
            chunk = rfile.read(min(READ, left))
            if not chunk:
                raise FormError(oss_error(400, "IncompleteBody",
                                          "The request body is shorter than Content-Length."))
            left -= len(chunk)
            state["left"] = left
            return chunk

        delim = b"--" + boundary
        buf = bytearray()
        while len(buf) < len(delim) + 2:
            piece = more()
            if not piece:
                raise FormError(_malformed())
            buf += piece
        if not buf.startswith(delim + b"\r\n"):
            raise FormError(_malformed())
        del buf[:len(delim) + 2]
        fields: dict[str, str] = {}
        sep = b"\r\n" + delim
        while True:  # the text fields, then the file's headers
            while (end := buf.find(b"\r\n\r\n")) < 0:
                if len(buf) > 64 << 10 or not (piece := more()):
                    raise FormError(_malformed())
                buf += piece
            head = bytes(buf[:end]).decode("utf-8", "replace")
            del buf[:end + 4]
            name_m = re.search(r'name="([^"]*)"', head)
            if name_m is None:
                raise FormError(_malformed())
            if re.search(r'filename="', head):
                break
            while (end := buf.find(sep)) < 0:
                if len(buf) > 1 << 20 or not (piece := more()):
                    raise FormError(_malformed())
                buf += piece
            fields[name_m.group(1).lower()] = bytes(buf[:end]).decode("utf-8", "replace")
            del buf[:end + len(sep)]
            if buf[:2] == b"--":  # the form ended without a file
                raise FormError(oss_error(400, "InvalidArgument",
                                          "The form has no file field; 'file' must be the "
                                          "last field."))
            if buf[:2] == b"\r\n":
                del buf[:2]

        refused = self._check_fields(fields)
        if refused is not None:
            raise FormError(refused)
        policy_doc = json.loads(base64.b64decode(fields["policy"]))
        max_bytes = next((c[2] for c in policy_doc["conditions"]
                          if isinstance(c, list) and c[0] == "content-length-range"), None)

        # The file: everything up to the closing delimiter, which must end the body.
        md5 = hashlib.md5(usedforsecurity=False)
        size = 0
        head = bytearray()

        def take(data: bytes | bytearray) -> None:
            md5.update(data)
            if len(head) < HEAD_KEEP:
                head.extend(data[:HEAD_KEEP - len(head)])
        keep = len(sep) + 4
        while True:
            idx = buf.find(sep)
            if idx >= 0:
                rest = bytes(buf[idx + len(sep):])
                while left > 0 and len(rest) < 8:
                    rest += more()
                if not rest.startswith(b"--") or left > 0 or rest[2:] not in (b"", b"\r\n"):
                    raise FormError(oss_error(400, "InvalidArgument",
                                              "'file' must be the last field of the form."))
                take(buf[:idx])
                size += idx
                break
            piece = more()
            if not piece:
                raise FormError(_malformed())
            if len(buf) > keep:
                cut = len(buf) - keep
                take(buf[:cut])
                size += cut
                del buf[:cut]
            buf += piece
        if max_bytes is not None and size > int(max_bytes):
            return oss_error(400, "EntityTooLarge",
                             "Your proposed upload exceeds the maximum allowed size.")
        key = fields["key"]
        with self._lock:
            if key in self.objects and fields.get("x-oss-forbid-overwrite", "").lower() == "true":
                return oss_error(409, "FileAlreadyExists",
                                 "The object you specified already exists and can not be "
                                 "overwritten.")
            upload_dir = next((d for d in self._dirs if key.startswith(d + "/")), "")
            self.objects[key] = StoredObject(key=key, model=self._dirs.get(upload_dir, ""),
                                             size=size, md5=md5.hexdigest(),
                                             uploaded_at=self.wall(), head=bytes(head))
        self.count("uploads", 1)
        self.count("upload_bytes", size)
        return Response(200, b"", "application/xml")

    def _check_fields(self, fields: dict[str, str]) -> Response | None:
        for name in ("ossaccesskeyid", "policy", "signature", "key"):
            if not fields.get(name):
                return oss_error(400, "InvalidArgument",
                                 f"The form field {name} is missing (it must come before "
                                 "the file).")
        if not hmac.compare_digest(fields["ossaccesskeyid"], self.access_key_id):
            return oss_error(403, "InvalidAccessKeyId",
                             "The OSS Access Key Id you provided does not exist in our records.")
        if not hmac.compare_digest(fields["signature"], self.sign(fields["policy"])):
            return oss_error(403, "SignatureDoesNotMatch",
                             "The request signature we calculated does not match the "
                             "signature you provided.")
        try:
            doc = json.loads(base64.b64decode(fields["policy"]))
            expires = _parse_iso(doc["expiration"])
        except (ValueError, KeyError, TypeError):
            return oss_error(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.")
        if self.wall() > expires:
            return oss_error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        for cond in doc.get("conditions", []):
            if isinstance(cond, list) and cond[:2] == ["starts-with", "$key"]:
                if not fields["key"].startswith(cond[2] + "/"):
                    return oss_error(403, "AccessDenied",
                                     "Invalid according to Policy: Policy Condition failed: "
                                     f'["starts-with", "$key", "{cond[2]}"]')
        return None

    # ----------------------------------------------------------------- resolve
    def resolve(self, url: str, model: str, header: str | None) -> None:
        """Raise the service's ``ApiError`` unless ``url`` may be used for ``model``."""
        if (header or "").strip().lower() != "enable":
            raise ApiError(400, "invalid_parameter_error", NOT_VALID_URL)
        with self._lock:
            obj = self.objects.get(url[len("oss://"):])
        if obj is None or obj.model != model or self.wall() > obj.uploaded_at + OSS_VALIDITY:
            raise ApiError(400, "InvalidParameter.DataInspection", INSPECTION_MESSAGE)

    def stored(self, url: str) -> StoredObject | None:
        """The object an ``oss://`` URL names (after ``resolve`` accepted it)."""
        with self._lock:
            return self.objects.get(url[len("oss://"):])


def _malformed() -> Response:
    return oss_error(400, "InvalidArgument",
                     "The body of your POST request is not well-formed multipart/form-data.")


OSS_URL_RE = re.compile(rb'"(oss://[^"\\]*)"')
