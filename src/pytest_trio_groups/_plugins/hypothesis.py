"""Hypothesis ``@given`` tests in a group: every example runs in the group's trio run.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import functools
from typing import Any

import trio

#: Set on the synchronous stand-in for a test's async body.
_ORIGINAL = "_trio_groups_async_test"
#: How many members are running each Hypothesis test object right now.
_USERS: dict[int, int] = {}


async def run_given_test(test: Any, kwargs: dict[str, Any]) -> None:
    """Run a ``@given`` async test: Hypothesis's engine in a thread, each example in trio.

    Hypothesis calls the test once per example, synchronously. Its engine
    runs in a worker thread, and each example is sent back into the group's
    run with ``trio.from_thread.run`` -- in the test's own task context, so
    its deadline, cancellation and contextvars apply to every example.

    The parametrized copies of one test share one Hypothesis object, and run
    at the same time: the stand-in is the same for all of them (each
    example finds its way back through its own worker thread), installed by
    the first and removed by the last.
    """
    hypothesis = test.hypothesis
    key = id(hypothesis)
    if not _USERS.get(key):
        inner = hypothesis.inner_test

        # Named as the test: Hypothesis names the function in its reports.
        @functools.wraps(inner)
        def run_example(*args: Any, **example_kwargs: Any) -> Any:
            return trio.from_thread.run(functools.partial(inner, *args, **example_kwargs))

        setattr(run_example, _ORIGINAL, inner)
        hypothesis.inner_test = run_example
    _USERS[key] = _USERS.get(key, 0) + 1
    try:
        await trio.to_thread.run_sync(functools.partial(test, **kwargs))
    finally:
        _USERS[key] -= 1
        if not _USERS[key]:
            del _USERS[key]
            hypothesis.inner_test = getattr(hypothesis.inner_test, _ORIGINAL)
