"""Hypothesis ``@given`` tests in a group: every example runs in the group's trio run."""

from __future__ import annotations

import functools
from typing import Any

import trio


async def run_given_test(test: Any, kwargs: dict[str, Any]) -> None:
    """Run a ``@given`` async test: Hypothesis's engine in a thread, each example in trio.

    Hypothesis calls the test once per example, synchronously. Its engine
    runs in a worker thread, and each example is sent back into the group's
    run with ``trio.from_thread.run`` -- in the test's own task context, so
    its deadline, cancellation and contextvars apply to every example.
    """
    hypothesis = test.hypothesis
    inner = hypothesis.inner_test

    # Named as the test: Hypothesis names the function in its reports.
    @functools.wraps(inner)
    def run_example(*args: Any, **example_kwargs: Any) -> Any:
        return trio.from_thread.run(functools.partial(inner, *args, **example_kwargs))

    hypothesis.inner_test = run_example
    try:
        await trio.to_thread.run_sync(functools.partial(test, **kwargs))
    finally:
        hypothesis.inner_test = inner
