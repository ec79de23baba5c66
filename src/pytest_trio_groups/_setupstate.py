"""A ``SetupState`` that holds the whole group: many items set up at once.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import sys
import types
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

from . import _pytest_compat as compat
from . import _trio_compat
from ._fixtures import sees_no_run

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from ._session_run import SessionRun

Finalizer = Callable[[], object]
_Entry = tuple[list[Finalizer], "tuple[BaseException, types.TracebackType | None] | None"]

TEST_OUTCOME = compat.test_outcome_types()


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
    ) -> None:
        self._session = session
        self._outer = compat.setup_state(session)
        self.stack: dict[Any, _Entry] = dict(self._outer.stack)
        self._keep_chain = compat.node_chain(keep_for) if keep_for is not None else []
        self._keep = set(self._keep_chain)
        #: The collectors above each parent node, session first: members
        #: share a few parents, so each chain is built once.
        self._collectors: dict[Any, tuple[Any, ...]] = {}
        self._users: Counter[Any] = Counter()
        for member in members:
            self._users.update(self.collectors_above(member))
        #: Async teardowns queued by pytest's own synchronous finalizer calls.
        self.pending_async: list[AsyncTeardown] = []
        #: Whether a teardown may have to await: only once an async fixture
        #: has a teardown here (the stack taken over may hold some already).
        self.teardowns_can_await = any(
            isinstance(finalizer, AsyncTeardown)
            for finalizers, _ in self.stack.values()
            for finalizer in finalizers
        )

    def collectors_above(self, item: pytest.Item) -> tuple[Any, ...]:
        """``item``'s chain from the session down, without ``item`` itself."""
        chain = self._collectors.get(item.parent)
        if chain is None:
            chain = self._collectors[item.parent] = tuple(compat.node_chain(item)[:-1])
        return chain

    @property
    def session(self) -> pytest.Session:
        return self._session

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
        for node in (*self.collectors_above(item), item):
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

    def pop_unstarted(self, item: pytest.Function) -> None:
        """Take ``item`` off the stack again before it ran: nothing of its own was set up."""
        finalizers, _ = self.stack.pop(item)
        assert finalizers == [item.teardown], finalizers

    async def teardown_item(self, item: pytest.Function) -> None:
        """Tear down ``item`` and each collector above it that no one needs any more."""
        errors: list[BaseException] = []
        if item in self.stack:
            await self._pop(item, errors)
        for node in reversed(self.collectors_above(item)):
            self._users[node] -= 1
            if self._users[node] <= 0 and node not in self._keep and node in self.stack:
                await self._pop(node, errors)
        _raise(errors)

    def hold(self, item: pytest.Function) -> None:
        """Keep the collectors above ``item`` set up for one more run of it."""
        self._users.update(self.collectors_above(item))

    def release(self, item: pytest.Function) -> None:
        """Forget ``item`` without running it (the group stopped before it started),
        or a ``hold`` on it that no run of it used."""
        for node in self.collectors_above(item):
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

    def restore(self, *, everything: bool = False) -> None:
        """Give the session back its own ``SetupState``, holding the next item's chain.

        ``everything``: the group did not close (a Ctrl-C before its run
        started): all it holds goes back, for pytest to tear down as the
        session ends.
        """
        self._outer.stack.clear()
        nodes = list(self.stack) if everything else self._keep_chain
        for node in nodes:
            if node not in self.stack:
                break
            self._outer.stack[node] = self.stack[node]  # type: ignore[assignment]
        compat.set_setup_state(self._session, self._outer)

    async def _pop(self, node: Any, errors: list[BaseException]) -> None:
        finalizers, _ = self.stack.pop(node)
        raised = await self._run_finalizers(finalizers)
        # (The message names the node only when needed: a repr per member adds up.)
        error = combine_errors(raised, f"while tearing down {node!r}") if raised else None
        if error is not None:
            errors.append(error)

    async def _run_finalizers(
        self, finalizers: list[Finalizer], *, outside_the_run: bool = False
    ) -> list[BaseException]:
        """Run ``finalizers`` last in, first out; return what they raised, in that order.

        ``outside_the_run``: they are a sync fixture's, run with no trio run
        visible (as its setup was).
        """
        errors: list[BaseException] = []
        while finalizers:
            try:
                await self.run_finalizer(finalizers.pop(), outside_the_run=outside_the_run)
            except BaseException as exc:
                # Even an interrupt: the finalizers left may hold fixture
                # tasks that wait for their teardown, and the run cannot end
                # before they do. The runner sees the interrupt in the errors.
                errors.append(exc)
        return errors

    async def run_finalizer(self, finalizer: Finalizer, *, outside_the_run: bool = False) -> None:
        """Run one finalizer, awaiting the async teardowns it stands for.

        A fixture's ``finish`` is run here rather than by pytest, so that a
        sync fixture that an async fixture depends on is torn down only
        after that async fixture's teardown has finished (LIFO across both).
        """
        target = compat.finish_target(finalizer)
        if target is not None:
            await self.finish_fixture(*target)
        elif isinstance(finalizer, AsyncTeardown):
            await finalizer.run()
        elif outside_the_run:
            with _trio_compat.outside_the_run():
                finalizer()
        else:
            finalizer()
            # pytest's own (sync) FixtureDef.finish may have queued some.
            while self.pending_async:
                await self.pending_async.pop(0).run()

    async def finish_now(self, fixturedefs: list[Any]) -> list[BaseException]:
        """Tear ``fixturedefs`` down before their scope ends; return the errors raised.

        Each through the finalizer pytest registered for it on its scope's
        node, taken off that node.
        """
        errors: list[BaseException] = []
        for fixturedef in fixturedefs:
            for finalizers, _ in self.stack.values():
                for finalizer in list(finalizers):
                    target = compat.finish_target(finalizer)
                    if target is None or target[0] is not fixturedef:
                        continue
                    finalizers.remove(finalizer)
                    try:
                        await self.run_finalizer(finalizer)
                    except BaseException as exc:
                        errors.append(exc)
        return errors

    async def finish_fixture(self, fixturedef: Any, request: Any) -> None:
        """``FixtureDef.finish``, with each finalizer run by ``run_finalizer``."""
        if compat.finish_is_noop(fixturedef):
            return
        errors = await self._run_finalizers(
            compat.fixture_finalizers(fixturedef),
            outside_the_run=sees_no_run(fixturedef, compat.pyfuncitem(request)),
        )
        if compat.finish_calls_post_finalizer():
            request.node.ihook.pytest_fixture_post_finalizer(fixturedef=fixturedef, request=request)
        compat.finish_done(fixturedef)
        error = combine_errors(
            errors, f'while tearing down fixture "{fixturedef.argname}" of {request.node}'
        )
        if error is not None:
            raise error


