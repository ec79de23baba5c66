"""Pins each private trio behaviour ``_trio_compat`` relies on, on the installed trio."""

from __future__ import annotations

import trio

from pytest_trio_groups import _trio_compat


def _schedule(seed: int) -> list[int]:
    order: list[int] = []

    async def step(n: int) -> None:
        for _ in range(5):
            order.append(n)
            await trio.lowlevel.checkpoint()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for n in range(4):
                nursery.start_soon(step, n)

    _trio_compat.scheduler_random().seed(seed)
    trio.run(main)
    return order


def test_scheduler_random_decides_the_order_of_runnable_tasks() -> None:
    generator = _trio_compat.scheduler_random()
    saved = generator.getstate()
    try:
        assert _schedule(1) == _schedule(1)
        assert _schedule(1) != _schedule(2)
    finally:
        generator.setstate(saved)
