"""pytest-timeout: each group member's limit is its own deadline, kept in real seconds.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pytest
import pytest_timeout

from .._context import CURRENT_MEMBER
from .._grouping import SPEC_KEY
from .._observers import OBSERVERS_KEY, RunObserver, as_instrument
from .._pytest_compat import Phase
from .._watchdog import Alarm, StepTracker, Watchdog, task_stack, thread_stacks

if TYPE_CHECKING:
    import trio

    from .._runner import GroupRun, MemberRun

#: Seconds a member past its limit gets to reach an ``await`` -- where trio
#: cancels it -- before the last resort: pytest-timeout's own method.
SYNC_GRACE = 1.0


def item_settings(item: pytest.Item) -> Any:
    """The item's pytest-timeout settings: mark, ``--timeout``, ini ``timeout``, ``PYTEST_TIMEOUT``.

    ``pytest_timeout._get_item_settings`` (pytest-timeout 2.3.1, 2.4.0) is the
    one place that resolves them, in that order.
    """
    return pytest_timeout._get_item_settings(item)


def is_member(item: pytest.Item) -> bool:
    return SPEC_KEY in item.stash


@dataclass(eq=False)
class _Limit:
    """One member attempt's pytest-timeout limit while it runs."""

    member: MemberRun
    task: trio.lowlevel.Task
    seconds: float
    method: str
    alarms: list[Alarm] = field(default_factory=list)
    #: Until the test's setup and call are over.
    active: bool = True
    #: Past the limit and the grace period: the last resort may act on it.
    overdue: bool = False

    def message(self) -> str:
        return (
            f"Timeout: test exceeded pytest-timeout's limit of {self.seconds:g}s "
            f"({self.member.run_.group.label})"
        )

    def close(self) -> None:
        self.active = False
        for alarm in self.alarms:
            alarm.cancel()


