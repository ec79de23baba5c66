"""The stall report: where each running test of a group waits, when none makes progress.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import linecache
import time
import traceback
from typing import TYPE_CHECKING, cast

import pytest

from ._context import STALL_SINK_KEY
from ._notices import _plumbing, place
from ._observers import OBSERVERS_KEY, RunObserver, as_instrument
from ._options import PASS_ALONE
from ._watchdog import Alarm, coroutine_frames, session_watchdog

if TYPE_CHECKING:
    import trio

    from ._runner import GroupRun, MemberRun

_clock = time.monotonic
#: Running tests listed in one report; the rest are counted.
_SHOWN_MEMBERS = 20
#: Frames shown per task, innermost last.
_SHOWN_FRAMES = 6
#: Tasks shown per test besides its own (a library may start hundreds).
_SHOWN_TASKS = 3
STALLED = "trio_group: no test of the group made progress"


def _tasks_under(task: trio.lowlevel.Task) -> list[trio.lowlevel.Task]:
    """``task`` and every task started in its nurseries, depth first."""
    found = [task]
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            found.extend(_tasks_under(child))
    return found


def where_waiting(task: trio.lowlevel.Task, indent: str, root: str = "") -> list[str]:
    """Lines that show where ``task`` waits: its own code's frames, then the call it waits in.

    The call is the first frame below them of trio's, a library's or the
    plugin's: ``Event.wait``, ``NurseryManager.__aexit__``, ``SocketStream.receive_some``.
    """
    frames = [(frame.f_code, lineno) for frame, lineno in coroutine_frames(task)]
    plumbing = _plumbing()
    own = [i for i, (code, _) in enumerate(frames) if not code.co_filename.startswith(plumbing)]
    lines = []
    for code, lineno in (frames[i] for i in own[-_SHOWN_FRAMES:]):
        frame = traceback.FrameSummary(code.co_filename, lineno, code.co_name, lookup_line=False)
        lines.append(f"{indent}{place(frame, root)}")
        text = linecache.getline(code.co_filename, lineno).strip()
        if text:
            lines.append(f"{indent}    {text}")
    below = own[-1] + 1 if own else 0
    if below < len(frames):
        code, lineno = frames[below]
        name = getattr(code, "co_qualname", code.co_name)
        lines.append(f"{indent}waiting in {name} ({code.co_filename}:{lineno})")
    return lines


def describe_tasks(task: trio.lowlevel.Task, root: str = "") -> list[str]:
    """Where ``task`` and the first few tasks it started wait, indented under a test's line."""
    tasks = _tasks_under(task)
    lines = where_waiting(task, "    ", root)
    for each in tasks[1 : 1 + _SHOWN_TASKS]:
        where = where_waiting(each, "      ", root)
        if where:
            lines.append(f"    in task {each.name!r}:")
            lines.extend(where)
    if len(tasks) > 1 + _SHOWN_TASKS:
        lines.append(f"    and {len(tasks) - 1 - _SHOWN_TASKS} more tasks in its nurseries")
    return lines


