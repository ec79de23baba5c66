"""Real-time alarms for a group run, kept by a thread so that they fire while the trio loop is busy.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import traceback
import types
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import trio


class Alarm:
    """One pending call of the watchdog; ``cancel`` it to drop it."""

    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], object]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Watchdog:
    """A thread that calls each alarm's callback at its time, in ``time.monotonic`` seconds.

    Callbacks run in the watchdog's thread: they must hand work for the trio
    loop to it (``TrioToken.run_sync_soon``) and may only look at what
    the loop is doing.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._wakeup = threading.Condition()
        self._alarms: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wakeup:
            self._closed = True
            self._wakeup.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def after(self, seconds: float, callback: Callable[[], object]) -> Alarm:
        """Call ``callback`` in ``seconds`` from now."""
        alarm = Alarm(time.monotonic() + seconds, callback)
        with self._wakeup:
            heapq.heappush(self._alarms, (alarm.deadline, next(self._order), alarm))
            self._wakeup.notify()
        return alarm

    def _loop(self) -> None:
        with self._wakeup:
            while not self._closed:
                now = time.monotonic()
                if self._alarms and self._alarms[0][0] <= now:
                    _, _, alarm = heapq.heappop(self._alarms)
                    if alarm.cancelled:
                        continue
                    self._wakeup.release()
                    try:
                        alarm.callback()
                    except Exception:
                        traceback.print_exc()
                    finally:
                        self._wakeup.acquire()
                    continue
                timeout = self._alarms[0][0] - now if self._alarms else None
                self._wakeup.wait(timeout)


#: ``config.stash``: the session's watchdog thread, started when first needed.
_SESSION_WATCHDOG_KEY: pytest.StashKey[Watchdog] = pytest.StashKey()


def session_watchdog(config: pytest.Config) -> Watchdog:
    """The watchdog thread that the session's watches share (started on first use)."""
    watchdog = config.stash.get(_SESSION_WATCHDOG_KEY, None)
    if watchdog is None:
        watchdog = config.stash[_SESSION_WATCHDOG_KEY] = Watchdog("pytest-trio-groups watches")
        watchdog.start()
    return watchdog


def stop_session_watchdog(config: pytest.Config) -> None:
    """End the session's watchdog thread, if one was started."""
    watchdog = config.stash.get(_SESSION_WATCHDOG_KEY, None)
    if watchdog is not None:
        watchdog.stop()


class StepTracker:
    """Which task is running a step right now; read from the watchdog's thread.

    A trio instrument once made one with ``_observers.as_instrument``.

    A task that holds a step for long is stuck in synchronous code, where
    trio cannot cancel it.
    """

    def __init__(self) -> None:
        self.task: trio.lowlevel.Task | None = None

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.task = task

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        self.task = None


def coroutine_frames(task: trio.lowlevel.Task) -> list[tuple[types.FrameType, int]]:
    """The frames ``task`` is parked in, and their lines, outermost first."""
    frames: list[tuple[types.FrameType, int]] = []
    awaitable: object = task.coro
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is not None:
            frames.append((frame, frame.f_lineno))
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return frames


def task_stack(task: trio.lowlevel.Task) -> str:
    """Where ``task`` is: its chain of coroutine frames, outermost first, as text."""
    return "".join(traceback.StackSummary.extract(iter(coroutine_frames(task))).format())


def thread_stacks(skip: int | None) -> str:
    """The stacks of every thread but the one numbered ``skip``, as text."""
    import sys

    names = {thread.ident: thread.name for thread in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        if ident == skip:
            continue
        parts.append(
            f"Stack of {names.get(ident, '<unknown>')} ({ident}), most recent call last:\n"
        )
        parts.append("".join(traceback.format_stack(frame)))
    return "".join(parts)
