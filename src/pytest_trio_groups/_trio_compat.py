"""Every use of a private trio attribute, in one place.

Each accessor names the trio versions it was checked against;
``tests/test_trio_compat.py`` pins each behaviour relied on here.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import functools
import random
import signal
import sys
import threading
import types
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def scheduler_random() -> random.Random:
    """The generator trio's scheduler shuffles each batch of runnable tasks with.

    ``trio._core._run._r`` (trio 0.25 - 0.35): a module-level
    ``random.Random`` that nothing seeds, also drawn from for the
    ``SystemClock`` offset of each ``trio.run``.
    """
    from trio._core import _run

    generator = _run._r
    assert isinstance(generator, random.Random)
    return generator


@dataclass
class RunState:
    """What one trio run keeps in thread- and process-wide places while it exists."""

    #: The attributes of trio's per-thread run context.
    context: dict[str, object]
    #: The SIGINT handler (``None`` outside the main thread).
    sigint: object
    asyncgen_hooks: tuple[object, object]


def swap_run_state(replacement: RunState, *, sigint: bool = True) -> RunState:
    """Put ``replacement`` in place of the thread's current run state; return the one replaced.

    trio (0.25 - 0.35) keeps the run that exists in a thread in
    ``trio._core._run.GLOBAL_RUN_CONTEXT``, a ``threading.local`` holding
    ``runner`` (and ``task`` during a task's step); a guest run keeps
    ``runner`` there between its ticks, so that ``trio.run`` refuses to start
    in that thread. For as long as it exists a run also holds the SIGINT
    handler its ``KIManager`` installed and its async-generator hooks. A
    guest run that is only driven at times can step aside with this in
    between, and be put back before it is driven again. With ``sigint``
    false the SIGINT handler is neither read nor set.
    """
    from trio._core._run import GLOBAL_RUN_CONTEXT

    replaced = current_run_state(sigint=sigint)
    context = GLOBAL_RUN_CONTEXT.__dict__
    context.clear()
    context.update(replacement.context)
    handler = replacement.sigint
    if sigint and _in_main_thread() and (callable(handler) or isinstance(handler, int)):
        signal.signal(signal.SIGINT, handler)
    sys.set_asyncgen_hooks(*replacement.asyncgen_hooks)  # type: ignore[arg-type]
    return replaced


def current_run_state(*, sigint: bool = True) -> RunState:
    """The thread's run state as it is now (see ``swap_run_state``)."""
    from trio._core._run import GLOBAL_RUN_CONTEXT

    handler = signal.getsignal(signal.SIGINT) if sigint and _in_main_thread() else None
    hooks = sys.get_asyncgen_hooks()
    return RunState(dict(GLOBAL_RUN_CONTEXT.__dict__), handler, (hooks.firstiter, hooks.finalizer))


def outside_the_run() -> contextlib.AbstractContextManager[None]:
    """Run synchronous code as if no trio run existed in this thread, then put the run back.

    See ``_outside_the_run``.
    """
    return _ki_protected_outside_the_run()()


@functools.cache
def _ki_protected_outside_the_run() -> Callable[[], contextlib.AbstractContextManager[None]]:
    """``_outside_the_run``, whose own steps a Ctrl-C does not interrupt.

    A KeyboardInterrupt raised halfway through them would leave trio's run
    context cleared, and trio fails on its next step (``TrioInternalError``):
    trio holds a Ctrl-C off in code marked protected, as in the plugin's
    other code, and hands it to the run. The code run inside is not marked
    -- a Ctrl-C there is raised in it, as anywhere in a test's own code.
    """
    import trio

    return contextlib.contextmanager(trio.lowlevel.enable_ki_protection(_outside_the_run))


def _outside_the_run() -> Iterator[None]:
    """Run synchronous code as if no trio run existed in this thread, then put the run back.

    Synchronous code cannot let the loop run meanwhile, so nothing of the
    run is missed. What a run holds in this thread (trio 0.25 - 0.35, see
    ``swap_run_state``) is set aside: trio's run context, the async-generator
    hooks, the ``sniffio`` library name and, in the main thread, the signal
    wakeup fd (``trio._core._wakeup_socketpair``), which a second
    ``trio.run`` would warn about finding set. trio's SIGINT handler stays:
    a Ctrl-C meanwhile is raised in the code, or held off in the plugin's,
    as anywhere in the run. Inside, ``trio.run()`` works,
    ``trio.lowlevel.current_task()`` raises, and asyncio (or trio-asyncio's
    policy) makes event loops as in a thread without trio.
    """
    from sniffio import thread_local as sniffio_state

    # trio's SIGINT handler stays in place, so it is not read or set again
    # around each sync fixture of a member.
    outer = swap_run_state(RunState({}, None, (None, None)), sigint=False)
    main_thread = _in_main_thread()
    library, sniffio_state.name = sniffio_state.name, None
    wakeup_fd = signal.set_wakeup_fd(-1) if main_thread else -1
    try:
        yield
    except RuntimeError as exc:
        # What trio says to code that needs a run (trio 0.25 - 0.35).
        if str(exc) == "must be called from async context" and hasattr(exc, "add_note"):
            exc.add_note(
                "A sync fixture of a trio_group test runs with no trio run, as under "
                "pytest-trio; make it an async fixture to use trio."
            )
        raise
    finally:
        if main_thread:
            signal.set_wakeup_fd(wakeup_fd, warn_on_full_buffer=False)
        sniffio_state.name = library
        swap_run_state(outer, sigint=False)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@types.coroutine
def awaiting_with_cancellation_seen(
    awaitable: Awaitable[T], seen: Callable[[], object]
) -> Generator[Any, Any, T]:
    """Await ``awaitable``, calling ``seen`` each time trio delivers ``Cancelled`` into it.

    The only way to tell code that caught ``trio.Cancelled`` from code that
    never reached a checkpoint once its scope was cancelled. trio (0.25 -
    0.35) resumes a task blocked at a checkpoint by sending it an
    ``outcome`` (``outcome.Error(Cancelled())`` for a cancellation), which
    its own ``wait_task_rescheduled``, deeper in the awaited code, unwraps;
    anything else is passed through unchanged.
    """
    # Imported here: the randomly support imports this module in sessions
    # that may never import trio.
    import outcome
    import trio

    iterator = awaitable.__await__()
    resume: Callable[[Any], Any] = iterator.send
    value: Any = None
    while True:
        try:
            trap = resume(value)
        except StopIteration as stop:
            result: T = stop.value
            return result
        try:
            value = yield trap
            resume = iterator.send
        except BaseException as exc:
            value, resume = exc, iterator.throw
        delivered = value.error if isinstance(value, outcome.Error) else value
        if isinstance(delivered, trio.Cancelled):
            seen()
