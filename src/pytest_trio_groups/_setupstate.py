"""A ``SetupState`` that holds the whole group: many items set up at once."""

from __future__ import annotations

import sys
import types
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from . import _pytest_compat as compat

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

Finalizer = Callable[[], object]
AsyncTeardown = Callable[[], Awaitable[None]]
_Entry = tuple[list[Finalizer], "tuple[BaseException, types.TracebackType | None] | None"]

TEST_OUTCOME = compat.test_outcome_types()


def teardown_timeout_error(seconds: float) -> BaseException:
    """The error a teardown step gets when the grace period ran out."""
    return pytest.fail.Exception(
        f"Timeout: teardown exceeded the {seconds:g}s grace period and was cancelled"
    )


class GroupSetupState:
    """Stands in for pytest's ``SetupState`` while one group runs.

    pytest's ``SetupState`` is a stack: one chain of nodes from the session
    down to one item. A group has many items set up at once, from several
    modules and classes, so this holds a tree. It takes over the session's
    stack when the group starts (those nodes are already set up) and gives
    back, when the group ends, the nodes that the next item needs.

    A collector is torn down as soon as the last group member under it has
    finished, unless the next item needs it too; its teardown errors then
    belong to that member's teardown, as in plain pytest.
    """

    def __init__(
        self,
        session: pytest.Session,
        members: list[pytest.Function],
        keep_for: pytest.Item | None,
        teardown_timeout: float,
    ) -> None:
        self._session = session
        self._outer = compat.setup_state(session)
        self.stack: dict[Any, _Entry] = dict(self._outer.stack)
        self._keep_chain = compat.node_chain(keep_for) if keep_for is not None else []
        self._keep = set(self._keep_chain)
        self._users: Counter[Any] = Counter()
        for member in members:
            self._users.update(compat.node_chain(member)[:-1])
        self._teardown_timeout = teardown_timeout
        #: Async teardowns scheduled by the finalizer that is running now.
        self.pending_async: list[AsyncTeardown] = []

    # -- the interface pytest's nodes and fixtures use ----------------------

    def is_node_active(self, node: Any) -> bool:
        return node in self.stack

    def addfinalizer(self, finalizer: Finalizer, node: Any) -> None:
        assert callable(finalizer)
        if node not in self.stack:
            raise RuntimeError(f"{node!r} is not set up in this trio_group run")
        self.stack[node][0].append(finalizer)

    def setup(self, item: pytest.Item) -> None:  # pragma: no cover - guard
        raise RuntimeError("trio_group members are set up by pytest-trio-groups")

    def teardown_exact(self, nextitem: pytest.Item | None) -> None:  # pragma: no cover - guard
        raise RuntimeError("trio_group members are torn down by pytest-trio-groups")

    # -- the group runner's interface ----------------------------------------

    def setup_chain(self, item: pytest.Function) -> None:
        """Set up the collectors above ``item`` that are not set up yet, and push ``item``.

        The item's own ``setup()`` (filling its fixtures) is left to the
        caller, which can await async fixtures. A collector whose setup
        failed fails every item under it with the same error, as in pytest.
        """
        for node in compat.node_chain(item):
            entry = self.stack.get(node)
            if entry is not None:
                if entry[1] is not None:
                    exc, tb = entry[1]
                    raise exc.with_traceback(tb)
                continue
            finalizers: list[Finalizer] = [node.teardown]
            self.stack[node] = (finalizers, None)
            if node is item:
                continue
            try:
                node.setup()
            except TEST_OUTCOME as exc:
                self.stack[node] = (finalizers, (exc, exc.__traceback__))
                raise

    async def teardown_item(self, item: pytest.Function) -> None:
        """Tear down ``item`` and each collector above it that no one needs any more."""
        errors: list[BaseException] = []
        if item in self.stack:
            await self._pop(item, errors)
        for node in reversed(compat.node_chain(item)[:-1]):
            self._users[node] -= 1
            if self._users[node] <= 0 and node not in self._keep and node in self.stack:
                await self._pop(node, errors)
        _raise(errors)

    def release(self, item: pytest.Function) -> None:
        """Forget ``item`` without running it (the group stopped before it started)."""
        for node in compat.node_chain(item)[:-1]:
            self._users[node] -= 1

    async def close(self) -> list[BaseException]:
        """Tear down what no member tore down and the next item does not need.

        Returns the errors raised; the caller decides where they are shown.
        """
        errors: list[BaseException] = []
        for node in reversed(list(self.stack)):
            if node not in self._keep:
                await self._pop(node, errors)
        return errors

    def restore(self) -> None:
        """Give the session back its own ``SetupState``, holding the next item's chain."""
        self._outer.stack.clear()
        for node in self._keep_chain:
            if node not in self.stack:
                break
            self._outer.stack[node] = self.stack[node]  # type: ignore[assignment]
        compat.set_setup_state(self._session, self._outer)

    async def _pop(self, node: Any, errors: list[BaseException]) -> None:
        finalizers, _ = self.stack.pop(node)
        node_errors: list[BaseException] = []
        while finalizers:
            finalizer = finalizers.pop()
            try:
                finalizer()
            except TEST_OUTCOME as exc:
                node_errors.append(exc)
            await self._run_pending_async(node_errors)
        if len(node_errors) == 1:
            errors.extend(node_errors)
        elif node_errors:
            message = f"errors while tearing down {node!r}"
            errors.append(BaseExceptionGroup(message, node_errors[::-1]))

    async def _run_pending_async(self, node_errors: list[BaseException]) -> None:
        while self.pending_async:
            teardown = self.pending_async.pop()
            try:
                await teardown()
            except trio.Cancelled:
                node_errors.append(teardown_timeout_error(self._teardown_timeout))
            except TEST_OUTCOME as exc:
                node_errors.append(exc)


def _raise(errors: list[BaseException]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise BaseExceptionGroup("errors during test teardown", errors[::-1])
