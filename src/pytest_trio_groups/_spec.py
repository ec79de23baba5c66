"""Read ``@pytest.mark.trio_group`` marks into validated ``GroupSpec`` values."""

from __future__ import annotations

import decimal
import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, cast

import pytest

MARK_NAME = "trio_group"
_ACCEPTED = ("name", "timeout")
_UNSET = object()


@dataclass(frozen=True)
class GroupSpec:
    """What one test's mark asks for.

    ``name`` is ``None`` for an anonymous mark: the test forms a group of its
    own. ``timeout`` is the per-test deadline in seconds, ``None`` for none.
    """

    name: str | None
    timeout: float | None


class MarkError(Exception):
    """A ``trio_group`` mark (or the test it marks) cannot be run as asked."""


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


def spec_for(item: pytest.Item, default_timeout: float | None) -> GroupSpec | None:
    """The ``GroupSpec`` of ``item``'s closest ``trio_group`` mark, if any.

    Raises ``MarkError`` naming the fault when the mark's arguments are wrong
    or the test cannot run in a trio nursery.
    """
    mark = item.get_closest_marker(MARK_NAME)
    if mark is None:
        return None
    spec = _parse_mark(mark, default_timeout)
    _check_runnable(item)
    return spec


def _parse_mark(mark: pytest.Mark, default_timeout: float | None) -> GroupSpec:
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


def _check_runnable(item: pytest.Item) -> None:
    if not isinstance(item, pytest.Function):
        raise MarkError(f"only test functions can join a trio_group, not {type(item).__name__}")
    func = item.obj
    if inspect.iscoroutinefunction(func):
        return
    if inspect.isasyncgenfunction(func):
        kind = "an async generator function"
    elif inspect.isgeneratorfunction(func):
        kind = "a generator function"
    else:
        kind = "a synchronous function"
    raise MarkError(f"the test is {kind}; trio_group tests must be 'async def' functions")
