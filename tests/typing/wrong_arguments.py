"""Calls with wrong argument types that ``mypy --strict`` must reject (see ``test_typing.py``).

Each line marked ``# rejected`` must get an error; ``test_typing.py`` checks the lines.
"""

from __future__ import annotations

from jobify_trio import Jobify

app = Jobify(storage=False)


@app.task
async def add(a: int, b: int) -> int:
    return a + b


@app.task(name="greet")
def greet(name: str, *, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


async def main() -> None:
    await add.push("one", 2)  # rejected
    await add.push(1)  # rejected
    await greet.push("ada", punctuation=1)  # rejected
    await greet.schedule(3).delay(1.0)  # rejected
    total: str = await (await add.push(1, 2))  # rejected
    print(total)
