"""Tracebacks that end in the user's code, not in trio's or this plugin's.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import itertools
import linecache
import os
import sys
import types
from typing import TypeVar

import outcome
import trio

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

_E = TypeVar("_E", bound=BaseException)

_PLUGIN_DIR = os.path.dirname(__file__) + os.sep
_RUNTIME_DIRS = tuple(
    os.path.dirname(module.__file__) + os.sep
    for module in (trio, outcome)
    if module.__file__ is not None
)


def _entries(tb: types.TracebackType | None) -> list[types.TracebackType]:
    entries: list[types.TracebackType] = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    return entries


def _chain(kept: list[types.TracebackType]) -> types.TracebackType | None:
    """Link ``kept`` into one traceback, in order; ``None`` when nothing is kept."""
    for earlier, later in itertools.pairwise(kept):
        earlier.tb_next = later
    if kept:
        kept[-1].tb_next = None
        return kept[0]
    return None


def _relink(tb: types.TracebackType | None, hidden: tuple[str, ...]) -> types.TracebackType | None:
    return _chain([entry for entry in _entries(tb) if not _in(entry, hidden)])


def user_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """``tb`` relinked without trio's, outcome's and this plugin's frames.

    A timeout's traceback then ends at the ``await`` where the test was
    stuck, not in the scheduler that cancelled it.
    """
    return _relink(tb, (_PLUGIN_DIR, *_RUNTIME_DIRS))


def hide_plugin_frames(error: BaseException) -> BaseException:
    """``error`` (and what it groups or was caused by) with a traceback of the user's code.

    The plugin sits between pytest and the user's fixtures and tests; its
    frames, and trio's and outcome's between two user frames (a nursery
    passing an error on), say nothing about the failure. trio's frames at
    the innermost end say where a trio call raised and are kept.
    """
    seen: set[int] = set()
    todo = [error]
    while todo:
        exc = todo.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        # A cancellation's or a signal's trio frames are the scheduler's or
        # the signal handler's, never the cause.
        clean = user_frames if isinstance(exc, trio.Cancelled | KeyboardInterrupt) else _clean
        exc.__traceback__ = clean(exc.__traceback__)
        if isinstance(exc, BaseExceptionGroup):
            todo.extend(exc.exceptions)
        todo.extend(linked for linked in (exc.__cause__, exc.__context__) if linked is not None)
    return error


def _clean(tb: types.TracebackType | None) -> types.TracebackType | None:
    entries = _entries(tb)
    tail = len(entries)
    while tail and _in(entries[tail - 1], _RUNTIME_DIRS):
        tail -= 1
    hidden = (_PLUGIN_DIR, *_RUNTIME_DIRS)
    return _chain([entry for entry in entries[:tail] if not _in(entry, hidden)] + entries[tail:])


def _in(entry: types.TracebackType, dirs: tuple[str, ...]) -> bool:
    return entry.tb_frame.f_code.co_filename.startswith(dirs)


def located_at(error: _E, code: types.CodeType) -> _E:
    """``error`` with a traceback pointing at the ``def`` line of ``code``'s function.

    For errors about a user's function that has no frame left to show (an
    async generator fixture that already finished): the report then shows
    the fixture's own source, file and line.
    """
    lineno = code.co_firstlineno
    lines = linecache.getlines(code.co_filename)
    # co_firstlineno is the first decorator's line; the def follows them.
    for offset, text in enumerate(lines[lineno - 1 : lineno + 20]):
        if text.lstrip().startswith(("def ", "async def ")):
            lineno += offset
            break
    source = "\n" * (lineno - 1) + "def _located(): raise error\n_located()"
    try:
        exec(compile(source, code.co_filename, "exec"), {"error": error})
    except BaseException as raised:
        if raised is not error:
            raise  # a Ctrl-C that landed just then
        assert raised.__traceback__ is not None
        module_frame = raised.__traceback__.tb_next
        assert module_frame is not None
        return error.with_traceback(module_frame.tb_next)
    raise AssertionError("unreachable")  # pragma: no cover
