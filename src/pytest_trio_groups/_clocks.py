"""The clock a group's run is started with, and deadlines that stay in real seconds under it."""

from __future__ import annotations

import heapq
import itertools
import threading
import time

import trio
from trio.testing import MockClock


def make_clock(kind: str | None) -> MockClock | None:
    """The clock for a run whose members use the clock fixture ``kind`` (``None``: trio's own)."""
    if kind == "autojump_clock":
        return MockClock(autojump_threshold=0)
    if kind == "mock_clock":
        return MockClock()
    return None


class RealTimer:
    """Cancels cancel scopes after real seconds, whatever the run's clock says.

    Under a virtual clock every trio deadline is virtual: an autojump clock
    would make a 5 s per-test timeout fire as soon as the test waits for
    anything. Per-test deadlines and teardown grace periods are wall-clock
    promises, so under a virtual clock they are kept by one thread that hands
    each expiry to the run through its token.
    """

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = token
        self._heap: list[tuple[float, int, trio.CancelScope]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def cancel_after(self, scope: trio.CancelScope, seconds: float) -> None:
        """Cancel ``scope`` once ``seconds`` of real time have passed."""
        with self._wake:
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), scope))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="trio_group real-time deadlines", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def close(self) -> None:
        """Stop the thread; deadlines not reached are dropped."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        with self._wake:
            while not self._closed:
                if not self._heap:
                    self._wake.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                scope = heapq.heappop(self._heap)[2]
                try:
                    self._token.run_sync_soon(scope.cancel)
                except trio.RunFinishedError:
                    return
