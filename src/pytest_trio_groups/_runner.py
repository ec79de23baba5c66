"""Run one group: one ``trio.run``, one nursery, one task per test."""

from __future__ import annotations

import itertools
import math
import os
import sys
import types
import warnings
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

import outcome
import pytest
import trio

from . import _pytest_compat as compat
from ._fixtures import SharedClones, fill_fixtures, isolate
from ._grouping import SPEC_KEY, Group
from ._options import Settings
from ._reporting import PhaseClock, TestOutcome
from ._setupstate import TEST_OUTCOME, GroupSetupState

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

_HIDDEN_DIRS = tuple(
    os.path.dirname(module.__file__) + os.sep
    for module in (trio, outcome, sys.modules[__name__.rpartition(".")[0]])
    if module.__file__ is not None
)


class PhaseHooks:
    """pytest's ``pytest_runtest_setup/call/teardown`` without the parts done here.

    pytest's runner sets up one item's fixtures synchronously, and the
    capture and logging plugins wrap each phase assuming one test at a time;
    group members get their fixtures, output and logs handled by this plugin
    instead. Every other implementation -- skip and xfail marks, conftest
    hooks, third-party plugins -- is called as usual.
    """

    _OWN = ("runner", "capturemanager", "logging-plugin")

    def __init__(self, config: pytest.Config) -> None:
        self._pm = config.pluginmanager
        self._own = {plugin for name in self._OWN if (plugin := self._pm.get_plugin(name))}
        self._by_conftests: dict[frozenset[object], tuple[Any, Any, Any]] = {}

    def for_item(self, item: pytest.Item) -> tuple[Any, Any, Any]:
        """The (setup, call, teardown) hook callers that apply to ``item``."""
        removed = frozenset(self._own | compat.conftests_not_for(item))
        callers = self._by_conftests.get(removed)
        if callers is None:
            callers = self._by_conftests[removed] = tuple(  # type: ignore[assignment]
                self._pm.subset_hook_caller(name, remove_plugins=removed)
                for name in (
                    "pytest_runtest_setup",
                    "pytest_runtest_call",
                    "pytest_runtest_teardown",
                )
            )
        assert callers is not None
        return callers


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``trio.Cancelled``, or a group holding only those."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(is_cancellation(inner) for inner in exc.exceptions)
    return False


def _walk(exc: BaseException) -> Iterator[BaseException]:
    yield exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _walk(inner)


def _user_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """``tb`` relinked without trio's, outcome's and this plugin's frames.

    A timeout's traceback then ends at the ``await`` where the test was
    stuck, not in the scheduler that cancelled it.
    """
    kept: list[types.TracebackType] = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(_HIDDEN_DIRS):
            kept.append(tb)
        tb = tb.tb_next
    for earlier, later in itertools.pairwise(kept):
        earlier.tb_next = later
    if kept:
        kept[-1].tb_next = None
        return kept[0]
    return None


