"""The session's trio run: where wider-scoped async fixtures live, driven from pytest's thread.

A trio guest run (``trio.lowlevel.start_guest_run``) whose host loop is
pytest's own thread: trio hands its callbacks to a queue, and ``run``
drives them until the work it submitted is done. Between two ``run`` calls
nothing drives it -- its tasks are paused -- and it steps aside, so that
other trio runs (a group with a virtual clock, pytest-trio's own tests) can
start in the same thread meanwhile.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import queue
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import outcome
import pytest
import trio

from . import _pytest_compat as compat
from . import _trio_compat
from ._context import SESSION_RUN_KEY
from ._fixtures import SharedClones, effective_function, is_async_function, is_per_test
from ._grouping import Group
from ._interrupts import keyboard_interrupt_in, plugin_code
from ._notices import note
from ._trio_mode import POLICY_KEY

_T = TypeVar("_T")

_TEST_OUTCOME = compat.test_outcome_types()

#: Seconds the run gets, once asked to end, to cancel what is still alive.
_CLOSE_GRACE = 5.0


class _Job:
    """Work submitted to the run by ``SessionRun.run``."""

    def __init__(
        self,
        fn: Callable[[], Awaitable[Any]],
        on_interrupt: Callable[[KeyboardInterrupt], object] | None,
    ) -> None:
        self.fn = fn
        self.on_interrupt = on_interrupt
        self.result: outcome.Outcome[Any] | None = None
        #: A Ctrl-C that reached it, raised once it is done (without ``on_interrupt``).
        self.interrupt: KeyboardInterrupt | None = None


class SessionRun:
    """One trio run for the whole session, started when the first group needs it."""

    def __init__(self, shared: SharedClones) -> None:
        #: Copies of parametrized wider-scoped fixtures, for every group run here.
        self.shared = shared
        self._callbacks: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._state: _trio_compat.RunState | None = None
        self._outcome: outcome.Outcome[None] | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._closing: trio.Event | None = None
        self._jobs: list[_Job] = []
        self._stray_interrupt: KeyboardInterrupt | None = None
        self._cancel_at_close: list[trio.CancelScope] = []
        #: A second Ctrl-C cut a group's teardown short: so are the teardowns after it.
        self.cut_short = False
        #: The group run in it now (a ``GroupRun``): its members using a
        #: fixture that lives here are the ones a crash of its task fails.
        self.group: Any = None

    @property
    def nursery(self) -> trio.Nursery:
        """Where wider-scoped async fixtures' tasks live."""
        assert self._nursery is not None
        return self._nursery

    def start(self) -> None:
        outer = _trio_compat.current_run_state()
        trio.lowlevel.start_guest_run(
            self._main,
            run_sync_soon_threadsafe=self._callbacks.put,
            done_callback=self._finished,
            # Its wakeup fd would take the place of any other run's in between.
            host_uses_signal_set_wakeup_fd=True,
            # As for a group's own trio.run: see _interrupts.
            restrict_keyboard_interrupt_to_checkpoints=False,
        )
        self._drive(lambda: self._nursery is not None or self._outcome is not None)
        self._state = _trio_compat.swap_run_state(outer)
        if self._outcome is not None:
            self._outcome.unwrap()

    def is_current(self) -> bool:
        """Whether the calling code runs inside this run."""
        return (
            self._outcome is None
            and trio.lowlevel.in_trio_run()
            and trio.lowlevel.current_trio_token() is self._token
        )

    def run(
        self,
        fn: Callable[[], Awaitable[_T]],
        *,
        instruments: Sequence[trio.abc.Instrument] = (),
        on_interrupt: Callable[[KeyboardInterrupt], object] | None = None,
    ) -> _T:
        """Run ``fn`` in a task of this run and drive the run until it is done.

        A Ctrl-C that trio hands to the run while ``fn`` runs goes to
        ``on_interrupt``; without one it is raised once ``fn`` is done.
        """
        if self._outcome is not None or self._state is None:
            raise RuntimeError("the session's trio run has ended")
        job = _Job(fn, on_interrupt)
        outer = _trio_compat.swap_run_state(self._state)
        try:
            for instrument in instruments:
                trio.lowlevel.add_instrument(instrument)
            try:
                assert self._token is not None
                self._token.run_sync_soon(self._spawn, job)
                self._drive(lambda: job.result is not None or self._outcome is not None)
            finally:
                if self._outcome is None:
                    for instrument in instruments:
                        trio.lowlevel.remove_instrument(instrument)
        finally:
            self._state = _trio_compat.swap_run_state(outer)
        if job.result is None:
            error = self._outcome.error if isinstance(self._outcome, outcome.Error) else None
            interrupt = None if error is None else keyboard_interrupt_in(error)
            if interrupt is not None:
                # A Ctrl-C that ended the whole run: it stops the session.
                raise interrupt
            raise RuntimeError("the session's trio run ended while a job ran") from error
        interrupt = job.interrupt or self._stray_interrupt
        self._stray_interrupt = None
        if interrupt is not None:
            raise interrupt
        return job.result.unwrap()  # type: ignore[no-any-return]

    @property
    def ended(self) -> bool:
        """Whether the run is over (closed, or ended by a Ctrl-C)."""
        return self._outcome is not None

    def run_bounded(self, fn: Callable[[], Awaitable[None]], seconds: float) -> None:
        """``run(fn)`` cancelled after ``seconds`` (or by a Ctrl-C, raised after).

        Once a teardown was cut short, ``fn`` is cancelled at once, and what
        it raises is only warned about, as for the group it was cut in. Once
        the run has ended there is nothing left to run it in: the fixture's
        task ended with it.
        """
        if self.ended:
            return
        if self.cut_short:
            try:
                self._run_bounded(fn, 0)
            except _TEST_OUTCOME as exc:
                note(f"error while tearing down after a cut-short teardown: {exc!r}")
            return
        self._run_bounded(fn, seconds)

    def _run_bounded(self, fn: Callable[[], Awaitable[None]], seconds: float) -> None:
        scope = trio.CancelScope()

        async def bounded() -> None:
            scope.deadline = trio.current_time() + seconds
            with scope:
                await fn()

        def interrupted(exc: KeyboardInterrupt) -> None:
            job_interrupts.append(exc)
            scope.cancel()

        job_interrupts: list[KeyboardInterrupt] = []
        self.run(bounded, on_interrupt=interrupted)
        if job_interrupts:
            raise job_interrupts[0]

    def cancel_at_close(self, scope: trio.CancelScope) -> None:
        """Cancel ``scope`` when the run ends, if it is still open."""
        self._cancel_at_close.append(scope)

    def close(self) -> None:
        """End the run: what is still alive in it is cancelled, boundedly."""
        if self._outcome is not None or self._state is None:
            return
        outer = _trio_compat.swap_run_state(self._state)
        try:
            assert self._token is not None and self._closing is not None
            self._token.run_sync_soon(self._closing.set)
            deadline = time.monotonic() + _CLOSE_GRACE
            self._drive(lambda: self._outcome is not None, deadline=deadline)
        finally:
            # Once it has ended, trio has cleared its own state already.
            state = _trio_compat.swap_run_state(outer)
            if self._outcome is None:
                self._state = state
        if self._outcome is None:
            note(
                f"the session's trio run did not end within {_CLOSE_GRACE:g}s of being "
                "cancelled: a wider-scoped async fixture keeps it alive"
            )
        elif isinstance(self._outcome, outcome.Error):
            note(f"error while ending the session's trio run: {self._outcome.error!r}")

    # -- inside the run -------------------------------------------------------

    @plugin_code
    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._closing = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            while not self._closing.is_set():
                try:
                    await self._closing.wait()
                except KeyboardInterrupt as exc:
                    self._interrupted(exc)
            for scope in self._cancel_at_close:
                scope.cancel()
            nursery.cancel_scope.cancel()

    def _spawn(self, job: _Job) -> None:
        self.nursery.start_soon(self._run_job, job)

    @plugin_code
    async def _run_job(self, job: _Job) -> None:
        self._jobs.append(job)
        try:
            job.result = await outcome.acapture(job.fn)
        finally:
            self._jobs.remove(job)

    def _interrupted(self, exc: KeyboardInterrupt) -> None:
        """A Ctrl-C that trio gave the run's main task: it belongs to the job running."""
        if not self._jobs:
            self._stray_interrupt = self._stray_interrupt or exc
            return
        job = self._jobs[-1]
        if job.on_interrupt is not None:
            job.on_interrupt(exc)
        elif job.interrupt is None:
            job.interrupt = exc

    def _finished(self, result: outcome.Outcome[None]) -> None:
        self._outcome = result

    # -- the host loop --------------------------------------------------------

    @plugin_code
    def _drive(self, done: Callable[[], bool], deadline: float | None = None) -> None:
        """Run trio's callbacks in this thread until ``done()``.

        KI-protected: a Ctrl-C while it waits is handed to the run's main
        task, which passes it to the job running, instead of escaping here
        between two of trio's steps.
        """
        while not done():
            if deadline is None:
                callback = self._callbacks.get()
            else:
                try:
                    callback = self._callbacks.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    return
            callback()


