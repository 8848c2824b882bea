"""The HTTP client: endpoints, headers, retries, error mapping (HTTP mocked with responses)."""

from __future__ import annotations

import json
from collections.abc import Callable
from email.utils import formatdate

import pytest
import requests
import responses
from responses import matchers
from urllib3.exceptions import MaxRetryError, NewConnectionError

from tests.conftest import KEY, FakeClock, Result
from wanvid.client import Client, ThrottledError, error_for, parse_error
from wanvid.errors import AuthError, ExitStatus, NetworkError, RejectedError, WanvidError

Run = Callable[..., Result]

BASE = "https://dashscope-intl.aliyuncs.com/api/v1"
I2V_URL = BASE + "/services/aigc/video-generation/video-synthesis"
KF2V_URL = BASE + "/services/aigc/image2video/video-synthesis"
TASK_URL = BASE + "/tasks/t-1"
BODY = json.dumps({"model": "wan2.2-i2v-flash",
                   "input": {"prompt": "a cat", "img_url": "https://example.com/cat.png"},
                   "parameters": {"resolution": "720P"}}).encode()
CREATED = {"request_id": "r-1", "output": {"task_id": "t-1", "task_status": "PENDING"}}
SUCCEEDED = {"request_id": "r-2", "output": {"task_id": "t-1", "task_status": "SUCCEEDED",
                                              "video_url": "https://oss.example.com/v.mp4"}}
# The error shape of the reference (429-Error messages): code, message, request_id.
ERR_PARAM = {"request_id": "r-err", "code": "InvalidParameter",
             "message": "The parameter resolution is invalid"}
ERR_KEY = {"request_id": "r-key", "code": "InvalidApiKey", "message": "Invalid API-key provided."}
ERR_THROTTLE = {"request_id": "r-429", "code": "Throttling.RateQuota",
                "message": "Requests rate limit exceeded, please try again later."}
ERR_INTERNAL = {"request_id": "r-500", "code": "InternalError", "message": "Internal error"}


def refused() -> requests.exceptions.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] "  # type: ignore[arg-type]
                                "Connection refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/api/v1", reason=reason))  # type: ignore[arg-type]


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sleeps: Sleeps) -> Client:
    return Client(BASE, KEY, sleep=sleeps)


# --- requests ------------------------------------------------------------------------------------


@responses.activate
def test_submit_posts_to_i2v_endpoint_with_async_headers(client: Client, sleeps: Sleeps) -> None:
    responses.add(responses.POST, I2V_URL, json=CREATED)
    assert client.submit("/services/aigc/video-generation/video-synthesis", BODY) == CREATED
    assert len(responses.calls) == 1
    req = responses.calls[0].request
    assert req.method == "POST"
    assert req.url == I2V_URL
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert req.headers["X-DashScope-Async"] == "enable"
    assert req.headers["Content-Type"] == "application/json"
    assert req.body == BODY
    assert sleeps.calls == []


@responses.activate
def test_submit_posts_to_kf2v_endpoint(client: Client) -> None:
    responses.add(responses.POST, KF2V_URL, json=CREATED)
    client.submit("/services/aigc/image2video/video-synthesis", b"{}")
    assert [c.request.url for c in responses.calls] == [KF2V_URL]
    assert responses.calls[0].request.headers["X-DashScope-Async"] == "enable"


@responses.activate
def test_every_request_has_a_timeout(client: Client) -> None:
    responses.add(responses.POST, I2V_URL, json=CREATED)
    responses.add(responses.GET, TASK_URL, json=SUCCEEDED)
    client.submit("/services/aigc/video-generation/video-synthesis", BODY)
    client.get_task("t-1")
    for call in responses.calls:
        timeout = call.request.req_kwargs["timeout"]  # type: ignore[attr-defined]
        assert timeout is not None
        assert all(t > 0 for t in timeout)


@responses.activate
def test_get_task_has_no_async_header(client: Client) -> None:
    responses.add(responses.GET, TASK_URL, json=SUCCEEDED)
    assert client.get_task("t-1") == SUCCEEDED
    req = responses.calls[0].request
    assert req.method == "GET"
    assert req.url == TASK_URL
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert "X-DashScope-Async" not in req.headers
    assert req.body is None


