"""Run one group: one ``trio.run``, one nursery, one task per test.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import time
import types
import warnings
from collections.abc import Callable
from typing import Any

import outcome
import pytest
import trio

from . import _pytest_compat as compat
from ._async_fixtures import AsyncFixtures, is_cancellation, uses_async_generator_fixtures
from ._capture import GroupCapture, MemberOutput
from ._clocks import cancel_in_real_time, make_clock
from ._context import CURRENT_MEMBER, SESSION_RUN_KEY
from ._fixtures import SharedClones, fill_fixtures, isolate, set_up_before_the_run
from ._grouping import SPEC_KEY, Group
from ._interrupts import (
    cut_short_message,
    keyboard_interrupt_in,
    leaves,
    plugin_code,
    user_code,
    walk,
)
from ._logs import GroupLogs, MemberLogs
from ._notices import note
from ._observers import OBSERVERS_KEY, RunObserver
from ._options import Settings
from ._patches import PatchGuard
from ._pytest_compat import Phase
from ._reporting import PhaseClock, TestOutcome
from ._session_run import clock_conflict
from ._session_run import for_group as session_run_for
from ._setupstate import TEST_OUTCOME, GroupSetupState, combine_errors
from ._summary import GroupSummary
from ._task_state import CurrentTestVar, TaskStateSwitcher, current_test_prefix, plugin_states
from ._tracebacks import hide_plugin_frames, user_frames
from ._trio_mode import POLICY_KEY, check_run_arguments
from ._warnings import WarningsState
from ._watchdog import Watchdog


class PhaseHooks:
    """pytest's ``pytest_runtest_setup/call/teardown`` without the parts done here.

    pytest's runner sets up one item's fixtures synchronously, and the
    capture and logging plugins wrap each phase assuming one test at a time;
    group members get their fixtures, output and logs handled by this plugin
    instead. Every other implementation -- skip and xfail marks, conftest
    hooks, third-party plugins -- is called as usual.
    """

    #: pytest-rerunfailures' teardown hook takes the collectors off pytest's
    #: stack for its own rerun loop; group members are rerun by this plugin.
    #: The unraisable- and thread-exception checks are run by ``check_exceptions``.
    _OWN = (
        "runner",
        "capturemanager",
        "logging-plugin",
        "rerunfailures",
        *compat.EXCEPTION_CHECK_PLUGINS,
    )

    def __init__(self, config: pytest.Config) -> None:
        self._pm = config.pluginmanager
        self._own = {plugin for name in self._OWN if (plugin := self._pm.get_plugin(name))}
        pytest_trio = config.stash[POLICY_KEY].pytest_trio
        if pytest_trio is not None:
            # Its call hook would wrap the test in a trio.run of its own.
            self._own.add(pytest_trio.plugin)
        self._exception_checks = compat.pending_exception_checks(config)
        self._by_conftests: dict[frozenset[object], tuple[Any, Any, Any]] = {}
        self._by_path: dict[object, tuple[Any, Any, Any, Any]] = {}

    def check_exceptions(self, config: pytest.Config) -> None:
        """pytest's check for unraisable and thread exceptions at the end of a phase.

        What the plugins' (trylast) phase hooks do, without draining their
        empty queues three times per member: it warns (or raises, under
        ``-W error``) for what was queued meanwhile, in the member's task.
        """
        for queue, collect in self._exception_checks:
            if queue:
                collect(config)

    def new_group(self) -> None:
        """Look the conftest plugins up anew, once per path, for the next group."""
        self._by_path.clear()

    def for_item(self, item: pytest.Item) -> tuple[Any, Any, Any, Any]:
        """The (setup, call, teardown) hook callers that apply to ``item``, and its ``ihook``.

        All depend only on the item's path: they are looked up once per path
        and group (``item.ihook`` looks the conftests up anew on each access).
        """
        hooks = self._by_path.get(item.path)
        if hooks is None:
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
            hooks = self._by_path[item.path] = (*callers, item.ihook)
        return hooks


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
        hooks.new_group()
        self.state = GroupSetupState(session, group.members, nextitem)
        #: The session's trio run, when the group runs inside it.
        self.session_run = session_run_for(session, group)
        if SESSION_RUN_KEY in session.stash:
            # Its fixtures' teardowns are driven from wherever their scope ends.
            self.state.teardowns_can_await = True
        self.shared = (
            SharedClones(session.config.stash[POLICY_KEY].pytest_trio)
            if self.session_run is None
            else self.session_run.shared
        )
        self.shared.begin_group(self.state.stack)
        #: Members that need both the group's virtual clock and the session's run.
        self.clock_conflicts = {
            item: message
            for item in group.members
            if group.clock and (message := clock_conflict(item, group.clock)) is not None
        }
        #: The virtual clock the members asked for, or ``None`` for trio's own.
        self.clock = make_clock(group.clock)
        #: Keeps real-time deadlines when the run's clock is virtual.
        self._timer: Watchdog | None = None
        self.stop_reason: str | None = None
        self.interrupt: BaseException | None = None
        self.async_fixtures: AsyncFixtures | None = None
        self.summary = GroupSummary(group.label)
        self.capture = GroupCapture(session.config)
        self.logs = GroupLogs(session.config)
        self.patches = PatchGuard(group.label)
        self.warnings = WarningsState(group.members[0])
        self.task_state = TaskStateSwitcher(
            [
                self.warnings,
                CurrentTestVar(),
                *plugin_states(session.config, group.members[0]),
            ]
        )
        self._limiter = trio.CapacityLimiter(settings.limit) if settings.limit else None
        self.observers = [make(self) for make in session.config.stash.get(OBSERVERS_KEY, [])]
        #: Final attempts whose reports an observer asked to publish after the group.
        self._held: list[MemberRun] = []
        self._running: set[MemberRun] = set()
        self._started: set[pytest.Function] = set()
        self._published: set[pytest.Function] = set()
        #: The member that left a nursery open in its task, which ends trio's run.
        self.corrupted_by: pytest.Function | None = None
        #: Members spawned and not finished; the main task waits for them in
        #: its own body, where Ctrl-C can reach it.
        self._unfinished = 0
        self._spawning = True
        self._all_finished = trio.Event()
        #: Members whose teardown a second Ctrl-C cut short, and whether
        #: the wider-scoped fixtures' teardown was cut too.
        self.cut_short: list[str] = []
        self._cutting = False
        usepdb = session.config.getoption("usepdb", False)
        #: Whether the group's trio run began to run it (a Ctrl-C may come first).
        self._main_started = False
        self.reraise: tuple[type[BaseException], ...] = (
            (pytest.exit.Exception,) if usepdb else (pytest.exit.Exception, KeyboardInterrupt)
        )

    def execute(self) -> None:
        """Run the group to completion; re-raise an interrupt once all is torn down."""
        self.capture.install()
        self.logs.install()
        self.task_state.install()
        self.patches.install()
        start: tuple[float, float] | None = None
        try:
            self._set_up_before_the_run()
            start = time.perf_counter(), time.process_time()
            instruments = [
                self.task_state,
                *(i for observer in self.observers for i in observer.instruments),
            ]
            if self.session_run is not None:
                self.session_run.group = self
                try:
                    self.session_run.run(
                        self._main, instruments=instruments, on_interrupt=self._interrupted
                    )
                finally:
                    self.session_run.group = None
            else:
                trio.run(
                    self._main,
                    clock=self.clock,
                    # See _interrupts: raised in the test's own code, else held off.
                    restrict_keyboard_interrupt_to_checkpoints=False,
                    instruments=instruments,
                )
        except BaseException as exc:
            if not self._main_started:
                # A Ctrl-C (or pytest.exit) before the run started: in a
                # fixture set up before it, or in between. The session's
                # stack is still the group's; what it holds goes back, for
                # pytest to tear down as the session ends.
                self.state.restore(everything=True)
                raise
            # Only a Ctrl-C gets here: one that came while the run was
            # closing its nurseries, whatever else it holds cut short with
            # it; or one that ended the session's trio run the group ran in.
            interrupt = keyboard_interrupt_in(exc)
            if interrupt is None:
                if self.corrupted_by is None:
                    raise
                self._report_corrupted_run(self.corrupted_by, exc)
                return
            self.interrupt = self.interrupt or interrupt
            if self.session_run is not None and self.session_run.ended:
                note(
                    f"a KeyboardInterrupt ended the session's trio run while {self.group.label}"
                    " ran: the tests still running then are not reported, and the async"
                    " fixtures alive in that run were cancelled"
                )
            else:
                self._cutting = True
        finally:
            if start is not None:
                self.summary.wall = time.perf_counter() - start[0]
                self.summary.cpu = time.process_time() - start[1]
            self._uninstall()
            self.patches.restore(report_to=self.group.members[0])
        if self._cutting:
            if self.session_run is not None:
                self.session_run.cut_short = True
            note(cut_short_message(self.group.label, self.cut_short))
        if self.interrupt is not None:
            raise self.interrupt

    def _report_corrupted_run(self, culprit: pytest.Function, error: BaseException) -> None:
        """Give each member not yet reported an error: ``culprit`` ended the group's trio run.

        A test that leaves a nursery open in its task (an async generator
        that yields inside ``async with trio.open_nursery()``, a nursery
        entered by hand) corrupts trio's run: trio ends it. pytest-trio
        fails that test's own ``trio.run``; here the run is the group's.
        """
        label = self.group.label
        first = next(leaves(error), error)
        crash = f"{type(first).__name__}: {(str(first).splitlines() or [''])[0]}"
        for item in self.group.members:
            if item in self._published:
                continue
            if item is culprit:
                message = (
                    f"{item.nodeid} left a trio nursery open in its task (typically an async "
                    "generator that yields inside 'async with trio.open_nursery()' and is left "
                    "unfinished, or a nursery entered by hand); trio cannot go on with the run "
                    f"of {label}: {crash}"
                )
            else:
                message = (
                    f"not run to its end: {culprit.nodeid} left a trio nursery open, which "
                    f"ended the trio run of {label}"
                )
            failure = pytest.fail.Exception(message, False)
            # (Made while the run's error is handled: not shown as its context.)
            failure.__suppress_context__ = True
            result = TestOutcome(item, item.ihook)
            result.record(PhaseClock("setup"), outcome.Error(failure))
            with self.capture.paused():
                self._publish_reports(result, again=False)

    def _uninstall(self) -> None:
        self.patches.uninstall()
        self.task_state.uninstall()
        self.logs.uninstall()
        self.capture.uninstall()

    def _set_up_before_the_run(self) -> None:
        """The members' wider-scoped sync fixtures, set up in pytest's thread before the run.

        Not for a member that a mark may skip (pytest sets up no fixture
        for it), nor one that cannot run in this group.
        """
        compat.set_setup_state(self.session, self.state)
        for item in self.group.members:
            if item in self.clock_conflicts or any(
                mark.name in ("skip", "skipif") for mark in item.iter_markers()
            ):
                continue
            set_up_before_the_run(item, self.shared, self.state)

    @plugin_code
    async def _main(self) -> None:
        self._main_started = True
        compat.set_setup_state(self.session, self.state)
        for observer in self.observers:
            observer.group_started(self)
        if self.clock is not None:
            self._timer = Watchdog("trio_group real-time deadlines")
            self._timer.start()
        try:
            # The outer nursery holds wider-scoped async fixtures, which live
            # until every member is done.
            async with trio.open_nursery() as fixture_nursery:
                self.async_fixtures = AsyncFixtures(
                    fixture_nursery,
                    self.state,
                    self.settings.teardown_timeout,
                    self.session_run,
                    self.deadline_scope,
                )
                try:
                    await self._end_other_parameters()
                    await self._run_members()
                finally:
                    with trio.CancelScope(shield=True):
                        errors = await self.async_fixtures.close(cut_short=self._cutting)
                        errors += await self.state.close()
                    interrupts = [e for e in errors if keyboard_interrupt_in(e) is not None]
                    if interrupts:
                        # Ctrl-C while the wider-scoped fixtures were torn down.
                        self.interrupt = self.interrupt or keyboard_interrupt_in(interrupts[0])
                        self._cutting = True
                        self.async_fixtures.cancel_remaining()
                    self._warn([e for e in errors if e not in interrupts])
        finally:
            if self._timer is not None:
                self._timer.stop()
            self.state.restore()
            for observer in self.observers:
                observer.group_finished(self)

    async def _end_other_parameters(self) -> None:
        """Tear down the parameters of wider-scoped fixtures that this group replaces."""
        unused = self.shared.unused_by(self.group.members)
        if not unused:
            return
        with self.deadline_scope(self.settings.teardown_timeout):
            errors = await self.state.finish_now(unused)
        for error in errors:
            if self._interrupted(error):
                continue  # a Ctrl-C meanwhile: the group stops before its members start
            note(
                f"error while tearing down a parameter of a fixture that {self.group.label} "
                f"uses with another: {error!r}"
            )

    def deadline_scope(self, seconds: float | None) -> trio.CancelScope:
        """A cancel scope cancelled after ``seconds`` of real time (``None``: never).

        Under a virtual clock a trio deadline would be virtual too.
        """
        if seconds is None:
            return trio.CancelScope()
        if self._timer is None:
            return trio.CancelScope(deadline=trio.current_time() + seconds)
        scope = trio.CancelScope()
        cancel_in_real_time(self._timer, scope, seconds)
        return scope

    async def _run_members(self) -> None:
        self.task_state.runner_task = trio.lowlevel.current_task()
        async with trio.open_nursery() as nursery:
            try:
                # Members start in pytest's order; with a limit, each waits
                # here for its slot, so a limited group holds no waiting task
                # per member.
                for item in self.group.members:
                    if self.stop_reason is not None:
                        break
                    if self._limiter is not None:
                        await self._limiter.acquire_on_behalf_of(item)
                    self._unfinished += 1
                    nursery.start_soon(self._run_member, item, name=item.nodeid)
                    # Let it start before spawning the next: a group of
                    # thousands then does not hold thousands of tasks at once
                    # unless they really run at the same time.
                    await trio.lowlevel.checkpoint()
            except BaseException as exc:
                if not self._interrupted(exc):
                    raise
            finally:
                self._spawning = False
                # From here on this task may run a test's code (a rerun on its own).
                self.task_state.runner_task = None
            while self._unfinished:
                try:
                    await self._all_finished.wait()
                except BaseException as exc:
                    if not self._interrupted(exc):
                        raise
        held, self._held = self._held, []
        try:
            for observer in self.observers:
                await observer.after_members(self, held)
        finally:
            for member in held:
                self._publish(member)
        for item in self.group.members:
            if item not in self._started:
                self.state.release(item)
                self.summary.not_started += 1

    def _interrupted(self, exc: BaseException) -> bool:
        """Handle a Ctrl-C that reached the main task; ``False`` if ``exc`` is none.

        The first stops the group; one after that (or after a test's own
        ``KeyboardInterrupt``) cuts the running members' teardown short.
        """
        interrupt = keyboard_interrupt_in(exc)
        if interrupt is None:
            return False
        if self.interrupt is None:
            self.interrupt = interrupt
            self.stop("the run was interrupted (KeyboardInterrupt)")
            return True
        self._cutting = True
        for member in self._running:
            if member.item.nodeid not in self.cut_short:
                self.cut_short.append(member.item.nodeid)
            member.cut_short()
        return True

    def _warn(self, errors: list[BaseException]) -> None:
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
        for member in self._running:
            member.cancel("stop")

    @plugin_code
    async def _run_member(self, item: pytest.Function) -> None:
        try:
            if self.stop_reason is not None:
                # The group is stopping: like pytest, do not start more tests.
                return
            self._started.add(item)
            member = await self.attempt(item)
            while (delay := self._next_attempt(member)) is not None:
                self._publish(member)
                member = await self.again(member, delay)
            # Published before the slot is released, so that a stop it causes
            # is seen before the next member starts.
            if any(observer.hold_reports(member) for observer in self.observers):
                self._held.append(member)
            else:
                self._publish(member)
        finally:
            if self._limiter is not None:
                self._limiter.release_on_behalf_of(item)
            self._unfinished -= 1
            if not self._unfinished and not self._spawning:
                self._all_finished.set()

    async def attempt(
        self, item: pytest.Function, number: int = 1, *, alone: bool = False
    ) -> MemberRun:
        """Run ``item``'s setup, call and teardown once; its reports are made, not published."""
        member = MemberRun(self, item, number, alone=alone)
        if self.stop_reason is not None:
            member.cancel("stop")
        self._running.add(member)
        self.summary.peak = max(self.summary.peak, len(self._running))
        try:
            await member.run()
        finally:
            self._running.discard(member)
        return member

    def members_using(self, fixturedef: compat.FixtureDef[Any]) -> list[MemberRun]:
        """The running members whose fixture plan holds ``fixturedef`` (a wider-scoped one)."""
        return [
            member
            for member in self._running
            if fixturedef in compat.item_fixturedefs(member.item).get(fixturedef.argname, ())
        ]

    async def again(self, member: MemberRun, delay: float) -> MemberRun:
        """Run ``member``'s test once more, after ``delay`` seconds (on its own if it was)."""
        if delay > 0:
            # Real seconds, also under a member's virtual clock.
            await trio.to_thread.run_sync(time.sleep, delay)
        compat.renew_request(member.item)
        return await self.attempt(member.item, member.attempt + 1, alone=member.alone)

    def _next_attempt(self, member: MemberRun) -> float | None:
        return self._first_delay(member, lambda observer: observer.next_attempt(member))

    def next_attempt_alone(self, member: MemberRun, runs: int) -> float | None:
        """Seconds before ``member`` runs on its own again after ``runs`` failed runs, or ``None``."""
        return self._first_delay(member, lambda observer: observer.next_attempt_alone(member, runs))

    def _first_delay(
        self, member: MemberRun, ask: Callable[[RunObserver], float | None]
    ) -> float | None:
        """The first observer's word on running ``member`` again; none once the group stops."""
        if self.stop_reason is not None or member.interrupted:
            return None
        for observer in self.observers:
            delay = ask(observer)
            if delay is not None:
                return delay
        return None

    def _publish_reports(self, result: TestOutcome, *, again: bool) -> None:
        """Log a test's reports and count them in the group's summary."""
        result.publish()
        self._published.add(result.item)
        self.summary.add_member(result.item, result.report_list, again=again)

    def _publish(self, member: MemberRun) -> None:
        item = member.item
        with self.capture.paused():
            if member.result.reports:
                self._publish_reports(member.result, again=member.attempt > 1)
            member.warnings.publish(item)
        # As pytest after an item's teardown: its fixture values go now, not
        # when the whole group is over.
        compat.release_request(item)
        self.logs.resume_live()
        session = self.session
        if session.shouldfail or session.shouldstop:
            self.stop(f"the run is stopping ({session.shouldfail or session.shouldstop})")


