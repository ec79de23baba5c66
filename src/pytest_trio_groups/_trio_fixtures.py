"""The fixtures pytest-trio suites use -- ``nursery``, ``autojump_clock``, ``mock_clock``.

Registered as fixtures when pytest-trio is not active; beside pytest-trio,
group members get these functions in place of pytest-trio's fixtures of the
same names.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from ._context import CURRENT_MEMBER

if TYPE_CHECKING:
    import trio
    from trio.testing import MockClock

_F = TypeVar("_F", bound=Callable[..., Any])

#: The attribute pytest-trio's ``trio_fixture`` sets; set here too, so that a
#: fixture made with either decorator is a trio fixture for both plugins.
TRIO_FIXTURE_ATTR = "_force_trio_fixture"


async def nursery_fixture() -> AsyncIterator[trio.Nursery]:
    """A nursery that lives as long as the test; cancelled when the test ends.

    A task started in it that raises fails the test.
    """
    # trio is imported where a trio test needs it, never at plugin load.
    import trio

    async with trio.open_nursery() as nursery:
        yield nursery
        nursery.cancel_scope.cancel()


def autojump_clock_fixture() -> MockClock:
    """A ``trio.testing.MockClock`` with ``autojump_threshold=0``: the test's run uses it.

    Virtual time jumps ahead whenever every task is waiting, so sleeps and
    timeouts end at once. Tests that use it run together in a run with one
    such clock; their deadlines stay in real seconds.
    """
    from trio.testing import MockClock

    return _clock("autojump_clock", lambda: MockClock(autojump_threshold=0))


def mock_clock_fixture() -> MockClock:
    """A ``trio.testing.MockClock`` the test moves by hand: the test's run uses it.

    A test that uses it runs in a trio run of its own, since moving the clock
    would move its siblings' time too.
    """
    from trio.testing import MockClock

    return _clock("mock_clock", MockClock)


def _clock(name: str, make: Callable[[], MockClock]) -> MockClock:
    member = CURRENT_MEMBER.get(None)
    if member is None:
        # Not a trio test: just the clock object, as pytest-trio gives it.
        return make()
    clock = member.run_.clock
    if clock is None or member.run_.group.clock != name:
        from ._fixtures import FixtureProtocolError

        raise FixtureProtocolError(
            f"{name} was requested once the test's trio run had started (with "
            "request.getfixturevalue()); request it as an argument, directly or "
            "through a fixture's arguments, so the run can start with that clock"
        )
    return clock


#: By fixture name: this plugin's implementation of pytest-trio's fixtures.
REPLACEMENTS: dict[str, Callable[..., Any]] = {
    "nursery": nursery_fixture,
    "autojump_clock": autojump_clock_fixture,
    "mock_clock": mock_clock_fixture,
}

nursery = pytest.fixture(nursery_fixture, name="nursery")
autojump_clock = pytest.fixture(autojump_clock_fixture, name="autojump_clock")
mock_clock = pytest.fixture(mock_clock_fixture, name="mock_clock")


def trio_fixture(func: _F) -> _F:
    """Declare a function-scoped fixture that must run inside the test's trio run.

    The same as pytest-trio's ``trio_fixture``: a synchronous fixture made
    with it may call trio functions that need a running trio (such as
    ``trio.current_time()``), and only trio tests may request it.
    """
    setattr(func, TRIO_FIXTURE_ATTR, True)
    return pytest.fixture(func)  # type: ignore[return-value]


def is_trio_fixture(func: object) -> bool:
    """Whether ``func`` was declared with ``trio_fixture`` (this plugin's or pytest-trio's)."""
    return bool(getattr(func, TRIO_FIXTURE_ATTR, False))


def runs_outside_the_run(fixturedef: Any) -> bool:
    """Whether a group member's fixture runs with no trio run visible: a sync, non-trio one."""
    func = fixturedef.func
    return not (
        inspect.iscoroutinefunction(func)
        or inspect.isasyncgenfunction(func)
        or is_trio_fixture(func)
    )
