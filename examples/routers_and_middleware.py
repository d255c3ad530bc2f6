"""Routers, middleware, injection and a lifespan in one small billing app.

* **Routers** group tasks under a name prefix and can be nested: ``invoices`` inside
  ``billing`` names its task ``"billing.invoices:send"``.
* **Inner middleware** runs around every attempt: ``Timing`` (on the app, so around every
  task) logs each attempt's duration and puts a trace id into the attempt's
  ``RequestState``, which the task receives through ``INJECT``. The app's middleware
  wraps the routers', so for reports the duration includes the wait in the queue.
* **Outer middleware** runs around every scheduling call: ``FreezeWindow`` (on the
  billing router) refuses to schedule billing jobs while ``app.state.frozen`` is set;
  the call then returns a detached job that never runs.
* **QueueMiddleware** on the ``reports`` router lets one report run at a time; a waiting
  report with a larger ``metadata["priority"]`` starts first.
* A **lifespan** opens a resource (a pretend database) when the app starts, puts it into
  ``app.state`` and closes it after the last job; tasks get it with ``State = INJECT``.

Run it with ``python examples/routers_and_middleware.py``; it exits after about two
seconds. Times in the output are seconds since the app started.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import trio

from jobify_trio import INJECT, JobContext, Jobify, JobRouter, OuterContext, RequestState, State
from jobify_trio.middleware import CallNext, CallNextOuter, QueueMiddleware


class Database:
    """Stands in for a connection pool opened once per app run."""

    def __init__(self) -> None:
        self.rows: list[str] = []

    async def insert(self, row: str) -> None:
        await trio.lowlevel.checkpoint()  # a real driver would do I/O here
        self.rows.append(row)


@contextlib.asynccontextmanager
async def lifespan(app: Jobify) -> AsyncIterator[dict[str, Any]]:
    """Open the database before any job runs; close it after the last one."""
    db = Database()
    print("lifespan: database opened")
    try:
        yield {"db": db}  # merged into app.state
    finally:
        print(f"lifespan: database closed ({len(db.rows)} rows written)")


def elapsed(state: State) -> str:
    return f"[{trio.current_time() - state.t0:3.1f}s]"


class Timing:
    """Inner middleware: around each attempt, retries included."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        context.request_state.trace_id = f"t{next(self._ids)}"  # the task sees it too
        start = trio.current_time()
        try:
            return await call_next(context)  # the next middleware, then the function
        finally:
            took = trio.current_time() - start
            print(f"{elapsed(context.state)} timing: {context.task.name} took {took:.2f}s")


class FreezeWindow:
    """Outer middleware: refuses to schedule jobs while ``app.state.frozen`` is set."""

    async def __call__(self, call_next: CallNextOuter, context: OuterContext) -> Any:
        if context.state.get("frozen"):
            print(f"{elapsed(context.state)} freeze: not scheduling {context.task.name}")
            return None  # call_next not called: nothing is scheduled or stored
        return await call_next(context)


def make_app(**options: Any) -> Jobify:
    """The app, its routers and tasks (tests pass a virtual ``wall_clock``)."""
    app = Jobify(lifespan=lifespan, middleware=[Timing()], **options)

    billing = JobRouter("billing", outer_middleware=[FreezeWindow()])
    invoices = JobRouter("invoices")
    reports = JobRouter("reports", middleware=[QueueMiddleware(workers=1)])

    @invoices.task(name="send")
    async def send_invoice(
        customer: str,
        context: JobContext = INJECT,  # the whole context of this attempt
        state: State = INJECT,  # app.state: the lifespan's database is in it
        request: RequestState = INJECT,  # per attempt, shared with the middleware
    ) -> str:
        await state.db.insert(f"invoice for {customer}")
        print(
            f"{elapsed(state)} {context.task.name}: invoice for {customer} "
            f"(attempt {context.attempt}, trace {request.trace_id})"
        )
        return f"sent to {customer}"

    @reports.task(name="bulk", metadata={"priority": 0})
    async def bulk_report(number: int, state: State = INJECT) -> None:
        print(f"{elapsed(state)} reports:bulk #{number} starts")
        await trio.sleep(0.5)
        await state.db.insert(f"bulk report {number}")

    @reports.task(name="urgent", metadata={"priority": 10})  # jumps the queue
    async def urgent_report(state: State = INJECT) -> None:
        print(f"{elapsed(state)} reports:urgent starts")
        await trio.sleep(0.5)
        await state.db.insert("urgent report")

    billing.include_router(invoices)  # nesting: names become "billing.invoices:..."
    app.include_routers(billing, reports)
    return app


async def main(app: Jobify) -> None:
    app.state.t0 = trio.current_time()
    async with app:  # the lifespan runs here; app.state.db exists from now on
        print("tasks:", ", ".join(sorted(app.tasks)))
        send = app.tasks["billing.invoices:send"]

        job = await send.push("ACME")
        print(f"{elapsed(app.state)} result: {await job!r}")

        app.state.frozen = True  # e.g. during month-end closing
        refused = await send.push("Globex")
        print(f"{elapsed(app.state)} refused job: status {refused.status.value}")
        app.state.frozen = False

        # One report at a time: #1 starts at once, the others wait; urgent, pushed last,
        # starts next because of its priority.
        bulk, urgent = app.tasks["reports:bulk"], app.tasks["reports:urgent"]
        for number in (1, 2, 3):
            await bulk.schedule(number).delay(0.05 * (number - 1))
        await urgent.schedule().delay(0.15)
        await app.wait_all()
    print("rows:", app.state.db.rows)


if __name__ == "__main__":
    trio.run(main, make_app(storage=False))
