"""The clock a group's run is started with, and deadlines that stay in real seconds under it.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ._watchdog import Watchdog

if TYPE_CHECKING:
    from trio.testing import MockClock


def make_clock(kind: str | None) -> MockClock | None:
    """The clock for a run whose members use the clock fixture ``kind`` (``None``: trio's own)."""
    if kind is None:
        return None
    # Imported only for a run that uses one: pytest rewrites
    # trio.testing._trio_test (its name matches the default python_files),
    # and that module's loader holds the config for as long as trio's
    # modules live -- through every collection at interpreter exit, as
    # trio's at-fork callback keeps them.
    from trio.testing import MockClock

    if kind == "autojump_clock":
        return MockClock(autojump_threshold=0)
    if kind == "mock_clock":
        return MockClock()
    return None


def cancel_in_real_time(watchdog: Watchdog, scope: trio.CancelScope, seconds: float) -> None:
    """Cancel ``scope`` once ``seconds`` of real time have passed, whatever the run's clock says.

    Under a virtual clock every trio deadline is virtual: an autojump clock
    would make a 5 s per-test timeout fire as soon as the test waits for
    anything. Per-test deadlines and teardown grace periods are wall-clock
    promises, so the watchdog thread keeps them and hands each expiry to the
    run through its token.
    """
    token = trio.lowlevel.current_trio_token()

    def expire() -> None:
        try:
            token.run_sync_soon(scope.cancel)
        except trio.RunFinishedError:
            pass

    watchdog.after(seconds, expire)
