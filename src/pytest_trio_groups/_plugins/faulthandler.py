"""faulthandler_timeout: a timer per group member, and a dump that names the member.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import datetime
import faulthandler
import os
from typing import TYPE_CHECKING

import pytest

from .. import _pytest_compat as compat
from .._observers import OBSERVERS_KEY, RunObserver
from .._watchdog import Alarm, Watchdog, task_stack

if TYPE_CHECKING:
    import trio

    from .._runner import GroupRun, MemberRun


class FaulthandlerSupport:
    """The pytest plugin: tells the group runs when someone starts debugging."""

    def __init__(self, config: pytest.Config, seconds: float) -> None:
        self.config = config
        self.seconds = seconds
        self.exit_on_timeout = compat.faulthandler_exit_on_timeout(config)
        self.runs: set[MemberDumps] = set()

    @pytest.hookimpl(tryfirst=True)
    def pytest_enter_pdb(self) -> None:
        # pytest's faulthandler plugin cancels its timer here, too.
        for run in self.runs:
            run.suspend()


class MemberDumps(RunObserver):
    """Dumps the stacks when one member runs past ``faulthandler_timeout``.

    pytest arms one ``faulthandler.dump_traceback_later`` around the first
    member's protocol, which would time the whole group and name no test:
    it is cancelled, and each member gets a timer of its own instead.
    """

    def __init__(self, support: FaulthandlerSupport, run: GroupRun) -> None:
        self._support = support
        self._watchdog = Watchdog(f"pytest-trio-groups faulthandler of {run.group.label}")
        self._alarms: dict[MemberRun, Alarm] = {}
        self._suspended = False

    def group_started(self, run: GroupRun) -> None:
        faulthandler.cancel_dump_traceback_later()
        self._support.runs.add(self)
        self._watchdog.start()

    def group_finished(self, run: GroupRun) -> None:
        self._support.runs.discard(self)
        self._watchdog.stop()

    def suspend(self) -> None:
        self._suspended = True
        for alarm in self._alarms.values():
            alarm.cancel()

    def member_started(self, member: MemberRun) -> None:
        import trio

        if self._suspended:
            return
        task = trio.lowlevel.current_task()
        self._alarms[member] = self._watchdog.after(
            self._support.seconds, lambda: self._dump(member, task)
        )

    def member_finished(self, member: MemberRun) -> None:
        alarm = self._alarms.pop(member, None)
        if alarm is not None:
            alarm.cancel()

    def _dump(self, member: MemberRun, task: trio.lowlevel.Task) -> None:
        """In the watchdog's thread: the member's task, then every thread, as faulthandler does."""
        support = self._support
        elapsed = datetime.timedelta(seconds=support.seconds)
        header = (
            f"Timeout ({elapsed})! {member.item.nodeid} ({member.run_.group.label}) "
            f"exceeded faulthandler_timeout={support.seconds:g}s\n"
            "Stack of its task (most recent call last):\n"
        )
        # pytest's faulthandler plugin sets its file up after this plugin's configure.
        fd = compat.faulthandler_fd(support.config)
        os.write(fd, (header + task_stack(task) + "\n").encode(errors="replace"))
        faulthandler.dump_traceback(file=fd, all_threads=True)
        if support.exit_on_timeout:
            os._exit(1)


def activate(config: pytest.Config) -> None:
    """Give each group member its own ``faulthandler_timeout`` timer, if one is set."""
    seconds = float(config.getini("faulthandler_timeout") or 0.0)
    if seconds <= 0:
        return
    support = FaulthandlerSupport(config, seconds)
    config.pluginmanager.register(support, "trio-groups-faulthandler")
    config.stash.setdefault(OBSERVERS_KEY, []).append(lambda run: MemberDumps(support, run))
