"""Process-wide state each group member sees as its own, switched on trio task steps.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest
import trio

from ._context import CURRENT_MEMBER

if TYPE_CHECKING:
    from ._runner import MemberRun


class TaskState:
    """One kind of process-wide state that looks per member while a group runs.

    Tasks of concurrent members interleave at every ``await``, and some state
    a test sees alone is one value per process: ``warnings`` filters,
    ``random``'s generator, ``PYTEST_CURRENT_TEST``, coverage's context.
    ``TaskStateSwitcher`` calls ``switch`` before each step of a task with
    the member the task works for (``None`` for a task that works for none),
    so each kind can put that member's value in place.

    A kind that switches only when the member changes costs one comparison
    for a run of steps of the same member. A kind that must not leave a
    member's value in place between steps -- where threads or trio's own
    code would see it -- sets ``restore_after_step``.
    """

    #: Also call ``switch(None)`` after every step.
    restore_after_step = False
    #: Also call ``switch(member)`` when a member starts a phase (setup, call,
    #: teardown) in the middle of a step.
    follows_phase = False

    def install(self) -> None:
        """The group is about to start: take over the state."""

    def uninstall(self) -> None:
        """The group has ended: give back the state from before it."""

    def switch(self, member: MemberRun | None) -> None:
        """From now until the next switch, the running code works for ``member``.

        A kind that does not override it (one that only sets something up
        for the group) is not called on task steps at all.
        """

    def member_done(self, member: MemberRun) -> None:
        """``member``'s task is done with it, in the middle of a step."""
        self.switch(None)


class TaskStateSwitcher(trio.abc.Instrument):
    """The trio Instrument that switches every registered ``TaskState`` on task steps.

    Kinds are registered per group, and only those whose plugin is active:
    a kind that is not registered costs nothing per step.
    """

    def __init__(self, kinds: Sequence[TaskState]) -> None:
        self.kinds = tuple(kinds)
        switching = [kind for kind in self.kinds if type(kind).switch is not TaskState.switch]
        self._switching = tuple(switching)
        # Bound once: these run on every step of every task.
        self._switches = tuple(kind.switch for kind in switching)
        self._restores = tuple(kind.switch for kind in switching if kind.restore_after_step)
        self._phased = tuple(kind.switch for kind in switching if kind.follows_phase)
        #: The group's own task, which starts the members and runs no test
        #: code: its steps, one per member, leave every state as it is.
        self.runner_task: trio.lowlevel.Task | None = None

    def install(self) -> None:
        for kind in self.kinds:
            kind.install()

    def uninstall(self) -> None:
        for kind in reversed(self.kinds):
            kind.uninstall()

    def enter(self, member: MemberRun) -> None:
        """A task starts working for ``member``, in the middle of a step."""
        for switch in self._switches:
            switch(member)

    def phase_began(self, member: MemberRun) -> None:
        """``member``'s task has started a new phase, in the middle of a step."""
        for switch in self._phased:
            switch(member)

    def leave(self, member: MemberRun) -> None:
        """``member``'s task is done with it, in the middle of a step."""
        for kind in self._switching:
            kind.member_done(member)

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.runner_task:
            return
        member = task.context.get(CURRENT_MEMBER, None)
        for switch in self._switches:
            switch(member)

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        for switch in self._restores:
            switch(None)


_CURRENT_TEST_VAR = "PYTEST_CURRENT_TEST"


def current_test_prefix(item: pytest.Item) -> str:
    """``PYTEST_CURRENT_TEST`` as pytest's runner sets it (pytest 8.4, 9.2), without the phase.

    The value is this, a space and the phase in parentheses: ``"<nodeid> (call)"``.
    """
    return item.nodeid.replace("\x00", "(null)")


class CurrentTestVar(TaskState):
    """``PYTEST_CURRENT_TEST`` names the member (and its phase) whose code runs.

    pytest's runner sets it in the phase hooks it runs for one item at a
    time; group members skip the runner's hooks. Written only when the
    member or its phase changes: one comparison per step otherwise.
    """

    follows_phase = True

    def __init__(self) -> None:
        self._before: str | None = None
        self._value: str | None = None
        self._setitem, self._delitem = _environ_methods()

    def install(self) -> None:
        self._before = self._value = os.environ.get(_CURRENT_TEST_VAR)
        # Taken before the group starts: the shared-state watch wraps
        # ``os.environ``'s methods while it runs, and has no use for these
        # writes, several per member.
        self._setitem, self._delitem = _environ_methods()

    def uninstall(self) -> None:
        self._write(self._before)

    def switch(self, member: MemberRun | None) -> None:
        value = self._before if member is None else member.current_test
        if value is not self._value:
            self._write(value)

    def _write(self, value: str | None) -> None:
        written, self._value = self._value, value
        if value is not None:
            self._setitem(os.environ, _CURRENT_TEST_VAR, value)
        elif written is not None:
            try:
                self._delitem(os.environ, _CURRENT_TEST_VAR)
            except KeyError:  # taken out by someone else meanwhile
                pass


def _environ_methods() -> tuple[Any, Any]:
    """``os.environ``'s item assignment and deletion, as its class has them now."""
    environ = type(os.environ)
    return environ.__setitem__, environ.__delitem__


def plugin_states(config: pytest.Config, first_member: pytest.Item) -> list[TaskState]:
    """The kinds of per-member state that active plugins need for one group.

    A plugin's module is imported only when that plugin is active.
    """
    states: list[TaskState] = []
    pm = config.pluginmanager
    randomly = sys.modules.get("pytest_randomly")
    if randomly is not None and pm.is_registered(randomly):
        from ._plugins import randomly as randomly_support

        states.extend(randomly_support.states(config, first_member))
    if pm.has_plugin("_cov_contexts"):
        from ._plugins import coverage as coverage_support

        states.extend(coverage_support.states(config))
    return states
