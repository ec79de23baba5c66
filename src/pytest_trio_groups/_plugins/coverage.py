"""pytest-cov's ``--cov-context=test``: lines are credited to the member that ran them.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .._task_state import TaskState

if TYPE_CHECKING:
    from .._runner import MemberRun

#: pytest-cov's (7.x) names for the phases, as in ``nodeid|run``.
_WHEN = {"setup": "setup", "call": "run", "teardown": "teardown"}


class CoverageContext(TaskState):
    """Coverage's dynamic context follows the member whose step runs.

    pytest-cov switches the process-wide context in each phase hook, so
    concurrent members would be credited with each other's lines. Lines
    are collected per thread between switches and filed under the context
    current at the next switch (``Coverage.switch_context`` flushes first),
    so switching before each step of another member credits each step's
    lines to its member. Lines run by tasks that work for no member (the
    group's own, background tasks of wider-scoped fixtures) go to the
    empty context.
    """

    def __init__(self, controller: Any) -> None:
        self._controller = controller
        self._member: MemberRun | None = None
        self._phase = ""

    def install(self) -> None:
        self._member, self._phase = None, ""
        self._switch("")

    def uninstall(self) -> None:
        self._switch("")

    def switch(self, member: MemberRun | None) -> None:
        if member is self._member and (member is None or member.phase == self._phase):
            return
        self._member = member
        if member is None:
            self._phase = ""
            self._switch("")
        else:
            self._phase = member.phase
            self._switch(f"{member.item.nodeid}|{_WHEN[member.phase]}")

    def _switch(self, context: str) -> None:
        controller = self._controller
        if controller.started:
            controller.cov.switch_context(context)


def states(config: pytest.Config) -> list[TaskState]:
    plugin: Any = config.pluginmanager.get_plugin("_cov")
    controller = getattr(plugin, "cov_controller", None)
    if controller is None:
        return []
    return [CoverageContext(controller)]
