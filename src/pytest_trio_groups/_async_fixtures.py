"""Async fixtures, run inside the group's ``trio.run`` in the requesting test's task.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextvars
import inspect
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import outcome
import pytest
import trio

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

from . import _pytest_compat as compat
from ._context import CURRENT_MEMBER
from ._fixtures import (
    AwaitFixture,
    FixtureProtocolError,
    SharedClones,
    effective_function,
    is_per_test,
)
from ._interrupts import plugin_code
from ._pytest_compat import FixtureDef
from ._setupstate import AsyncTeardown, GroupSetupState
from ._tracebacks import located_at, user_frames
from ._trio_compat import awaiting_with_cancellation_seen

if TYPE_CHECKING:
    from ._runner import MemberRun as Member
    from ._session_run import SessionRun

#: Seconds a fixture task gets to finish after it was cancelled for
#: overrunning its teardown grace period.
_CANCEL_GRACE = 1.0


def _protocol_error(message: str, fixture_code: types.CodeType) -> FixtureProtocolError:
    """The error, shown at the fixture's definition: the fixture may have no frame left."""
    return located_at(FixtureProtocolError(message), fixture_code)


def _trio_deadline(seconds: float) -> trio.CancelScope:
    return trio.CancelScope(deadline=trio.current_time() + seconds)


def uses_async_generator_fixtures(item: pytest.Function, shared: SharedClones) -> bool:
    """Whether any function-scoped fixture ``item`` may use is an async generator.

    Only such a test needs a nursery of its own for its fixtures' tasks.
    """
    return any(
        is_per_test(fixturedef, item)
        and inspect.isasyncgenfunction(effective_function(fixturedef, shared.pytest_trio))
        for fixturedefs in compat.item_fixturedefs(item).values()
        for fixturedef in fixturedefs
    )


def teardown_timeout_error(argname: str, seconds: float) -> BaseException:
    return pytest.fail.Exception(
        f"Timeout: teardown of fixture {argname!r} exceeded the {seconds:g}s grace period"
        " and was cancelled"
    )


@dataclass(eq=False)
class _FixtureTask:
    """The handle of one async-generator fixture running in a task of its own."""

    argname: str
    member: Member | None
    teardown_requested: trio.Event = field(default_factory=trio.Event)
    done: trio.Event = field(default_factory=trio.Event)
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    #: Cancelled when the requesting test's setup is.
    setup_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    set_up: trio.Event = field(default_factory=trio.Event)
    setup_result: outcome.Outcome[Any] | None = None
    error: BaseException | None = None
    #: Where the fixture was when cancelled for overrunning its grace period.
    cancelled_tb: types.TracebackType | None = None
    #: The error was a crash while the test ran, already reported as its failure.
    reported: bool = False
    #: trio delivered ``Cancelled`` into the fixture's setup after it was cancelled.
    setup_saw_cancelled: bool = False
    #: The running tests that use the fixture: a crash of its tasks is their failure.
    users: Callable[[], list[Member]] = list

    def saw_cancelled(self) -> None:
        # Not one of the fixture's own scopes timing out before that.
        if self.setup_scope.cancel_called:
            self.setup_saw_cancelled = True


