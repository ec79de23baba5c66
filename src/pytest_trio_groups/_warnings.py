"""Each concurrent test's warnings: its own filters, its own record, its own nodeid."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import trio

from . import _pytest_compat as compat
from ._context import CURRENT_MEMBER

# The state ``warnings.catch_warnings`` saves and restores (CPython 3.10-3.13).
_filters_mutated = getattr(warnings, "_filters_mutated", lambda: None)


def _mark_filters(item: pytest.Item) -> list[Any]:
    """The filters ``@pytest.mark.filterwarnings`` marks on ``item`` add."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for mark in item.iter_markers(name="filterwarnings"):
            for arg in mark.args:
                warnings.filterwarnings(*compat.parse_warning_filter(arg))
        return list(warnings.filters)


class _State:
    """The process-wide ``warnings`` state one test sees."""

    __slots__ = ("filters", "impl", "showwarning")

    def __init__(self, filters: list[Any], impl: Any, showwarning: Any) -> None:
        self.filters = filters
        self.impl = impl
        self.showwarning = showwarning

    @classmethod
    def current(cls) -> _State:
        return cls(
            list(warnings.filters),
            warnings._showwarnmsg_impl,  # type: ignore[attr-defined]
            warnings.showwarning,
        )

    def apply(self) -> None:
        warnings.filters = self.filters
        warnings._showwarnmsg_impl = self.impl  # type: ignore[attr-defined]
        warnings.showwarning = self.showwarning
        _filters_mutated()


class MemberWarnings:
    """The warnings one test raised, recorded under its own filters."""

    def __init__(self, item: pytest.Item, base_filters: list[Any]) -> None:
        own = _mark_filters(item)
        self.log: list[warnings.WarningMessage] = []
        self.state = _State(
            own + [f for f in base_filters if f not in own],
            self.log.append,
            warnings._showwarning_orig,  # type: ignore[attr-defined]
        )

    def publish(self, item: pytest.Item) -> None:
        """Report the warnings as pytest's warnings plugin would, under this test's nodeid."""
        for message in self.log:
            item.ihook.pytest_warning_recorded.call_historic(
                kwargs={
                    "warning_message": message,
                    "nodeid": item.nodeid,
                    "when": "runtest",
                    "location": None,
                }
            )
        self.log.clear()


class WarningsSwitcher(trio.abc.Instrument):
    """Gives each member's tasks that member's ``warnings`` state, step by step.

    ``warnings`` filters and the recording hook are process-wide; tasks of
    concurrent tests interleave at every ``await``. Swapping the state in
    before and out after each step of a member's task makes ``recwarn``,
    ``pytest.warns`` and ``filterwarnings`` marks behave per test.
    """

    def __init__(self, first_member: pytest.Item) -> None:
        self._outer = _State.current()
        first = _mark_filters(first_member)
        # pytest applied the first member's marks for the whole group; take
        # them out so that every member starts from the configured filters.
        self.base_filters = [f for f in self._outer.filters if f not in first]
        self._current: MemberWarnings | None = None

    def enter(self, warnings_of: MemberWarnings) -> None:
        """A member's task starts being that member's, in the middle of a step."""
        self._current = warnings_of
        warnings_of.state.apply()

    def leave(self) -> None:
        """The member's task is done with it, in the middle of a step."""
        self.after_task_step(None)

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        member = task.context.get(CURRENT_MEMBER)
        if member is not None:
            self.enter(member.warnings)

    def after_task_step(self, task: trio.lowlevel.Task | None) -> None:
        current = self._current
        if current is None:
            return
        self._current = None
        current.state = _State.current()
        self._outer.apply()