@responses.activate
def test_task_id_is_url_quoted(client: Client) -> None:
    responses.add(responses.GET, BASE + "/tasks/a%2F..%2Fb", json=SUCCEEDED)
    client.get_task("a/../b")
    assert responses.calls[0].request.url == BASE + "/tasks/a%2F..%2Fb"


@responses.activate
def test_base_url_trailing_slash(sleeps: Sleeps) -> None:
    responses.add(responses.GET, TASK_URL, json=SUCCEEDED)
    Client(BASE + "/", KEY, sleep=sleeps).get_task("t-1")
    assert responses.calls[0].request.url == TASK_URL


@responses.activate
def test_list_tasks_params(client: Client) -> None:
    listing = {"request_id": "r", "data": [], "total": 0, "page_no": 2, "page_size": 5}
    responses.add(responses.GET, BASE + "/tasks", json=listing, match=[
        matchers.query_param_matcher({"status": "SUCCEEDED", "page_no": "2", "page_size": "5",
                                      "start_time": "2027-01-15 07:00:00",
                                      "end_time": "2027-01-15 08:00:00"})])
    got = client.list_tasks(status="SUCCEEDED", model_name=None, page_no=2, page_size=5,
                            start_time="2027-01-15 07:00:00", end_time="2027-01-15 08:00:00")
    assert got == listing
    req = responses.calls[0].request
    assert req.method == "GET"
    assert "model_name" not in (req.url or "")
    assert "X-DashScope-Async" not in req.headers


@responses.activate
def test_cancel(client: Client) -> None:
    responses.add(responses.POST, BASE + "/tasks/t-1/cancel", json={"request_id": "r-c"})
    assert client.cancel("t-1") == {"request_id": "r-c"}
    req = responses.calls[0].request
    assert req.method == "POST"
    assert req.url == BASE + "/tasks/t-1/cancel"
    assert req.headers["Authorization"] == f"Bearer {KEY}"


@responses.activate
def test_cancel_retried_on_5xx(client: Client, sleeps: Sleeps) -> None:
    url = BASE + "/tasks/t-1/cancel"
    responses.add(responses.POST, url, status=503, json=ERR_INTERNAL)
    responses.add(responses.POST, url, json={"request_id": "r-c"})
    client.cancel("t-1")
    assert len(responses.calls) == 2
    assert len(sleeps.calls) == 1


@responses.activate
def test_redirect_not_followed(client: Client) -> None:
    """The key must not follow a redirect to another host."""
    responses.add(responses.GET, TASK_URL, status=302,
                  headers={"Location": "https://evil.example.com/steal"})
    with pytest.raises(WanvidError):
        client.get_task("t-1")
    assert [c.request.url for c in responses.calls] == [TASK_URL]


# --- retries -------------------------------------------------------------------------------------


@responses.activate
def test_submit_429_then_200_retried_once(client: Client, sleeps: Sleeps) -> None:
    responses.add(responses.POST, I2V_URL, status=429, json=ERR_THROTTLE)
    responses.add(responses.POST, I2V_URL, json=CREATED)
    notes: list[str] = []
    client.on_retry = notes.append
    assert client.submit("/services/aigc/video-generation/video-synthesis", BODY) == CREATED
    assert len(responses.calls) == 2
    assert responses.calls[1].request.body == BODY
    assert len(sleeps.calls) == 1 and 0.5 <= sleeps.calls[0] <= 1.0
    assert len(notes) == 1
    assert notes[0].startswith("POST /services/aigc/video-generation/video-synthesis: 429 "
                               "Throttling.RateQuota; retry 1 in ")


@responses.activate
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_submit_5xx_not_retried(client: Client, sleeps: Sleeps, status: int) -> None:
    responses.add(responses.POST, I2V_URL, status=status, json=ERR_INTERNAL)
    responses.add(responses.POST, I2V_URL, json=CREATED)
    with pytest.raises(NetworkError) as ei:
        client.submit("/services/aigc/video-generation/video-synthesis", BODY)
    assert len(responses.calls) == 1
    assert sleeps.calls == []
    assert ei.value.status == ExitStatus.NETWORK
    assert ei.value.code == "InternalError"
    assert ei.value.request_id == "r-500"
    assert ei.value.message == (f"service error {status} (InternalError: Internal error)"
                                "; the service may or may not have created the task: check "
                                "`wanvid tasks --remote` before submitting again")


