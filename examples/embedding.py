"""Embedding the scheduler in an existing trio program: a TCP server and the app share
one nursery.

The server accepts lines ``remind SECONDS TEXT`` and schedules a reminder job for each;
the jobs run in the same process, next to the connections. ``main`` starts both, plays a
short client session against the server, waits for the reminders and stops everything.
"""

from __future__ import annotations

import functools
from typing import Any

import trio

from jobify_trio import Jobify


def make_app(**options: Any) -> Jobify:
    app = Jobify(**options)

    @app.task(name="remind")
    async def remind(text: str) -> None:
        print(f"reminder: {text}")

    return app


async def handle(stream: trio.abc.Stream, app: Jobify) -> None:
    """One connection: each ``remind SECONDS TEXT`` line schedules a job."""
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            command, seconds, text = line.decode().split(" ", 2)
            if command != "remind":
                await stream.send_all(b"error: unknown command\n")
                continue
            job = await app.tasks["remind"].schedule(text).delay(float(seconds))
            await stream.send_all(f"scheduled {job.id} at +{float(seconds):g}s\n".encode())


async def client(port: int) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"remind 2 stand up\nremind 1 drink water\n")
        replies = b""
        while replies.count(b"\n") < 2:
            replies += await stream.receive_some()
    for line in replies.decode().splitlines():
        print("server:", line.split(" ")[0], line.split(" ")[-1])


async def main(app: Jobify) -> None:
    async with app, trio.open_nursery() as nursery:  # one nursery: server, app, client
        serve = functools.partial(trio.serve_tcp, host="127.0.0.1")
        listeners = await nursery.start(serve, functools.partial(handle, app=app), 0)
        port = listeners[0].socket.getsockname()[1]
        await client(port)
        await app.wait_all()
        nursery.cancel_scope.cancel()  # stop the server; leaving `app` stops the scheduler
    print("server and scheduler stopped")


if __name__ == "__main__":
    trio.run(main, make_app(storage=False))