class AsyncFixtures:
    """Sets up and tears down the async fixtures of one group run.

    A coroutine fixture is awaited in the requesting test's task. An
    async-generator fixture runs in a task of its own -- so that a nursery
    or cancel scope it opens around its ``yield`` nests properly -- that
    shares the test's contextvars context, lives in the test's fixture
    nursery (function scope) or the group's (wider scopes), and is resumed
    for teardown when the test's (or the scope's) finalizers get to it.
    """

    def __init__(
        self,
        group_nursery: trio.Nursery,
        state: GroupSetupState,
        teardown_timeout: float,
        session_run: SessionRun | None,
        deadline_scope: Callable[[float], trio.CancelScope],
    ) -> None:
        self._group_nursery = group_nursery
        self._state = state
        self._teardown_timeout = teardown_timeout
        #: A scope cancelled after some real seconds (the group's clock may be virtual).
        self._deadline_scope = deadline_scope
        #: Where wider-scoped fixtures live when the group runs in the
        #: session's trio run: they outlive the group, until pytest ends
        #: their scope.
        self._session_run = session_run
        self._wider: list[tuple[FixtureDef[Any], Any]] = []
        self._tasks: list[_FixtureTask] = []

    @plugin_code
    def setup(self, fixturedef: FixtureDef[Any], request: Any, member: Member) -> NoReturn:
        """Called from ``pytest_fixture_setup``: leave pytest's code to await the fixture."""
        argname = fixturedef.argname
        if member.phase != "setup":
            raise _protocol_error(
                f"async fixture {argname!r} can only be requested as an argument, "
                "a usefixtures mark or autouse, not with request.getfixturevalue() "
                "once the test is running",
                fixturedef.func.__code__,
            )
        func = compat.resolve_fixture_function(fixturedef, request)
        kwargs = {name: request.getfixturevalue(name) for name in fixturedef.argnames}
        cache_key = fixturedef.cache_key(request)
        finished = trio.Event()
        # While the setup runs, pytest's cache holds "wait, then look again":
        # another member requesting this (wider-scoped) fixture meanwhile
        # waits for this setup instead of starting a second one.
        fixturedef.cached_result = (None, cache_key, (AwaitFixture(finished.wait), None))

        @plugin_code
        async def run() -> None:
            try:
                value, cancelled = await self._start(fixturedef, request, member, func, kwargs)
            except BaseException as exc:
                if is_cancellation(exc):
                    # Not cached: another member may set it up afresh.
                    compat.finish_done(fixturedef)
                else:
                    fixturedef.cached_result = (None, cache_key, (exc, exc.__traceback__))
                raise
            else:
                fixturedef.cached_result = (value, cache_key, None)
            finally:
                finished.set()
            if cancelled is not None:
                # The test was cancelled while the fixture was set up.
                raise cancelled

        raise AwaitFixture(run)

    @plugin_code
    async def _start(
        self,
        fixturedef: FixtureDef[Any],
        request: Any,
        member: Member,
        func: Callable[..., Any],
        kwargs: dict[str, Any],
    ) -> tuple[Any, trio.Cancelled | None]:
        """Set the fixture up; its value, and the test's cancellation if one came meanwhile."""
        __tracebackhide__ = True
        wider = not is_per_test(fixturedef, member.item)
        session_run = self._session_run if wider else None
        if wider and session_run is None:
            # Whatever it holds belongs to this trio run: forget it when the run ends.
            self._wider.append((fixturedef, request))
        if not inspect.isasyncgenfunction(func):
            return await func(**kwargs), None
        handle = _FixtureTask(fixturedef.argname, None if wider else member)
        if wider:
            # Whichever group runs when its task crashes: one that lives in
            # the session's run outlives the group that set it up.
            handle.users = lambda: (
                session_run.group if session_run is not None and session_run.group else member.run_
            ).members_using(fixturedef)
            # Set up in (a copy of) the requesting test's context, so that its
            # setup output is that test's; afterwards it belongs to no test.
            nursery, context, later = self._group_nursery, member.context.copy(), _no_member()
            if session_run is not None:
                nursery = session_run.nursery
                session_run.cancel_at_close(handle.scope)
        else:
            handle.users = lambda: [member]
            if member.fixture_nursery is None:
                raise _protocol_error(
                    f"async fixture {fixturedef.argname!r} was requested with "
                    "request.getfixturevalue(); request it as an argument, a usefixtures "
                    "mark or autouse",
                    fixturedef.func.__code__,
                )
            nursery, context, later = member.fixture_nursery, member.context, None
        generator = func(**kwargs)
        if session_run is None:
            self._tasks.append(handle)
        nursery.start_soon(self._run_generator, handle, generator, context, later)
        cancelled: trio.Cancelled | None = None
        try:
            await handle.set_up.wait()
        except trio.Cancelled as exc:
            # The test's deadline or a stop: cancel the fixture's setup and
            # wait (boundedly) for it to give up before passing the
            # cancellation on.
            cancelled = exc
            handle.setup_scope.cancel()
            with trio.CancelScope(shield=True) as grace:
                grace.deadline = trio.current_time() + self._teardown_timeout
                await handle.set_up.wait()
            if handle.setup_result is None:
                raise
            if isinstance(handle.setup_result, outcome.Error):
                # Its own Cancelled carries the frames where the fixture was.
                raise handle.setup_result.error from None
        assert handle.setup_result is not None
        if isinstance(handle.setup_result, outcome.Value):
            fixturedef.addfinalizer(
                AsyncTeardown(
                    self._state,
                    lambda: self._teardown(handle, session_run is not None),
                    session_run,
                    self._teardown_timeout,
                )
            )
        if handle.setup_saw_cancelled and isinstance(handle.setup_result, outcome.Value):
            # It is torn down with the test (the finalizer is in place). One
            # that reached no checkpoint once cancelled never saw the
            # cancellation: it is set up, and the test's cancellation is
            # raised once it is cached.
            raise _protocol_error(
                f"async fixture {fixturedef.argname!r} swallowed trio.Cancelled during setup"
                " and yielded a value anyway; let trio.Cancelled propagate",
                generator.ag_code,
            )
        return handle.setup_result.unwrap(), cancelled

    @plugin_code
    async def _run_generator(
        self,
        handle: _FixtureTask,
        generator: types.AsyncGeneratorType[Any, None],
        context: contextvars.Context,
        context_after_setup: contextvars.Context | None,
    ) -> None:
        __tracebackhide__ = True
        await _switch_context(context)
        # Scopes the fixture opens around its yield nest inside these two,
        # so both stay open as long as the fixture lives: the outer one
        # cancels the setup; the inner one, shielded once set up, keeps that
        # from reaching the held fixture and is cancelled if its teardown
        # overruns the grace period.
        with handle.setup_scope, handle.scope:
            await self._set_up(handle, generator)
            if not isinstance(handle.setup_result, outcome.Value):
                handle.done.set()
                return
            handle.scope.shield = True
            if context_after_setup is not None:
                await _switch_context(context_after_setup)
            try:
                await self._hold(handle, generator)
            except BaseException as exc:
                if handle.scope.cancel_called and is_cancellation(exc):
                    handle.cancelled_tb = exc.__traceback__
                    raise  # cancelled for overrunning its teardown: the scope absorbs it
                handle.error = exc
                if not handle.teardown_requested.is_set():
                    for user in handle.users():
                        user.crash(exc)
                        handle.reported = True
        if handle.scope.cancelled_caught and handle.error is None:
            handle.error = teardown_timeout_error(
                handle.argname, self._teardown_timeout
            ).with_traceback(user_frames(handle.cancelled_tb))
        handle.done.set()

    async def _set_up(
        self,
        handle: _FixtureTask,
        generator: types.AsyncGeneratorType[Any, None],
    ) -> None:
        """Run the fixture up to its ``yield``; its outcome goes to the waiting test."""
        try:
            handle.setup_result = outcome.Value(
                await awaiting_with_cancellation_seen(generator.asend(None), handle.saw_cancelled)
            )
        except StopAsyncIteration:
            pass
        except BaseException as exc:
            handle.setup_result = outcome.Error(exc)
        if handle.setup_result is None:
            handle.setup_result = outcome.Error(
                _protocol_error(
                    f"async fixture {handle.argname!r} did not yield a value", generator.ag_code
                )
            )
        handle.set_up.set()

    async def _hold(
        self, handle: _FixtureTask, generator: types.AsyncGeneratorType[Any, None]
    ) -> None:
        """Keep the fixture suspended at its ``yield`` until teardown, then finish it."""
        __tracebackhide__ = True
        try:
            await handle.teardown_requested.wait()
        except BaseException as exc:
            # Cancelled by a nursery the fixture opened around its yield (one
            # of its tasks crashed): deliver it there, as `async with` would.
            try:
                await generator.athrow(exc)
            except StopAsyncIteration:
                raise _protocol_error(
                    f"async fixture {handle.argname!r} swallowed {type(exc).__name__}"
                    " at its yield; let trio.Cancelled propagate",
                    generator.ag_code,
                ) from exc
            raise _protocol_error(
                f"async fixture {handle.argname!r} yielded more than once", generator.ag_code
            ) from exc
        try:
            await generator.asend(None)
        except StopAsyncIteration:
            if handle.scope.cancel_called:
                raise _protocol_error(
                    f"async fixture {handle.argname!r} swallowed trio.Cancelled during teardown"
                    f" (it overran the {self._teardown_timeout:g}s grace period)",
                    generator.ag_code,
                ) from None
            return
        await generator.aclose()
        raise _protocol_error(
            f"async fixture {handle.argname!r} yielded more than once", generator.ag_code
        )

    async def _teardown(self, handle: _FixtureTask, in_session_run: bool) -> None:
        """Resume the fixture past its ``yield`` and wait, for its grace period, until it ends.

        Each fixture's teardown gets a grace period of its own, so one that
        is stuck takes nothing from those torn down after it.
        """
        __tracebackhide__ = True
        handle.teardown_requested.set()
        seconds = self._teardown_timeout
        # The session's run has a real clock; a group's may be virtual.
        deadline = _trio_deadline if in_session_run else self._deadline_scope
        cut_short = False
        try:
            with deadline(seconds) as grace:
                await handle.done.wait()
        except trio.Cancelled:
            cut_short = True  # a second Ctrl-C
        except BaseException:
            # A Ctrl-C while the group's main task waited for it: cut short.
            handle.scope.cancel()
            raise
        if cut_short or grace.cancelled_caught:
            # Its grace period ran out, or the teardown was cut short: cancel
            # the fixture, and give it a moment to finish.
            handle.scope.cancel()
            with trio.CancelScope(shield=True) as cancelled:
                cancelled.deadline = trio.current_time() + _CANCEL_GRACE
                await handle.done.wait()
            raise handle.error or teardown_timeout_error(handle.argname, seconds) from None
        if handle.error is not None and not handle.reported:
            raise handle.error

    async def close(self, *, cut_short: bool = False) -> list[BaseException]:
        """Tear down the wider-scoped async fixtures still alive: their trio run ends.

        ``cut_short`` (after a second Ctrl-C): their teardowns are cancelled
        at once, each still given a moment to finish.
        """
        errors: list[BaseException] = []
        with trio.CancelScope() as scope:
            if cut_short:
                scope.cancel()
            for fixturedef, request in reversed(self._wider):
                try:
                    await self._state.finish_fixture(fixturedef, request)
                except BaseException as exc:
                    errors.append(exc)
        self._wider.clear()
        return errors

    def cancel_remaining(self, member: Member | None = None) -> None:
        """Cancel the fixture tasks (of ``member``, or all) that are still alive.

        They wait for a teardown that will not come: the member's run ended
        early, or a Ctrl-C cut the teardown short.
        """
        for handle in self._tasks:
            if not handle.done.is_set() and (member is None or handle.member is member):
                handle.scope.cancel()
        self._tasks = [handle for handle in self._tasks if not handle.done.is_set()]


async def _switch_context(context: contextvars.Context) -> None:
    """Make the running task run in ``context`` from its next step on.

    trio gives no way to spawn a task into a given context; swap it in and
    reach a checkpoint so the next step runs in it.
    """
    trio.lowlevel.current_task().context = context
    await trio.lowlevel.checkpoint()


def _no_member() -> contextvars.Context:
    """A context in which no group member is current."""
    context = contextvars.copy_context()
    context.run(CURRENT_MEMBER.set, None)  # type: ignore[arg-type]
    return context


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``trio.Cancelled``, or a group holding only those."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(is_cancellation(inner) for inner in exc.exceptions)
    return False