def wider_async_fixtures(item: pytest.Function) -> list[Any]:
    """The async fixtures wider than the test that ``item`` uses, in its fixture order."""
    pytest_trio = item.config.stash[POLICY_KEY].pytest_trio
    found: list[Any] = []
    for fixturedefs in compat.item_fixturedefs(item).values():
        for fixturedef in _used(fixturedefs):
            if is_per_test(fixturedef, item):
                continue
            if is_async_function(effective_function(fixturedef, pytest_trio)):
                found.append(fixturedef)
    return found


def _used(fixturedefs: Sequence[Any]) -> Iterable[Any]:
    """The definitions of one fixture name that run: the last, and those it overrides and uses."""
    for fixturedef in reversed(fixturedefs):
        yield fixturedef
        if fixturedef.argname not in fixturedef.argnames:
            return


def for_group(session: pytest.Session, group: Group) -> SessionRun | None:
    """The session's trio run if ``group`` runs in it, starting it when first needed.

    A group runs there once the run exists, or when one of its members uses
    a wider-scoped async fixture -- unless it needs a virtual clock, which
    only a trio run of its own can start with.
    """
    if group.clock is not None:
        return None
    existing = session.stash.get(SESSION_RUN_KEY, None)
    if existing is not None:
        return existing
    if not any(wider_async_fixtures(item) for item in group.members):
        return None
    run = SessionRun(SharedClones(session.config.stash[POLICY_KEY].pytest_trio))
    run.start()
    session.stash[SESSION_RUN_KEY] = run
    return run


