"""Dashboard access rules: loopback detection, tokens, CSRF, and the refusals over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

pytest.importorskip("starlette")
pytest.importorskip("hypercorn")
httpx = pytest.importorskip("httpx")

from _live_dashboard import LiveDashboard  # noqa: E402

from jobify_trio import Jobify, RunHistory  # noqa: E402
from jobify_trio.dashboard import DashboardError, create_app, is_loopback, parse_bind  # noqa: E402
from jobify_trio.dashboard._security import CSRF_COOKIE, Access  # noqa: E402

TOKEN = "s3cret-token-for-tests"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_parse_bind() -> None:
    assert parse_bind("127.0.0.1:8000") == ("127.0.0.1", 8000)
    assert parse_bind("[::1]:0") == ("::1", 0)
    for bad in ("8000", "localhost:", ":80", "host:99999", "host:http"):
        with pytest.raises(DashboardError, match="expected HOST:PORT"):
            parse_bind(bad)


def test_token_required_off_loopback(make_app: Callable[..., Jobify]) -> None:
    app = make_app()
    with pytest.raises(DashboardError, match="requires a token"):
        create_app(app, require_token=True)
    with pytest.raises(DashboardError, match="at least 8 characters"):
        create_app(app, token="short")


def test_loopback_without_token_checks_host_and_csrf() -> None:
    access = Access.create(token=None, require_token=False)
    ok_cookies = {CSRF_COOKIE: access.csrf}
    assert access.check_read({"host": "127.0.0.1:8000"}, {}).allowed
    assert access.check_read({"host": "localhost:8000"}, {}).allowed
    rebound = access.check_read({"host": "evil.example:8000"}, {})  # DNS rebinding
    assert (rebound.allowed, rebound.status) == (False, 403)
    headers = {"host": "127.0.0.1:8000", "x-csrf-token": access.csrf}
    assert access.check_action(headers, ok_cookies).allowed
    assert not access.check_action(headers, {}).allowed  # no cookie
    assert not access.check_action({**headers, "x-csrf-token": "x"}, ok_cookies).allowed
    cross = {**headers, "origin": "http://evil.example"}
    assert access.check_action(cross, ok_cookies).reason == "cross-origin request"


def _served_app() -> Jobify:
    app = Jobify(storage=False)
    RunHistory(app)

    @app.task(name="report")
    async def report() -> None:
        pass

    return app


async def _schedule_later(app: Jobify) -> str:
    job = await app.tasks["report"].schedule().delay(timedelta(hours=1), job_id="later")
    return job.id


def test_off_loopback_every_request_and_action_needs_the_token() -> None:
    app = _served_app()
    with LiveDashboard(app, "127.0.0.2", token=TOKEN, require_token=True) as live:
        assert live.url.startswith("http://127.0.0.2:")
        live.call(_schedule_later, app)
        action = {"action": "run", "job_id": "later"}
        with httpx.Client(base_url=live.url, timeout=5) as anonymous:
            assert anonymous.get("/").status_code == 403
            assert anonymous.get("/api/state").status_code == 403
            assert anonymous.get("/events").status_code == 403
            assert anonymous.get("/?token=wrong-token").status_code == 403
            assert anonymous.post("/api/action", json=action).status_code == 403
            wrong = {"authorization": "Bearer not-the-token"}
            assert anonymous.post("/api/action", json=action, headers=wrong).status_code == 403
        assert app.find_job("later") is not None  # refused: nothing happened
        with httpx.Client(base_url=live.url, timeout=5, follow_redirects=True) as browser:
            opened = browser.get(f"/?token={TOKEN}")  # sets the auth cookie, drops the token
            assert opened.status_code == 200
            assert opened.url.query == b""
            csrf = browser.cookies[CSRF_COOKIE]
            # the auth cookie alone is not enough for an action: CSRF double submit too
            assert browser.post("/api/action", json=action).status_code == 403
            done = browser.post("/api/action", json=action, headers={"x-csrf-token": csrf})
            assert done.status_code == 200, done.text
        with httpx.Client(base_url=live.url, timeout=5) as script:
            bearer = {"authorization": f"Bearer {TOKEN}"}
            state = script.get("/api/state", headers=bearer)
            assert state.status_code == 200
            assert state.json()["state"]["tz"] == "UTC"
            missing = script.post("/api/action", json=action, headers=bearer)
            assert missing.status_code in (404, 409)  # "later" ran (or is running) already


def test_loopback_refuses_actions_without_csrf_and_foreign_hosts() -> None:
    app = _served_app()
    with LiveDashboard(app) as live, httpx.Client(base_url=live.url, timeout=5) as client:
        live.call(_schedule_later, app)
        assert client.get("/").status_code == 200
        action = {"action": "cancel", "job_id": "later"}
        assert client.post("/api/action", json=action).status_code == 403
        assert client.get("/", headers={"host": "evil.example"}).status_code == 403
        csrf = client.cookies[CSRF_COOKIE]
        bad = client.post("/api/action", json={"action": "explode", "job_id": "later"},
                          headers={"x-csrf-token": csrf})  # fmt: skip
        assert bad.status_code == 409
        done = client.post("/api/action", json=action, headers={"x-csrf-token": csrf})
        assert done.json() == {"ok": True, "message": "report: later cancelled"}
        assert app.find_job("later") is None


def test_actions_offer_pause_and_resume_only_when_the_handle_has_them() -> None:
    from types import SimpleNamespace

    from jobify_trio import JobStatus
    from jobify_trio.dashboard._snapshot import actions_for

    plain = SimpleNamespace(status=JobStatus.SCHEDULED)
    assert actions_for(plain) == ["run", "cancel"]  # type: ignore[arg-type]
    running = SimpleNamespace(status=JobStatus.RUNNING)
    assert actions_for(running) == ["cancel"]  # type: ignore[arg-type]
    paused = SimpleNamespace(status=JobStatus.SCHEDULED, paused=True)
    assert actions_for(paused) == ["run", "resume", "cancel"]  # type: ignore[arg-type]
    active = SimpleNamespace(status=JobStatus.SCHEDULED, paused=False)
    assert actions_for(active) == ["run", "pause", "cancel"]  # type: ignore[arg-type]


def test_metrics_route_serves_the_registry() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from jobify_trio.metrics import JobMetrics

    app = _served_app()
    registry = prometheus_client.CollectorRegistry()
    JobMetrics(app, registry=registry)
    with LiveDashboard(app, metrics_registry=registry) as live:
        live.call(_run_one, app)
        with httpx.Client(base_url=live.url, timeout=5) as client:
            text = client.get("/metrics").text
    assert 'jobify_trio_runs_succeeded_total{task="report"} 1.0' in text
    assert "jobify_trio_jobs_scheduled" in text


async def _run_one(app: Jobify) -> None:
    await (await app.tasks["report"].push())
