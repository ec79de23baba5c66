"""The blocked-loop watch: blames the test whose task kept a group's event loop from running.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import pytest

from . import BlockedLoopWarning
from ._context import CURRENT_MEMBER
from ._notices import attribute, blamed_frame, place, user_frames
from ._observers import OBSERVERS_KEY, RunObserver, as_instrument
from ._python_compat import thread_frame
from ._trace import group_trace
from ._watchdog import Alarm, Watchdog, session_watchdog

if TYPE_CHECKING:
    import trio

    from ._runner import GroupRun, MemberRun

_clock = time.perf_counter
#: Stack frames shown in a blocked-loop warning, innermost last.
_SHOWN_FRAMES = 8
#: How much a deadline may precede a block and still count as missed through it:
#: trio notices expired deadlines between task steps, not in them.
_SLACK = 0.02
#: Other tests' blocks listed in a failed test's report, longest first.
_SHOWN_BLOCKS = 5
#: The title of that part of the report.
BLOCKED_BY_OTHERS = "trio_group: other tests blocked the event loop while this test ran"


@dataclass
class Episode:
    """One time a task step held the event loop for longer than the threshold."""

    member: MemberRun
    step: int
    start: float
    noticed: float
    frames: list[traceback.FrameSummary]
    end: float = field(default=0.0)

    @property
    def seconds(self) -> float:
        return self.end - self.start


class LoopWatch(RunObserver):
    """Times each task step of one group's run; the watchdog thread checks on it.

    The group run's trio instrument, made one with ``as_instrument``.

    The cost while nothing blocks is one call, a clock read and three
    attribute writes per task step; the thread takes the stack only when a
    step has already lasted longer than the threshold.
    """

    def __init__(self, watchdog: Watchdog, threshold: float, run: GroupRun) -> None:
        self.instruments = (cast("trio.abc.Instrument", self),)
        self._watchdog = watchdog
        self.threshold = threshold
        self.poll = threshold / 4
        self._label = run.group.label
        self._summary = run.summary
        self._trace = group_trace(run)
        self._root = str(run.session.config.rootpath)
        self._loop_thread = threading.get_ident()
        self._task: trio.lowlevel.Task | None = None
        self._step = 0
        self._step_start = 0.0
        #: Set by the watchdog's thread while a step blocks; finished in the loop's thread.
        self._episode: Episode | None = None
        self._noticed_step = -1
        self._episodes: list[Episode] = []
        self._alarm: Alarm | None = None
        self._watching = False
        #: When each running attempt started.
        self._started: dict[MemberRun, float] = {}

    def group_started(self, run: GroupRun) -> None:
        self._loop_thread = threading.get_ident()
        self._watching = True
        self._alarm = self._watchdog.after(self.poll, self._tick)

    def group_finished(self, run: GroupRun) -> None:
        self._watching = False
        if self._alarm is not None:
            self._alarm.cancel()
        self._finish()

    def _tick(self) -> None:
        self.check()
        if self._watching:
            self._alarm = self._watchdog.after(self.poll, self._tick)

    # Only two hooks: one call per task step, one per batch of steps. A step
    # ends when the next one starts or the loop waits for I/O.

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self._episode is not None:
            self._finish()
        self._step_start = _clock()
        self._task = task
        self._step += 1

    def before_io_wait(self, timeout: float) -> None:
        self._task = None
        if self._episode is not None:
            self._finish()

    def check(self) -> None:
        """In the watchdog's thread: if the current step has blocked too long, note where."""
        task, step, start = self._task, self._step, self._step_start
        if task is None or step == self._noticed_step:
            return
        now = time.perf_counter()
        if now - start < self.threshold:
            return
        member = task.context.get(CURRENT_MEMBER)
        if member is None:
            # Not a test's step (the group's own bookkeeping, a report being
            # written, a debugger prompt): nobody to blame.
            return
        frame = thread_frame(self._loop_thread)
        frames = user_frames(traceback.extract_stack(frame)) if frame is not None else []
        if self._step != step:
            return
        self._noticed_step = step
        self._episode = Episode(member, step, start, now, frames)

    def member_started(self, member: MemberRun) -> None:
        self._started[member] = _clock()

    def member_finished(self, member: MemberRun) -> None:
        # The member's task is about to report: its block, if any, is over.
        episode = self._episode
        if episode is not None and episode.member is member:
            self._finish()
        started = self._started.pop(member, None)
        if started is None or not self._episodes:
            return  # nothing blocked the loop in this group
        failed = next((report for report, _ in member.result.reports if report.failed), None)
        if failed is not None:
            others = [e for e in self._episodes if e.member is not member and e.end > started]
            if others:
                failed.sections.append(
                    (BLOCKED_BY_OTHERS, self._blocked_by(member, started, others))
                )

    def _blocked_by(self, member: MemberRun, started: float, episodes: list[Episode]) -> str:
        """Why a failed test's awaits may have resumed late: the blocks of others while it ran."""
        ran = _clock() - started
        # A block that began before the test counts only from the test's start.
        blocked = sum(e.end - max(e.start, started) for e in episodes)
        longest = sorted(episodes, key=lambda e: e.seconds, reverse=True)
        lines = [
            f"While {member.item.nodeid} ran ({ran:.2f}s), other tests of {self._label} held "
            f"the event loop for {blocked:.2f}s in all; none of its awaits could resume "
            "meanwhile:\n"
        ]
        for episode in longest[:_SHOWN_BLOCKS]:
            where = place(blamed_frame(episode.frames), self._root)
            lines.append(f"    {episode.member.item.nodeid}: {episode.seconds:.2f}s at {where}\n")
        if len(longest) > _SHOWN_BLOCKS:
            rest = longest[_SHOWN_BLOCKS:]
            lines.append(f"    and {len(rest)} more ({sum(e.seconds for e in rest):.2f}s)\n")
        lines.append(
            "A fixed wait (trio.sleep) for work another task does, or a limit on elapsed "
            "time, can fail for that reason alone: wait for the event itself, or see whether "
            "the test passes on its own (--trio-group-rerun-alone, @pytest.mark.trio_alone).\n"
        )
        return "".join(lines)

    def _finish(self) -> None:
        episode, self._episode = self._episode, None
        if episode is None:
            return
        # The watchdog's thread may have noticed a step that has ended since: its end is
        # then known only roughly.
        episode.end = time.perf_counter() if episode.step == self._step else episode.noticed
        self._episodes.append(episode)
        self._summary.blocked += 1
        self._summary.blocked_seconds += episode.seconds
        blamed = blamed_frame(episode.frames)
        where = place(blamed, self._root)
        stack = "".join(traceback.format_list(episode.frames[-_SHOWN_FRAMES:]))
        attribute(
            episode.member,
            BlockedLoopWarning(
                f"the event loop was blocked for {episode.seconds:.2f}s at {where}: "
                f"no other test of {self._label} could run meanwhile (threshold "
                f"{self.threshold:g}s). A blocking call (time.sleep, a synchronous socket "
                "or HTTP call) holds up the whole group: await trio's equivalent, or run "
                "it in trio.to_thread.run_sync.\nStack (most recent call last):\n" + stack
            ),
            blamed,
        )
        self._trace.mark(
            episode.member,
            "event loop blocked",
            episode.start,
            {"seconds": round(episode.seconds, 6), "at": where},
        )

    def timeout_detail(self, member: MemberRun, late_by: float) -> str:
        # Why the deadline was missed, if a block explains it.
        self._finish()
        deadline = time.perf_counter() - late_by
        for episode in reversed(self._episodes):
            if episode.start - _SLACK <= deadline <= episode.end + _SLACK:
                where = place(blamed_frame(episode.frames), self._root)
                if episode.member is member:
                    return (
                        f"; the deadline was missed because the event loop was blocked at "
                        f"{where} for {episode.seconds:.2f}s, and a test cannot be "
                        "cancelled while it blocks"
                    )
                return (
                    f"; the deadline passed while {episode.member.item.nodeid} blocked the "
                    f"event loop at {where}, so the test was cancelled "
                    f"{late_by:.2f}s late"
                )
        return ""


def activate(config: pytest.Config, threshold: float | None) -> None:
    """Watch every group's loop, unless the threshold is off or a debugger may stop it."""
    # A debugger prompt inside a test holds the loop by design.
    if threshold is None or config.getoption("usepdb", False) or config.getoption("trace", False):
        return

    def watch(run: GroupRun) -> RunObserver:
        return as_instrument(LoopWatch)(session_watchdog(config), threshold, run)

    config.stash.setdefault(OBSERVERS_KEY, []).append(watch)