def clock_conflict(item: pytest.Function, clock: str) -> str | None:
    """Why ``item`` cannot run: it needs ``clock`` and a wider-scoped async fixture."""
    names = [fixturedef.argname for fixturedef in wider_async_fixtures(item)]
    if not names:
        return None
    listed = ", ".join(repr(name) for name in names)
    noun = "fixture" if len(names) == 1 else "fixtures"
    return (
        f"{item.nodeid} uses {clock} and the wider-scoped async {noun} {listed}: a trio run "
        f"has one clock, fixed when it starts, and wider-scoped async fixtures live in the "
        f"session's trio run, which runs on trio's own clock. Drop {clock}, or give the test "
        f"function-scoped fixtures"
    )


def refuse_beside_pytest_trio(item: pytest.Item) -> None:
    """Keep pytest-trio's rule for its own tests: async fixtures are function-scoped.

    Once the session's trio run holds a wider-scoped async fixture, pytest's
    cache would hand its value -- trio objects of another run -- to a test
    that pytest-trio runs in a ``trio.run`` of its own.
    """
    if item.config.stash[POLICY_KEY].pytest_trio is None or not isinstance(item, pytest.Function):
        return
    if item.get_closest_marker("trio") is None:
        return
    names = [fixturedef.argname for fixturedef in wider_async_fixtures(item)]
    if names:
        listed = ", ".join(repr(name) for name in names)
        pytest.fail(
            f"{item.nodeid} is run by pytest-trio, whose async fixtures must be "
            f"function-scoped, and requests the wider-scoped async {listed}: those live "
            "in pytest-trio-groups' session trio run, for trio_group members (mark the "
            "test trio_group, or set trio_group_by, to use them)",
            pytrace=False,
        )


def close_session_run(session: pytest.Session) -> None:
    run = session.stash.get(SESSION_RUN_KEY, None)
    if run is not None:
        del session.stash[SESSION_RUN_KEY]
        run.close()