class StallWatch(RunObserver):
    """Notices when no test of a group has moved for ``seconds``, and says where each one waits.

    A test moves when its own task -- the one that runs its fixtures and
    its body -- takes a step, or when it finishes; background tasks that
    wake up on a timer (a library's keep-alive) are no progress. The
    report is made while the loop waits for I/O (a loop held by a test's
    synchronous code is the blocked-loop watch's). A watchdog thread checks
    and asks the loop, through its token, to write the report.

    With ``cancel`` (the pass-alone setting), a report also cancels each
    running test that ran beside another: it fails with the stall as its
    message and is run again on its own after the group.
    """

    def __init__(self, seconds: float, run: GroupRun, cancel: bool = False) -> None:
        self.instruments = (cast("trio.abc.Instrument", self),)
        self._seconds = seconds
        self._run = run
        self._watchdog = session_watchdog(run.session.config)
        self._token: trio.lowlevel.TrioToken | None = None
        self._alarm: Alarm | None = None
        #: Whether the loop waits for I/O (no task step is running).
        self._idle = False
        #: When a test's own task last took a step, or a test finished.
        self._progress = _clock()
        #: When the last report about the current stall was made.
        self._reported: float | None = None
        self._running: dict[MemberRun, tuple[trio.lowlevel.Task, float]] = {}
        #: The running tests' own tasks.
        self._tasks: set[trio.lowlevel.Task] = set()
        #: The last stall report made while each running member waited.
        self._stalled: dict[MemberRun, str] = {}
        self._cancel = cancel
        #: Members (of this run, not reruns on their own) that ran beside another.
        self._beside: set[MemberRun] = set()
        self._watching = False
        self._root = str(run.session.config.rootpath)

    # -- in the loop's thread ---------------------------------------------------

    def group_started(self, run: GroupRun) -> None:
        import trio

        self._token = trio.lowlevel.current_trio_token()
        self._watching = True
        self._alarm = self._watchdog.after(self._seconds / 4, self._tick)

    def group_finished(self, run: GroupRun) -> None:
        self._watching = False
        if self._alarm is not None:
            self._alarm.cancel()

    def member_started(self, member: MemberRun) -> None:
        import trio

        task = trio.lowlevel.current_task()
        others = [other for other in self._running if not other.alone]
        if not member.alone and others:
            self._beside.update(others)
            self._beside.add(member)
        self._running[member] = (task, _clock())
        self._tasks.add(task)

    def member_finished(self, member: MemberRun) -> None:
        entry = self._running.pop(member, None)
        if entry is not None:
            self._tasks.discard(entry[0])
        self._beside.discard(member)
        self._progress = _clock()
        stalled = self._stalled.pop(member, None)
        if stalled:
            for report in member.result.report_list:
                if report.failed:
                    report.sections.append((STALLED, stalled))
                    break

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task in self._tasks:
            self._progress = _clock()

    def before_io_wait(self, timeout: float) -> None:
        self._idle = True

    def after_io_wait(self, timeout: float) -> None:
        self._idle = False

    def timeout_detail(self, member: MemberRun, late_by: float) -> str:
        others = [other for other in self._running if other is not member]
        if not others:
            return ""
        return "\n\nWhere the other running tests of the group waited:\n" + "\n".join(
            self._describe(others)
        )

    def _describe(self, members: list[MemberRun]) -> list[str]:
        lines = []
        for member in members[:_SHOWN_MEMBERS]:
            lines.extend(self._describe_one(member))
        if len(members) > _SHOWN_MEMBERS:
            lines.append(f"  ... and {len(members) - _SHOWN_MEMBERS} more")
        return lines

    def _describe_one(self, member: MemberRun) -> list[str]:
        task, started = self._running[member]
        return [
            f"  {member.item.nodeid} ({member.phase}, running {_clock() - started:.1f}s):",
            *describe_tasks(task, self._root),
        ]

    def _report(self) -> None:
        members = list(self._running)
        if not members:
            return
        still = _clock() - self._progress
        headline = (
            f"{self._run.group.label}: no test has made progress for {still:.1f}s "
            "(no test's own task ran, none finished)."
        )
        text = "\n".join([f"{headline} Where each running test waits:", *self._describe(members)])
        for member in members:
            # Its own report keeps its own part.
            self._stalled[member] = "\n".join(
                [f"{headline} Where it waited:", *self._describe_one(member)]
            )
        if self._cancel:
            self._cancel_stalled(members, still)
        config = self._run.session.config
        sink = config.stash.get(STALL_SINK_KEY, None)
        if sink is not None:
            sink(text)
            return
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            with self._run.capture.paused():
                reporter.ensure_newline()
                reporter.write_sep("-", STALLED, yellow=True)
                reporter.write_line(text)

    def _cancel_stalled(self, members: list[MemberRun], still: float) -> None:
        """Under the pass-alone setting: end the stall; the tests are run again on their own."""
        for member in members:
            if member in self._beside and member.phase != "teardown":
                member.expire(
                    f"Stalled: no test of {self._run.group.label} made progress for "
                    f"{still:.1f}s; {PASS_ALONE} cancels the tests of a stalled group "
                    "that ran beside others, to run each again on its own"
                )

    # -- in the watchdog's thread -------------------------------------------------

    def _tick(self) -> None:
        if not self._watching:
            return
        now, progress, last = _clock(), self._progress, self._reported
        if last is not None and last < progress:
            last = self._reported = None  # a test moved: a new stall starts
        # Once per stall, and again each time it has lasted another period.
        if (
            self._idle
            and self._running
            and now - progress >= self._seconds
            and (last is None or now - last >= self._seconds)
        ):
            self._reported = now
            token = self._token
            if token is not None:
                try:
                    token.run_sync_soon(self._report)
                except RuntimeError:  # the run is over
                    pass
        self._alarm = self._watchdog.after(self._seconds / 4, self._tick)


def activate(config: pytest.Config, seconds: float | None) -> None:
    """Watch every group run for stalls, unless ``seconds`` is ``None`` or a debugger may stop it."""
    if seconds is None or config.getoption("usepdb", False) or config.getoption("trace", False):
        return
    from ._diagnosis import pass_alone_setting

    cancel = pass_alone_setting(config)
    config.stash.setdefault(OBSERVERS_KEY, []).append(
        lambda run: as_instrument(StallWatch)(seconds, run, cancel)
    )