class TimeoutSupport:
    """The pytest plugin: pytest-timeout's timers are not armed for group members.

    Its ``pytest_runtest_protocol`` wrapper around the first member would
    time the whole group; each member is timed by a ``MemberTimeouts``
    observer instead.
    """

    def __init__(self) -> None:
        self.runs: set[MemberTimeouts] = set()

    @pytest.hookimpl(tryfirst=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> bool | None:
        return True if is_member(item) else None

    @pytest.hookimpl(tryfirst=True)
    def pytest_timeout_cancel_timer(self, item: pytest.Item) -> bool | None:
        return True if is_member(item) else None

    def pytest_enter_pdb(self) -> None:
        # Like pytest-timeout: no timeout strikes while someone debugs.
        for run in self.runs:
            run.suspend()


class MemberTimeouts(RunObserver):
    """Times each member of one group run by its own pytest-timeout settings.

    At the limit the member is cancelled through trio, in the loop's own
    thread, like a ``trio_group`` deadline. A member still in setup or call
    ``SYNC_GRACE`` seconds later is stuck where trio cannot reach it; then
    its own ``timeout_method`` applies: ``signal`` raises the failure in the
    synchronous code that holds the loop, ``thread`` dumps the stacks and
    ends the process, as pytest-timeout does for a test run alone.
    """

    def __init__(self, support: TimeoutSupport, run: GroupRun) -> None:
        self._support = support
        # A bad ``timeout`` mark never gets here: pytest-timeout's own
        # protocol wrapper reads the settings of every item first.
        self._settings: dict[pytest.Item, Any] = {}
        for item in run.group.members:
            settings = item_settings(item)
            if settings.timeout is not None and settings.timeout > 0:
                self._settings[item] = settings
        self._tracker = as_instrument(StepTracker)()
        self.instruments = (cast("trio.abc.Instrument", self._tracker),) if self._settings else ()
        self._watchdog: Watchdog | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._limits: dict[MemberRun, _Limit] = {}
        self._suspended = False
        #: SIGALRM can be handled only in the main thread.
        self._signals = False
        self._previous_handler: Any = None

    # -- the group run ---------------------------------------------------------

    def group_started(self, run: GroupRun) -> None:
        if not self._settings:
            return
        import trio

        self._support.runs.add(self)
        self._token = trio.lowlevel.current_trio_token()
        self._watchdog = Watchdog(f"pytest-trio-groups timeouts of {run.group.label}")
        self._watchdog.start()
        self._signals = threading.current_thread() is threading.main_thread()
        if self._signals:
            self._previous_handler = signal.signal(signal.SIGALRM, self._on_alarm)

    def group_finished(self, run: GroupRun) -> None:
        if self._watchdog is None:
            return
        self._support.runs.discard(self)
        self._watchdog.stop()
        if self._signals:
            signal.signal(signal.SIGALRM, self._previous_handler)

    def suspend(self) -> None:
        self._suspended = True
        for limit in list(self._limits.values()):
            limit.close()

    def member_started(self, member: MemberRun) -> None:
        settings = self._settings.get(member.item)
        if settings is not None and not settings.func_only:
            self._arm(member, settings)

    def phase_started(self, member: MemberRun, when: Phase) -> None:
        if when == "call":
            settings = self._settings.get(member.item)
            if settings is not None and settings.func_only:
                self._arm(member, settings)
        elif when == "teardown":
            # Teardown has its own bound, the teardown grace period.
            self._disarm(member)

    def member_finished(self, member: MemberRun) -> None:
        self._disarm(member)

    # -- one member --------------------------------------------------------------

    def _arm(self, member: MemberRun, settings: Any) -> None:
        import trio

        if self._suspended or self._watchdog is None:
            return
        if not settings.disable_debugger_detection and pytest_timeout.is_debugging():
            return
        method = settings.method
        if method == "signal" and not self._signals:
            # No SIGALRM outside the main thread: pytest-timeout uses a thread then.
            method = "thread"
        limit = _Limit(member, trio.lowlevel.current_task(), float(settings.timeout), method)
        self._limits[member] = limit
        limit.alarms.append(self._watchdog.after(limit.seconds, lambda: self._expire(limit)))
        limit.alarms.append(
            self._watchdog.after(limit.seconds + SYNC_GRACE, lambda: self._last_resort(limit))
        )

    def _disarm(self, member: MemberRun) -> None:
        limit = self._limits.pop(member, None)
        if limit is not None:
            limit.close()

    def _expire(self, limit: _Limit) -> None:
        """In the watchdog's thread: the limit is reached; cancel the member in trio's."""
        import trio

        assert self._token is not None

        def expire() -> None:
            if limit.active and not self._suspended:
                # Where it waited, before the cancellation unwinds it: the
                # traceback may end in a library's cleanup instead.
                from .._stalls import describe_tasks

                message = limit.message()
                where = describe_tasks(limit.task, str(limit.member.item.config.rootpath))
                if where:
                    message += "\n\nWhere the test waited:\n" + "\n".join(where)
                limit.member.expire(message)

        try:
            self._token.run_sync_soon(expire)
        except trio.RunFinishedError:
            pass

    def _last_resort(self, limit: _Limit) -> None:
        """In the watchdog's thread: the member outlived its limit by the grace period."""
        if not limit.active or self._suspended:
            return
        assert self._watchdog is not None
        stepping = self._tracker.task
        owner = stepping.context.get(CURRENT_MEMBER) if stepping is not None else None
        other = self._limits.get(owner) if owner is not None and owner is not limit.member else None
        if other is not None and other.active and not other.overdue:
            # Another member holds the loop within its own limit: this one
            # is cancelled as soon as that one lets go.
            limit.alarms.append(self._watchdog.after(SYNC_GRACE, lambda: self._last_resort(limit)))
            return
        limit.overdue = True
        if limit.method == "signal":
            # The handler raises in whatever overdue member holds the loop;
            # a member waiting with cancellation shielded cannot be reached.
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGALRM)
            limit.alarms.append(self._watchdog.after(SYNC_GRACE, lambda: self._last_resort(limit)))
        else:
            self._exit(limit)

    def _on_alarm(self, signum: int, frame: Any) -> None:
        """SIGALRM, in the main thread: fail the overdue member whose code is running."""
        import trio

        try:
            task = trio.lowlevel.current_task()
        except RuntimeError:
            return  # the loop is waiting, not stuck
        member = task.context.get(CURRENT_MEMBER)
        limit = self._limits.get(member) if member is not None else None
        if limit is None or not limit.overdue or not limit.active:
            return
        limit.close()
        raise pytest.fail.Exception(
            f"{limit.message()}, and it was stuck in synchronous code, out of trio's "
            f"reach, {SYNC_GRACE:g}s later"
        )

    def _exit(self, limit: _Limit) -> None:
        """pytest-timeout's thread method: dump the stacks and end the process."""
        config = limit.member.item.config
        terminal = config.get_terminal_writer()
        capman = config.pluginmanager.get_plugin("capturemanager")
        if capman is not None:
            capman.suspend_global_capture(in_=True)
        terminal.sep("+", "Timeout")
        terminal.line(
            f"{limit.member.item.nodeid}: {limit.message()}, and it could not be cancelled "
            f"{SYNC_GRACE:g}s later; ending the run (timeout method 'thread')"
        )
        terminal.sep("~", "Stack of the test's task")
        terminal.write(task_stack(limit.task))
        terminal.write(thread_stacks(skip=threading.get_ident()))
        terminal.sep("+", "Timeout")
        terminal.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def activate(config: pytest.Config) -> None:
    """Take pytest-timeout's timers over for group members."""
    support = TimeoutSupport()
    config.pluginmanager.register(support, "trio-groups-timeout")
    config.stash.setdefault(OBSERVERS_KEY, []).append(lambda run: MemberTimeouts(support, run))
