"""Retries with SmartRetry backoff, then exception handlers resolved task -> router -> app.

A flaky task succeeds on its third attempt; a broken one exhausts its retries and an
app-level handler turns the failure into a fallback result; a task-level handler wins
over the app's for the same exception; a timeout is caught by a ``TimeoutError`` handler.
"""

from __future__ import annotations

from typing import Any

import trio

from jobify_trio import JobContext, Jobify, JobRouter, SmartRetry


def fallback(exc: Exception, context: JobContext) -> str:  # sync handlers run in a thread
    return f"fallback after {context.attempt} attempts ({type(exc).__name__})"


async def task_level(exc: Exception, context: JobContext) -> str:
    return f"task handler saw {exc}"


async def on_timeout(exc: Exception, context: JobContext) -> str:
    return f"gave up waiting: {exc}"


def make_app(**options: Any) -> Jobify:
    app = Jobify(exception_handlers={ConnectionError: fallback}, **options)
    billing = JobRouter(prefix="billing", exception_handlers={TimeoutError: on_timeout})
    calls: dict[str, int] = {}

    def attempt(name: str) -> int:
        calls[name] = calls.get(name, 0) + 1
        print(f"{name}: attempt {calls[name]} at {trio.current_time() - app.state.t0:.2f}s")
        return calls[name]

    backoff = SmartRetry(3, initial_delay=0.1, backoff_factor=2, jitter=False)

    @app.task(name="flaky", retry=backoff)
    async def flaky() -> str:
        if attempt("flaky") < 3:
            raise ConnectionError("refused")
        return "flaky: ok"

    @app.task(name="broken", retry=SmartRetry(2, initial_delay=0.1, jitter=False))
    async def broken() -> str:
        attempt("broken")
        raise ConnectionError("down")

    @app.task(name="picky", exception_handlers={ConnectionError: task_level})
    async def picky() -> str:
        attempt("picky")
        raise ConnectionError("no route")

    @billing.task(name="slow", timeout=0.2)
    async def slow() -> str:
        attempt("billing:slow")
        await trio.sleep(10)
        return "never"

    app.include_router(billing)
    app.state.tasks = [flaky, broken, picky, slow]
    return app


async def main(app: Jobify) -> None:
    app.state.t0 = trio.current_time()
    async with app:
        jobs = [await task.push() for task in app.state.tasks]
        await app.wait_all()
    for job in jobs:
        print(f"{job.status.value}: {job.result()!r}")


if __name__ == "__main__":
    trio.run(main, make_app(storage=False))
