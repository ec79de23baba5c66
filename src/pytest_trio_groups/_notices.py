"""Warnings the plugin raises about one test -- a blocked loop, shared state -- and their place.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import traceback
import types
import warnings
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._runner import MemberRun


def note(message: str, where: traceback.FrameSummary | None = None) -> None:
    """A warning in pytest's summary; never an error, whatever the warning filters.

    ``where``: the place in the user's code it is shown at.
    """
    try:
        if where is None:
            warnings.warn(pytest.PytestWarning(message), stacklevel=1)
        else:
            warning = pytest.PytestWarning(message)
            warnings.warn_explicit(warning, type(warning), where.filename, where.lineno or 0)
    except Warning:
        pass


def owner_name(obj: object) -> str:
    """How a message names an object whose attribute changed: a module, a class, or one object."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    if isinstance(obj, type):
        return f"{obj.__module__}.{obj.__qualname__}"
    return f"<{type(obj).__name__} object at {id(obj):#x}>"


def listed(names: list[str], shown: int) -> str:
    """``names`` joined for one line of a message: the first ``shown``, then how many more."""
    if len(names) <= shown:
        return ", ".join(names)
    return ", ".join([*names[:shown], f"{len(names) - shown} more"])


def _dirs(*modules: object) -> tuple[str, ...]:
    return tuple(
        os.path.dirname(path) + os.sep
        for module in modules
        if (path := getattr(module, "__file__", None))
    )


@functools.cache
def _trio_dir() -> tuple[str, ...]:
    import trio

    return _dirs(trio)


@functools.cache
def _plumbing() -> tuple[str, ...]:
    """The machinery between a test and its code: left out of the stacks shown."""
    # Imported here: loading the plugin must not import trio (nor outcome).
    import _pytest
    import outcome
    import pluggy
    import trio

    return _dirs(trio, outcome, pluggy, pytest, _pytest, sys.modules[__name__.rpartition(".")[0]])


@functools.cache
def _libraries() -> tuple[str, ...]:
    """Library code: a place in it is not what to blame when user code called it."""
    return _standard() + _installed()


@functools.cache
def _standard() -> tuple[str, ...]:
    """The plumbing and Python's standard library."""
    return _plumbing() + _sysconfig_dirs("stdlib", "platstdlib")


@functools.cache
def _installed() -> tuple[str, ...]:
    """Where installed packages live (``site-packages``)."""
    return _sysconfig_dirs("purelib", "platlib")


def _sysconfig_dirs(*keys: str) -> tuple[str, ...]:
    # Imported here: only a session that blames a frame needs it.
    import sysconfig

    paths = sysconfig.get_paths()
    return tuple(os.path.join(paths[key], "") for key in keys)


def user_frames(stack: traceback.StackSummary) -> list[traceback.FrameSummary]:
    """The frames of a task's step in ``stack``, without trio's, pytest's or this plugin's.

    The step's own frames start below trio's scheduler: what called
    ``trio.run`` (pytest, ``runpy``) is left out.
    """
    below = max(
        (i for i, frame in enumerate(stack) if frame.filename.startswith(_trio_dir())), default=-1
    )
    plumbing = _plumbing()
    return [frame for frame in stack[below + 1 :] if not frame.filename.startswith(plumbing)]


def blamed_frame(frames: list[traceback.FrameSummary]) -> traceback.FrameSummary | None:
    """The frame to blame among ``frames``, outermost first: the call a user wrote.

    The innermost frame of code outside libraries; else, for tests installed
    with their package (``pytest --pyargs``), the innermost outside the
    standard library and the plumbing; else the innermost.
    """
    for outside in (_libraries(), _standard()):
        for frame in reversed(frames):
            if not frame.filename.startswith(outside):
                return frame
    return frames[-1] if frames else None


@functools.cache
def _patchers() -> tuple[str, ...]:
    """The plugin's and the patchers' own code: what a change made by a library went through."""
    import unittest.mock

    import _pytest.monkeypatch

    return (
        *_dirs(sys.modules[__name__.rpartition(".")[0]]),
        _pytest.monkeypatch.__file__,
        unittest.mock.__file__,
    )


def caller_frame() -> traceback.FrameSummary | None:
    """Where the code that called into the plugin's watch points is.

    The first frame of user code, looking outward from the call, within the
    current trio task. When there is none -- a library made the change, as
    ``pytester`` changes the working directory -- the innermost frame of
    that library's own code.
    """
    import trio

    libraries, plumbing, patchers = _libraries(), _plumbing(), _patchers()
    try:
        top = trio.lowlevel.current_task().coro.cr_frame
    except (RuntimeError, AttributeError):
        top = None
    library_frame = None
    frame = inspect.currentframe()
    while frame is not None:
        filename = frame.f_code.co_filename
        summary = traceback.FrameSummary(filename, frame.f_lineno or 0, frame.f_code.co_name)
        if not filename.startswith((*libraries, *plumbing, "<frozen ")) and frame.f_back:
            return summary
        if library_frame is None and not filename.startswith(patchers):
            library_frame = summary
        if frame is top:
            break
        frame = frame.f_back
    return library_frame


def place(frame: traceback.FrameSummary | None, root: str) -> str:
    """``file:line in function``, the file relative to ``root`` when it is under it."""
    if frame is None:
        return "an unknown place"
    filename = frame.filename
    if filename.startswith(os.path.join(root, "")):
        filename = os.path.relpath(filename, root)
    return f"{filename}:{frame.lineno} in {frame.name}"


def attribute(member: MemberRun, message: Warning, frame: traceback.FrameSummary | None) -> bool:
    """Record ``message`` as a warning of ``member``'s test, unless filters ignore it.

    The filters in force decide whether it is shown; one that says "error"
    still gives a warning: the plugin's own findings fail a test only when
    asked to with an option.
    """
    filename, lineno = (frame.filename, frame.lineno or 0) if frame else ("<unknown>", 0)
    category = type(message)
    own = member.warnings.state
    with warnings.catch_warnings(record=True) as caught:
        if own is not None and not own.is_current():
            # The test's own filters (marks, ``pytest.warns``) are swapped out
            # once its task is done with it: judge by them all the same.
            warnings.filters[:] = own.filters  # type: ignore[index]
        try:
            warnings.warn_explicit(message, category, filename, lineno)
        except Warning:
            caught.append(warnings.WarningMessage(message, category, filename, lineno))
    member.warnings.log.extend(caught)
    return bool(caught)
