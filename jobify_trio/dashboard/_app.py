"""The dashboard as a Starlette ASGI app: the page, its JSON state, the SSE feed, actions."""

from __future__ import annotations

import html
import json
import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from .._core._job import Job
from .._ops._history import RunHistory
from ..exceptions import BaseJobifyError
from ._security import AUTH_COOKIE, CSRF_COOKIE, Access, Verdict
from ._snapshot import actions_for, snapshot

if TYPE_CHECKING:
    from .._api._app import Jobify

__all__ = ["Dashboard"]

KEEPALIVE = 15.0
"""Seconds after which an unchanged SSE feed sends the state again (and the time)."""

_PAGE = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class _Feed:
    """The page's state as JSON, rebuilt at most once per ``refresh`` seconds for everyone."""

    def __init__(self, build: Callable[[], dict[str, Any]], refresh: float) -> None:
        self._build = build
        self._refresh = refresh
        self._built_at = -math.inf
        self._state = ""

    def invalidate(self) -> None:
        """Rebuild on the next read (after an action, so every page sees it at once)."""
        self._built_at = -math.inf

    def state(self, *, fresh: bool = False) -> str:
        now = trio.current_time()
        if fresh or now - self._built_at >= self._refresh * 0.9:
            self._state = json.dumps(self._build(), separators=(",", ":"))
            self._built_at = now
        return self._state


class Dashboard:
    """Routes and handlers of one dashboard over one app."""

    def __init__(self, app: Jobify, history: RunHistory, access: Access, refresh: float) -> None:
        self.app = app
        self.history = history
        self.access = access
        self.refresh = refresh
        self.feed = _Feed(lambda: snapshot(app, history), refresh)
        self.metrics: Callable[[], bytes] | None = None

    def asgi(self) -> Starlette:
        routes = [
            Route("/", self.page),
            Route("/api/state", self.state),
            Route("/events", self.events),
            Route("/api/action", self.action, methods=["POST"]),
            Route("/metrics", self.metrics_route),
        ]
        return Starlette(routes=routes)

    # -- reading -------------------------------------------------------------------------

    def _refused(self, verdict: Verdict) -> Response:
        return PlainTextResponse(
            verdict.reason, status_code=verdict.status, headers=_SECURITY_HEADERS
        )

    async def page(self, request: Request) -> Response:
        given = request.query_params.get("token")
        if given is not None:
            if not self.access.check_token(given):
                return PlainTextResponse("wrong token", status_code=403, headers=_SECURITY_HEADERS)
            response: Response = RedirectResponse("/", status_code=303, headers=_SECURITY_HEADERS)
            response.set_cookie(AUTH_COOKIE, given, httponly=True, samesite="strict")
            return response
        verdict = self.access.check_read(request.headers, request.cookies)
        if not verdict.allowed:
            hint = " Open it as /?token=YOUR_TOKEN." if self.access.token is not None else ""
            return PlainTextResponse(f"{verdict.reason}.{hint}", status_code=verdict.status)
        nonce = secrets.token_urlsafe(16)
        body = (
            _PAGE.replace("{{nonce}}", nonce)
            .replace("{{csrf}}", html.escape(self.access.csrf))
            .replace("{{refresh}}", str(int(self.refresh * 1000)))
        )
        csp = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'"
        )
        response = HTMLResponse(body, headers={**_SECURITY_HEADERS, "Content-Security-Policy": csp})
        response.set_cookie(CSRF_COOKIE, self.access.csrf, httponly=True, samesite="strict")
        return response

    def _message(self, state: str) -> str:
        now = self.app.wall_clock.now().astimezone(self.app.tz)
        return f'{{"now":{json.dumps(now.isoformat())},"state":{state}}}'

    async def state(self, request: Request) -> Response:
        verdict = self.access.check_read(request.headers, request.cookies)
        if not verdict.allowed:
            return self._refused(verdict)
        body = self._message(self.feed.state(fresh=True))
        return Response(body, media_type="application/json", headers=_SECURITY_HEADERS)

    async def events(self, request: Request) -> Response:
        verdict = self.access.check_read(request.headers, request.cookies)
        if not verdict.allowed:
            return self._refused(verdict)
        return StreamingResponse(
            self._stream(),
            media_type="text/event-stream",
            headers={**_SECURITY_HEADERS, "X-Accel-Buffering": "no"},
        )

    async def _stream(self) -> AsyncIterator[str]:
        last = None
        quiet = 0.0
        while True:
            state = self.feed.state()
            if state != last or quiet >= KEEPALIVE:
                yield f"data: {self._message(state)}\n\n"
                last, quiet = state, 0.0
            await trio.sleep(self.refresh)
            quiet += self.refresh

    async def metrics_route(self, request: Request) -> Response:
        verdict = self.access.check_read(request.headers, request.cookies)
        if not verdict.allowed:
            return self._refused(verdict)
        if self.metrics is None:
            return PlainTextResponse("no metrics registry given", status_code=404)
        return Response(self.metrics(), media_type="text/plain; version=0.0.4; charset=utf-8")

    # -- acting --------------------------------------------------------------------------

    async def action(self, request: Request) -> Response:
        verdict = self.access.check_action(request.headers, request.cookies)
        if not verdict.allowed:
            return self._refused(verdict)
        try:
            body = await request.json()
            action, job_id = body["action"], body["job_id"]
            if not isinstance(action, str) or not isinstance(job_id, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return _answer(400, 'expected JSON {"action": str, "job_id": str}')
        job = self.app.find_job(job_id)
        if job is None:
            return _answer(404, f"no active job {job_id!r}")
        if action not in actions_for(job):
            return _answer(409, f"cannot {action} job {job_id!r} (status {job.status})")
        try:
            message = await _ACTIONS.get(action, _call_handle)(job, action)
        except BaseJobifyError as e:
            return _answer(409, str(e))
        finally:
            self.feed.invalidate()
        return _answer(200, message)


def _answer(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"ok": status == 200, "message": message}, status_code=status, headers=_SECURITY_HEADERS
    )


async def _run_now(job: Job[Any], _: str) -> str:
    builder = job._task.schedule(*job._args, **job._kwargs)
    if job.is_cron():  # the schedule stays; one extra run now, under its own id
        extra = await builder.push()
        return f"{job.task_name}: extra run {extra.id} started"
    await builder.push(job_id=job.id, replace=True, force=True)
    return f"{job.task_name}: {job.id} runs now"


async def _cancel(job: Job[Any], _: str) -> str:
    await job.cancel()
    return f"{job.task_name}: {job.id} cancelled"


async def _call_handle(job: Job[Any], action: str) -> str:
    """An action the handle itself offers: ``pause`` or ``resume``."""
    method: Callable[[], Awaitable[object]] = getattr(job, action)
    await method()
    return f"{job.task_name}: {job.id} {action}d"


_ACTIONS: dict[str, Callable[[Job[Any], str], Awaitable[str]]] = {
    "run": _run_now,
    "cancel": _cancel,
}