class AsyncTeardown:
    """A fixture finalizer that has to be awaited: the part of an async fixture after ``yield``.

    ``GroupSetupState.run_finalizer`` awaits it in order. Should pytest's own
    synchronous code call it while a group runs, it is queued and awaited
    right after. A fixture that lives in the session's trio run is torn down
    there, driven from where its teardown is asked for: pytest's own
    teardown of its scope, or another trio run.
    """

    def __init__(
        self,
        state: GroupSetupState,
        run: Callable[[], Awaitable[None]],
        session_run: SessionRun | None = None,
        grace: float = 0.0,
    ) -> None:
        self._state = state
        state.teardowns_can_await = True
        self._run = run
        self._session_run = session_run
        #: Seconds its teardown gets when the session's run is driven for it.
        self._grace = grace

    async def run(self) -> None:
        host = self._session_run
        if host is not None and not host.is_current():
            host.run_bounded(self._run, self._grace)
            return
        await self._run()

    def __call__(self) -> None:
        current = compat.setup_state(self._state.session)
        if isinstance(current, GroupSetupState):
            current.pending_async.append(self)
        elif self._session_run is not None:
            self._session_run.run_bounded(self._run, self._grace)
        else:
            self._state.pending_async.append(self)


def combine_errors(errors: list[BaseException], where: str) -> BaseException | None:
    """One error as itself; several (given in the order raised) as a group, newest first.

    The same shape as pytest's own ``SetupState`` and ``FixtureDef.finish``.
    The group's message also names its first error, which the short
    summary shows, and the group carries that error's traceback: made
    here, it has no frame of its own but the plugin's.
    """
    if len(errors) == 1:
        return errors[0]
    if not errors:
        return None
    newest_first = errors[::-1]
    first = newest_first[0]
    lines = str(first).strip().splitlines()
    what = f"{type(first).__name__}: {lines[0]}" if lines else type(first).__name__
    more = len(errors) - 1
    group = BaseExceptionGroup(
        f"{what} (and {more} more error{'s' if more > 1 else ''} {where})", newest_first
    )
    return group.with_traceback(first.__traceback__)


def _raise(errors: list[BaseException]) -> None:
    error = combine_errors(errors, "during test teardown")
    if error is not None:
        raise error
