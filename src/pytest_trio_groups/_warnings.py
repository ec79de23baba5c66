"""Each concurrent test's warnings: its own filters, its own record, its own nodeid.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import pytest

from . import _pytest_compat as compat
from ._context import CURRENT_MEMBER
from ._task_state import TaskState

if TYPE_CHECKING:
    from ._runner import MemberRun

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
    """The process-wide ``warnings`` state: filters and the recording hooks."""

    __slots__ = ("filters", "impl", "showwarning")

    def __init__(self, filters: Any, impl: Any, showwarning: Any) -> None:
        self.filters = filters
        self.impl = impl
        self.showwarning = showwarning

    @classmethod
    def current(cls) -> _State:
        return cls(
            warnings.filters,
            warnings._showwarnmsg_impl,  # type: ignore[attr-defined]
            warnings.showwarning,
        )

    def is_current(self) -> bool:
        return (
            warnings.filters is self.filters
            and warnings._showwarnmsg_impl is self.impl  # type: ignore[attr-defined]
            and warnings.showwarning is self.showwarning
        )

    def apply(self) -> None:
        changed_filters = warnings.filters is not self.filters
        warnings.filters = self.filters
        warnings._showwarnmsg_impl = self.impl  # type: ignore[attr-defined]
        warnings.showwarning = self.showwarning
        if changed_filters:
            _filters_mutated()


def _has_filterwarnings(node: Any) -> bool:
    return any(getattr(mark, "name", None) == "filterwarnings" for mark in node.own_markers)


class MemberWarnings:
    """The warnings one test raised, and the ``warnings`` state it set up, if any."""

    def __init__(self, item: pytest.Item, group_state: _State, *, marked: bool = True) -> None:
        """``marked=False``: neither ``item`` nor a node above it has a ``filterwarnings`` mark."""
        self.log: list[warnings.WarningMessage] = []
        own = _mark_filters(item) if marked else []
        #: ``None`` while the test uses the group's state (most of the time);
        #: its own while it has ``filterwarnings`` marks or is inside
        #: ``pytest.warns``, ``recwarn`` or ``warnings.catch_warnings``.
        self.state: _State | None = None
        if own:
            filters = own + [f for f in group_state.filters if f not in own]
            self.state = _State(filters, group_state.impl, group_state.showwarning)

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


class WarningsState(TaskState):
    """Gives each member's tasks that member's ``warnings`` state, step by step.

    ``warnings`` filters and the recording hook are process-wide; tasks of
    concurrent tests interleave at every ``await``. While a group runs, a
    warning is recorded for the test whose task (or thread) raised it. A
    test that changes the state -- ``filterwarnings`` marks, ``recwarn``,
    ``pytest.warns`` -- has it swapped in before each step of its tasks and
    out after, so those behave per test; the others cost no swap at all.
    """

    #: Between steps the group's state is in place, so that threads and
    #: tasks of no member never see one member's filters.
    restore_after_step = True

    def __init__(self, first_member: pytest.Item) -> None:
        self._saved = _State.current()
        first = _mark_filters(first_member)
        # pytest applied the first member's marks for the whole group; take
        # them out so that every member starts from the configured filters.
        self.group_state = _State(
            [f for f in self._saved.filters if f not in first],
            self._record,
            warnings._showwarning_orig,  # type: ignore[attr-defined]
        )
        self._current: MemberWarnings | None = None
        #: Whether a node has a ``filterwarnings`` mark, or one above it has.
        self._marked: dict[Any, bool] = {}

    def for_member(self, item: pytest.Item) -> MemberWarnings:
        """A new ``MemberWarnings`` for an attempt at ``item``."""
        marked = _has_filterwarnings(item) or self._is_marked(item.parent)
        return MemberWarnings(item, self.group_state, marked=marked)

    def _is_marked(self, node: Any) -> bool:
        # Members share a few parents: each is looked at once, and most
        # members then need no ``catch_warnings`` to know they add nothing.
        if node is None:
            return False
        marked = self._marked.get(node)
        if marked is None:
            marked = self._marked[node] = _has_filterwarnings(node) or self._is_marked(node.parent)
        return marked

    def _record(self, message: warnings.WarningMessage) -> None:
        member = CURRENT_MEMBER.get(None)
        if member is None:
            self._saved.impl(message)
        else:
            member.warnings.log.append(message)

    def install(self) -> None:
        self.group_state.apply()

    def uninstall(self) -> None:
        self._saved.apply()

    def switch(self, member: MemberRun | None) -> None:
        if member is not None:
            self._current = member.warnings
            if member.warnings.state is not None:
                member.warnings.state.apply()
            return
        current = self._current
        if current is None:
            return
        self._current = None
        if self.group_state.is_current():
            current.state = None
        else:
            current.state = _State.current()
            self.group_state.apply()
