"""Where a Ctrl-C lands in a group's run, and what a second one cuts short.

A SIGINT that arrives while a test's own code runs -- its body, or a
synchronous fixture it sets up -- is raised right there, as trio (and
pytest-trio) would raise it, so a test can expect ``KeyboardInterrupt``
from its own code. Everywhere else -- the plugin's bookkeeping, async
fixtures, teardown, or when every task waits -- it is held off and given to
the group's main task, which stops the group. A second one while the
stopped members tear down cuts their teardown short.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from typing import Any

import trio

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

#: For the tasks' top functions and the plugin's steps between user code.
plugin_code = trio.lowlevel.enable_ki_protection
#: For the steps that call into the test's own code.
user_code = trio.lowlevel.disable_ki_protection


def walk(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and, for an exception group, everything it holds."""
    yield exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from walk(inner)


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The errors ``exc`` is or holds, without the exception groups around them."""
    return (e for e in walk(exc) if not isinstance(e, BaseExceptionGroup))


def keyboard_interrupt_in(exc: BaseException) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` that ``exc`` is or holds, if any."""
    return next((e for e in walk(exc) if isinstance(e, KeyboardInterrupt)), None)


def cut_short_message(label: str, nodeids: list[str]) -> str:
    names = ", ".join(nodeids) if nodeids else "no test"
    return (
        f"a second KeyboardInterrupt cut short the teardown of {label}: the teardown of "
        f"{names} did not finish and is not reported; their fixtures may not be torn down"
    )


def tear_down_after_an_interrupt(session: Any) -> None:
    """Tear down what the session still holds once a Ctrl-C stopped it.

    pytest's runner does it as the session ends, with no test to report
    to: a teardown error, or a ``KeyboardInterrupt`` from a teardown, would
    escape as a raw traceback after the summary. Here each error is a
    warning in the summary, at the code that raised it; a
    ``KeyboardInterrupt`` (a second Ctrl-C) ends the teardown there, as
    pytest's would end.
    """
    from ._notices import blamed_frame, note
    from ._pytest_compat import setup_state

    state = setup_state(session)
    try:
        state.teardown_exact(None)
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        cut_short = False
        for error in leaves(exc):
            # Shown at the teardown code that raised it.
            where = blamed_frame(traceback.extract_tb(error.__traceback__))
            if isinstance(error, KeyboardInterrupt):
                cut_short = True
                note(
                    "a KeyboardInterrupt cut short the teardown after the run was interrupted:"
                    " fixtures not torn down by then are left as they are",
                    where,
                )
            else:
                note(f"error while tearing down after the run was interrupted: {error!r}", where)
        if cut_short:
            # Left as they are, as pytest leaves them when a teardown raises it.
            state.stack.clear()
