"""Read ``@pytest.mark.trio_group`` marks into validated ``GroupSpec`` values.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import decimal
import inspect
import math
import numbers
import types
from dataclasses import dataclass
from typing import Any, cast

import pytest

from ._options import ALONE_MARK_NAME as ALONE_MARK_NAME
from ._options import MARK_NAME as MARK_NAME

_ACCEPTED = ("name", "timeout")
_UNSET = object()

#: The clock fixtures a test can ask for; one ``trio.run`` has one clock.
CLOCK_FIXTURES = ("autojump_clock", "mock_clock")
#: pytest's fixtures that capture file descriptors 1 and 2, which every test
#: running at the same time shares.
FD_CAPTURE_FIXTURES = ("capfd", "capfdbinary")


@dataclass(frozen=True)
class GroupSpec:
    """How one test joins a group.

    ``name`` is ``None`` for a group of its own (an anonymous mark, or a
    trio test that is not grouped). ``timeout`` is the per-test deadline in
    seconds, ``None`` for none.
    """

    name: str | None
    timeout: float | None
    #: How the test joined: ``"mark"`` (a ``trio_group`` mark), ``"module"``,
    #: ``"class"`` or ``"session"`` (``trio_group_by``), or ``"alone"`` (a trio
    #: test that runs in a ``trio.run`` of its own).
    origin: str = "mark"
    #: The clock fixture the test uses, which its group's run is started with.
    clock: str | None = None
    #: Set when the test leaves its automatic group to run on its own: the
    #: fixture it uses that cannot be shared (``capfd``, ``capfdbinary``).
    alone_for: str | None = None


class MarkError(Exception):
    """A ``trio_group`` mark (or the test it marks) cannot be run as asked."""

    def __init__(self, message: str, mark: str | None = MARK_NAME) -> None:
        super().__init__(message)
        #: The name of the mark at fault, for the message's prefix; ``None``
        #: when the fault is the test's own, not a mark's.
        self.mark = mark


def parse_timeout(value: object, what: str) -> float | None:
    """Validate a timeout given as a number (or ``None``); return it as a float.

    ``what`` names the setting in the message, e.g. ``"timeout"``. Any real
    number is accepted -- ``int``, ``float``, ``Fraction``, ``Decimal`` --
    and one too large for a float, like ``math.inf``, means no deadline.
    Raises ``MarkError`` for booleans, non-numbers, NaN, zero and negatives.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real | decimal.Decimal):
        raise MarkError(f"{what} must be a positive number of seconds, got {_describe(value)}")
    try:
        positive = bool(cast(Any, value) > 0)  # numbers.Real declares no comparisons
    except (TypeError, ArithmeticError):  # a signalling Decimal NaN refuses to compare
        positive = False
    if not positive:  # also false for NaN
        raise MarkError(f"{what} must be a positive number of seconds, got {_describe(value)}")
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _describe(value: object) -> str:
    """``repr(value)``, shortened; never raising (huge ints refuse ``repr``)."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} that cannot be shown>"
    return text if len(text) <= 60 else f"{text[:40]}...{text[-10:]} ({len(text)} characters)"


def parse_alone_mark(mark: pytest.Mark) -> None:
    """Check a ``trio_alone`` mark, which takes no arguments."""
    if mark.args or mark.kwargs:
        raise MarkError(f"{ALONE_MARK_NAME} takes no arguments", ALONE_MARK_NAME)


def clock_of(item: pytest.Item) -> str | None:
    """The clock fixture ``item`` uses, directly or through its fixtures.

    Raises ``MarkError`` when it uses both: one ``trio.run`` has one clock.
    """
    names = getattr(item, "fixturenames", ())
    if "autojump_clock" not in names and "mock_clock" not in names:
        return None
    used = [name for name in CLOCK_FIXTURES if name in names]
    if len(used) > 1:
        raise MarkError(
            "the test uses both autojump_clock and mock_clock; a trio run has one clock", None
        )
    return used[0] if used else None


def fd_capture_of(item: pytest.Item) -> str | None:
    """The fd-capturing fixture ``item`` uses, directly or through its fixtures, if any."""
    names = getattr(item, "fixturenames", ())
    return next((name for name in FD_CAPTURE_FIXTURES if name in names), None)


def parse_mark(mark: pytest.Mark, default_timeout: float | None) -> GroupSpec:
    """The ``GroupSpec`` a ``trio_group`` mark asks for; ``MarkError`` naming a wrong argument."""
    unknown = sorted(set(mark.kwargs) - set(_ACCEPTED))
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise MarkError(
            f"unknown keyword argument(s) {names}; trio_group accepts name= and timeout="
        )
    if len(mark.args) > 1:
        raise MarkError(
            f"takes at most one positional argument (the group name), got {len(mark.args)}"
        )
    if mark.args and "name" in mark.kwargs:
        raise MarkError("the group name is given both positionally and as name=")
    name = mark.args[0] if mark.args else mark.kwargs.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise MarkError(f"the group name must be a non-empty string, got {name!r}")
    raw_timeout = mark.kwargs.get("timeout", _UNSET)
    timeout = default_timeout if raw_timeout is _UNSET else parse_timeout(raw_timeout, "timeout")
    return GroupSpec(name=name, timeout=timeout)


def test_function(item: pytest.Function) -> object:
    """The function a test runs: for a Hypothesis ``@given`` test, the one it wraps."""
    obj = item.obj
    hypothesis = getattr(obj, "hypothesis", None)
    return obj if hypothesis is None else getattr(hypothesis, "inner_test", obj)


def check_runnable(item: pytest.Item, what: str = "trio_group") -> None:
    """Raise ``MarkError`` unless ``item`` is an ``async def`` test function.

    ``what`` names the kind of test in the message: ``"trio_group"`` or ``"trio"``.
    """
    if not isinstance(item, pytest.Function):
        raise MarkError(f"only test functions can be {what} tests, not {type(item).__name__}", what)
    func = test_function(item)
    # (An ``async def`` function answers at once; the rest -- partials,
    # marked callables, the refusals -- go through ``inspect``.)
    if type(func) is types.FunctionType and func.__code__.co_flags & inspect.CO_COROUTINE:
        return
    if inspect.iscoroutinefunction(func):
        return
    if inspect.isasyncgenfunction(func):
        kind = "an async generator function"
    elif inspect.isgeneratorfunction(func):
        kind = "a generator function"
    else:
        kind = "a synchronous function"
    raise MarkError(f"the test is {kind}; {what} tests must be 'async def' functions", what)