class MemberRun:
    """One test's task: setup, call and teardown, each captured as an ``Outcome``.

    A group-wide stop reaches it only through ``cancel``, which cancels its
    setup and call; its teardown -- including async fixture tasks in its own
    nursery -- always runs, in order.
    """

    def __init__(
        self, run: GroupRun, item: pytest.Function, attempt: int = 1, *, alone: bool = False
    ) -> None:
        self.run_ = run
        self.item = item
        #: 1 for the first run of the test in its group, 2 for its first rerun...
        self.attempt = attempt
        #: Run again on its own after its group, to tell a concurrency failure.
        self.alone = alone
        self.timeout = item.stash[SPEC_KEY].timeout
        self._setup_hook, self._call_hook, self._teardown_hook, ihook = run.hooks.for_item(item)
        self.result = TestOutcome(item, ihook)
        self.phase: Phase = "setup"
        #: ``PYTEST_CURRENT_TEST`` while this test's code runs.
        self._current_test_prefix = current_test_prefix(item)
        self.current_test = f"{self._current_test_prefix} (setup)"
        assert run.async_fixtures is not None
        self.async_fixtures = run.async_fixtures
        #: Around setup and call: the deadline, and cancelled by ``cancel``.
        self._scope = run.deadline_scope(self.timeout)
        self._cause: str | None = None
        #: The failure message when another plugin's limit cancelled the test.
        self._expiry: str | None = None
        #: The test's contextvars context, shared with its fixture tasks.
        self.context = trio.lowlevel.current_task().context
        #: Set when a phase raised ``pytest.exit`` or ``KeyboardInterrupt``:
        #: like pytest, the session stops, and that phase and the ones after
        #: it are not reported (the ones before it are).
        self.interrupted = False
        self.output = MemberOutput(pass_through=run.capture.pass_through)
        self.logs = MemberLogs(item, run.logs.plugin)
        self.warnings = run.warnings.for_member(item)
        #: Holds the test's async-generator fixtures (made only if it has any).
        self.fixture_nursery: trio.Nursery | None = None
        #: Nurseries the member's task holds open around its phases (its fixture nursery).
        self._own_nurseries = 0
        self._crash: BaseException | None = None
        self._crash_recorded = False
        self._cancelled_tb: types.TracebackType | None = None
        #: Whether the deadline cancelled setup or call (marked on the timeline).
        self.timed_out = False
        self._grace: trio.CancelScope | None = None
        self._teardown_cut = False

    def cancel(self, cause: str) -> None:
        """Cancel setup and call: ``"stop"`` (the group is stopping) or ``"crash"``."""
        if self._cause is None:
            self._cause = cause
        self._scope.cancel()

    def expire(self, message: str) -> None:
        """Cancel setup and call because a limit other than the mark's ran out."""
        if self._cause is None:
            self._expiry = message
        self.cancel("expired")

    def cut_short(self) -> None:
        """A second Ctrl-C: cancel setup, call and teardown; teardown goes unreported."""
        self._teardown_cut = True
        self.cancel("stop")
        if self._grace is not None:
            self._grace.cancel()

    def crash(self, error: BaseException) -> None:
        """An async fixture's task failed while the test ran: cancel the test, fail it."""
        if self._crash is None:
            self._crash = error
            self.cancel("crash")

    async def run(self) -> None:
        token = CURRENT_MEMBER.set(self)
        self.run_.task_state.enter(self)
        for observer in self.run_.observers:
            observer.member_started(self)
        try:
            await self._run()
        finally:
            for observer in self.run_.observers:
                observer.member_finished(self)
            self.run_.task_state.leave(self)
            CURRENT_MEMBER.reset(token)

    def _check_nurseries(self) -> None:
        """Blame the test if its code left a nursery open in its task: trio's run cannot go on."""
        if len(trio.lowlevel.current_task().child_nurseries) > self._own_nurseries:
            self.run_.corrupted_by = self.run_.corrupted_by or self.item

    def _begin(self, when: Phase) -> PhaseClock:
        self.phase = when
        self.current_test = f"{self._current_test_prefix} ({when})"
        self.run_.task_state.phase_began(self)
        for observer in self.run_.observers:
            observer.phase_started(self, when)
        self.logs.begin(when)
        return PhaseClock(when)

    async def _run(self) -> None:
        if not uses_async_generator_fixtures(self.item, self.run_.shared):
            await self._phases()
            return
        async with trio.open_nursery() as self.fixture_nursery:
            try:
                await self._phases()
            finally:
                # Normally all torn down by now; never left waiting forever.
                self.async_fixtures.cancel_remaining(self)

    async def _phases(self) -> None:
        self._own_nurseries = len(trio.lowlevel.current_task().child_nurseries)
        clock = self._begin("setup")
        with self._scope:
            if await self._phase(clock, self._setup):
                clock = self._begin("call")
                await self._phase(clock, self._call)
        if self._scope.cancelled_caught:
            self._record(clock, outcome.Error(self._cancellation_error()))
        await self._teardown()

    async def _phase(self, clock: PhaseClock, step: Any) -> bool:
        """Run one phase; record its outcome unless it was cancelled (which propagates)."""
        try:
            await step()
        except BaseException as exc:
            self._check_nurseries()
            if is_cancellation(exc):
                self._cancelled_tb = exc.__traceback__
                raise
            self._record(clock, outcome.Error(exc))
            return False
        self._check_nurseries()
        if self._scope.cancel_called and self._cause in (None, "expired"):
            # The deadline was delivered and the code swallowed the
            # trio.Cancelled: the phase did not end in time all the same. (A
            # stop or a crash reaches the next phase's first checkpoint, as
            # it always has.)
            self._record(clock, outcome.Error(self._cancellation_error()))
            return False
        self._record(clock, outcome.Value(None))
        return True

    def _record(self, clock: PhaseClock, result: outcome.Outcome[object]) -> None:
        item, when = self.item, clock.when
        out, err = self.output.take()
        if out:
            item.add_report_section(when, "stdout", out)
        if err:
            item.add_report_section(when, "stderr", err)
        self.logs.end(when)
        # (outcome's classes are ABCs: an exact type check is the cheap one.)
        error = result.error if type(result) is outcome.Error else None
        interrupt = None if error is None else self._interrupt_in(error, when)
        if when == "teardown" and self._teardown_cut:
            return
        if interrupt is not None:
            self.interrupted = True
            self.run_.interrupt = self.run_.interrupt or hide_plugin_frames(interrupt)
            self.run_.stop(f"{type(interrupt).__name__} in {self.item.nodeid}")
            return
        if not self.interrupted:
            if error is not None:
                result = outcome.Error(hide_plugin_frames(error))
            self.result.record(clock, result)

    def _interrupt_in(self, error: BaseException, when: Phase) -> BaseException | None:
        """The ``KeyboardInterrupt`` or ``pytest.exit`` that a phase's ``error`` is or holds.

        Teardown errors are gathered into a group by this plugin: an
        interrupt among them still stops the session.
        """
        candidates = walk(error) if when == "teardown" else iter((error,))
        return next((exc for exc in candidates if isinstance(exc, self.run_.reraise)), None)

    def _cancellation_error(self) -> BaseException:
        """Why setup or call was cancelled: the group stopping, a fixture crash, the deadline."""
        if self._cause == "stop":
            return compat.make_skip(f"cancelled: {self.run_.stop_reason}")
        if self._cause == "crash":
            assert self._crash is not None
            self._crash_recorded = True
            return self._crash
        if self._cause == "expired":
            assert self._expiry is not None
            # The observers' word goes on the first line, before what follows it.
            first, newline, rest = self._expiry.partition("\n")
            details = "".join(o.timeout_detail(self, 0.0) for o in self.run_.observers)
            message = first + details + newline + rest
        else:
            assert self.timeout is not None
            self.timed_out = True
            late_by = trio.current_time() - self._scope.deadline
            message = f"Timeout: test exceeded {self.timeout:g}s ({self.run_.group.label})"
            message += "".join(o.timeout_detail(self, late_by) for o in self.run_.observers)
        frames = user_frames(self._cancelled_tb)
        # Without a frame of the user's (the cancellation was swallowed, or
        # came while no user code waited) the message says it all: no
        # traceback of the plugin's.
        return pytest.fail.Exception(message, pytrace=frames is not None).with_traceback(frames)

    @user_code
    async def _setup(self) -> None:
        __tracebackhide__ = True
        item = self.item
        self._setup_hook(item=item)
        isolate(item, self.run_.shared)
        self.run_.state.setup_chain(item)
        conflict = self.run_.clock_conflicts.get(item)
        if conflict is not None:
            pytest.fail(conflict, pytrace=False)
        await fill_fixtures(item)
        self.run_.hooks.check_exceptions(item.config)

    @user_code
    async def _call(self) -> None:
        __tracebackhide__ = True
        item = self.item
        self._call_hook(item=item)
        funcargs = item.funcargs
        kwargs = {name: funcargs[name] for name in compat.test_argnames(item)}
        instruments = check_run_arguments(kwargs, self.run_.clock)
        for instrument in instruments:
            trio.lowlevel.add_instrument(instrument)
        try:
            if hasattr(item.obj, "hypothesis"):
                from ._plugins.hypothesis import run_given_test

                await run_given_test(item.obj, kwargs)
            else:
                await item.obj(**kwargs)
        finally:
            for instrument in instruments:
                trio.lowlevel.remove_instrument(instrument)
        self.run_.hooks.check_exceptions(item.config)

    def _grace_scope(self) -> contextlib.AbstractContextManager[trio.CancelScope | None]:
        """The scope a second Ctrl-C cancels to cut the teardown short.

        Each async fixture's teardown has a grace period of its own (see
        ``AsyncFixtures``); none where no teardown of the group can await,
        since a cancel scope around synchronous code cancels nothing: a
        group without any spares one scope per member.
        """
        if not self.run_.state.teardowns_can_await:
            return contextlib.nullcontext()
        return trio.CancelScope()

    async def _teardown(self) -> None:
        clock = self._begin("teardown")
        errors: list[BaseException] = []
        with self._grace_scope() as grace:
            self._grace = grace
            if self._teardown_cut and grace is not None:
                grace.cancel()
            try:
                self._teardown_hook(item=self.item, nextitem=self.run_.nextitem)
            except BaseException as exc:
                # A KeyboardInterrupt or pytest.exit from a teardown hook
                # too: the test keeps its setup and call reports, and its
                # fixtures are still torn down below.
                errors.append(exc)
            try:
                await self.run_.state.teardown_item(self.item)
            except BaseException as exc:  # one error or a group of them, never Cancelled
                errors.append(exc)
        if not errors:
            # After the teardown, as pytest's trylast hooks are.
            try:
                self.run_.hooks.check_exceptions(self.item.config)
            except TEST_OUTCOME as exc:
                errors.append(exc)
        if self._crash is not None and not self._crash_recorded:
            errors.append(self._crash)
        error = combine_errors(errors, "during test teardown")
        self._record(clock, outcome.Value(None) if error is None else outcome.Error(error))
