"""Pins each private trio behaviour ``_trio_compat`` relies on, on the installed trio."""

from __future__ import annotations

from collections.abc import Callable

import pytest
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


def test_a_guest_run_steps_aside_for_another_run_and_comes_back() -> None:
    import queue
    import signal

    callbacks: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
    results: list[object] = []
    release = trio.Event()

    async def guest() -> str:
        await release.wait()
        return "guest done"

    def drive_until(done: Callable[[], bool]) -> None:
        while not done():
            callbacks.get()()

    outside = _trio_compat.current_run_state()
    trio.lowlevel.start_guest_run(
        guest,
        run_sync_soon_threadsafe=callbacks.put,
        done_callback=results.append,
        host_uses_signal_set_wakeup_fd=True,
    )
    token = trio.lowlevel.current_trio_token()
    # A guest run between its ticks: trio.run refuses in this thread, and
    # the guest's SIGINT handler is installed.
    with pytest.raises(RuntimeError, match="inside a run"):
        trio.run(trio.sleep, 0)
    assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    guest_state = _trio_compat.swap_run_state(outside)
    assert not trio.lowlevel.in_trio_run()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    trio.run(trio.sleep, 0)
    _trio_compat.swap_run_state(guest_state)
    assert trio.lowlevel.current_trio_token() is token
    token.run_sync_soon(release.set)
    drive_until(lambda: bool(results))
    assert results[0].unwrap() == "guest done"  # type: ignore[attr-defined]
    assert not trio.lowlevel.in_trio_run()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_cancellation_delivered_into_awaited_code_is_seen() -> None:
    seen: list[str] = []

    async def swallows() -> str:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            pass
        return "swallowed"

    async def never_checkpoints() -> str:
        return "no checkpoint"

    async def raises() -> None:
        await trio.lowlevel.checkpoint()
        raise ValueError("passed through")

    async def main() -> None:
        with trio.CancelScope() as scope:
            scope.cancel()
            results = [
                await _trio_compat.awaiting_with_cancellation_seen(
                    swallows(), lambda: seen.append("swallows")
                ),
                await _trio_compat.awaiting_with_cancellation_seen(
                    never_checkpoints(), lambda: seen.append("never_checkpoints")
                ),
            ]
        assert results == ["swallowed", "no checkpoint"]
        try:
            await _trio_compat.awaiting_with_cancellation_seen(
                raises(), lambda: seen.append("raises")
            )
        except ValueError as exc:
            assert str(exc) == "passed through"
        else:  # pragma: no cover
            raise AssertionError("the error was lost")

    trio.run(main)
    assert seen == ["swallows"]