@responses.activate
def test_submit_read_timeout_not_retried(client: Client, sleeps: Sleeps) -> None:
    responses.add(responses.POST, I2V_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    responses.add(responses.POST, I2V_URL, json=CREATED)
    with pytest.raises(NetworkError) as ei:
        client.submit("/services/aigc/video-generation/video-synthesis", BODY)
    assert len(responses.calls) == 1
    assert sleeps.calls == []
    msg = ei.value.message
    assert msg.startswith("POST to dashscope-intl.aliyuncs.com timed out")
    assert "may or may not have created the task" in msg
    assert "`wanvid tasks --remote`" in msg


@responses.activate
def test_submit_connection_reset_not_retried(client: Client, sleeps: Sleeps) -> None:
    responses.add(responses.POST, I2V_URL, body=requests.exceptions.ConnectionError("reset by peer"))
    responses.add(responses.POST, I2V_URL, json=CREATED)
    with pytest.raises(NetworkError) as ei:
        client.submit("/services/aigc/video-generation/video-synthesis", BODY)
    assert len(responses.calls) == 1
    assert "connection failed" in ei.value.message
    assert "`wanvid tasks --remote`" in ei.value.message


@responses.activate
def test_submit_connection_refused_retried(client: Client, sleeps: Sleeps) -> None:
    responses.add(responses.POST, I2V_URL, body=refused())
    responses.add(responses.POST, I2V_URL, json=CREATED)
    assert client.submit("/services/aigc/video-generation/video-synthesis", BODY) == CREATED
    assert len(responses.calls) == 2
    assert len(sleeps.calls) == 1


@responses.activate
def test_submit_connect_timeout_retried(client: Client, sleeps: Sleeps) -> None:
    responses.add(responses.POST, I2V_URL, body=requests.exceptions.ConnectTimeout("connect"))
    responses.add(responses.POST, I2V_URL, json=CREATED)
    assert client.submit("/services/aigc/video-generation/video-synthesis", BODY) == CREATED
    assert len(responses.calls) == 2


@responses.activate
def test_submit_429_forever_gives_up(client: Client, sleeps: Sleeps) -> None:
    responses.add(responses.POST, I2V_URL, status=429, json=ERR_THROTTLE)
    with pytest.raises(ThrottledError) as ei:
        client.submit("/services/aigc/video-generation/video-synthesis", BODY)
    assert len(responses.calls) == client.max_retries + 1 == 5
    assert len(sleeps.calls) == 4
    assert ei.value.status == ExitStatus.NETWORK
    assert ei.value.code == "Throttling.RateQuota"


@responses.activate
def test_query_500_500_200_succeeds(client: Client, sleeps: Sleeps) -> None:
    responses.add(responses.GET, TASK_URL, status=500, json=ERR_INTERNAL)
    responses.add(responses.GET, TASK_URL, status=500, json=ERR_INTERNAL)
    responses.add(responses.GET, TASK_URL, json=SUCCEEDED)
    assert client.get_task("t-1") == SUCCEEDED
    assert len(responses.calls) == 3
    assert len(sleeps.calls) == 2
    assert 0.5 <= sleeps.calls[0] <= 1.0 and 1.0 <= sleeps.calls[1] <= 2.0  # backoff grows


@responses.activate
def test_query_read_timeout_retried(client: Client, sleeps: Sleeps) -> None:
    responses.add(responses.GET, TASK_URL, body=requests.exceptions.ReadTimeout("slow"))
    responses.add(responses.GET, TASK_URL, json=SUCCEEDED)
    assert client.get_task("t-1") == SUCCEEDED
    assert len(responses.calls) == 2


@responses.activate
def test_query_persistent_500_gives_up(client: Client, sleeps: Sleeps) -> None:
    responses.add(responses.GET, TASK_URL, status=500, json=ERR_INTERNAL)
    with pytest.raises(NetworkError) as ei:
        client.get_task("t-1")
    assert len(responses.calls) == 5
    assert len(sleeps.calls) == 4
    assert ei.value.message == "service error 500 (InternalError: Internal error)"


@responses.activate
def test_query_max_retries_override(client: Client, sleeps: Sleeps) -> None:
    responses.add(responses.GET, TASK_URL, status=503, json=ERR_INTERNAL)
    with pytest.raises(NetworkError):
        client.get_task("t-1", max_retries=0)
    assert len(responses.calls) == 1
    assert sleeps.calls == []


@responses.activate
def test_query_connection_error_gives_up_with_plain_message(client: Client) -> None:
    responses.add(responses.GET, TASK_URL, body=requests.exceptions.ConnectionError("down"))
    with pytest.raises(NetworkError) as ei:
        client.get_task("t-1")
    assert len(responses.calls) == 5
    assert ei.value.message == "GET to dashscope-intl.aliyuncs.com connection failed"


@responses.activate
def test_retry_after_seconds_honoured(client: Client, sleeps: Sleeps) -> None:
    responses.add(responses.POST, I2V_URL, status=429, json=ERR_THROTTLE,
                  headers={"Retry-After": "12"})
    responses.add(responses.POST, I2V_URL, json=CREATED)
    client.submit("/services/aigc/video-generation/video-synthesis", BODY)
    assert sleeps.calls == [12.0]


@responses.activate
def test_retry_after_http_date_honoured(client: Client, sleeps: Sleeps) -> None:
    now = 1_800_000_000.0
    client.now = lambda: now  # the injected wall clock, not the machine's
    responses.add(responses.GET, TASK_URL, status=503, json=ERR_INTERNAL,
                  headers={"Retry-After": formatdate(now + 9, usegmt=True)})
    responses.add(responses.GET, TASK_URL, json=SUCCEEDED)
    client.get_task("t-1")
    assert sleeps.calls == [9.0]


@responses.activate
def test_non_json_success_is_an_error(client: Client) -> None:
    responses.add(responses.GET, TASK_URL, body="<html>gateway</html>", status=200)
    with pytest.raises(NetworkError) as ei:
        client.get_task("t-1")
    assert ei.value.message == "GET /tasks/t-1: the service answered 200 with a body that is not JSON"


# --- errors --------------------------------------------------------------------------------------


def _resp(status: int, body: object = None, text: str | None = None,
          reason: str = "") -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.reason = reason
    if text is not None:
        r._content = text.encode()
    elif body is not None:
        r._content = json.dumps(body).encode()
    else:
        r._content = b""
    return r


def test_parse_error_reference_shape() -> None:
    assert parse_error(_resp(400, ERR_PARAM)) == (
        "InvalidParameter", "The parameter resolution is invalid", "r-err")


def test_parse_error_task_output_shape() -> None:
    body = {"request_id": "r-9", "output": {"task_id": "t", "task_status": "FAILED",
                                            "code": "DataInspectionFailed", "message": "unsafe"}}
    assert parse_error(_resp(400, body)) == ("DataInspectionFailed", "unsafe", "r-9")


def test_parse_error_not_json() -> None:
    assert parse_error(_resp(502, text="Bad gateway\nupstream")) == (None, "Bad gateway upstream", None)
    assert parse_error(_resp(503, reason="Service Unavailable")) == (None, "Service Unavailable", None)
    assert parse_error(_resp(504)) == (None, "HTTP 504", None)


@pytest.mark.parametrize(("status", "body", "cls", "exit_status"), [
    (401, ERR_KEY, AuthError, ExitStatus.AUTH),
    (400, {"code": "InvalidApiKey.Region", "message": "wrong region"}, AuthError, ExitStatus.AUTH),
    (400, ERR_PARAM, RejectedError, ExitStatus.REJECTED),
    (403, {"code": "AccessDenied", "message": "no"}, RejectedError, ExitStatus.REJECTED),
    (404, {"code": "NotFound", "message": "no"}, RejectedError, ExitStatus.REJECTED),
    (429, ERR_THROTTLE, ThrottledError, ExitStatus.NETWORK),
    (500, ERR_INTERNAL, NetworkError, ExitStatus.NETWORK),
])
def test_error_for(status: int, body: dict[str, str], cls: type[WanvidError],
                   exit_status: ExitStatus) -> None:
    e = error_for(_resp(status, body))
    assert type(e) is cls
    assert e.status == exit_status
    assert e.code == body["code"]
    assert e.message.count("\n") == 0
    assert body["message"] in e.message


def test_error_for_400_message() -> None:
    e = error_for(_resp(400, ERR_PARAM))
    assert e.message == ("the service rejected the request (400 InvalidParameter: "
                         "The parameter resolution is invalid)")
    assert e.request_id == "r-err"
    assert e.to_dict() == {"code": "InvalidParameter", "message": e.message, "request_id": "r-err"}


def test_key_not_in_repr() -> None:
    c = Client(BASE, KEY)
    assert KEY not in repr(c)
    assert KEY not in str(c)


# --- through the CLI: exit codes -----------------------------------------------------------------


@responses.activate
def test_cli_401_exits_3(run: Run) -> None:
    responses.add(responses.GET, TASK_URL, status=401, json=ERR_KEY)
    r = run(["status", "t-1"])
    assert r.code == 3
    assert r.out == ""
    assert r.err.count("\n") == 1
    assert r.err.startswith("wanvid: error: the service rejected the API key (InvalidApiKey: "
                            "Invalid API-key provided.)")
    assert len(responses.calls) == 1


@responses.activate
def test_cli_400_on_submit_exits_4(run: Run) -> None:
    responses.add(responses.POST, I2V_URL, status=400, json=ERR_PARAM)
    r = run(["submit", "https://example.com/cat.png", "-p", "a cat"])
    assert r.code == 4
    assert r.out == ""
    assert r.err == ("wanvid: error: the service rejected the request (400 InvalidParameter: "
                     "The parameter resolution is invalid)\n")
    assert len(responses.calls) == 1


@responses.activate
def test_cli_500_on_submit_not_retried_exits_7(run: Run, clock: FakeClock) -> None:
    responses.add(responses.POST, I2V_URL, status=500, json=ERR_INTERNAL)
    responses.add(responses.POST, I2V_URL, json=CREATED)
    r = run(["submit", "https://example.com/cat.png"])
    assert r.code == 7
    assert r.out == ""
    assert r.err == ("wanvid: error: service error 500 (InternalError: Internal error)"
                     "; the service may or may not have created the task: `wanvid wait "
                     "--pending` finds it if it was (the journal keeps the submit)\n")
    assert len(responses.calls) == 1
    assert clock.sleeps == []


@responses.activate
def test_cli_429_then_200_on_submit(run: Run, clock: FakeClock) -> None:
    responses.add(responses.POST, I2V_URL, status=429, json=ERR_THROTTLE,
                  headers={"Retry-After": "3"})
    responses.add(responses.POST, I2V_URL, json=CREATED)
    r = run(["submit", "https://example.com/cat.png"])
    assert r.code == 0
    assert r.out == "t-1\n"
    assert len(responses.calls) == 2
    assert clock.sleeps == [3.0]
    assert r.err == ""  # a retried 429 is not an error: quiet unless --debug


@responses.activate
def test_cli_read_timeout_on_submit(run: Run, clock: FakeClock) -> None:
    responses.add(responses.POST, I2V_URL, body=requests.exceptions.ReadTimeout("slow"))
    r = run(["submit", "https://example.com/cat.png"])
    assert r.code == 7
    assert r.out == ""
    assert r.err == ("wanvid: error: POST to dashscope-intl.aliyuncs.com timed out; the service "
                     "may or may not have created the task: `wanvid wait --pending` finds it if "
                     "it was (the journal keeps the submit)\n")
    assert len(responses.calls) == 1
    assert clock.sleeps == []


@responses.activate
def test_cli_refused_on_submit_retried(run: Run, clock: FakeClock) -> None:
    responses.add(responses.POST, I2V_URL, body=refused())
    responses.add(responses.POST, I2V_URL, json=CREATED)
    r = run(["submit", "https://example.com/cat.png"])
    assert r.code == 0
    assert r.out == "t-1\n"
    assert len(responses.calls) == 2
    assert len(clock.sleeps) == 1


@responses.activate
def test_cli_query_500_500_200(run: Run, clock: FakeClock) -> None:
    responses.add(responses.GET, TASK_URL, status=500, json=ERR_INTERNAL)
    responses.add(responses.GET, TASK_URL, status=500, json=ERR_INTERNAL)
    responses.add(responses.GET, TASK_URL, json=SUCCEEDED)
    r = run(["status", "t-1"])
    assert r.code == 0
    assert r.out == "t-1 SUCCEEDED https://oss.example.com/v.mp4\n"
    assert len(responses.calls) == 3
    assert len(clock.sleeps) == 2


@responses.activate
def test_cli_query_retry_after_on_fake_clock(run: Run, clock: FakeClock) -> None:
    responses.add(responses.GET, TASK_URL, status=429, json=ERR_THROTTLE,
                  headers={"Retry-After": "17"})
    responses.add(responses.GET, TASK_URL, json=SUCCEEDED)
    r = run(["status", "t-1"])
    assert r.code == 0
    assert clock.sleeps == [17.0]
