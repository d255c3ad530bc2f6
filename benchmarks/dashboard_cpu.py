"""CPU the dashboard adds to a worker running 1,000 jobs/s, with 5 pages open.

``python benchmarks/dashboard_cpu.py [--seconds 10] [--rate 1000] [--pages 5]`` runs the
same worker three times: plain; with a RunHistory (what the dashboard needs); and with
the dashboard served and ``pages`` live SSE feeds open. The pages are read by a separate
process (so their CPU is not counted). Reported: the worker's CPU time over the measured
window as a percentage of one core.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time

import trio

from jobify_trio import Jobify, RunHistory
from jobify_trio.dashboard import serve_dashboard

WARMUP = 2.0

CLIENTS = textwrap.dedent(
    """
    import sys, threading, httpx
    url, pages, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    counts = [0] * pages
    def read(i):
        try:
            with httpx.stream("GET", url + "/events", timeout=seconds + 5) as response:
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        counts[i] += 1
        except Exception:
            pass
    for i in range(pages):
        threading.Thread(target=read, args=(i,), daemon=True).start()
    threading.Event().wait(seconds)
    print(sum(counts))
    """
)


async def producer(app: Jobify, rate: int, pushed: list[int]) -> None:
    """Push ``rate`` jobs per second, in batches every 10 ms, counting them in ``pushed``."""
    task = app.tasks["noop"]
    batch = max(1, rate // 100)
    deadline = trio.current_time()
    while True:
        for _ in range(batch):
            await task.push()
        pushed[0] += batch
        deadline += batch / rate
        await trio.sleep_until(deadline)


async def _clients(command: list[str], read: list[str], done: trio.Event) -> None:
    result = await trio.run_process(command, capture_stdout=True)
    read.append(result.stdout.decode().strip())
    done.set()


async def measure(mode: str, seconds: float, rate: int, pages: int) -> tuple[float, str]:
    app = Jobify(storage=False)

    @app.task(name="noop")
    async def noop() -> None:
        return None

    if mode != "plain":
        RunHistory(app)
    pushed = [0]
    async with app, trio.open_nursery() as nursery:
        nursery.start_soon(producer, app, rate, pushed)
        read: list[str] = []
        clients_done = trio.Event()
        if mode == "dashboard":
            urls = await nursery.start(serve_dashboard, app, "127.0.0.1", 0)
            command = [sys.executable, "-c", CLIENTS, urls[0], str(pages), str(WARMUP + seconds)]
            nursery.start_soon(_clients, command, read, clients_done)
        await trio.sleep(WARMUP)
        cpu, wall, jobs = time.process_time(), time.perf_counter(), pushed[0]
        await trio.sleep(seconds)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        extra = f" at {(pushed[0] - jobs) / wall:,.0f} jobs/s"
        if mode == "dashboard":
            await clients_done.wait()
            extra += f", {read[0]} SSE messages read by {pages} pages"
        nursery.cancel_scope.cancel()
    return cpu / wall * 100, extra


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=5)
    args = parser.parse_args()
    print(f"{args.rate} jobs/s for {args.seconds:g} s; CPU of the worker process, % of one core")
    for mode in ("plain", "history", "dashboard"):
        percent, extra = trio.run(measure, mode, args.seconds, args.rate, args.pages)
        print(f"{mode:>10}: {percent:5.1f}%{extra}")


if __name__ == "__main__":
    main()
