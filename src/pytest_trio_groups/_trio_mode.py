"""Which tests are trio tests -- the ``trio`` mark, ini ``trio_mode`` -- and how they are grouped.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from ._options import TRIO_MARK
from ._spec import MarkError, test_function

if TYPE_CHECKING:
    from trio.abc import Instrument

    from ._plugins.pytest_trio import PytestTrio


@dataclass(frozen=True)
class TrioPolicy:
    """Who runs the session's trio tests, and which automatic groups they join."""

    #: ``trio_group_by``: ``"none"``, ``"module"``, ``"class"`` or ``"session"``.
    group_by: str
    #: ini ``trio_mode``: every ``async def`` test is a trio test.
    trio_mode: bool
    #: ini ``trio_run``.
    trio_run: str
    #: The pytest-trio integration, when pytest-trio is active: trio tests
    #: outside groups are then pytest-trio's.
    pytest_trio: PytestTrio | None
    #: The trio tests kept out of automatic groups because they ask for
    #: another runner, by node id: the runner each asks for.
    other_runners: dict[str, str] = field(default_factory=dict)

    def automark(self, items: list[pytest.Item]) -> None:
        """Under ``trio_mode`` without pytest-trio: mark every ``async def`` test ``trio``."""
        if not self.trio_mode or self.pytest_trio is not None:
            return
        for item in items:
            if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(
                test_function(item)
            ):
                item.add_marker(pytest.mark.trio)

    def can_group(self, item: pytest.Item) -> bool:
        """Whether a trio test can join an automatic group beside pytest-trio.

        Only ``async def`` tests run by plain ``trio.run``; tests for another
        runner (``trio_run = qtrio``, ``@pytest.mark.trio(run=...)``) stay
        pytest-trio's.
        """
        if not isinstance(item, pytest.Function):
            return False
        if not inspect.iscoroutinefunction(test_function(item)):
            return False
        runner = self._other_runner(item)
        if runner is None:
            return True
        self.other_runners[item.nodeid] = runner
        return False

    def other_runners_line(self) -> str | None:
        """For the summary: how many trio tests no automatic group took, for their runner."""
        if not self.other_runners:
            return None
        count = len(self.other_runners)
        runners = ", ".join(sorted(set(self.other_runners.values())))
        if count == 1:
            tests, them, runs = "1 trio test asks", "it", "runs it in a run of its own"
        else:
            tests, them, runs = f"{count} trio tests ask", "them", "runs each in a run of its own"
        return (
            f"trio_group_by = {self.group_by}: {tests} for another runner ({runners}), "
            f"so no automatic group takes {them}; pytest-trio {runs}"
        )

    def check_runner(self, item: pytest.Item) -> None:
        """Refuse a trio test that asks for a runner other than ``trio.run``."""
        runner = self._other_runner(item)
        if runner is not None:
            raise MarkError(
                f"the test asks to be run by {runner}; pytest-trio-groups runs trio tests "
                "with trio.run (install pytest-trio for other runners)",
                TRIO_MARK,
            )

    def check_group_runner(self, item: pytest.Item) -> None:
        """Refuse a test of a ``trio_group`` mark that asks for a runner other than ``trio.run``."""
        runner = self._other_runner(item)
        if runner is not None:
            raise MarkError(
                f"the test asks to be run by {runner}, but a trio_group runs its tests in "
                "one trio.run; remove the trio_group mark, or mark the test "
                "@pytest.mark.trio(run=trio.run) if trio.run can run it"
            )

    def _other_runner(self, item: pytest.Item) -> str | None:
        """The runner ``item`` asks for, unless it is ``trio.run``."""
        runner = self._runner_of(item)
        return None if runner in (None, "trio") else runner

    def _runner_of(self, item: pytest.Item) -> str | None:
        for mark in item.iter_markers(TRIO_MARK):
            run = mark.kwargs.get("run")
            if run is not None:
                import trio

                if run is trio.run:
                    return "trio"
                name = getattr(run, "__qualname__", None)
                return f"{run.__module__}.{name}" if name else repr(run)
        return None if self.trio_run == "trio" else f"trio_run = {self.trio_run}"

    def auto_group_name(self, item: pytest.Item) -> str:
        """The automatic group ``item`` joins: its module's, class's or the session's."""
        if self.group_by == "session":
            return "session"
        if self.group_by == "class":
            cls = item.getparent(pytest.Class)
            if cls is not None:
                return cls.nodeid
        module = item.getparent(pytest.Module)
        return module.nodeid if module is not None else item.nodeid


POLICY_KEY: pytest.StashKey[TrioPolicy] = pytest.StashKey()


def check_run_arguments(kwargs: dict[str, object], run_clock: object) -> list[Instrument]:
    """The trio ``Instrument``s among a test's arguments, to add while it runs.

    pytest-trio hands a test's ``Clock`` and ``Instrument`` arguments to its
    ``trio.run``. A group's run starts before its members' fixtures exist, so
    its clock is chosen from the clock fixtures the members use; a clock from
    any other fixture cannot be honoured and is refused, naming the fixture.
    """
    import trio

    instruments: list[Instrument] = []
    for name, value in kwargs.items():
        if isinstance(value, trio.abc.Clock) and value is not run_clock:
            raise pytest.UsageError(
                f"fixture {name!r} gives a trio Clock, but the test's trio run was started "
                "before its fixtures and cannot use it; make the fixture return (or depend "
                "on) autojump_clock or mock_clock, whose clock the run starts with"
            )
        if isinstance(value, trio.abc.Instrument):
            instruments.append(value)
    return instruments
