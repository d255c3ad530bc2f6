"""Raw trio ceilings: what the event loop alone can do, measured in the same run.

``channel``: a trio memory channel (unbounded buffer) feeding one consumer that awaits a
trivial coroutine per item; items/s from the first send until the consumer has drained
everything. This is the ceiling jobify_trio's throughput is compared with. The same
figure with a bounded buffer of 1024 is reported alongside. ``spawn``: one trio task
per item in a nursery (informative: the cost of a task per job).
"""

from __future__ import annotations

import math
import sys

from _common import Params, Registry, Values, now, settle_memory, side_main

registry = Registry(side="raw_trio")
BOUNDED_BUFFER = 1024

try:
    import trio
except Exception as exc:  # reported as "unavailable", never a crash
    registry.unavailable = f"cannot import trio: {type(exc).__name__}: {exc}"


async def _trivial() -> None:
    return None


async def _channel_round(n: int, buffer: float) -> float:
    send, receive = trio.open_memory_channel[int](buffer)

    async def consume() -> None:
        async with receive:
            async for _ in receive:
                await _trivial()

    settle_memory()
    start = now()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        async with send:
            for item in range(n):
                await send.send(item)
    return n / (now() - start)


async def _spawn_round(n: int) -> float:
    settle_memory()
    start = now()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(_trivial)
    return n / (now() - start)


@registry.metric("channel")
def channel(p: Params) -> Values:
    async def main() -> Values:
        await _channel_round(min(p.n, 1000), math.inf)  # warm-up
        unbounded = [await _channel_round(p.n, math.inf) for _ in range(p.repeat)]
        bounded = [await _channel_round(p.n, BOUNDED_BUFFER) for _ in range(p.repeat)]
        return {
            "items_per_s": max(unbounded),
            "bounded_1024_items_per_s": max(bounded),
            "n": p.n,
            "rounds": p.repeat,
        }

    result: Values = trio.run(main)
    return result


@registry.metric("spawn")
def spawn(p: Params) -> Values:
    async def main() -> Values:
        await _spawn_round(min(p.n, 1000))  # warm-up
        rates = [await _spawn_round(p.n) for _ in range(p.repeat)]
        return {"tasks_per_s": max(rates), "n": p.n, "rounds": p.repeat}

    result: Values = trio.run(main)
    return result


if __name__ == "__main__":
    sys.exit(side_main(registry))
