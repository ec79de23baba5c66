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
from collections.abc import Iterator

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
