"""CPU-bound work in worker processes (``RunMode.PROCESS``), next to async jobs.

The decorated function stays a plain, picklable module-level function: worker processes
import it by name. A timeout kills a runaway process attempt.
"""

from __future__ import annotations

from typing import Any

import trio

from jobify_trio import Jobify, JobStatus, RunMode

app = Jobify(storage=False)


@app.task(name="count_primes", run_mode=RunMode.PROCESS, timeout=30)
def count_primes(limit: int) -> int:
    sieve = bytearray([1]) * (limit + 1)
    sieve[:2] = b"\x00\x00"
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(sieve[i * i :: i]))
    return sum(sieve)


@app.task(name="spin", run_mode=RunMode.PROCESS, timeout=0.5)
def spin() -> None:
    while True:  # never returns: the timeout kills its process
        pass


async def main(app: Jobify = app, **_: Any) -> None:
    async with app:
        counts = [await count_primes.push(limit) for limit in (10_000, 100_000)]
        runaway = await spin.push()
        for job in counts:
            print(f"primes: {await job}")
        await runaway.wait()
        assert runaway.status is JobStatus.TIMEOUT
        print(f"spin: {runaway.status.value} ({runaway.exception})")


if __name__ == "__main__":
    trio.run(main)