class GroupRun:
    """The state of one group's ``trio.run``."""

    def __init__(
        self,
        session: pytest.Session,
        group: Group,
        nextitem: pytest.Item | None,
        settings: Settings,
        hooks: PhaseHooks,
    ) -> None:
        self.session = session
        self.group = group
        self.nextitem = nextitem
        self.settings = settings
        self.hooks = hooks
        self.state = GroupSetupState(session, group.members, nextitem, settings.teardown_timeout)
        self.shared = SharedClones()
        self.stop_reason: str | None = None
        self.interrupt: BaseException | None = None
        self._limiter: trio.CapacityLimiter | None = None
        self._nursery: trio.Nursery | None = None
        usepdb = session.config.getoption("usepdb", False)
        self.reraise: tuple[type[BaseException], ...] = (
            (pytest.exit.Exception,) if usepdb else (pytest.exit.Exception, KeyboardInterrupt)
        )

    def execute(self) -> None:
        """Run the group to completion; re-raise an interrupt once all is torn down."""
        trio.run(self._main, restrict_keyboard_interrupt_to_checkpoints=True)
        if self.interrupt is not None:
            raise self.interrupt

    async def _main(self) -> None:
        if self.settings.limit is not None:
            self._limiter = trio.CapacityLimiter(self.settings.limit)
        compat.set_setup_state(self.session, self.state)
        started: set[pytest.Function] = set()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                # One at a time, so members start in pytest's order and a
                # limited group does not hold a waiting task per member.
                for item in self.group.members:
                    if self.stop_reason is not None:
                        break
                    await nursery.start(self._run_member, item, name=item.nodeid)
                    started.add(item)
        except BaseException as exc:
            interrupt = next((e for e in _walk(exc) if isinstance(e, KeyboardInterrupt)), None)
            if interrupt is None:
                raise
            self.interrupt = self.interrupt or interrupt
        finally:
            for item in self.group.members:
                if item not in started:
                    self.state.release(item)
            with trio.CancelScope(shield=True):
                errors = await self.state.close()
            self.state.restore()
            for error in errors:
                warnings.warn(
                    pytest.PytestWarning(
                        f"error while tearing down after {self.group.label}: {error!r}"
                    ),
                    stacklevel=1,
                )

    def stop(self, reason: str) -> None:
        """Cancel every running member (their teardowns still run) and start no more."""
        if self.stop_reason is None:
            self.stop_reason = reason
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()

    def cancel_reason(self) -> str:
        reason = self.stop_reason or "the run was interrupted (KeyboardInterrupt)"
        return f"cancelled: {reason}"

    async def _run_member(
        self,
        item: pytest.Function,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        limiter: AbstractAsyncContextManager[object] = (
            self._limiter if self._limiter is not None else nullcontext()
        )
        async with limiter:
            task_status.started()
            member = MemberRun(self, item)
            await member.run()
        if member.dropped:
            return
        member.result.publish()
        session = self.session
        if session.shouldfail or session.shouldstop:
            self.stop(f"the run is stopping ({session.shouldfail or session.shouldstop})")


class MemberRun:
    """One test's task: setup, call and teardown, each captured as an ``Outcome``."""

    def __init__(self, run: GroupRun, item: pytest.Function) -> None:
        self.run_ = run
        self.item = item
        self.timeout = item.stash[SPEC_KEY].timeout
        self.result = TestOutcome(item)
        #: Set when the test raised ``pytest.exit`` or ``KeyboardInterrupt``:
        #: like pytest, the session stops and the test is not reported.
        self.dropped = False
        self._setup_hook, self._call_hook, self._teardown_hook = run.hooks.for_item(item)
        self._cancelled_tb: types.TracebackType | None = None

    async def run(self) -> None:
        clock = PhaseClock("setup")
        try:
            with trio.move_on_after(math.inf if self.timeout is None else self.timeout) as deadline:
                if await self._phase(clock, self._setup):
                    clock = PhaseClock("call")
                    await self._phase(clock, self._call)
        except BaseException as exc:
            if not is_cancellation(exc):
                raise
            self._record(clock, outcome.Error(compat.make_skip(self.run_.cancel_reason())))
        else:
            if deadline.cancelled_caught:
                self._record(clock, outcome.Error(self._timeout_error()))
        await self._teardown()

    async def _phase(self, clock: PhaseClock, step: Any) -> bool:
        """Run one phase; record its outcome unless it was cancelled (which propagates)."""
        try:
            await step()
        except BaseException as exc:
            if is_cancellation(exc):
                self._cancelled_tb = exc.__traceback__
                raise
            self._record(clock, outcome.Error(exc))
            return False
        self._record(clock, outcome.Value(None))
        return True

    def _record(self, clock: PhaseClock, result: outcome.Outcome[object]) -> None:
        if isinstance(result, outcome.Error) and isinstance(result.error, self.run_.reraise):
            self.dropped = True
            self.run_.interrupt = self.run_.interrupt or result.error
            self.run_.stop(f"{type(result.error).__name__} in {self.item.nodeid}")
            return
        if not self.dropped:
            self.result.record(clock, result)

    def _timeout_error(self) -> BaseException:
        assert self.timeout is not None
        error = pytest.fail.Exception(
            f"Timeout: test exceeded {self.timeout:g}s ({self.run_.group.label})"
        )
        return error.with_traceback(_user_frames(self._cancelled_tb))

    async def _setup(self) -> None:
        __tracebackhide__ = True
        item = self.item
        self._setup_hook(item=item)
        isolate(item, self.run_.shared)
        self.run_.state.setup_chain(item)
        await fill_fixtures(item)

    async def _call(self) -> None:
        __tracebackhide__ = True
        item = self.item
        self._call_hook(item=item)
        funcargs = item.funcargs
        await item.obj(**{name: funcargs[name] for name in compat.test_argnames(item)})

    async def _teardown(self) -> None:
        clock = PhaseClock("teardown")
        errors: list[BaseException] = []
        with trio.CancelScope(shield=True) as grace:
            grace.deadline = trio.current_time() + self.run_.settings.teardown_timeout
            try:
                self._teardown_hook(item=self.item, nextitem=self.run_.nextitem)
            except TEST_OUTCOME as exc:
                errors.append(exc)
            try:
                await self.run_.state.teardown_item(self.item)
            except BaseException as exc:  # one error or a group of them, never Cancelled
                errors.append(exc)
        if len(errors) > 1:
            errors = [BaseExceptionGroup("errors during test teardown", errors)]
        self._record(clock, outcome.Error(errors[0]) if errors else outcome.Value(None))
